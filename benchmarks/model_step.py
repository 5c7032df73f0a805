"""Seconds per forward and per forward+backward step of the GCN-NAS network.

For each preset, depth and aggregation, builds one sampled architecture (seeded) and
times ``model(x)`` and ``model(x).loss.backward()`` on random input of shape
``(batch, 3, T, 25, 2)`` in training mode. Prints a table, then one JSON document.

Example::

    OMP_NUM_THREADS=2 python benchmarks/model_step.py --presets tiny,cpu,ntu60 \\
        --aggregation both --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from rankzc.models import PRESETS, UnitGCN, build_model, count_parameters, spatial_partition
from rankzc.space import DEPTHS, sample_architectures

DEFAULT_BATCH = {"tiny": 16, "cpu": 16, "ntu60": 2}


def _time(fn, repeats: int, warmup: int) -> tuple[float, float]:
    """Median wall seconds and median process CPU seconds of ``fn()``.

    CPU seconds are the steadier figure on a shared machine (with one thread they are
    the compute cost; with k threads up to k times the wall time).
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def measure(
    preset: str,
    depth: int,
    aggregation: str,
    batch: int,
    frames: int | None,
    repeats: int,
    warmup: int,
    seed: int,
) -> dict:
    (arch,) = sample_architectures(1, depths=[depth], seed=seed)
    torch.manual_seed(seed)
    model = build_model(arch, preset=preset, aggregation=aggregation)
    model.train()
    x = model.example_input(batch, num_frames=frames)
    y = torch.randint(0, model.num_classes, (batch,))

    def forward():
        with torch.no_grad():
            model(x)

    def step():
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()

    fwd, fwd_cpu = _time(forward, repeats, warmup)
    step_s, step_cpu = _time(step, repeats, warmup)
    return {
        "preset": preset,
        "depth": depth,
        "aggregation": aggregation,
        "arch": str(arch),
        "params": count_parameters(model),
        "batch": batch,
        "frames": x.shape[2],
        "forward_s": fwd,
        "forward_backward_s": step_s,
        "forward_cpu_s": fwd_cpu,
        "forward_backward_cpu_s": step_cpu,
    }


def measure_aggregation(
    switches: str, channels: int, samples: int, frames: int, repeats: int, warmup: int
) -> dict:
    """Seconds of the per-frame product ``x M_k`` alone (forward + backward), both ways."""
    sw = [c == "1" for c in switches]
    out = {"switches": switches, "channels": channels, "samples": samples, "frames": frames}
    x = torch.randn(samples, channels, frames, 25, requires_grad=True)
    torch.manual_seed(0)
    units = {
        a: UnitGCN(channels, channels, spatial_partition(), sw, aggregation=a)
        for a in ("dense", "sparse")
    }
    units["sparse"].load_state_dict(units["dense"].state_dict())
    for name, unit in units.items():

        def run(unit=unit):
            x.grad = None
            unit._aggregate(x).sum().backward()

        out[f"{name}_s"], out[f"{name}_cpu_s"] = _time(run, repeats, warmup)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="tiny,cpu,ntu60", help="comma-separated presets")
    parser.add_argument("--depths", default=",".join(map(str, DEPTHS)))
    parser.add_argument(
        "--aggregation", default="dense", choices=["dense", "sparse", "both"], help="x @ A_k"
    )
    parser.add_argument(
        "--batch", type=int, default=None, help=f"batch size (default per preset {DEFAULT_BATCH})"
    )
    parser.add_argument("--frames", type=int, default=None, help="T (default: the preset's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median kept)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="architecture and weight seed")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--json", default=None, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    presets = [p for p in args.presets.split(",") if p]
    unknown = set(presets) - set(PRESETS)
    if unknown:
        parser.error(f"unknown presets {sorted(unknown)}")
    depths = [int(d) for d in args.depths.split(",") if d]
    aggs = ["dense", "sparse"] if args.aggregation == "both" else [args.aggregation]

    rows = []
    header = (
        f"{'preset':<7}{'depth':>6}{'agg':>8}{'params':>10}{'batch':>6}{'T':>5}"
        f"{'fwd s':>9}{'step s':>9}{'fwd cpu':>9}{'step cpu':>9}"
    )
    print(header)
    print("-" * len(header))
    for preset in presets:
        batch = args.batch or DEFAULT_BATCH.get(preset, 8)
        for depth in depths:
            for agg in aggs:
                r = measure(
                    preset, depth, agg, batch, args.frames, args.repeats, args.warmup, args.seed
                )
                rows.append(r)
                print(
                    f"{r['preset']:<7}{r['depth']:>6}{r['aggregation']:>8}{r['params']:>10}"
                    f"{r['batch']:>6}{r['frames']:>5}{r['forward_s']:>9.4f}"
                    f"{r['forward_backward_s']:>9.4f}{r['forward_cpu_s']:>9.4f}"
                    f"{r['forward_backward_cpu_s']:>9.4f}",
                    flush=True,
                )
    agg_rows = []
    if args.aggregation == "both":
        print("\nx M_k alone (forward + backward), cpu-preset unit: 32 channels, 32 samples, T=32")
        print(f"{'switches':<10}{'dense s':>9}{'sparse s':>9}{'dense cpu':>10}{'sparse cpu':>11}")
        for sw in ("10000100", "10111100", "11111100", "10111111"):
            r = measure_aggregation(sw, 32, 32, 32, max(args.repeats, 5), args.warmup)
            agg_rows.append(r)
            print(
                f"{sw:<10}{r['dense_s']:>9.4f}{r['sparse_s']:>9.4f}"
                f"{r['dense_cpu_s']:>10.4f}{r['sparse_cpu_s']:>11.4f}",
                flush=True,
            )
    result = {
        "benchmark": "model_step",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "repeats": args.repeats,
        "rows": rows,
        "aggregation_only": agg_rows,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()
