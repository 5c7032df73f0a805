"""Training-step speed of the GCN-NAS network: the current forward against the previous one.

For each preset and depth, builds one sampled architecture (seeded) and times one
training step, forward + cross-entropy backward (gradients cleared outside the timed
region), on random input of shape ``(batch, 3, T, 25, 2)`` in training mode, two ways on
the same module and the same weights:

- ``new``: ``model(x)``, the current fused path (channels-last, joint-major activations;
  :mod:`rankzc.models.layout`);
- ``old``: :func:`model_reference.reference_forward`, the port's forward as it was before
  (``(N, C, T, V)`` activations, ``einsum`` products; kept in ``benchmarks/``).

The two are interleaved (old, new, old, new, ...) and each figure is the fastest of
``--repeats`` steps (the least disturbed on a shared machine): ``speedup`` is old / new
in wall-clock seconds, ``speedup_cpu`` in process CPU seconds (with one thread the
steadier figure under load; with more, spinning threads count too). Before timing, the logits check: with every parameter moved
away from its near-zero initialisation (``+ 0.1 N(0, 1)``, so that every unit shows in
the output), ``max |new - old|`` over the logits must be at most ``--tol`` (1e-5);
the run fails otherwise. ``--profile`` adds the top operators of ``torch.profiler``
(self CPU time of one step, both ways). Prints a table, then one JSON document.

Example (on a quiet machine)::

    python benchmarks/model_step.py --presets cpu,ntu60 --depths 4,10 --threads 1
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_reference import reference_forward  # noqa: E402

from rankzc.models import PRESETS, build_model, count_parameters  # noqa: E402
from rankzc.space import sample_architectures  # noqa: E402

DEFAULT_BATCH = {"tiny": 16, "cpu": 16, "ntu60": 2}
DEFAULT_REPEATS = {"tiny": 20, "cpu": 20, "ntu60": 3}


def _setup(preset: str, depth: int, batch: int, frames: int | None, seed: int):
    (arch,) = sample_architectures(1, depths=[depth], seed=seed)
    torch.manual_seed(seed)
    model = build_model(arch, preset=preset)
    model.train()
    x = model.example_input(batch, num_frames=frames)
    y = torch.randint(0, model.num_classes, (batch,))
    return arch, model, x, y


def logits_check(preset: str, depth: int, batch: int, frames: int | None, seed: int) -> float:
    """``max |new - old|`` of the logits, parameters moved away from their initial values."""
    _, model, x, _ = _setup(preset, depth, batch, frames, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
        new = model(x)
        old = reference_forward(model, x)
    return float((new - old).abs().max())


def _stepper(model, forward, x, y):
    params = list(model.parameters())

    def step() -> tuple[float, float]:
        for p in params:
            p.grad = None
        t0, c0 = time.perf_counter(), time.process_time()
        F.cross_entropy(forward(x), y).backward()
        return time.perf_counter() - t0, time.process_time() - c0

    return step


def measure(
    preset: str, depth: int, batch: int, frames: int | None, repeats: int, seed: int
) -> dict:
    arch, model, x, y = _setup(preset, depth, batch, frames, seed)
    steps = {
        "old": _stepper(model, lambda z: reference_forward(model, z), x, y),
        "new": _stepper(model, model, x, y),
    }
    for step in steps.values():  # warm-up (oneDNN primitives, allocator)
        step()
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(step())
    old, new = (min(t[0] for t in times[k]) for k in ("old", "new"))
    old_cpu, new_cpu = (min(t[1] for t in times[k]) for k in ("old", "new"))
    return {
        "preset": preset,
        "depth": depth,
        "arch": str(arch),
        "params": count_parameters(model),
        "batch": batch,
        "frames": x.shape[2],
        "old_step_s": old,
        "new_step_s": new,
        "speedup": old / new,
        "old_step_cpu_s": old_cpu,
        "new_step_cpu_s": new_cpu,
        "speedup_cpu": old_cpu / new_cpu,
    }


def profile_table(
    preset: str, depth: int, batch: int, frames: int | None, seed: int, top: int
) -> dict[str, list[dict]]:
    """Top ``top`` operators by self CPU time of one step, old and new."""
    from torch.profiler import ProfilerActivity, profile

    _, model, x, y = _setup(preset, depth, batch, frames, seed)
    out = {}
    for name, forward in (("old", lambda z: reference_forward(model, z)), ("new", model)):
        step = _stepper(model, forward, x, y)
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in events)
        out[name] = [
            {
                "op": e.key,
                "self_ms": e.self_cpu_time_total / 1000,
                "share": e.self_cpu_time_total / total,
                "calls": e.count,
            }
            for e in events[:top]
        ]
        out[name + "_total_ms"] = total / 1000
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="cpu,ntu60", help="comma-separated presets")
    parser.add_argument("--depths", default="4,10")
    parser.add_argument(
        "--batch", type=int, default=None, help=f"batch size (default per preset {DEFAULT_BATCH})"
    )
    parser.add_argument("--frames", type=int, default=None, help="T (default: the preset's)")
    parser.add_argument(
        "--repeats", type=int, default=None, help=f"timed steps each way ({DEFAULT_REPEATS})"
    )
    parser.add_argument("--seed", type=int, default=0, help="architecture and weight seed")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--tol", type=float, default=1e-5, help="logits check tolerance")
    parser.add_argument("--profile", type=int, default=0, help="also the top N operators")
    parser.add_argument("--json", default=None, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    presets = [p for p in args.presets.split(",") if p]
    unknown = set(presets) - set(PRESETS)
    if unknown:
        parser.error(f"unknown presets {sorted(unknown)}")
    depths = [int(d) for d in args.depths.split(",") if d]

    rows, failed = [], []
    header = (
        f"{'preset':<7}{'depth':>6}{'params':>10}{'batch':>6}{'T':>5}"
        f"{'old s':>10}{'new s':>10}{'speedup':>9}{'cpu ratio':>10}{'logits |d|':>12}"
    )
    print(header)
    print("-" * len(header))
    for preset in presets:
        batch = args.batch or DEFAULT_BATCH.get(preset, 8)
        repeats = args.repeats or DEFAULT_REPEATS.get(preset, 5)
        for depth in depths:
            diff = logits_check(preset, depth, batch, args.frames, args.seed)
            r = measure(preset, depth, batch, args.frames, repeats, args.seed)
            r["logits_max_abs_diff"] = diff
            r["logits_ok"] = diff <= args.tol
            if not r["logits_ok"]:
                failed.append(f"{preset} depth {depth}: |d| {diff:.2e} > {args.tol:g}")
            if args.profile:
                r["profile"] = profile_table(
                    preset, depth, batch, args.frames, args.seed, args.profile
                )
            rows.append(r)
            print(
                f"{preset:<7}{depth:>6}{r['params']:>10}{r['batch']:>6}{r['frames']:>5}"
                f"{r['old_step_s']:>10.4f}{r['new_step_s']:>10.4f}{r['speedup']:>8.2f}x"
                f"{r['speedup_cpu']:>9.2f}x{diff:>12.1e}",
                flush=True,
            )
    result = {
        "benchmark": "model_step",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "tol": args.tol,
        "logits_ok": not failed,
        "rows": rows,
    }
    if args.profile:
        for r in rows:
            for name in ("old", "new"):
                print(f"\n{r['preset']} depth {r['depth']}, {name}: top ops (self CPU, one step)")
                for e in r["profile"][name]:
                    print(
                        f"  {e['op'][:44]:<44}{e['self_ms']:>9.1f} ms{100 * e['share']:>6.1f}%"
                        f"{e['calls']:>6}"
                    )
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    if failed:
        raise SystemExit("logits check failed: " + "; ".join(failed))
    return result


if __name__ == "__main__":
    main()
