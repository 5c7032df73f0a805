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
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"read {self.read} architectures from {self.path}: "
            f"{self.added_architectures} new, {self.added_runs} new labels, "
            f"{self.proxy_values} proxy values ({self.missing_values} missing) "
            f"in {self.seconds:.2f} s"
        )


def parse_proxy_block(block: Any, where: str) -> dict[str, tuple[Any, float | None]]:
    """``{name: {"score": s, "time": t}}`` or ``{name: s}`` -> ``{name: (s, t)}``."""
    if not isinstance(block, dict):
        raise RankzcError(f"{where}: proxies must be an object, got {type(block).__name__}")
    out = {}
    for name, value in block.items():
        if isinstance(value, dict):
            if "score" not in value:
                raise RankzcError(f"{where}: proxy {name!r} has no 'score'")
            out[name] = (value["score"], finite_or_none(value.get("time")))
        else:
            out[name] = (value, None)
    return out


def accuracy_fraction(value: Any, where: str, percent: bool | None = None) -> float:
    """A finite accuracy as a fraction in [0, 1].

    It is divided by 100 when ``percent``; ``None`` takes a value above 1 as a percentage.
    """
    try:
        acc = float(value)
    except (TypeError, ValueError):
        raise RankzcError(f"{where}: accuracy {value!r} is not a number") from None
    if not math.isfinite(acc):
        raise RankzcError(f"{where}: accuracy {value!r} is not finite")
    if percent or (percent is None and acc > 1):
        acc /= 100.0
    if not 0.0 <= acc <= 1.0:
        raise RankzcError(f"{where}: accuracy {value!r} is outside [0, 1] (or [0, 100] %)")
    return acc


def write_records(
    bench: Benchmark,
    records: list[ArchRecord],
    *,
    space: str,
    run_config: dict[str, Any],
    report: ImportReport,
) -> None:
    """Write architectures, one imported run each, and their proxies, in one transaction."""
    start = time.perf_counter()
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
