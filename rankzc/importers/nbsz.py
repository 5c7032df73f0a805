"""Import NAS-Bench-Suite-Zero ``zc_<space>_<dataset>.json`` files.

Two shapes are accepted:

* dataset at the top: ``{"<dataset>": {"<arch>": record}}``;
* search space, then dataset: ``{"<space>": {"<dataset>": {"<arch>": record}}}``.

A record holds ``val_accuracy`` (percent) and one entry per proxy, either
``{"score": s, "time": t}`` or a bare number; ``idx`` and ``arch`` are kept as extra
fields. The architecture string and, where it is one, its integer tuple are stored.

The search space is, in this order: ``--space``, the file's space level, the file name
(``zc_<space>[_<dataset>].json``, e.g. ``zc_transbench101_micro.json``), the encodings'
shape (:func:`_space_from_content`), else ``unknown``. The suite's spaces and encodings
(NASLib's): ``nasbench101`` flat tuples (the ``n x n`` adjacency matrix, then ``n`` op
indices), ``nasbench201`` and ``transbench101_micro`` 6-tuples of edge ops,
``transbench101_macro`` 6-tuples of block codes (0-padded), ``nasbench301`` compact
genotypes ``[[(input, op) x 8], [(input, op) x 8]]``. Accuracies are percentages, the
suite's unit (see :func:`import_nbsz`).
"""

from __future__ import annotations

import ast
import hashlib
import re
import time
from pathlib import Path
from typing import Any

from rankzc.errors import RankzcError
from rankzc.importers.common import (
    ArchRecord,
    ImportReport,
    accuracy_fractions,
    accuracy_number,
    parse_proxy_block,
    resolve_duplicates,
    write_records,
)
from rankzc.jsonfile import read_json
from rankzc.store import Benchmark, check_store_name
from rankzc.writelock import store_lock

SOURCE = "nas-bench-suite-zero"
#: the suite's accuracies are percentages (``val_accuracy`` 93.5 = 93.5 %)
FORMAT_UNIT = "percent"
_NON_PROXY = {"idx", "arch", "val_accuracy", "test_accuracy", "train_time", "valid_accuracy"}
#: the suite's search spaces (``zc_<space>.json``) and the names rankzc stores them under
SPACES = (
    "nasbench101",
    "nasbench201",
    "nasbench301",
    "transbench101_micro",
    "transbench101_macro",
)
_FILE_NAME = re.compile(
    r"^zc_(?P<space>" + "|".join(SPACES) + r"|[a-z0-9]+?)(?:_(?P<dataset>.+))?\.json$"
)


def _space_from_content(encodings: list[str]) -> str | None:
    """The suite space the encodings' shape names, where only one fits.

    Compact genotypes (two cells of eight pairs): ``nasbench301``; ``n*n + n`` integers
    whose first ``n*n`` are a 0/1 strictly upper-triangular matrix (3 <= n <= 7), first op
    ``input`` (0) and last ``output`` (1): ``nasbench101``; 6-tuples of 0..4:
    ``nasbench201``. TransNAS-Bench-101 tuples have NAS-Bench-201's shape, so its space
    comes from the file name (``zc_transbench101_micro.json``) or ``--space``.
    """
    from rankzc.ranking.graphs import _flat_ints, _is_darts, _literal, _nb101_size

    values = [_literal(e) for e in encodings[:200]]
    if values and all(_is_darts(v) for v in values):
        return "nasbench301"
    flat = [_flat_ints(v) for v in values]
    if not flat or any(f is None for f in flat):
        return None

    def nb101(f: list[int]) -> bool:
        n = _nb101_size(len(f))
        if n is None or n < 3:
            return False
        m = f[: n * n]
        upper = all(m[i * n + j] == 0 for i in range(n) for j in range(i + 1))
        return set(m) <= {0, 1} and upper and f[n * n] == 0 and f[-1] == 1

    if all(nb101(f) for f in flat):
        return "nasbench101"
    if all(len(f) == 6 and set(f) <= set(range(5)) for f in flat):
        return "nasbench201"
    return None


def _is_record(value: Any) -> bool:
    return isinstance(value, dict) and "val_accuracy" in value


def _select(data: Any, path: Path, dataset: str | None) -> tuple[str | None, str, dict]:
    """Find ``(space, dataset, {arch: record})`` in either shape."""
    if not isinstance(data, dict) or not data:
        raise RankzcError(f"{path}: expected an object of datasets")

    def first_value(d: dict) -> Any:
        return next(iter(d.values())) if d else None

    sample = first_value(data)
    if isinstance(sample, dict) and _is_record(first_value(sample)):
        space, tables = None, data
    elif (
        isinstance(sample, dict)
        and isinstance(first_value(sample), dict)
        and _is_record(first_value(first_value(sample)))
    ):
        if len(data) != 1:
            raise RankzcError(f"{path}: holds several search spaces {sorted(data)}; split the file")
        space, tables = next(iter(data.items()))
    else:
        raise RankzcError(
            f"{path}: not a NAS-Bench-Suite-Zero file (no records with 'val_accuracy' found)"
        )
    if dataset is None:
        if len(tables) != 1:
            raise RankzcError(f"{path}: holds datasets {sorted(tables)}; choose one with --dataset")
        dataset = next(iter(tables))
    if dataset not in tables:
        raise RankzcError(f"{path}: no dataset {dataset!r} (has {sorted(tables)})")
    return space, dataset, tables[dataset]


def _int_tuple(arch: str) -> list[int] | None:
    try:
        value = ast.literal_eval(arch)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(value, (tuple, list)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return list(value)
    return None


def import_nbsz(
    file: str | Path,
    out: str | Path,
    *,
    dataset: str | None = None,
    space: str | None = None,
    accuracy_unit: str | None = None,
    on_duplicate: str = "error",
    allow_mixed_config: bool = False,
) -> ImportReport:
    """Import one NAS-Bench-Suite-Zero file into the store at ``out``.

    The suite defines its accuracies as percentages, so ``accuracy_unit`` ``None`` (the
    default) reads them as percent (a column whose median is <= 1 is refused as not the
    suite's unit); ``auto``, ``percent`` or ``fraction`` override it. ``on_duplicate``
    (``error``, ``first``, ``mean``: an architecture under two keys) are explained at
    :func:`~rankzc.importers.common.accuracy_fractions` and
    :func:`~rankzc.importers.common.resolve_duplicates`.
    """
    check_store_name(out)  # '#' means STORE#HASH when a store is read
    path = Path(file)
    if not path.exists():
        raise RankzcError(f"{path}: no such file")
    if path.is_dir():
        raise RankzcError(f"{path}: is a directory; give a zc_*.json file")
    start = time.perf_counter()
    data = read_json(path)
    found_space, dataset, table = _select(data, path, dataset)
    if not isinstance(table, dict) or not table:
        raise RankzcError(f"{path}: dataset {dataset!r} holds no architectures")
    m = _FILE_NAME.match(path.name)
    encodings = [str(r.get("arch", k)) if isinstance(r, dict) else str(k) for k, r in table.items()]
    space = (
        space
        or found_space
        or (m.group("space") if m else None)
        or _space_from_content(encodings)
        or "unknown"
    )
    records, keys = [], []
    for key, rec in table.items():
        where = f"{path}: {dataset}/{key}"
        if not isinstance(rec, dict):
            raise RankzcError(f"{where}: record is not an object")
        if "val_accuracy" not in rec:
            raise RankzcError(f"{where}: record has no 'val_accuracy'")
        arch = str(rec.get("arch", key))
        tup = _int_tuple(arch)
        extra: dict[str, Any] = {"arch": arch}
        if tup is not None:
            extra["tuple"] = tup
        if "idx" in rec:
            extra["idx"] = rec["idx"]
        proxies = {k: v for k, v in rec.items() if k not in _NON_PROXY}
        records.append(
            ArchRecord(
                arch_id=hashlib.sha256(f"{space}:{arch}".encode()).hexdigest()[:16],
                encoding=arch,
                depth=None,
                val_acc=accuracy_number(rec["val_accuracy"], f"{where}: val_accuracy"),
                train_seconds=None,
                extra=extra,
                proxies={-1: parse_proxy_block(proxies, where)},
            )
        )
        keys.append(str(key))
    where = f"{path}: {dataset}"
    fractions = accuracy_fractions(
        {k: r.val_acc for k, r in zip(keys, records, strict=True)},
        accuracy_unit,
        where,
        format_unit=FORMAT_UNIT,
    )
    for k, r in zip(keys, records, strict=True):
        r.val_acc = fractions[k]
    report = ImportReport(path=str(path), read=len(records), on_duplicate=on_duplicate)
    records, report.duplicates = resolve_duplicates(records, keys, on_duplicate, where)
    config = {"source": SOURCE, "space": space, "dataset": dataset}

    def fill(bench: Benchmark) -> None:
        write_records(
            bench,
            records,
            space=space,
            run_config=config,
            report=report,
            allow_mixed_config=allow_mixed_config,
        )

    # a new store is written whole beside --out and linked there (never a partial one)
    with store_lock(out, "import"):  # the one write lock of every writer of a store
        Benchmark.create(out, space=space, dataset=dataset, source=SOURCE, fill=fill).close()
    report.seconds = time.perf_counter() - start
    return report
