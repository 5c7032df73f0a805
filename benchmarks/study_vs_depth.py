"""How much a ranker adds to depth on the study: repeated stratified hold-outs, stored scores.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/study_vs_depth.py \\
        --study ../shared/data/thesis-gcn-nas/architectures [--splits 10] [--holdout 60] \\
        [--proxies synflow,zen,l2_norm,params,flops] [--out benchmarks/output/study_vs_depth.json]

For each of ``--splits`` seeds it holds out ``--holdout`` architectures (the same share of
every depth), fits on the rest (the study's stored scores of ``--proxies`` plus the
architecture encoding, ``--features all``) and reports the Spearman rho with the true
accuracy of:

* ``depth``: the number of blocks alone;
* ``lambdarank``: the default LambdaRank ranker;
* ``lambdarank_no_prior``: without its label-free prior;
* ``lambdarank_arch``: on the architecture encoding alone (no proxy);
* ``depth_then_within``: depth first (in the order of the training rows' mean accuracy
  per depth), then, within a depth, a LambdaRank whose queries never mix depths;
* ``stratified``: the stratified ranker (a level per depth plus one pooled within-depth
  regression, :mod:`rankzc.ranking.stratified`).

and, for the rankers, the mean within-depth Spearman. One hold-out of 60 says little: the
spread between hold-outs is printed beside the means.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def _split(depth: np.ndarray, holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    test = []
    for d in np.unique(depth):
        idx = np.flatnonzero(depth == d)
        test += list(rng.choice(idx, round(holdout * len(idx) / len(depth)), replace=False))
    test = np.array(sorted(test))
    return np.setdiff1d(np.arange(len(depth)), test), test


def _within(score: np.ndarray, depth: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(
        np.mean([spearmanr(score[depth == d], y[depth == d])[0] for d in np.unique(depth)])
    )


def _depth_then_within(X, y, depth, tr, te) -> np.ndarray:
    """Depth order from the training rows, then LambdaRank fitted on within-depth queries."""
    import rankzc.ranking.lambdarank as lr

    def within_depth_queries(n, query_size, rng, groups=depth[tr]):
        order, sizes = [], []
        for d in np.unique(groups):
            idx = rng.permutation(np.flatnonzero(groups == d))
            for chunk in np.array_split(idx, max(1, int(np.ceil(len(idx) / query_size)))):
                order += list(chunk)
                sizes.append(len(chunk))
        return np.array(order), sizes

    plain = lr.query_chunks
    lr.query_chunks = within_depth_queries
    try:
        s = lr.LambdaRankRanker().fit(X.iloc[tr], y[tr]).predict(X.iloc[te])
    finally:
        lr.query_chunks = plain
    means = {d: y[tr][depth[tr] == d].mean() for d in np.unique(depth[tr])}
    level = {d: i for i, d in enumerate(sorted(means, key=means.get))}
    out = np.array([float(level[d]) for d in depth[te]])
    for d in np.unique(depth[te]):
        k = depth[te] == d
        out[k] += (s[k].argsort().argsort() + 0.5) / k.sum()
    return out


def main() -> None:
    from scipy.stats import spearmanr

    from rankzc.importers import import_thesis
    from rankzc.ranking.features import feature_matrix, is_proxy_column
    from rankzc.ranking.lambdarank import LambdaRankRanker
    from rankzc.ranking.stratified import StratifiedRanker
    from rankzc.store import Benchmark

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", required=True)
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--holdout", type=int, default=60)
    ap.add_argument("--proxies", default="synflow,zen,l2_norm,params,flops")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/output/study_vs_depth.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "t.db"
        import_thesis(Path(args.study), store)
        with Benchmark.open(store, readonly=True) as bench:
            fs = feature_matrix(bench, "all", proxies=args.proxies.split(","))
    X, y, depth = fs.X, fs.y.to_numpy(float), fs.depth.to_numpy(float)
    arch = [c for c in X.columns if not is_proxy_column(c)]
    rho: dict[str, list[float]] = {}
    within: dict[str, list[float]] = {}
    for seed in range(args.splits):
        tr, te = _split(depth, args.holdout, seed)
        scores = {
            "depth": depth[te],
            "lambdarank": LambdaRankRanker().fit(X.iloc[tr], y[tr]).predict(X.iloc[te]),
            "lambdarank_no_prior": LambdaRankRanker(prior=None)
            .fit(X.iloc[tr], y[tr])
            .predict(X.iloc[te]),
            "lambdarank_arch": LambdaRankRanker()
            .fit(X.iloc[tr][arch], y[tr])
            .predict(X.iloc[te][arch]),
            "depth_then_within": _depth_then_within(X, y, depth, tr, te),
            "stratified": StratifiedRanker().fit(X.iloc[tr], y[tr]).predict(X.iloc[te]),
        }
        for name, s in scores.items():
            rho.setdefault(name, []).append(float(spearmanr(s, y[te])[0]))
            if name != "depth":
                within.setdefault(name, []).append(_within(s, depth[te], y[te]))
        print(f"split {seed}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in rho.items()), flush=True)
    d = np.array(rho["depth"])
    rows = {}
    print(f"\n{'ranker':<22}{'mean rho':>10}{'sd':>7}{'above depth':>13}{'within-depth':>14}")
    for name, v in rho.items():
        v = np.array(v)
        rows[name] = {
            "rho_mean": round(float(v.mean()), 4),
            "rho_sd": round(float(v.std(ddof=1)), 4),
            "above_depth": int((v > d).sum()) if name != "depth" else None,
            "within_depth_mean": round(float(np.mean(within[name])), 4) if name in within else None,
        }
        r = rows[name]
        above = f"{r['above_depth']}/{len(v)}" if r["above_depth"] is not None else "-"
        wd = f"{r['within_depth_mean']:.3f}" if r["within_depth_mean"] is not None else "-"
        print(f"{name:<22}{r['rho_mean']:>10.3f}{r['rho_sd']:>7.3f}{above:>13}{wd:>14}")
    out = {
        "benchmark": "study_vs_depth",
        "command": "python benchmarks/study_vs_depth.py " + " ".join(sys.argv[1:]),
        "splits": args.splits,
        "holdout": args.holdout,
        "proxies": args.proxies.split(","),
        "rankers": rows,
        "per_split": rho,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
