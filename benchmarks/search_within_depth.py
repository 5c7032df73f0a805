"""Why search on the study cannot beat the depth order early: the signal within a depth.

    python benchmarks/search_within_depth.py [--shared ../shared] [--random-at 100]
        [--out benchmarks/output/search_within_depth.json]

On the study (693 GCN-NAS architectures, imported from ``../shared``):

1. random search's expected regret after ``--random-at`` trained, exactly
   (:func:`rankzc.search.simulate.random_expectation`), in accuracy points;
2. the depth order's (deepest first, ties in random order) expected regret, exactly (the
   same formula within the deepest depth, whose best is the pool's best), and the first
   number trained at which it reaches (1);
3. every label-free order that trains the deepest first and orders within a depth by one
   feature (every proxy and architecture feature, both signs): the number trained at which
   each reaches (1), their median, and how many reach by 11 (issue 27's target);
4. each proxy's Spearman rho with the accuracy within every depth.

Prints a table and writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _curve(regret: np.ndarray) -> pd.Series:
    """A regret curve indexed by the number trained (1..), as ``first_reach`` reads it."""
    return pd.Series(regret, index=np.arange(1, len(regret) + 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--random-at", type=int, default=100)
    ap.add_argument("--target", type=int, default=11, help="issue 27's number trained")
    ap.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "output" / "search_within_depth.json"
    )
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from ranking import study_store
    from scipy.stats import hypergeom, spearmanr

    from rankzc.ranking.features import feature_matrix
    from rankzc.search import pool_from_store
    from rankzc.search.simulate import expected_best, first_reach, random_expectation
    from rankzc.store import Benchmark

    with tempfile.TemporaryDirectory() as tmp:
        path = study_store(args.shared, Path(tmp))
        if path is None:
            sys.exit(f"no study data under {args.shared}")
        with Benchmark.open(path, readonly=True) as bench:
            fs = feature_matrix(bench, "all", labelled_only=True)
            pool = pool_from_store(bench)
    X, y = fs.X, fs.y.to_numpy(float) * 100
    depth = X["depth"].to_numpy(float)
    best = float(y.max())
    target = float(random_expectation(pool, [0], args.random_at)["regret_mean"][-1])
    deepest = depth == depth.max()
    if y[deepest].max() < best:
        sys.exit("the pool's best is not of the deepest depth; (2) assumes it is")
    depth_curve = best - expected_best(y[deepest], int(deepest.sum()))
    depth_reach = first_reach(_curve(depth_curve), target)
    # within the deepest depth, the architectures that reach the target, and the chance
    # that a random order of that depth trains one of them among its first ``--target``
    good = int((y[deepest] >= best - target - 1e-12).sum())
    m = int(deepest.sum())
    p_random = float(hypergeom.sf(0, m, good, args.target))

    reaches = {}
    for col in X.columns:
        v = X[col].to_numpy(float)
        if col == "depth" or np.nanstd(v) == 0:
            continue
        for sign in (1, -1):
            key = np.where(np.isfinite(v), sign * v, -np.inf)
            order = np.lexsort((-key, -depth))  # deepest first, then the feature's best
            regret = best - np.maximum.accumulate(y[order])
            reaches[f"{col}{'+' if sign > 0 else '-'}"] = first_reach(_curve(regret), target)
    found = np.array([r for r in reaches.values() if r is not None], dtype=float)
    within = {
        p: {
            str(int(d)): float(spearmanr(X[p].to_numpy(float)[depth == d], y[depth == d])[0])
            for d in np.unique(depth)
        }
        for p in fs.proxies
    }
    out = {
        "benchmark": "search_within_depth",
        "command": "python benchmarks/search_within_depth.py " + " ".join(sys.argv[1:]),
        "n": int(len(y)),
        "random_regret_at": args.random_at,
        "random_regret": target,
        "depth_order_reaches": depth_reach,
        "depth_order_regret": {str(k): float(depth_curve[k - 1]) for k in (10, 11, 20, 50)},
        "deepest_within_target": good,
        "deepest_size": m,
        "random_deepest_order_by_target": p_random,
        "feature_orders": len(reaches),
        "feature_orders_reach_median": float(np.median(found)) if len(found) else None,
        "feature_orders_by_target": int((found <= args.target).sum()),
        "target": args.target,
        "feature_orders_reach": reaches,
        "within_depth_spearman": within,
        "max_abs_within_deepest": max(abs(v[str(int(depth.max()))]) for v in within.values()),
    }
    print(
        f"random search, {args.random_at} trained: expected regret {target:.3f} points\n"
        f"depth order (random ties): expected regret {depth_curve[9]:.3f} after 10, "
        f"{depth_curve[19]:.3f} after 20; reaches {target:.3f} after {depth_reach}\n"
        f"{good} of the {m} deepest architectures are within it; a random order of them "
        f"trains one among its first {args.target} with probability {p_random:.2f}\n"
        f"{len(reaches)} depth-then-feature orders: median {out['feature_orders_reach_median']}"
        f" to reach it, {out['feature_orders_by_target']} by {args.target}\n"
        "within-depth Spearman of each proxy with the accuracy:"
    )
    depths = sorted(next(iter(within.values())), key=int)
    print(f"{'proxy':<12}" + "".join(f"{'d' + d:>8}" for d in depths))
    for p, v in within.items():
        print(f"{p:<12}" + "".join(f"{v[d]:>8.3f}" for d in depths))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
