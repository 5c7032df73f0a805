"""Ranking layer figures: majority vote, WAM, cross-validated rankers, fit times.

Parts (each skipped when its data is absent under ``--shared``):

1. study data: ``vote --max-size 3`` top subsets, and seconds to score all subsets up to 14;
2. study data: WAM with ``cv="none"`` (in-sample, the study's 0.766);
3. NAS-Bench-201 CIFAR-10 (NAS-Bench-Suite-Zero), proxies only, 5x3 CV, all five models
   (targets: lambdarank >= 0.94, ranknet >= 0.93);
4. study data, ``--features proxies`` (a) and ``--features all`` (b), 5x3 CV, all five
   models; wall time of ``evaluate_models`` (target <= 120 s on 2 cores);
5. fit seconds of lambdarank and ranknet on 15,625 synthetic rows (target <= 300 s each);
6. the shipped benchmark (``rankzc/data/default.db``), proxies only, 5x3 CV.

Parts 3, 4 and 6 report the baselines under the same folds (best single proxy chosen on the
training folds, depth/params/flops, best encoding column with ``all``) and each model's
difference in Spearman from the strongest baseline, with the corrected resampled t-test's
95% interval and p.

    OMP_NUM_THREADS=1 python benchmarks/ranking.py [--shared ../shared] [--skip-synthetic]

Prints tables and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rankzc.ranking import make_ranker
from rankzc.ranking.evaluation import evaluate_models, results_table
from rankzc.ranking.features import feature_matrix
from rankzc.ranking.vote import search_subsets
from rankzc.store import Benchmark

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["single", "vote", "wam", "ranknet", "lambdarank"]


def study_store(shared: Path, work: Path) -> Path | None:
    directory = shared / "data" / "thesis-gcn-nas" / "architectures"
    if not directory.is_dir():
        return None
    from rankzc.importers.thesis import import_thesis

    out = work / "thesis.db"
    import_thesis(directory, out)
    return out


def nb201_store(shared: Path, work: Path) -> Path | None:
    file = shared / "data" / "nas-bench-suite-zero" / "zc_nasbench201_cifar10.json"
    if not file.is_file():
        return None
    from rankzc.importers.nbsz import import_nbsz

    out = work / "nb201.db"
    import_nbsz(file, out)
    return out


def part_vote(bench: Benchmark) -> dict:
    fs = feature_matrix(bench, "proxies")
    X, y = fs.X.to_numpy(), fs.y.to_numpy()
    top3 = search_subsets(X, y, fs.proxies, max_size=3)
    t0 = time.perf_counter()
    full = search_subsets(X, y, fs.proxies, max_size=len(fs.proxies))
    seconds = time.perf_counter() - t0
    three = [s for s in top3["subsets"] if s["size"] == 3][:5]
    print("\n[1] majority vote on the study data (pairwise accuracy)")
    for s in top3["subsets"][:6]:
        print(f"    {', '.join(s['proxies']):28s} {s['score']:.4f}")
    print(
        f"    all {len(full['subsets'])} subsets up to size {len(fs.proxies)}: {seconds:.2f} s "
        f"({full['pairs']} pairs, {full['patterns']} distinct vote patterns)"
    )
    return {
        "top": [{"proxies": s["proxies"], "score": s["score"]} for s in top3["subsets"][:6]],
        "best_three": [{"proxies": s["proxies"], "score": s["score"]} for s in three],
        "all_subsets": len(full["subsets"]),
        "all_subsets_seconds": seconds,
    }


def part_wam(bench: Benchmark) -> dict:
    res = evaluate_models(bench, ["wam"], cv="none")
    rho = res["models"]["wam"]["spearman_mean"]
    print(f"\n[2] WAM in-sample (cv none, optimistic) Spearman: {rho:.4f} (study: 0.766)")
    return {"wam_in_sample_spearman": rho}


def cv_table(res: dict, title: str) -> None:
    print(f"\n{title}  ({res['seconds']:.1f} s)")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(results_table(res).to_string())


def part_cv(bench: Benchmark, features: str, title: str) -> dict:
    """All five models and the baselines on the same 5x3 folds; each model against the
    strongest baseline with the corrected resampled t-test."""
    t0 = time.perf_counter()
    res = evaluate_models(bench, MODELS, features=features, folds=5, repeats=3)
    wall = time.perf_counter() - t0
    cv_table(res, title)
    out = {"seconds": wall, "strongest_baseline": res["strongest_baseline"], "baselines": {}}
    for b, e in res["cv_baselines"].items():
        out["baselines"][b] = {
            "spearman": e["spearman_mean"],
            "spearman_std": e["spearman_std"],
            "within_depth_spearman": e["within_depth_spearman_mean"],
            "chosen": e.get("chosen"),
        }
    out["models"] = {}
    for m in MODELS:
        e = res["models"][m]
        if e.get("failed"):
            out["models"][m] = {"failed": e["error"]}
            continue
        t = e["vs_baseline"]
        out["models"][m] = {
            "spearman": e["spearman_mean"],
            "spearman_std": e["spearman_std"],
            "within_depth_spearman": e["within_depth_spearman_mean"],
            "vs": t["baseline"],
            "diff": t["mean_diff"],
            "ci95": t["ci95"],
            "p": t["p_value"],
        }
        print(
            f"    {m:11s} rho {e['spearman_mean']:.3f} ± {e['spearman_std']:.3f}; vs "
            f"{t['baseline']} {t['mean_diff']:+.3f} [{t['ci95'][0]:+.3f}, {t['ci95'][1]:+.3f}], "
            f"p = {t['p_value']:.2g}"
        )
    print(f"    evaluate_models wall time (5 models, {features}, 5x3): {wall:.1f} s")
    return out


def part_synthetic(n: int = 15_625) -> dict:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 4))
    X = pd.DataFrame(
        np.column_stack([z @ rng.normal(size=(4, 12)) + rng.normal(size=(n, 12))]),
        columns=[f"p{k}" for k in range(12)],
    )
    y = np.tanh(z[:, 0] + 0.5 * z[:, 1]) + 0.1 * rng.normal(size=n)
    out = {}
    print(f"\n[5] fit time on {n} synthetic rows x 12 features")
    for m in ("lambdarank", "ranknet"):
        t0 = time.perf_counter()
        model = make_ranker(m).fit(X, y)
        out[m] = time.perf_counter() - t0
        print(f"    {m:11s} {out[m]:.1f} s  (in-sample rho {model.score(X, y):.3f})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--skip-synthetic", action="store_true", help="skip part 5")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"threads: torch {torch.get_num_threads()}; shared: {args.shared}")
    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        study = study_store(args.shared, work)
        if study is None:
            print("study data absent: parts 1, 2, 4 skipped")
        else:
            with Benchmark.open(study, readonly=True) as bench:
                report["vote"] = part_vote(bench)
                report["wam"] = part_wam(bench)
        nb = nb201_store(args.shared, work)
        if nb is None:
            print("NAS-Bench-201 file absent: part 3 skipped")
        else:
            with Benchmark.open(nb, readonly=True) as bench:
                report["nb201_cv"] = part_cv(
                    bench, "proxies", "[3] NAS-Bench-201 CIFAR-10, proxies only, 5-fold CV x 3"
                )
        if study is not None:
            with Benchmark.open(study, readonly=True) as bench:
                report["study_proxies"] = part_cv(
                    bench, "proxies", "[4a] study data, proxies only, 5-fold CV x 3"
                )
                report["study_all"] = part_cv(
                    bench, "all", "[4b] study data, --features all, 5-fold CV x 3"
                )
    with Benchmark.open(ROOT / "rankzc" / "data" / "default.db", readonly=True) as bench:
        report["shipped_proxies"] = part_cv(
            bench, "proxies", "[6] shipped benchmark, proxies only, 5-fold CV x 3"
        )
    if not args.skip_synthetic:
        report["fit_seconds_15625"] = part_synthetic()
    print(json.dumps(report, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
