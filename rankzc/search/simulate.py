"""Simulated search: the pool is a store's labelled architectures, training reveals labels.

"Training" an architecture returns its stored label (mean over its finished runs) and
charges its recorded training seconds (when the store has them). The simulator alone holds
the labels: every strategy is prepared and run on :meth:`Pool.without_labels`, so nothing
but the labels of the architectures it has trained can reach it. Strategies are compared
on many seeds in seconds; :func:`summarise` turns the traces into curves (best accuracy
and regret after every trained architecture, mean and spread over seeds), and
:func:`first_reach` / :func:`hit_index` answer "how many architectures until ...".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rankzc.errors import RankzcError
from rankzc.search.loop import Budget, Trace, run_search
from rankzc.search.pool import Pool, feasible_ids
from rankzc.search.strategies import Strategy, prepare


def check_constraints(pool: Pool, max_params, max_flops) -> list[str]:
    """Feasible ids, or a one-line error when no architecture meets the limits."""
    ids = feasible_ids(pool, max_params, max_flops)
    if not ids:
        limits = ", ".join(
            f"{o} {v:g}"
            for o, v in (("--max-params", max_params), ("--max-flops", max_flops))
            if v is not None
        )
        raise RankzcError(f"{limits}: no architecture of the pool ({len(pool)}) meets the limit")
    return ids


def check_leaks(pool: Pool, strategies: Sequence[Strategy], allow_leak: bool = False) -> None:
    """Refuse a ``ranker:`` strategy fitted on labelled rows of the simulated pool.

    Rows are compared by content (canonical encoding and label, see
    :func:`rankzc.ranking.io.row_fingerprints`), so a copy of the store, another import
    of the same file or a subset of its rows is caught as well. ``allow_leak`` runs it anyway.
    """
    from rankzc.ranking.io import row_fingerprints
    from rankzc.search.strategies import RankerStrategy

    rankers = [s for s in strategies if isinstance(s, RankerStrategy)]
    if allow_leak or not rankers:
        return
    here = set(row_fingerprints(pool.table["encoding"].astype(str), pool.table["val_acc"]))
    for s in rankers:
        seen = (getattr(s.fitted, "info", None) or {}).get("label_rows") or []
        shared = sum(1 for h in seen if h in here)
        if shared:
            raise RankzcError(
                f"--strategy {s.name}: the ranker was fitted on labels of {shared} of the "
                f"{len(pool)} architectures simulated here (same architecture and label), so "
                "it would search with the answers; give --allow-leak to run it anyway"
            )


def seed_pool(pool: Pool, size: int | None, seed: int) -> Pool:
    """The pool of one seed: all of it, or ``size`` candidates drawn with ``seed``."""
    if size is None or size >= len(pool):
        return pool
    rng = np.random.default_rng([int(seed) % 2**32, 1])
    ids = sorted(rng.choice(pool.ids, size=int(size), replace=False).tolist())
    return pool.subset(ids)


def simulate(
    pool: Pool,
    strategies: Sequence[Strategy],
    budget: Budget,
    seeds: Sequence[int],
    *,
    pool_size: int | None = None,
    max_params: float | None = None,
    max_flops: float | None = None,
    progress: Callable[[str, int], None] | None = None,
    stop: Callable[[Trace], bool] | None = None,
    allow_leak: bool = False,
) -> list[Trace]:
    """Run every strategy with every seed on ``pool`` (checks everything first).

    ``stop(trace)`` may end a search early (e.g. once a top-1% architecture is trained).
    A ``ranker:`` strategy fitted on the pool's labels is refused (:func:`check_leaks`)
    unless ``allow_leak``.
    """
    if pool.labels is None:
        raise RankzcError("simulation needs a labelled pool")
    if budget.seconds is not None and not pool.table["train_seconds"].notna().all():
        raise RankzcError(
            "--gpu-hours: the store does not record training seconds for every architecture; "
            "use --train-budget"
        )
    if pool_size is not None and pool_size < 1:
        raise RankzcError(f"--sample: must be >= 1, got {pool_size}")
    check_constraints(pool, max_params, max_flops)
    check_leaks(pool, strategies, allow_leak)
    public = pool.without_labels()  # what strategies see; the oracle reads `table`
    for s in strategies:
        prepare(s, public)
    table = pool.table

    def oracle(ids):
        return {
            a: (
                float(table.at[a, "val_acc"]),
                None
                if pd.isna(table.at[a, "train_seconds"])
                else float(table.at[a, "train_seconds"]),
            )
            for a in ids
        }

    traces = []
    for seed in seeds:
        sp = seed_pool(pool, pool_size, seed)
        seen = seed_pool(public, pool_size, seed)
        feasible = feasible_ids(sp, max_params, max_flops)
        if not feasible:
            raise RankzcError(f"seed {seed}: no architecture of the drawn pool meets the limit")
        best = float(sp.table.loc[feasible, "val_acc"].max())
        for s in strategies:
            trace = run_search(s, seen, oracle, budget, seed=seed, feasible=feasible, stop=stop)
            trace.pool_best, trace.pool_size, trace.feasible = best, len(sp), len(feasible)
            trained = [st.arch_id for st in trace.steps]
            secs = sp.table.loc[trained, "train_seconds"]
            trace.train_seconds = float(secs.sum()) if secs.notna().any() else None
            trace.proxy_seconds = sp.cost(s.reads)
            traces.append(trace)
            if progress is not None:
                progress(s.name, seed)
    return traces


def expected_best(labels: np.ndarray, n: int) -> np.ndarray:
    """The expected best of 1..``n`` labels drawn without replacement from ``labels``
    (exact; after all of them, their best).

    With the labels sorted, :math:`a_1 \\le \\dots \\le a_m`,
    :math:`P(\\text{best of } k \\le a_j) = \\binom{j}{k} / \\binom{m}{k}`, updated
    from :math:`k - 1` by the factor :math:`(j - k + 1) / (m - k + 1)`.
    """
    a = np.sort(np.asarray(labels, dtype=float))
    m = len(a)
    j = np.arange(0, m + 1, dtype=float)  # F[0] = 0: nothing is below a_1
    cdf = np.ones(m + 1)
    row = np.full(n, a[-1])
    for k in range(1, min(n, m) + 1):
        cdf = cdf * np.clip(j - k + 1, 0.0, None) / (m - k + 1)
        row[k - 1] = float(np.dot(np.diff(cdf), a))
    return row


def random_expectation(
    pool: Pool,
    seeds: Sequence[int],
    n: int,
    *,
    pool_size: int | None = None,
    max_params: float | None = None,
    max_flops: float | None = None,
    scale: float = 100.0,
) -> dict[str, Any]:
    """Random search in expectation, exactly: for 1..``n`` architectures trained, the
    expected best label of that many drawn without replacement from each seed's feasible
    pool, and the expected regret, averaged over ``seeds`` (times ``scale``: percent,
    points); ``pool_best`` is the mean best label of those pools.

    With the labels a_1 <= ... <= a_M of a pool, P(best of k draws <= a_j) = C(j, k) /
    C(M, k), so E[best] = sum_j a_j (C(j, k) - C(j - 1, k)) / C(M, k).
    """
    best_rows, regret_rows, tops = [], [], []
    cache: dict[tuple, np.ndarray] = {}
    for seed in seeds:
        sp = seed_pool(pool, pool_size, seed)
        ids = feasible_ids(sp, max_params, max_flops)
        a = np.sort(sp.table.loc[ids, "val_acc"].to_numpy(dtype=float))
        a = a[np.isfinite(a)]
        m = len(a)
        if m == 0:
            continue
        key = tuple(sorted(ids))
        if key not in cache:
            cache[key] = expected_best(a, n)
        row = cache[key]
        best_rows.append(row)
        regret_rows.append(a[-1] - row)
        tops.append(a[-1])
    if not best_rows:
        return {"trained": [], "best_mean": [], "regret_mean": [], "pool_best": None}
    return {
        "trained": list(range(1, n + 1)),
        "best_mean": (np.mean(best_rows, axis=0) * scale).tolist(),
        "regret_mean": (np.mean(regret_rows, axis=0) * scale).tolist(),
        "pool_best": float(np.mean(tops) * scale),
    }


# ---------------------------------------------------------------- summaries
def curves(traces: Sequence[Trace], scale: float = 100.0) -> dict[str, pd.DataFrame]:
    """Per strategy: a frame indexed by number trained (1..) with mean/std/min/max of the
    best accuracy and of the regret, both times ``scale`` (percent, points)."""
    out = {}
    for name in dict.fromkeys(t.strategy for t in traces):
        ts = [t for t in traces if t.strategy == name]
        n = max(len(t.steps) for t in ts)

        def mat(fn, ts=ts, n=n):
            m = np.full((len(ts), n), np.nan)
            for i, t in enumerate(ts):
                v = fn(t)
                m[i, : len(v)] = v
                if len(v) and len(v) < n:  # a search that stopped early keeps its best
                    m[i, len(v) :] = v[-1]
            return m * scale

        best, reg = mat(Trace.best_so_far), mat(Trace.regret)
        with np.errstate(all="ignore"), _quiet():
            frame = pd.DataFrame(
                {
                    "best_mean": np.nanmean(best, axis=0),
                    "best_std": np.nanstd(best, axis=0),
                    "regret_mean": np.nanmean(reg, axis=0),
                    "regret_std": np.nanstd(reg, axis=0),
                    "regret_min": np.nanmin(reg, axis=0),
                    "regret_max": np.nanmax(reg, axis=0),
                },
                index=pd.RangeIndex(1, n + 1, name="trained"),
            )
        out[name] = frame
    return out


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def first_reach(curve: pd.Series, target: float) -> int | None:
    """First number trained at which ``curve`` (e.g. mean regret) is <= ``target``."""
    hit = curve.index[curve.to_numpy() <= target + 1e-12]
    return int(hit[0]) if len(hit) else None


def hit_index(trace: Trace, good: set[str]) -> int | None:
    """Number of architectures trained until the first one in ``good`` (None: never)."""
    for i, s in enumerate(trace.steps, start=1):
        if s.arch_id in good:
            return i
    return None


def top_fraction(pool: Pool, fraction: float, ids: Sequence[str] | None = None) -> set[str]:
    """Ids of the best ``fraction`` of the (feasible) pool, at least one."""
    labels = pool.table["val_acc"] if ids is None else pool.table.loc[list(ids), "val_acc"]
    k = max(1, int(math.floor(fraction * len(labels))))
    return set(labels.sort_values(ascending=False, kind="stable").index[:k])


def trace_dict(t: Trace, pool: Pool | None = None, scale: float = 100.0) -> dict[str, Any]:
    best = t.best()
    out = {
        "strategy": t.strategy,
        "seed": t.seed,
        "trained": [s.arch_id for s in t.steps],
        "best_so_far": [b * scale for b in t.best_so_far()],
        "regret": [r * scale for r in t.regret()],
        "proxy_seconds": t.proxy_seconds,
        "train_seconds": t.train_seconds,
        "search_seconds": round(t.search_seconds, 3),
    }
    if best is not None:
        out["best"] = {"arch_id": best.arch_id, "val_acc": best.label}
    return out
