"""Cost of the zero-cost proxies, and their agreement with the study.

Cost (default): for depths 4 and 10 on the ``cpu`` preset and a minibatch of 20, the
seconds of each proxy and of all 14 together, as a ratio to ONE training step (forward,
cross-entropy backward and a Nesterov-SGD step) on the same model and batch; once with
the shared pass (:func:`compute_proxies`) and once one proxy at a time
(``share=False``: every proxy runs its own forward/backward). Every figure is the
fastest of ``--repeats`` runs (the least disturbed on a shared machine); per-proxy
seconds are those of that fastest run, shared-pass time split as documented in
:mod:`rankzc.proxies.context`.

    OMP_NUM_THREADS=1 python benchmarks/proxies.py [--repeats 3] [--threads 1]

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
import copy
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rankzc.models import build_model
from rankzc.proxies import compute_proxies, proxy_names
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


def timed_interleaved(fns: dict, repeats: int) -> dict:
    """``{name: (fastest seconds, result of the fastest call)}`` over ``repeats`` rounds.

    Each round calls every function once, in turn, so a slow spell of the shared machine
    hits all of them alike; the minimum is the least disturbed figure."""
    best = {k: (float("inf"), None) for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            res = fn()
            seconds = time.perf_counter() - t0
            if seconds < best[k][0]:
                best[k] = (seconds, res)
    return best


def cost(args: argparse.Namespace) -> dict:
    settings = ProxySettings(preset="cpu", data=args.data, batch_size=args.batch_size)
    x, y, _ = load_minibatch(settings)
    names = proxy_names()
    report = {"preset": "cpu", "batch_size": args.batch_size, "threads": args.threads, "depths": {}}
    for depth in (4, 10):
        arch = sample_architectures(1, depths=(depth,), seed=args.seed)[0]
        torch.manual_seed(args.seed)
        model = build_model(arch, "cpu")
        step_fn = train_step(model, x, y)
        step_fn()  # warm-up (lazy imports, allocators)
        compute_proxies(model, (x, y), names=names)
        best = timed_interleaved(
            {
                "step": step_fn,
                "shared": lambda m=model: compute_proxies(m, (x, y)),
                "alone": lambda m=model: compute_proxies(m, (x, y), share=False),
            },
            args.repeats,
        )
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
            "proxies": rows,
        }
    print(f"{'proxy':<10}" + "".join(f"{'d' + str(d) + ' shared':>14}{'d' + str(d) + ' alone':>13}"
                                     for d in (4, 10)))  # fmt: skip
    print(f"{'(steps)':<10}")
    for n in names:
        cells = "".join(
            f"{report['depths'][d]['proxies'][n]['shared_steps']:>14.3f}"
            f"{report['depths'][d]['proxies'][n]['alone_steps']:>13.3f}"
            for d in (4, 10)
        )
        print(f"{n:<10}{cells}")
    for d in (4, 10):
        r = report["depths"][d]
        print(
            f"depth {d}: train step {r['train_step_s']:.3f} s; all 14 shared "
            f"{r['all_shared_s']:.2f} s = {r['all_shared_steps']:.2f} steps; one at a time "
            f"{r['all_alone_s']:.2f} s = {r['all_alone_steps']:.2f} steps; sharing "
            f"{r['sharing_speedup']:.2f}x faster; missing {r['missing']}"
        )
    return report


def study(args: argparse.Namespace) -> dict:
    from scipy.stats import spearmanr

    files = sorted(Path(args.study).glob("*.json"))
    if not files:
        sys.exit(f"{args.study}: no study files")
    step = max(1, len(files) // args.n)
    files = files[::step][: args.n]
    rows = []
    x1 = torch.zeros(1, 3, 300, 25, 2)
    gen = torch.Generator().manual_seed(args.seed)
    xz = torch.randn(args.zen_batch, 3, 300, 25, 2, generator=gen)
    yz = torch.zeros(args.zen_batch, dtype=torch.long)
    t_start = time.perf_counter()
    for i, f in enumerate(files):
        record = next(iter(json.loads(f.read_text()).values()))
        arch = Architecture.from_weights(record["weights"])
        torch.manual_seed(args.seed)
        model = build_model(arch, "ntu60")
        res = compute_proxies(model, (x1, yz[:1]), names=["params", "flops", "l2_norm"])
        if not args.no_synflow:
            res.update(compute_proxies(model, (x1, yz[:1]), names=["synflow"]))
        if not args.no_zen:
            res.update(compute_proxies(model, (xz, yz), names=["zen"], seed=args.seed))
        study_scores = {k: v["score"] for k, v in record["zero_cost_scores"].items()}
        rows.append(
            {"depth": arch.depth, "ours": {k: r.score for k, r in res.items()},
             "study": study_scores}
        )  # fmt: skip
        print(f"{i + 1}/{len(files)} depth {arch.depth} {time.perf_counter() - t_start:.0f} s",
              file=sys.stderr, flush=True)  # fmt: skip
    out = {
        "n": len(rows),
        "params_exact": sum(r["ours"]["params"] == r["study"]["params"] for r in rows),
        "flops_exact_x20": sum(20 * r["ours"]["flops"] == r["study"]["flops"] for r in rows),
        "zen_batch": args.zen_batch,
        "spearman": {},
    }
    for name in ("flops", "params", "l2_norm", "synflow", "zen"):
        pairs = [(r["ours"][name], r["study"][name]) for r in rows if r["ours"].get(name)]
        if len(pairs) > 2:
            a, b = zip(*pairs, strict=True)
            out["spearman"][name] = float(spearmanr(a, b).statistic)
            by_depth = {}
            for d in sorted({r["depth"] for r in rows}):
                sub = [(r["ours"][name], r["study"][name]) for r in rows
                       if r["depth"] == d and r["ours"].get(name)]  # fmt: skip
                if len(sub) > 2:
                    a, b = zip(*sub, strict=True)
                    by_depth[d] = float(spearmanr(a, b).statistic)
            out["spearman"][f"{name}_within_depth"] = by_depth
    print(f"params exact: {out['params_exact']}/{out['n']}; 20*flops exact: "
          f"{out['flops_exact_x20']}/{out['n']}")  # fmt: skip
    for name, rho in out["spearman"].items():
        if not name.endswith("_within_depth"):
            within = out["spearman"].get(f"{name}_within_depth", {})
            print(f"spearman {name:<8} {rho:+.4f}  within depth "
                  + ", ".join(f"{d}: {v:+.3f}" for d, v in within.items()))  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--data", default="synthetic:n=200")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--study", default=None, help="study architectures directory")
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--zen-batch", type=int, default=20)
    p.add_argument("--no-synflow", action="store_true")
    p.add_argument("--no-zen", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    report = study(args) if args.study else cost(args)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
