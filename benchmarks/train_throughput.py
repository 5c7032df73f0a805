"""Training throughput (samples/s) of fp32 vs bf16 at depths 4 and 10 on this machine.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/train_throughput.py [--preset cpu] [--device auto]
        [--steps 6] [--batch 16] [--epochs 2] [--channels-last] [--json out.json]

For each depth and precision: the median time of ``--steps`` SGD steps (after one
warm-up step) on the preset's synthetic data as held in memory by the trainer, in
samples per second; then a short run (``--epochs`` of the preset's recipe, same
seed) in each precision and the difference of the validation accuracies
(bf16 - fp32). ``--channels-last`` also times the model converted to
``torch.channels_last`` (kept only if it helps). Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from rankzc.space import sample_architectures
from rankzc.training import TrainConfig, Trainer, load_train_data
from rankzc.training.data import Feeder
from rankzc.training.trainer import default_model_fn, resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(arch, cfg, data, device, precision, steps, channels_last=False) -> float:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = default_model_fn(arch, cfg, data).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    feed = Feeder(data.x_train, data.y_train, device)
    gen = torch.Generator().manual_seed(0)
    batches = feed.batches(cfg.batch_size, gen)
    times = []
    for i in range(steps + 1):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = feed.batches(cfg.batch_size, gen)
            x, y = next(batches)
        _sync(device)
        t0 = time.perf_counter()
        ctx = (
            torch.autocast(device.type, dtype=torch.bfloat16)
            if precision == "bf16"
            else torch.autocast(device.type, enabled=False)
        )
        with ctx:
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if i:
            times.append(time.perf_counter() - t0)
    return len(y) / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--depths", default="4,10")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    device = resolve_device(args.device)
    extra = {} if args.batch is None else {"batch_size": args.batch}
    cfg = TrainConfig.for_preset(args.preset, epochs=args.epochs, proxies="none", **extra)
    data = load_train_data(cfg.data)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    rows = []
    for depth in (int(d) for d in args.depths.split(",")):
        arch = sample_architectures(1, depths=(depth,), seed=0)[0]
        row = {"depth": depth, "arch": str(arch), "batch": cfg.batch_size}
        for precision in ("fp32", "bf16"):
            row[f"{precision}_samples_per_s"] = throughput(
                arch, cfg, data, device, precision, args.steps
            )
            if args.channels_last:
                row[f"{precision}_channels_last_samples_per_s"] = throughput(
                    arch, cfg, data, device, precision, args.steps, channels_last=True
                )
        accs = {}
        for precision in ("fp32", "bf16"):
            run_cfg = TrainConfig.from_dict({**cfg.to_dict(), "precision": precision})
            recs = []
            result = Trainer(arch, run_cfg, 0, data, device=device).run(recs.append)
            accs[precision] = result.val_acc
        row["fp32_val_acc"] = accs["fp32"]
        row["bf16_val_acc"] = accs["bf16"]
        row["acc_diff_bf16_minus_fp32"] = accs["bf16"] - accs["fp32"]
        rows.append(row)

    print(
        f"device {name}, preset {args.preset}, data {cfg.data}, threads {torch.get_num_threads()}, "
        f"short run {args.epochs} epochs"
    )
    cl = args.channels_last
    head = f"{'depth':>5} {'fp32 s/s':>9} {'bf16 s/s':>9}"
    head += f" {'fp32 CL':>8} {'bf16 CL':>8}" if cl else ""
    head += f" {'acc fp32':>9} {'acc bf16':>9} {'diff':>7}"
    print(head)
    for r in rows:
        line = f"{r['depth']:>5} {r['fp32_samples_per_s']:>9.1f} {r['bf16_samples_per_s']:>9.1f}"
        if cl:
            line += (
                f" {r['fp32_channels_last_samples_per_s']:>8.1f}"
                f" {r['bf16_channels_last_samples_per_s']:>8.1f}"
            )
        line += (
            f" {r['fp32_val_acc']:>9.3f} {r['bf16_val_acc']:>9.3f}"
            f" {r['acc_diff_bf16_minus_fp32']:>+7.3f}"
        )
        print(line)
    out = {
        "device": name,
        "preset": args.preset,
        "data": cfg.data,
        "threads": torch.get_num_threads(),
        "epochs": args.epochs,
        "rows": rows,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
