"""The one search loop shared by the live and the simulated mode.

:func:`run_search` asks a strategy for the next batch of candidates, "trains" them
through an oracle (simulation: reveal the stored label; live: the label pipeline) and
repeats until the budget is spent or no feasible candidate is left. It never trains an
architecture twice, never trains a candidate outside the hard limits, and reports every
step through ``on_plan`` / ``on_step`` so that the live mode can persist its state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rankzc.errors import RankzcError
from rankzc.search.pool import Pool
from rankzc.search.strategies import Context, Strategy


@dataclass(frozen=True)
class Budget:
    """``archs`` trained architectures, or ``seconds`` of recorded training time."""

    archs: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.archs is None) == (self.seconds is None):
            raise RankzcError("give exactly one of --train-budget and --gpu-hours")
        if self.archs is not None and int(self.archs) < 1:
            raise RankzcError(f"--train-budget: must be at least 1 architecture, got {self.archs}")
        if self.seconds is not None and not (
            math.isfinite(self.seconds) and float(self.seconds) > 0
        ):
            raise RankzcError(f"--gpu-hours: must be a positive number, got {self.seconds / 3600}")

    def left(self, n: int, spent: float) -> int | None:
        """Architectures that may still be trained (None = limited by seconds only)."""
        if self.archs is not None:
            return max(0, int(self.archs) - n)
        return None if spent < float(self.seconds) else 0

    def to_dict(self) -> dict[str, Any]:
        return {"archs": self.archs, "seconds": self.seconds}


@dataclass
class Step:
    """One trained architecture."""

    arch_id: str
    label: float
    seconds: float | None


@dataclass
class Trace:
    """What one search (one strategy, one seed) did."""

    strategy: str
    seed: int
    steps: list[Step] = field(default_factory=list)
    #: best label in the feasible pool (simulation), else None
    pool_best: float | None = None
    pool_size: int = 0
    feasible: int = 0
    proxy_seconds: float | None = None
    train_seconds: float | None = None
    search_seconds: float = 0.0

    def best_so_far(self) -> list[float]:
        out, best = [], -math.inf
        for s in self.steps:
            if math.isfinite(s.label):
                best = max(best, s.label)
            out.append(best if math.isfinite(best) else math.nan)
        return out

    def regret(self) -> list[float]:
        """Pool best minus best found after each step (same unit as the labels)."""
        if self.pool_best is None:
            return [math.nan] * len(self.steps)
        return [self.pool_best - b for b in self.best_so_far()]

    def best(self) -> Step | None:
        ok = [s for s in self.steps if math.isfinite(s.label)]
        return max(ok, key=lambda s: s.label) if ok else None


Oracle = Callable[[Sequence[str]], dict[str, tuple[float, float | None]]]


def run_search(
    strategy: Strategy,
    pool: Pool,
    oracle: Oracle,
    budget: Budget,
    *,
    seed: int,
    feasible: Sequence[str],
    history: Sequence[Step] = (),
    pending: Sequence[str] = (),
    depths: Sequence[int] = (4, 6, 8, 10),
    add_candidates: Callable[[list], list[str]] | None = None,
    on_plan: Callable[[list[str]], None] | None = None,
    on_step: Callable[[Step], None] | None = None,
    stop: Callable[[Trace], bool] | None = None,
) -> Trace:
    """Run ``strategy`` on ``pool`` until ``budget`` is spent (see the module docstring).

    Args:
        oracle: trains a batch of ids, returns ``{arch_id: (label, seconds)}`` (label NaN
            for a failed run, which still counts against the budget).
        feasible: the pool ids within the hard limits; only these are ever trained.
        history: steps already taken (a resumed live search), in order.
        pending: a batch planned before an interruption, trained first.
        add_candidates: live local search: score new architectures and return the ids of
            those that may be trained (they must also be added to ``feasible``).
        on_plan, on_step: called with each planned batch and after each step.
        stop: ends the search early when it returns True (checked after every batch).
    """
    t0 = time.perf_counter()
    trace = Trace(strategy.name, int(seed), list(history))
    allowed = set(feasible)
    done = {s.arch_id for s in trace.steps}
    labels = {s.arch_id: s.label for s in trace.steps}
    spent = sum(s.seconds or 0.0 for s in trace.steps)
    pending = [a for a in pending if a not in done]

    def add(archs: list) -> list[str]:
        ids = add_candidates(archs) if add_candidates is not None else []
        allowed.update(ids)
        return [a for a in ids if a not in done]

    while True:
        left = budget.left(len(trace.steps), spent)
        if left == 0:
            break
        if pending:
            batch = pending[: left if left is not None else len(pending)]
        else:
            candidates = [a for a in pool.table.index if a in allowed and a not in done]
            if not candidates:
                break
            want = strategy.batch or (left if left is not None else 1)
            k = min(want, left) if left is not None else want
            ctx = Context(
                pool,
                candidates,
                [s.arch_id for s in trace.steps],
                labels,
                int(seed),
                tuple(depths),
                add if add_candidates is not None else None,
            )
            batch = [a for a in strategy.propose(ctx, k) if a in allowed and a not in done]
            batch = list(dict.fromkeys(batch))[:k]
            if not batch:
                break
            if on_plan is not None:
                on_plan(batch)
        results = oracle(batch)
        for arch_id in batch:
            label, seconds = results[arch_id]
            step = Step(arch_id, float(label) if label is not None else math.nan, seconds)
            trace.steps.append(step)
            done.add(arch_id)
            labels[arch_id] = step.label
            spent += seconds or 0.0
            if on_step is not None:
                on_step(step)
        pending = []
        if stop is not None and stop(trace):
            break
    trace.search_seconds = time.perf_counter() - t0
    return trace
