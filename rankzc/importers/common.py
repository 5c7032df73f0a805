"""Pieces shared by the importers: reading JSON, parsing proxy blocks, writing a store."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from rankzc.errors import RankzcError
from rankzc.store import Benchmark, finite_or_none


@dataclass
class ArchRecord:
    """One imported architecture with its label and proxy scores."""

    arch_id: str
    encoding: str
    depth: int | None
    val_acc: float
    train_seconds: float | None
    extra: dict[str, Any]
    #: epoch -> {proxy: (score, seconds)}
    proxies: dict[int, dict[str, tuple[Any, float | None]]] = field(default_factory=dict)


@dataclass
class ImportReport:
    """What an import did."""

    path: str
    read: int = 0
    added_architectures: int = 0
    added_runs: int = 0
    proxy_values: int = 0
    missing_values: int = 0
    duplicates: int = 0
    on_duplicate: str = "error"
    seconds: float = 0.0

    def summary(self) -> str:
        dup = ""
        if self.duplicates:
            how = "kept the first" if self.on_duplicate == "first" else "averaged"
            dup = f" ({self.duplicates} duplicate records: {how})"
        return (
            f"read {self.read} architectures from {self.path}{dup}: "
            f"{self.added_architectures} new, {self.added_runs} new labels, "
            f"{self.proxy_values} proxy values ({self.missing_values} missing) "
            f"in {self.seconds:.2f} s"
        )


#: column names of the tables rankzc builds from a store (labels, features, exports,
#: search state): a proxy may not be imported under one of them
RESERVED_COLUMNS = frozenset(
    {
        "arch",
        "arch_id",
        "config_hash",
        "depth",
        "encoding",
        "epoch",
        "extra",
        "id",
        "n_runs",
        "rank",
        "run_id",
        "score",
        "seed",
        "space",
        "status",
        "train_seconds",
        "val_acc",
    }
)
#: longest proxy name an import may hold
MAX_PROXY_NAME = 100
#: largest epoch an import may record scores after
MAX_EPOCH = 100_000


def proxy_name(name: Any, where: str) -> str:
    """``name`` if it may name an imported proxy; else a one-line error naming the field."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_PROXY_NAME:
        raise RankzcError(
            f"{where}: proxy name {str(name)[:40]!r} must be a non-empty string of at most "
            f"{MAX_PROXY_NAME} characters"
        )
    if name.lower() in RESERVED_COLUMNS:
        raise RankzcError(
            f"{where}: proxy name {name!r} is reserved (a column of rankzc's tables: "
            f"{', '.join(sorted(RESERVED_COLUMNS))}); rename it"
        )
    return name


def epoch_number(text: str, where: str) -> int:
    """The epoch in a key such as ``zero_cost_scores_<e>``, within ``0..MAX_EPOCH``."""
    if not text.isdigit() or len(text) > len(str(MAX_EPOCH)) or int(text) > MAX_EPOCH:
        shown = text if len(text) <= 20 else text[:17] + "..."
        raise RankzcError(f"{where}: epoch {shown} outside 0..{MAX_EPOCH}")
    return int(text)


def parse_proxy_block(block: Any, where: str) -> dict[str, tuple[Any, float | None]]:
    """``{name: {"score": s, "time": t}}`` or ``{name: s}`` -> ``{name: (s, t)}``.

    A name must be a string that is not a reserved column (:data:`RESERVED_COLUMNS`).
    """
    if not isinstance(block, dict):
        raise RankzcError(f"{where}: proxies must be an object, got {type(block).__name__}")
    out = {}
    for name, value in block.items():
        proxy_name(name, where)
        if isinstance(value, dict):
            if "score" not in value:
                raise RankzcError(f"{where}: proxy {name!r} has no 'score'")
            out[name] = (value["score"], finite_or_none(value.get("time")))
        else:
            out[name] = (value, None)
    return out


ACCURACY_UNITS = ("auto", "percent", "fraction")
DUPLICATE_POLICIES = ("error", "first", "mean")


def _names(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def accuracy_number(value: Any, where: str) -> float:
    """A finite accuracy as a float, in whatever unit the file uses."""
    if isinstance(value, bool):
        raise RankzcError(f"{where}: accuracy {value!r} is not a number")
    try:
        acc = float(value)
    except (TypeError, ValueError, OverflowError):
        raise RankzcError(f"{where}: accuracy {value!r} is not a number") from None
    if not math.isfinite(acc):
        raise RankzcError(f"{where}: accuracy {value!r} is not finite")
    return acc


def accuracy_fractions(
    values: dict[str, float], unit: str, where: str, *, format_unit: str | None = None
) -> dict[str, float]:
    """Turn a whole accuracy column (record name -> value) into fractions in [0, 1].

    ``unit`` ``percent`` / ``fraction`` is taken as given. ``auto`` (for formats that do
    not define their unit) decides from the whole column: values < 1 are fractions,
    values > 1 percentages, and exactly 0 or 1 go with the rest (1.0 is 100 % as a
    fraction and chance level on a 100-class task as a percentage, so it never decides
    the unit); a column with values both < 1 and > 1 is refused, naming the records of
    the smaller group.

    ``format_unit`` is the unit the file's format defines (``percent`` for
    NAS-Bench-Suite-Zero), used when ``unit`` is ``None``. A column that plainly is not
    in that unit (a percent column whose median is <= 1) is refused rather than divided:
    give ``unit`` to read it otherwise.
    """
    chosen = unit if unit is not None else format_unit or "auto"
    if chosen not in ACCURACY_UNITS:
        raise RankzcError(f"--accuracy-unit: must be one of {ACCURACY_UNITS}, got {unit!r}")
    if unit is None and format_unit == "percent" and values:
        ordered = sorted(values.values())
        median = ordered[len(ordered) // 2]
        if median <= 1:
            low = sum(v <= 1 for v in ordered)
            raise RankzcError(
                f"{where}: this format's accuracies are percentages, but {low} of "
                f"{len(ordered)} are <= 1 (median {median:g}): the file holds fractions? "
                "give --accuracy-unit fraction (or auto)"
            )
    if chosen == "auto":
        high = [k for k, v in values.items() if v > 1]
        low = [k for k, v in values.items() if v < 1]
        if high and low:
            few, kind = (high, "> 1") if len(high) <= len(low) else (low, "< 1")
            raise RankzcError(
                f"{where}: accuracy column mixes fractions ({len(low)} records < 1) and "
                f"percentages ({len(high)} records > 1); the {len(few)} {kind}: "
                f"{_names(few)}; fix them or give --accuracy-unit percent|fraction"
            )
        chosen = "percent" if high else "fraction"
    top = 100.0 if chosen == "percent" else 1.0
    bad = [k for k, v in values.items() if not 0.0 <= v <= top]
    if bad:
        raise RankzcError(
            f"{where}: {len(bad)} accuracies outside [0, {top:g}] ({chosen}): {_names(bad)}"
        )
    return {k: v / top for k, v in values.items()}


def resolve_duplicates(
    records: list[ArchRecord], keys: list[str], policy: str, where: str
) -> tuple[list[ArchRecord], int]:
    """One record per architecture; returns ``(records, number of records dropped)``.

    ``error`` refuses a file with an architecture under two keys (naming them),
    ``first`` keeps the first record whole, ``mean`` averages the label and each proxy
    score over the duplicates. Records are never mixed field by field.
    """
    if policy not in DUPLICATE_POLICIES:
        raise RankzcError(f"--on-duplicate: must be one of {DUPLICATE_POLICIES}, got {policy!r}")
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r.arch_id, []).append(i)
    dups = [g for g in groups.values() if len(g) > 1]
    if not dups:
        return records, 0
    if policy == "error":
        first = dups[0]
        more = sum(len(g) - 1 for g in dups) - (len(first) - 1)
        raise RankzcError(
            f"{where}: architecture {records[first[0]].encoding} appears under "
            f"{_names([keys[i] for i in first], limit=4)}"
            + (f" ({more} more duplicates)" if more else "")
            + "; give --on-duplicate first|mean"
        )
    out = []
    for idx in groups.values():
        group = [records[i] for i in idx]
        if len(group) == 1 or policy == "first":
            out.append(group[0])
        else:
            out.append(_mean_record(group, [keys[i] for i in idx]))
    return out, len(records) - len(out)


def _mean(values: list[Any]) -> float | None:
    finite = [v for v in (finite_or_none(x) for x in values) if v is not None]
    return sum(finite) / len(finite) if finite else None


def _mean_record(group: list[ArchRecord], keys: list[str]) -> ArchRecord:
    proxies: dict[int, dict[str, tuple[Any, float | None]]] = {}
    for epoch in sorted({e for r in group for e in r.proxies}):
        names = sorted({n for r in group for n in r.proxies.get(epoch, {})})
        proxies[epoch] = {
            n: (
                _mean([r.proxies[epoch][n][0] for r in group if n in r.proxies.get(epoch, {})]),
                _mean([r.proxies[epoch][n][1] for r in group if n in r.proxies.get(epoch, {})]),
            )
            for n in names
        }
    first = group[0]
    return ArchRecord(
        arch_id=first.arch_id,
        encoding=first.encoding,
        depth=first.depth,
        val_acc=sum(r.val_acc for r in group) / len(group),
        train_seconds=_mean([r.train_seconds for r in group]),
        extra={**first.extra, "merged_from": keys},
        proxies=proxies,
    )


def write_records(
    bench: Benchmark,
    records: list[ArchRecord],
    *,
    space: str,
    run_config: dict[str, Any],
    report: ImportReport,
    allow_mixed_config: bool = False,
) -> None:
    """Write architectures, one imported run each, and their proxies, in one transaction.

    A store holding runs of another configuration is refused unless ``allow_mixed_config``.
    """
    start = time.perf_counter()
    bench.check_config(run_config, allow_mixed=allow_mixed_config)
    with bench.transaction() as conn:
        report.added_architectures = bench.add_architectures(
            {
                "arch_id": r.arch_id,
                "space": space,
                "encoding": r.encoding,
                "depth": r.depth,
                "extra": r.extra,
            }
            for r in records
        )
        before = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        for r in records:
            run_id, status, _ = bench.get_or_create_run(r.arch_id, 0, run_config)
            if status != "done":
                bench.finish_run(run_id, val_acc=r.val_acc, train_seconds=r.train_seconds)
            for epoch, scores in r.proxies.items():
                results = {name: (score, secs, None) for name, (score, secs) in scores.items()}
                bench.record_proxies(r.arch_id, epoch, results, run_id=run_id)
                report.proxy_values += len(results)
                report.missing_values += sum(finite_or_none(s) is None for s, _ in scores.values())
        report.added_runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] - before
    report.seconds += time.perf_counter() - start
