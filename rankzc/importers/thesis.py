"""Import the GCN-NAS study's benchmark: one JSON file per architecture.

Each file holds ``{"<sha256>": {"weights": L x 8 floats, "val_acc": fraction,
"time": training seconds, "zero_cost_scores": {proxy: {"score", "time"}},
"zero_cost_scores_<e>": {...}, ...}}``. A switch is on when its weight is > 0.1;
``zero_cost_scores`` is stored as epoch -1 (initialisation) and
``zero_cost_scores_<e>`` as epoch ``e``. Non-finite scores ("Nan", inf) are stored
as missing. The study's proxy settings (:data:`STUDY_SETTINGS`) are recorded with them.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from rankzc.errors import RankzcError
from rankzc.importers.common import (
    ArchRecord,
    ImportReport,
    accuracy_fractions,
    accuracy_number,
    epoch_number,
    parse_proxy_block,
    resolve_duplicates,
    write_records,
)
from rankzc.jsonfile import read_json
from rankzc.space import SPACE, Architecture
from rankzc.store import Benchmark, check_store_name
from rankzc.writelock import store_lock

SOURCE = "thesis-gcn-nas"
DATASET = "ntu60-xview"
#: The training run every imported label stands for (the study's recipe).
RUN_CONFIG = {
    "source": SOURCE,
    "dataset": DATASET,
    "optimizer": "sgd-nesterov",
    "momentum": 0.9,
    "lr": 0.1,
    "weight_decay": 0.0006,
    "milestones": [30, 45, 60],
    "batch_size": 40,
    "epochs": 70,
}
_EPOCH_KEY = re.compile(r"^zero_cost_scores(?:_(\d+))?$")

#: The study's proxy settings (recorded in the store as meta ``proxy_settings``): the
#: ntu60 network (width 1, 60 classes) on samples of 3 channels x 300 frames x 25 joints
#: x 2 persons, a minibatch of 20, cross-entropy, on NTU RGB+D 60 cross-view, which
#: rankzc cannot load (``study:ntu60-xview``): a ranker fitted on the data-free proxies
#: recomputes them as the study did, the others need ``rankzc score --data ntu:PATH``.
#: ``definitions`` 2 is the version whose proxy definitions follow the study's code;
#: the study's ``flops`` counted its whole minibatch (option ``flops_per="batch"``);
#: zen is recomputed on 4 Gaussian samples (``zen_batch``; see :func:`rankzc.proxies.zen.zen`).
STUDY_SETTINGS = {
    "preset": "ntu60",
    "data": "study:ntu60-xview",
    "batch_size": 20,
    "seed": 0,
    "device": "auto",
    "options": {"flops_per": "batch", "zen_batch": 4},
    "resample": True,
    "definitions": 2,
    "num_classes": 60,
    "num_frames": 300,
    "input_shape": [3, 300, 25, 2],
    "loss": "cross_entropy",
    "source": SOURCE,
}


def study_settings(proxies: list[str]) -> dict:
    """:data:`STUDY_SETTINGS` for the study's proxies among ``proxies`` (those rankzc
    knows, sorted), checked by :class:`~rankzc.proxies.features.ProxySettings`."""
    from rankzc.proxies.features import ProxySettings
    from rankzc.proxies.registry import PROXIES

    known = sorted(n for n in set(proxies) if n in PROXIES)
    settings = {**STUDY_SETTINGS, "proxies": known}
    ProxySettings.from_dict(settings)  # the record must load as settings
    return settings


def parse_thesis_file(path: Path) -> ArchRecord:
    """Read and validate one architecture file (``val_acc`` as written, unit not decided)."""
    data = read_json(path)
    if not isinstance(data, dict) or len(data) != 1:
        raise RankzcError(f"{path}: expected one object {{<sha256>: record}}")
    ((key, rec),) = data.items()
    if not isinstance(rec, dict):
        raise RankzcError(f"{path}: record {key!r} is not an object")
    for field in ("weights", "val_acc"):
        if field not in rec:
            raise RankzcError(f"{path}: record has no '{field}'")
    try:
        arch = Architecture.from_weights(rec["weights"])
    except ValueError as err:
        msg = str(err) if str(err).startswith("weights") else f"weights: {err}"
        raise RankzcError(f"{path}: {msg}") from None
    acc = accuracy_number(rec["val_acc"], f"{path}: val_acc")
    record = ArchRecord(
        arch_id=arch.arch_id,
        encoding=str(arch),
        depth=arch.depth,
        val_acc=acc,
        train_seconds=rec.get("time"),
        extra={"source_id": key},
    )
    for name, block in rec.items():
        m = _EPOCH_KEY.match(name)
        if m:
            epoch = -1 if m.group(1) is None else epoch_number(m.group(1), f"{path}: {name}")
            record.proxies[epoch] = parse_proxy_block(block, f"{path}: {name}")
    return record


def import_thesis(
    directory: str | Path,
    out: str | Path,
    *,
    accuracy_unit: str = "auto",
    on_duplicate: str = "error",
    allow_mixed_config: bool = False,
) -> ImportReport:
    """Import every ``*.json`` file of ``directory`` into the store at ``out``.

    All files are read and validated before anything is written. The accuracy unit
    is decided over all files (``accuracy_unit``); an architecture in two files is
    refused, or resolved by ``on_duplicate`` (see :mod:`rankzc.importers.common`).
    """
    check_store_name(out)  # '#' means STORE#HASH when a store is read
    directory = Path(directory)
    if not directory.exists():
        raise RankzcError(f"{directory}: no such directory")
    if not directory.is_dir():
        raise RankzcError(f"{directory}: not a directory")
    files = sorted(directory.glob("*.json"))
    if not files:
        raise RankzcError(f"{directory}: no *.json architecture files")
    start = time.perf_counter()
    records = [parse_thesis_file(f) for f in files]
    names = [f.name for f in files]
    fractions = accuracy_fractions(
        {n: r.val_acc for n, r in zip(names, records, strict=True)}, accuracy_unit, str(directory)
    )
    for n, r in zip(names, records, strict=True):
        r.val_acc = fractions[n]
    report = ImportReport(path=str(directory), read=len(records), on_duplicate=on_duplicate)
    records, report.duplicates = resolve_duplicates(records, names, on_duplicate, str(directory))

    def fill(bench: Benchmark) -> None:
        write_records(
            bench,
            records,
            space=SPACE,
            run_config=RUN_CONFIG,
            report=report,
            allow_mixed_config=allow_mixed_config,
        )
        names = sorted({n for r in records for block in r.proxies.values() for n in block})
        bench.set_meta(proxy_settings=json.dumps(study_settings(names), sort_keys=True))

    # a new store is written whole beside --out and linked there (never a partial one)
    with store_lock(out, "import"):  # the one write lock of every writer of a store
        Benchmark.create(out, space=SPACE, dataset=DATASET, source=SOURCE, fill=fill).close()
    report.seconds = time.perf_counter() - start
    return report
