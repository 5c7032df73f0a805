"""Search figures: sample efficiency of proxy- and ranker-guided search (issue 11).

Parts (each skipped when its data is absent under ``--shared``):

1. study data (693 architectures), simulated, ``--seeds`` seeds (20), budget 50 (random
   also to 100): mean regret after 1/5/10/20/50 trained for random, proxy:zen, vote,
   online:lambdarank, online:ranknet (``--online-seeds``: they refit a ranker after every
   trained architecture; ``--online`` replaces these two, e.g. to compare the
   acquisitions ``online``, ``online:ucb``, ``online:thompson``); how many architectures each needs to reach random search's mean
   regret at 100 (on the mean curve, and the median over the seeds that reach it), and
   whether online needs <= 20;
2. the same with ``--max-params`` at the study's median: no trained architecture over
   the limit, regret against the best architecture within it;
3. NAS-Bench-201 CIFAR-10 (NAS-Bench-Suite-Zero import), simulated: architectures trained
   until the first one in the pool's top 1% (mean over seeds; a search stops at its first
   hit), for random, every single proxy (deterministic order) and online;
4. (``nb201-regret``, not by default) part 1 on NAS-Bench-201 CIFAR-10;
5. proxy scoring of a live pool: candidates scored per second with one worker and with two
   (local processes), tiny preset, all proxies.

    nice -n 10 env OMP_NUM_THREADS=1 python benchmarks/search.py [--shared ../shared]
        [--seeds 20] [--online-seeds K] [--parts study,max-params,nb201,nb201-regret,scoring]
        [--online online:lambdarank,online:ranknet]

Prints tables and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# the same imports of ../shared as the ranking benchmark (a sibling script)
from ranking import nb201_store, study_store

from rankzc.search import Budget, parse_strategy, pool_from_store
from rankzc.search.simulate import curves, first_reach, hit_index, simulate, top_fraction
from rankzc.search.strategies import free_references
from rankzc.store import Benchmark

ROOT = Path(__file__).resolve().parents[1]
CHEAP = ["random", "proxy:zen", "vote"]
ONLINE = ["online:lambdarank", "online:ranknet"]
SHOW = (1, 5, 10, 20, 50)


def load_pool(path: Path):
    with Benchmark.open(path, readonly=True) as b:
        return pool_from_store(b)


def _applies(name: str, pool) -> bool:
    """Whether strategy ``name`` can run on ``pool`` (e.g. proxy:zen needs zen scores)."""
    from rankzc.errors import RankzcError
    from rankzc.search.strategies import prepare

    try:
        prepare(parse_strategy(name), pool.without_labels())
    except RankzcError:
        return False
    return True


def regret_study(
    pool,
    seeds: list[int],
    online_seeds: list[int],
    max_params: float | None = None,
    online: list[str] = ONLINE,
) -> dict:
    """Part 1 / 2: regret curves and architectures needed to reach random's regret at 100.

    The label-free strategies run with ``seeds``; the refitted ones (a ranker fit per
    trained architecture) with ``online_seeds``.
    """
    t0 = time.perf_counter()
    (rand,) = [
        curves(
            simulate(
                pool, [parse_strategy("random")], Budget(archs=100), seeds, max_params=max_params
            )
        )["random"]  # fmt: skip
    ]
    target = float(rand.loc[100, "regret_mean"])
    refs = free_references(pool.without_labels())
    cheap = [c for c in CHEAP if _applies(c, pool)]
    cheap += [r for r in refs if r not in cheap]
    traces = simulate(
        pool, [parse_strategy(s) for s in cheap], Budget(archs=50), seeds, max_params=max_params
    )
    traces += simulate(
        pool,
        [parse_strategy(s) for s in online],
        Budget(archs=50),
        online_seeds,
        max_params=max_params,
    )
    over = 0
    if max_params is not None:
        over = sum(
            1 for t in traces for s in t.steps if pool.table.at[s.arch_id, "params"] > max_params
        )
    cs = curves(traces)
    rows = {}
    for name, frame in cs.items():
        need = first_reach(frame["regret_mean"], target)
        per_seed = []
        for t in (t for t in traces if t.strategy == name):
            r = np.asarray(t.regret()) * 100
            hit = np.nonzero(r <= target + 1e-12)[0]
            per_seed.append(int(hit[0]) + 1 if len(hit) else None)
        reached = [k for k in per_seed if k is not None]
        rows[name] = {
            "seeds": sum(1 for t in traces if t.strategy == name),
            "regret_mean": {k: round(float(frame.loc[k, "regret_mean"]), 4) for k in SHOW},
            "regret_std": {k: round(float(frame.loc[k, "regret_std"]), 4) for k in SHOW},
            "needs_mean_curve": need,
            "needs_per_seed_median": float(np.median(reached)) if reached else None,
            "seeds_reaching_within_50": len(reached),
            "search_seconds_mean": round(
                float(np.mean([t.search_seconds for t in traces if t.strategy == name])), 3
            ),
        }
    free = {k: min(rows[r]["regret_mean"][k] for r in refs) for k in (10, 20, 50)}
    for r in rows.values():  # regret minus the best free order's (params/flops/depth/auto)
        r["vs_free"] = {k: round(r["regret_mean"][k] - free[k], 4) for k in free}
    rows["random"]["regret_mean"][100] = round(target, 4)
    return {
        "seeds": len(seeds),
        "max_params": max_params,
        "random_regret_at_100": round(target, 4),
        "pool_best": round(100 * traces[0].pool_best, 3),
        "feasible": traces[0].feasible,
        "trained_over_limit": over,
        "free_orders": refs,
        "strategies": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def print_regret(title: str, res: dict) -> None:
    print(f"\n{title} ({res['seeds']} seeds; regret in accuracy points vs pool best "
          f"{res['pool_best']} over {res['feasible']} feasible; random at 100: "
          f"{res['random_regret_at_100']:.3f})")  # fmt: skip
    head = "".join(f"{'N=' + str(k):>15}" for k in SHOW)
    print(f"{'strategy':<20}{head}{'needs':>8}{'median':>8}{'hit':>7}{'s/seed':>8}"
          f"  vs best free 10/20/50")  # fmt: skip
    for name, r in res["strategies"].items():
        cells = "".join(f"{r['regret_mean'][k]:>8.3f}±{r['regret_std'][k]:<6.3f}" for k in SHOW)
        need = r["needs_mean_curve"]
        med = r["needs_per_seed_median"]
        print(f"{name:<20}{cells}{(str(need) if need else '>50'):>8}"
              f"{(f'{med:g}' if med else '-'):>8}"
              f"{str(r['seeds_reaching_within_50']) + '/' + str(r['seeds']):>7}"
              f"{r['search_seconds_mean']:>8.2f}  "
              + " / ".join(f"{v:+.3f}" for v in r["vs_free"].values()))  # fmt: skip


def top1_study(pool, seeds: list[int], online_seeds: list[int]) -> dict:
    """Part 3: architectures trained until the first top-1% one."""
    from rankzc.stats import spearman

    t0 = time.perf_counter()
    good = top_fraction(pool, 0.01)

    def stop(trace) -> bool:
        return bool(trace.steps) and trace.steps[-1].arch_id in good

    def run(names, budget, seeds_):
        out = {}
        traces = simulate(
            pool, [parse_strategy(n) for n in names], Budget(archs=budget), seeds_, stop=stop
        )
        for name in names:
            hits = [hit_index(t, good) for t in traces if t.strategy == name]
            found = [h for h in hits if h is not None]
            out[name] = {
                "mean": round(float(np.mean(found)), 2) if found else None,
                "median": float(np.median(found)) if found else None,
                "missed": len(hits) - len(found),
                "budget": budget,
            }
        return out

    rho = {
        p: spearman(pool.table[p].to_numpy(float), pool.table["val_acc"].to_numpy(float))
        for p in pool.proxies
    }
    best_proxy = max(rho, key=lambda p: abs(rho[p]) if math.isfinite(rho[p]) else -1)
    res = run(["random"], len(pool), seeds)
    res.update(run([f"proxy:{p}" for p in pool.proxies], len(pool), seeds[:1]))
    res.update(run(ONLINE, 200, online_seeds))
    return {
        "pool": len(pool),
        "top": len(good),
        "seeds": len(seeds),
        "best_proxy_by_spearman": best_proxy,
        "spearman": {p: round(float(v), 4) for p, v in rho.items()},
        "hits": res,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def scoring_speed(n: int = 6) -> dict:
    """Part 4: live-pool proxy scoring, one worker vs two local processes."""
    from rankzc.proxies.registry import proxy_names
    from rankzc.search.live import LiveSearch
    from rankzc.search.pool import score_pool
    from rankzc.space import sample_architectures
    from rankzc.training import TrainConfig

    cfg = TrainConfig.for_preset("tiny", proxies="none")
    settings = LiveSearch(Path("unused.db"), cfg, pool_size=n).settings(proxy_names())
    archs = sample_architectures(n, seed=11)
    out = {"n": n, "preset": "tiny", "proxies": len(proxy_names())}
    for workers in (1, 2):
        t0 = time.perf_counter()
        score_pool(archs, settings, workers=workers)
        dt = time.perf_counter() - t0
        out[f"workers_{workers}"] = {"seconds": round(dt, 2), "per_second": round(n / dt, 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--online-seeds", type=int, default=None, help="default: --seeds")
    ap.add_argument("--parts", default="study,max-params,nb201,scoring")
    ap.add_argument(
        "--online",
        default=",".join(ONLINE),
        help="the refitted strategies of the regret tables, e.g. online,online:ucb,online:thompson",
    )
    args = ap.parse_args()
    online = [o for o in args.online.split(",") if o]
    seeds = list(range(args.seeds))
    online_seeds = list(range(args.online_seeds if args.online_seeds else args.seeds))
    parts = set(args.parts.split(","))
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        study = None
        if parts & {"study", "max-params"}:
            study = study_store(args.shared, work)
        if study is not None and "study" in parts:
            pool = load_pool(study)
            figures["study"] = regret_study(pool, seeds, online_seeds, online=online)
            print_regret("Study, 693 architectures, budget 50", figures["study"])
            sys.stdout.flush()
        if study is not None and "max-params" in parts:
            pool = load_pool(study)
            med = float(pool.table["params"].median())
            res = regret_study(pool, seeds, online_seeds, max_params=med, online=online)
            figures["study_max_params"] = res
            print_regret(f"Study with --max-params {med:.0f} (median)", res)
            print(f"trained over the limit: {res['trained_over_limit']}")
            sys.stdout.flush()
        nb = nb201_store(args.shared, work) if parts & {"nb201", "nb201-regret"} else None
        if nb is not None and "nb201-regret" in parts:
            figures["nb201"] = regret_study(load_pool(nb), seeds, online_seeds, online=online)
            print_regret("NAS-Bench-201 CIFAR-10, budget 50", figures["nb201"])
            sys.stdout.flush()
        if "nb201" not in parts:
            nb = None
        if nb is not None:
            res = top1_study(load_pool(nb), seeds, online_seeds)
            figures["nb201_top1"] = res
            print(f"\nNAS-Bench-201 CIFAR-10: {res['pool']} architectures, top 1% = {res['top']};"
                  f" architectures trained until the first top-1% one ({res['seeds']} seeds;"
                  f" single proxies: one order); best proxy by Spearman: "
                  f"{res['best_proxy_by_spearman']}")  # fmt: skip
            for name, h in sorted(res["hits"].items(), key=lambda kv: kv[1]["mean"] or 1e9):
                print(f"  {name:<22} mean {h['mean']}  median {h['median']}  missed {h['missed']}"
                      f" (budget {h['budget']})")  # fmt: skip
            sys.stdout.flush()
    if "scoring" in parts:
        sp = scoring_speed()
        figures["scoring"] = sp
        print(f"\nLive pool scoring ({sp['n']} candidates, {sp['preset']}, {sp['proxies']} proxies):"
              f" 1 worker {sp['workers_1']['per_second']}/s, 2 workers "
              f"{sp['workers_2']['per_second']}/s")  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
