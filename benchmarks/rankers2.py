"""Rankers II figures: rankagg, graph features, gnn, transfer, few labels, speed.

Usage (stores made with ``rankzc import``)::

    rankzc import nbsz ../shared/data/nas-bench-suite-zero/zc_nasbench201_cifar10.json --out n.db
    rankzc import thesis ../shared/data/thesis-gcn-nas/architectures --out t.db
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/rankers2.py --nb201 n.db --study t.db

Prints, with the time each part took:

1. NAS-Bench-201: 5x3 CV of every model on ``proxies`` and on ``all`` (proxies, encoding,
   graph features), with fit times (gnn beside lambdarank); the learning curve at 20, 50
   and 100 labels; lambdarank's few-label defaults (prior, extra trees) against neither;
   rankagg with no labels at all (fitted on the proxies of all architectures, no label
   read).
2. The study: every model with ``--features all`` against depth and the best proxy (the
   evaluation layer's corrected resampled t-test), within-depth Spearman; the time of each
   model and of the whole 5x3 run (the ``evaluate --models all`` speed figure); with
   ``curve`` in ``--sections``, lambdarank's defaults against neither at 20/50/100 labels
   (``--study t.db --sections curve`` runs that alone).
3. Transfer: fit on the study, rank the shipped default benchmark, and the reverse.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from rankzc.ranking.evaluation import evaluate_models  # noqa: E402
from rankzc.ranking.features import feature_matrix  # noqa: E402
from rankzc.ranking.rankagg import RankAggRanker  # noqa: E402
from rankzc.ranking.transfer import transfer_evaluate  # noqa: E402
from rankzc.stats import spearman  # noqa: E402
from rankzc.store import Benchmark, default_benchmark_path  # noqa: E402

PROXY_MODELS = ["single", "vote", "wam", "ranknet", "lambdarank", "rankagg"]
ALL_MODELS = [*PROXY_MODELS, "gnn"]


def _f(v, d=3) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{d}f}"


def table(result: dict, title: str) -> None:
    n_splits = result["cv"]["folds"] * result["cv"]["repeats"]
    print(f"\n## {title} ({result['cv']['description']}, {result['n_architectures']} archs, "
          f"features {result['features']} = {result['n_features']} columns, "
          f"{result['seconds']:.0f} s)")  # fmt: skip
    print(f"{'model':<22}{'spearman':>16}{'within-depth':>16}{'fit s':>8}{'total s':>9}  "
          f"vs {result.get('strongest_baseline')}: diff [95% CI] p")  # fmt: skip
    for name, e in result["models"].items():
        if e.get("failed"):
            print(f"{name:<22} failed: {e['error']}")
            continue
        vs = e.get("vs_baseline") or {}
        ci = vs.get("ci95") or [None, None]
        print(
            f"{name:<22}{_f(e['spearman_mean']):>9} ± {_f(e['spearman_std'])}"
            f"{_f(e['within_depth_spearman_mean']):>9} ± {_f(e['within_depth_spearman_std'])}"
            f"{_f(e['fit_seconds_mean'], 2):>8}{_f(e['fit_seconds_mean'] * n_splits, 1):>9}  "
            f"{_f(vs.get('mean_diff'))} [{_f(ci[0])}, {_f(ci[1])}] p={_f(vs.get('p_value'), 3)}"
        )
    for name, e in result.get("cv_baselines", {}).items():
        print(
            f"{'baseline: ' + name:<22}{_f(e['spearman_mean']):>9} ± {_f(e['spearman_std'])}"
            f"{_f(e['within_depth_spearman_mean']):>9} ± {_f(e['within_depth_spearman_std'])}"
        )
    for name, e in result["models"].items():
        comps = e.get("comparisons") or {}
        if comps:
            parts = [
                f"{b}: {_f(c.get('mean_diff'))} (p={_f(c.get('p_value'), 3)})"
                for b, c in comps.items()
                if c
            ]
            print(f"  {name} vs " + "; ".join(parts))


def curve(result: dict) -> None:
    print("\n## Learning curve (held-out Spearman, mean ± std over 5x3 splits)")
    sizes = [p["train_size"] for p in next(iter(result["learning_curve"].values()))]
    print(f"{'model':<14}" + "".join(f"{'n=' + str(s):>16}" for s in sizes))
    for m, pts in result["learning_curve"].items():
        print(
            f"{m:<14}"
            + "".join(f"{_f(p['spearman_mean']):>9} ± {_f(p['spearman_std'])}" for p in pts)
        )


def prior_curve(fs, repeats: int) -> None:
    """lambdarank's few-label defaults (rankagg prior, extra trees) against neither, at 20,
    50 and 100 labels and on every training row."""
    for title, params in (
        ("now (prior='rankagg', extra_trees=True)", {}),
        ("before (prior=None, extra_trees=False)", {"prior": None, "extra_trees": False}),
    ):
        r = evaluate_models(
            fs,
            ["lambdarank"],
            repeats=repeats,
            train_size=[20, 50, 100],
            params={"lambdarank": params},
        )
        e = r["models"]["lambdarank"]
        pts = r["learning_curve"]["lambdarank"]
        print(f"\nlambdarank {title}: n=20 / 50 / 100 / all: "
              + " / ".join(f"{_f(p['spearman_mean'])}" for p in pts)
              + f" / {_f(e['spearman_mean'])} ± {_f(e['spearman_std'])}")  # fmt: skip


def transfer(a, b, features: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = transfer_evaluate(a, b, ALL_MODELS, features=features)
    print(
        f"\n## Transfer ({features}): fit on {r['train']['benchmark']} "
        f"({r['train']['n_architectures']}), rank {r['test']['benchmark']} "
        f"({r['test']['n_architectures']}); {len(r['proxies'])} proxies; {r['seconds']:.0f} s"
    )
    for w in caught:
        print(f"  warning: {w.message}")
    for name, e in r["models"].items():
        if "error" in e:
            print(f"  {name:<12} error: {e['error']}")
        else:
            print(
                f"  {name:<12} spearman on B {_f(e['spearman'])}  within-depth "
                f"{_f(e['within_depth_spearman'])}  fit {e['fit_seconds']:.2f} s"
            )
    for name, e in r["reference"].items():
        extra = e.get("proxy", "")
        print(f"  B {name:<18} {_f(e['spearman'])}  ({e['note']}{'; ' + extra if extra else ''})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nb201", help="store imported from zc_nasbench201_cifar10.json")
    ap.add_argument("--study", help="store imported from the study's 693 architectures")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-curve", action="store_true")
    ap.add_argument(
        "--sections", default="nb201,curve,study,transfer", help="comma-separated parts to run"
    )
    ap.add_argument("--models", default=None, help="comma-separated models (default: all)")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    only = set(args.models.split(",")) if args.models else None

    def pick(names):
        return [m for m in names if only is None or m in only]

    t0 = time.perf_counter()
    if args.nb201 and "nb201" in sections:
        with Benchmark.open(args.nb201, readonly=True) as b:
            fp = feature_matrix(b, "proxies")
            fa = feature_matrix(b, "all")
        table(evaluate_models(fp, pick(PROXY_MODELS), repeats=args.repeats), "NB201 proxies")
        table(
            evaluate_models(
                fa, pick(["lambdarank", "ranknet", "rankagg", "gnn"]), repeats=args.repeats
            ),
            "NB201 all (proxies + encoding + graph)",
        )
        if not args.skip_curve and "curve" in sections:
            r = evaluate_models(
                fa,
                pick(["single", "wam", "ranknet", "lambdarank", "rankagg", "gnn"]),
                repeats=args.repeats,
                train_size=[20, 50, 100],
            )
            curve(r)
            prior_curve(fa, args.repeats)
        y = fp.y.to_numpy(dtype=float)
        for rule in ("log", "mean"):
            m = RankAggRanker(rule=rule).fit(fp.X)  # no labels
            print(
                f"\nrankagg rule={rule}, no labels, all {len(y)} archs: Spearman "
                f"{spearman(m.predict(fp.X), y):.3f}; proxies {', '.join(m.proxies_)}; "
                f"dropped {', '.join(m.dropped_) or 'none'}"
            )
    if args.study and sections & {"study", "curve"}:
        with Benchmark.open(args.study, readonly=True) as b:
            fa = feature_matrix(b, "all")
        if "study" in sections:
            start = time.perf_counter()
            r = evaluate_models(fa, pick(ALL_MODELS), repeats=args.repeats)
            table(r, "Study, --features all (proxies + encoding + graph)")
            print(
                f"speed: evaluate --models all --features all on {r['n_architectures']} "
                f"archs, 5x{args.repeats} CV: {time.perf_counter() - start:.0f} s wall "
                f"(machine load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
            )
        if "curve" in sections:
            print("\n## Study, --features all: lambdarank's few-label defaults")
            prior_curve(fa, args.repeats)
    if args.study and "transfer" in sections:
        default = default_benchmark_path()
        for feats in ("proxies", "all"):
            transfer(args.study, default, feats)
            transfer(default, args.study, feats)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
