"""Cost of the zero-cost proxies, and their agreement with the study.

Cost (default): for depths 4, 6, 8 and 10 (``--depths``) on the ``cpu`` preset and a
minibatch of 20, the seconds of each proxy and of all 14 together, as a ratio to ONE
training step (forward, cross-entropy backward and a Nesterov-SGD step) on the same
model and batch; once with the shared pass (:func:`compute_proxies`) and once one proxy
at a time (``share=False``: every proxy runs its own forward/backward), and whether the
two give the same scores (``shared_vs_alone_rel``: 0.0 where equal). Every figure is the
fastest of ``--repeats`` runs (the least disturbed on a shared machine); per-proxy
seconds are those of that fastest run, shared-pass time split as documented in
:mod:`rankzc.proxies.context`. ``--passes`` adds where the time goes: every shared pass
by part and each proxy's own work, in training steps. ``--fisher-hooks`` also times, in
the same interleaved rounds, all 14 shared with fisher's hooked pass of its own (as
before round 12) against fisher from the network's output taps. ``--clock cpu`` times totals in
this process's CPU time (steadier when other processes load the machine); the load
averages before and after are printed with the results.

    OMP_NUM_THREADS=1 python benchmarks/proxies.py [--repeats 3] [--threads 1] [--passes]

Study agreement (``--study DIR``): on ``--n`` architectures of the study (every k-th
file in sorted order) at the ``ntu60`` preset with the study's input shape (T=300):
whether ``params`` equals the study's exactly, whether ``20 * flops`` (the study scored
a batch of 20) equals its ``flops``, and the Spearman rho of ``synflow``, ``zen`` and
``l2_norm`` at initialisation against the study's recorded values. ``--zen-batch``
sets zen's Gaussian batch (the study used 20; smaller is cheaper on CPU).

    OMP_NUM_THREADS=1 python benchmarks/proxies.py --study ../shared/data/thesis-gcn-nas/architectures --n 50

Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rankzc.models import build_model
from rankzc.proxies import compute_proxies, proxy_names
from rankzc.proxies import context as proxy_context
from rankzc.proxies.features import ProxySettings, load_minibatch
from rankzc.space import Architecture, sample_architectures


def train_step(model: torch.nn.Module, x, y):
    """A function doing one forward + backward + SGD step on a copy of ``model``."""
    net = copy.deepcopy(model).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True)

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

    return step


def timed_interleaved(fns: dict, repeats: int, clock=time.perf_counter) -> dict:
    """``{name: (fastest seconds, result of the fastest call)}`` over ``repeats`` rounds.

    Each round calls every function once, in turn, so a slow spell of the shared machine
    hits all of them alike; the minimum is the least disturbed figure. ``clock``:
    :func:`time.perf_counter` (wall) or :func:`time.process_time` (this process's CPU
    time, less disturbed by other processes on a loaded machine)."""
    best = {k: (float("inf"), None) for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = clock()
            res = fn()
            seconds = clock() - t0
            if seconds < best[k][0]:
                best[k] = (seconds, res)
    return best


def max_rel_diff(a: dict, b: dict) -> dict[str, float | None]:
    """Per proxy, ``|a - b| / |b|`` of two ``compute_proxies`` results (0 when equal,
    None when one is missing)."""
    out = {}
    for name, rb in b.items():
        va, vb = a[name].score, rb.score
        if va is None or vb is None:
            out[name] = None
        else:
            out[name] = 0.0 if va == vb else abs(va - vb) / max(abs(vb), 1e-300)
    return out


def hooked_fisher(model, x, y) -> dict:
    """All 14 proxies shared, fisher as before round 12: forward hooks on every layer in a
    pass of its own (the network's output taps ignored), for an interleaved comparison."""
    model.reports_outputs = lambda: False  # the instance attribute hides the method
    try:
        return compute_proxies(model, (x, y))
    finally:
        del model.reports_outputs


def pass_seconds(model, x, y, names: list[str], repeats: int, clock) -> dict[str, float]:
    """Where the time of the shared computation goes: the fastest of ``repeats`` runs of
    every shared pass (``group:part`` seconds, the parts of
    :attr:`~rankzc.proxies.context.SharedResult.seconds`, one group per
    :func:`~rankzc.proxies.compute.share_groups` entry: ``hooked pass`` for fisher's
    where it has one, ``main pass`` for the rest), and of each proxy's own work after the passes
    (``proxy:name``)."""
    from rankzc.proxies.compute import HOOKED_PARTS, share_groups
    from rankzc.proxies.context import ModelState, ProxyContext
    from rankzc.proxies.registry import get_proxy

    best: dict[str, float] = {}
    state = ModelState(model)
    for _ in range(repeats):
        groups = share_groups(names, model)
        for group in groups:
            wants = {part for n in group for part in get_proxy(n).needs}
            label = "hooked pass" if wants & HOOKED_PARTS and len(groups) > 1 else "main pass"
            ctx = ProxyContext(model, x, y, F.cross_entropy, wants=wants)
            if wants:
                try:
                    shared = ctx.shared()
                finally:
                    state.restore()
                for part, sec in shared.seconds.items():
                    key = f"{label}:{part}"
                    best[key] = min(best.get(key, float("inf")), sec)
            for name in group:
                t0 = clock()
                try:
                    get_proxy(name).fn(ctx)
                finally:
                    state.restore()
                key = f"proxy:{name}"
                best[key] = min(best.get(key, float("inf")), clock() - t0)
    return best


def cost(args: argparse.Namespace) -> dict:
    settings = ProxySettings(preset="cpu", data=args.data, batch_size=args.batch_size)
    x, y, _ = load_minibatch(settings)
    names = proxy_names()
    depths = [int(d) for d in args.depths.split(",")]
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    proxy_context.TIMER = clock  # the per-proxy and per-pass seconds on the same clock
    report = {
        "preset": "cpu",
        "batch_size": args.batch_size,
        "threads": args.threads,
        "clock": args.clock,
        "load_before": _load(),
        "depths": {},
    }
    for depth in depths:
        arch = sample_architectures(1, depths=(depth,), seed=args.seed)[0]
        torch.manual_seed(args.seed)
        model = build_model(arch, "cpu")
        step_fn = train_step(model, x, y)
        step_fn()  # warm-up (lazy imports, allocators)
        compute_proxies(model, (x, y), names=names)
        fns = {
            "step": step_fn,
            "shared": lambda m=model: compute_proxies(m, (x, y)),
            "alone": lambda m=model: compute_proxies(m, (x, y), share=False),
        }
        if args.fisher_hooks:
            fns["shared_hooked"] = lambda m=model: hooked_fisher(m, x, y)
        best = timed_interleaved(fns, args.repeats, clock)
        step = best["step"][0]
        shared_s, shared = best["shared"]
        alone_s, alone = best["alone"]
        rows = {
            n: {
                "shared_s": shared[n].seconds,
                "alone_s": alone[n].seconds,
                "shared_steps": shared[n].seconds / step,
                "alone_steps": alone[n].seconds / step,
            }
            for n in names
        }
        report["depths"][depth] = {
            "arch": str(arch),
            "train_step_s": step,
            "all_shared_s": shared_s,
            "all_alone_s": alone_s,
            "all_shared_steps": shared_s / step,
            "all_alone_steps": alone_s / step,
            "sharing_speedup": alone_s / shared_s,
            "missing": sorted(n for n in names if shared[n].score is None),
            # shared and one-at-a-time scores: 0.0 where they are equal
            "shared_vs_alone_rel": max_rel_diff(shared, alone),
            "proxies": rows,
        }
        if args.fisher_hooks:
            hooked_s, hooked = best["shared_hooked"]
            report["depths"][depth]["all_shared_hooked_s"] = hooked_s
            report["depths"][depth]["taps_speedup"] = hooked_s / shared_s
            report["depths"][depth]["taps_vs_hooks_rel"] = max_rel_diff(shared, hooked)
        if args.passes:
            secs = pass_seconds(model, x, y, names, args.repeats, clock)
            report["depths"][depth]["passes_steps"] = {k: v / step for k, v in secs.items()}
    report["load_after"] = _load()
    print(f"{'proxy':<10}" + "".join(f"{'d' + str(d) + ' shared':>14}{'d' + str(d) + ' alone':>13}"
                                     for d in depths))  # fmt: skip
    print(f"{'(steps)':<10}")
    for n in names:
        cells = "".join(
            f"{report['depths'][d]['proxies'][n]['shared_steps']:>14.3f}"
            f"{report['depths'][d]['proxies'][n]['alone_steps']:>13.3f}"
            for d in depths
        )
        print(f"{n:<10}{cells}")
    if args.passes:
        keys = sorted({k for d in depths for k in report["depths"][d]["passes_steps"]})
        print(f"\n{'pass:part (steps, fastest of ' + str(args.repeats) + ')':<32}"
              + "".join(f"{'d' + str(d):>8}" for d in depths))  # fmt: skip
        for k in keys:
            cells = "".join(
                f"{report['depths'][d]['passes_steps'].get(k, float('nan')):>8.2f}" for d in depths
            )
            print(f"{k:<32}{cells}")
    for d in depths:
        r = report["depths"][d]
        diffs = [v for v in r["shared_vs_alone_rel"].values() if v is not None]
        print(
            f"depth {d}: train step {r['train_step_s']:.3f} s; all 14 shared "
            f"{r['all_shared_s']:.2f} s = {r['all_shared_steps']:.2f} steps; one at a time "
            f"{r['all_alone_s']:.2f} s = {r['all_alone_steps']:.2f} steps; sharing "
            f"{r['sharing_speedup']:.2f}x faster; shared vs alone max rel. difference "
            f"{max(diffs, default=0.0):.1e}; missing {r['missing']}"
        )
        if "taps_speedup" in r:
            rel = r["taps_vs_hooks_rel"].get("fisher")
            print(
                f"depth {d}: all 14 shared with fisher's hooked pass (before round 12) "
                f"{r['all_shared_hooked_s']:.2f} s; output taps {r['taps_speedup']:.2f}x "
                f"faster; fisher taps vs hooks rel. difference {rel:.1e}"
            )
    print(f"clock {args.clock}; load average {report['load_before']} before, "
          f"{report['load_after']} after")  # fmt: skip
    return report


def _load() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the system has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


#: Proxies that need no data (the minibatch's shape at most): scored on every architecture.
DATA_FREE = ("params", "flops", "l2_norm", "synflow", "zen")


def study_files(directory: str, n: int) -> list[Path]:
    """Every k-th study file in sorted order, ``n`` of them."""
    files = sorted(Path(directory).glob("*.json"))
    if not files:
        sys.exit(f"{directory}: no study files")
    step = max(1, len(files) // n)
    return files[::step][:n]


def study_batch(run: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``run``'s minibatch: synthetic NTU-layout skeletons at the study's shape
    (T=300, 25 joints, 2 persons), two classes so that a class repeats (epe_nas)."""
    settings = ProxySettings(
        preset="ntu60",
        data=f"synthetic:n=40,classes=2,frames=300,seed={run}",
        batch_size=batch_size,
        seed=run,
        resample=False,
    )
    x, y, _ = load_minibatch(settings)
    return x, y


def study_scores(args: argparse.Namespace, files: list[Path]) -> list[dict]:
    """Score (or read from ``--cache``) every (architecture, run, kind) and return rows.

    Run ``r`` initialises the network with seed ``r`` and draws its own minibatch; kind
    ``free`` holds :data:`DATA_FREE` (zen on a Gaussian batch of ``--zen-batch``), kind
    ``data`` the other proxies on ``--batch-size`` samples (first ``--data-n`` files)."""
    caches = [Path(c) for c in args.cache.split(",")]
    cache = caches[0]  # new scores go to the first; all are read
    cache.parent.mkdir(parents=True, exist_ok=True)
    done: dict[tuple[str, int, str], dict] = {}
    for path in caches:
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    _merge(done, json.loads(line))
    data_names = [n for n in proxy_names() if n not in DATA_FREE]
    if args.names:
        unknown = sorted(set(args.names.split(",")) - set(data_names))
        if unknown:
            sys.exit(f"--names: not a data-reading proxy: {', '.join(unknown)}")
        data_names = [n for n in data_names if n in args.names.split(",")]
    kinds = set(args.kinds.split(","))
    # run 0 of every file first, so that a partial cache already compares with the study
    plan = [(f, r, "free") for r in range(2) for f in files] if "free" in kinds else []
    if "data" in kinds:
        plan += [(f, r, "data") for f in files[: args.data_n] for r in range(2)]
    shard, shards = (int(v) for v in args.shard.split("/"))
    plan = [item for item in plan if files.index(item[0]) % shards == shard]
    if args.summary_only:
        plan = [item for item in plan if (item[0].name, item[1], item[2]) in done]
    batches = {r: study_batch(r, args.batch_size) for r in range(2)}
    t_start = time.perf_counter()
    rows = []
    for i, (f, run, kind) in enumerate(plan):
        key = (f.name, run, kind)
        missing = [n for n in data_names if key in done and n not in done[key]["ours"]]
        if key not in done or (kind == "data" and missing and not args.summary_only):
            record = next(iter(json.loads(f.read_text()).values()))
            arch = Architecture.from_weights(record["weights"])
            torch.manual_seed(run)
            model = build_model(arch, "ntu60")
            with _big_lock(args.big_lock, arch.depth):
                res = _score_run(model, kind, run, args, batches, missing or data_names)
            row = {
                "file": f.name, "run": run, "kind": kind, "depth": arch.depth,
                "ours": {k: r.score for k, r in res.items()},
                "seconds": {k: r.seconds for k, r in res.items()},
                "study": {k: v["score"] for k, v in record["zero_cost_scores"].items()},
            }  # fmt: skip
            with cache.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            _merge(done, row)
            print(f"{i + 1}/{len(plan)} {kind} run {run} depth {arch.depth} "
                  f"{time.perf_counter() - t_start:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
        rows.append(done[key])
    return rows


def _merge(done: dict, row: dict) -> None:
    """Add a cache row to ``done``; a later row of the same run adds proxies (--names)."""
    key = (row["file"], row["run"], row["kind"])
    if key in done:
        done[key]["ours"].update(row["ours"])
        done[key]["seconds"].update(row["seconds"])
    else:
        done[key] = row


def _score_run(model, kind: str, run: int, args: argparse.Namespace, batches, names) -> dict:
    """One run's proxies: ``free`` on the study's input shape (zen on a Gaussian batch),
    ``data`` (``names``) on the run's minibatch."""
    if kind == "data":
        return compute_proxies(model, batches[run], names=names, seed=run)
    x1 = torch.zeros(1, 3, 300, 25, 2)
    res = compute_proxies(model, (x1, torch.zeros(1, dtype=torch.long)),
                          names=["params", "flops", "l2_norm", "synflow"])  # fmt: skip
    gen = torch.Generator().manual_seed(run)
    xz = torch.randn(args.zen_batch, 3, 300, 25, 2, generator=gen)
    yz = torch.zeros(args.zen_batch, dtype=torch.long)
    res.update(compute_proxies(model, (xz, yz), names=["zen"], seed=run))
    return res


@contextlib.contextmanager
def _big_lock(path: str | None, depth: int):
    """With ``--big-lock FILE``: hold an exclusive flock on FILE while a network of depth
    8 or 10 is scored, so that parallel shards never hold two of them in memory at once
    (depth 10 at the study's shape and batch 20 peaks near 13-15 GB)."""
    if path is None or depth < 8:
        yield
        return
    import fcntl

    with open(path, "a") as fh:  # closing the file releases the lock
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _rho(a: list[float], b: list[float]) -> float | None:
    from rankzc.analysis import spearman  # the package's one Spearman rule (finite pairs)

    value = spearman(a, b)
    return None if value is None or value != value else float(value)


def _ci(a: list[float], b: list[float]) -> list[float] | None:
    """Percentile bootstrap 95% interval of the Spearman rho (pairs resampled)."""
    from rankzc.stats import bootstrap_spearman_ci

    lo, hi = bootstrap_spearman_ci(a, b)
    return None if lo != lo else [round(lo, 3), round(hi, 3)]


def study(args: argparse.Namespace) -> dict:
    files = study_files(args.study, args.n)
    rows = study_scores(args, files)
    kinds = set(args.kinds.split(","))
    by = {(r["file"], r["run"], r["kind"]): r for r in rows}
    out = {
        "n": len(files),
        "data_n": min(args.data_n, len(files)),
        "batch_size": args.batch_size,
        "zen_batch": args.zen_batch,
        "proxies": {},
    }
    free = [by[(f.name, 0, "free")] for f in files if (f.name, 0, "free") in by]
    out["params_exact"] = sum(r["ours"]["params"] == r["study"]["params"] for r in free)
    out["flops_exact_x20"] = sum(20 * r["ours"]["flops"] == r["study"]["flops"] for r in free)
    nan = float("nan")

    def value(row, name):
        v = row["ours"].get(name)
        return nan if v is None else v

    for name in proxy_names():
        kind = "free" if name in DATA_FREE else "data"
        if kind not in kinds:
            continue

        def scored(f, run, name=name, kind=kind):  # rows scored without --names skip it
            row = by.get((f.name, run, kind))
            return row if row is not None and name in row["ours"] else None

        run0 = [r for f in files if (r := scored(f, 0)) is not None]
        run1 = [r for f in files if (r := scored(f, 1)) is not None]
        pairs = [
            (scored(f, 0), scored(f, 1))
            for f in files
            if scored(f, 0) is not None and scored(f, 1) is not None
        ]
        if len(run0) < 3:
            continue
        secs = [r["seconds"][name] for r in run0 + run1]
        out["proxies"][name] = {
            "n_run0": len(run0),
            "vs_study_run0": _rho([value(r, name) for r in run0],
                                  [r["study"].get(name, nan) for r in run0]),
            "n_run1": len(run1),
            "vs_study_run1": _rho([value(r, name) for r in run1],
                                  [r["study"].get(name, nan) for r in run1]),
            "vs_study_run0_ci95": _ci([value(r, name) for r in run0],
                                      [r["study"].get(name, nan) for r in run0]),
            "n_pairs": len(pairs),
            "run0_vs_run1": _rho([value(a, name) for a, _ in pairs],
                                 [value(b, name) for _, b in pairs]),
            "run0_vs_run1_ci95": _ci([value(a, name) for a, _ in pairs],
                                     [value(b, name) for _, b in pairs]),
            "mean_seconds": sum(secs) / len(secs),
        }  # fmt: skip
    print(f"params exact: {out['params_exact']}/{len(free)}; 20*flops exact: "
          f"{out['flops_exact_x20']}/{len(free)}")  # fmt: skip
    print(f"{'proxy':<10}{'vs study, run 0 [95% CI]':>34}{'run 1':>14}"
          f"{'run 0 vs run 1 [95% CI]':>34}")  # fmt: skip
    fmt = lambda v, n: (f"{v:+.4f}" if v is not None else "n/a") + f" ({n})"  # noqa: E731
    ci = lambda c: f" [{c[0]:+.2f}, {c[1]:+.2f}]" if c else ""  # noqa: E731
    for name, r in out["proxies"].items():
        print(f"{name:<10}{fmt(r['vs_study_run0'], r['n_run0']) + ci(r['vs_study_run0_ci95']):>34}"
              f"{fmt(r['vs_study_run1'], r['n_run1']):>14}"
              f"{fmt(r['run0_vs_run1'], r['n_pairs']) + ci(r['run0_vs_run1_ci95']):>34}")  # fmt: skip
    print("(n) = architectures; run 1 = another initialisation seed and minibatch; "
          "intervals: percentile bootstrap over architectures")  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--data", default="synthetic:n=200")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--depths", default="4,6,8,10", help="comma-separated depths to time")
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="every figure in wall time, or in this process's CPU time (steadier on a "
        "loaded machine)",
    )
    p.add_argument(
        "--fisher-hooks",
        action="store_true",
        help="also time all 14 shared with fisher's hooked pass of its own (before round "
        "12), interleaved with the rest: the output taps' speed-up",
    )
    p.add_argument(
        "--passes",
        action="store_true",
        help="also time every shared pass by part and each proxy's own work (the table of "
        "where the time goes)",
    )
    p.add_argument(
        "--write-costs",
        default=None,
        help="write the relative costs for `rankzc proxies` (rankzc/data/proxy_costs.json)",
    )
    p.add_argument("--study", default=None, help="study architectures directory")
    p.add_argument("--n", type=int, default=50, help="study architectures (data-free proxies)")
    p.add_argument("--data-n", type=int, default=50, help="of them, scored with data proxies")
    p.add_argument("--zen-batch", type=int, default=4, help="zen's Gaussian batch (study: 20)")
    p.add_argument(
        "--cache",
        default="out/study_proxies.jsonl",
        help="resumable score cache(s), comma-separated: all read, the first written",
    )
    p.add_argument("--kinds", default="free,data", help="score 'free' and/or 'data' proxies")
    p.add_argument(
        "--names",
        default=None,
        help="comma-separated data-reading proxies to score (default: all 9; grasp alone costs "
        "about half of their time at the study's shape); a cached run is scored only for "
        "the named proxies it lacks",
    )
    p.add_argument("--shard", default="0/1", help="I/K: score only files I, I+K, ... (parallel)")
    p.add_argument(
        "--big-lock",
        default=None,
        help="lock file shared by parallel shards: one depth-8/10 network in memory at a time",
    )
    p.add_argument("--summary-only", action="store_true", help="summarise the cache, score nothing")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    report = study(args) if args.study else cost(args)
    print(json.dumps(report))
    if args.write_costs and not args.study:
        write_costs(report, Path(args.write_costs), " ".join(sys.argv[1:]))


def write_costs(report: dict, path: Path, argv: str) -> None:
    """The relative costs that ``rankzc proxies`` lists: per proxy, its seconds in the
    shared run as a multiple of one training step, at the timed depths (the listing
    reads depths 4 and 10)."""
    costs = {
        "command": f"OMP_NUM_THREADS=1 python benchmarks/proxies.py {argv}".strip(),
        "preset": report["preset"],
        "batch_size": report["batch_size"],
        "unit": "training steps (forward + backward + SGD step on the same model and batch)",
        "proxies": {
            name: {
                str(d): round(report["depths"][d]["proxies"][name]["shared_steps"], 3)
                for d in report["depths"]
            }
            for name in next(iter(report["depths"].values()))["proxies"]
        },
    }
    path.write_text(json.dumps(costs, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
