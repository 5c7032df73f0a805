"""GPU check of the ``ntu60`` recipe: fp32 vs bf16 losses, samples/s, a 2-epoch build.

Usage::

    python benchmarks/gpu_check.py                 # on a machine with a GPU (--device cuda)
    OMP_NUM_THREADS=1 python benchmarks/gpu_check.py --cpu   # the same checks, tiny shapes, CPU

One prepared script, run as is on a GPU (nothing to edit there). For three
architectures (one each of depth 4, 6 or 8, and 10; sampled with seed 0) on synthetic
data at the preset's shape (``ntu60``: 3 x 300 frames x 25 joints x 2 persons, 60
classes; ``--cpu``: the ``tiny`` preset at 16 frames):

1. **loss agreement**: the same initial weights (one seed) trained for ``--steps``
   SGD steps on the same minibatches in fp32 and in bf16 (autocast); at each step the
   bf16 loss must be within ``--tol`` (relative, default 0.05) of the fp32 loss. bf16
   keeps 8 bits of mantissa (relative rounding about 0.4 %); a few steps of a deep
   network compound that to about 1 %, so 5 % separates rounding from a broken path
   (wrong dtype in a loss, a layer left in bf16 that overflows, ...);
2. **throughput**: median time of ``--steps`` training steps (after ``--warmup``
   steps, synchronised) in samples/s for fp32, bf16, and bf16 under ``torch.compile``
   (reported as failed with its reason when compiling does not work or takes longer
   than ``--compile-limit`` seconds); peak GPU memory;
3. **build**: ``rankzc bench build``'s library path (:func:`rankzc.training.build_benchmark`)
   with ``--device``, 2 epochs of the preset's recipe, every proxy at initialisation
   and after the first epoch, in fp32 and bf16 (one store each, under ``--work``);
   reports labels, seconds per epoch and failures.

Writes ``--json`` (default ``benchmarks/output/gpu_check[_cpu].json``) and prints a
table; exits 1 when a check fails (loss disagreement or a failed build run).
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
from torch import nn

from rankzc.space import sample_architectures
from rankzc.training import TrainConfig, build_benchmark, load_train_data
from rankzc.training.data import Feeder
from rankzc.training.trainer import default_model_fn, resolve_device

#: depths of the three architectures (6 or 8: the middle one is drawn from both)
DEPTH_GROUPS = ((4,), (6, 8), (10,))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _model(arch, cfg, data, device, seed=0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return default_model_fn(arch, cfg, data).to(device)


def _batches(data, cfg, device, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` fixed training minibatches (seeded), on the device."""
    feed = Feeder(data.x_train, data.y_train, device)
    gen = torch.Generator().manual_seed(0)
    out: list = []
    while len(out) < n:
        for xb, yb in feed.batches(cfg.batch_size, gen):
            out.append((xb.clone(), yb.clone()))
            if len(out) == n:
                break
    return out


def _step(model, opt, x, y, device, precision) -> float:
    with _autocast(device, precision):
        loss = nn.functional.cross_entropy(model(x).float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def loss_agreement(arch, cfg, data, device, steps: int) -> dict:
    """Losses of ``steps`` identical SGD steps in fp32 and bf16 from the same weights."""
    batches = _batches(data, cfg, device, steps)
    losses = {}
    for precision in ("fp32", "bf16"):
        model = _model(arch, cfg, data, device)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
        losses[precision] = [_step(model, opt, x, y, device, precision) for x, y in batches]
    rel = [
        abs(b - a) / max(abs(a), 1e-12) for a, b in zip(losses["fp32"], losses["bf16"], strict=True)
    ]
    return {"fp32": losses["fp32"], "bf16": losses["bf16"], "max_rel_diff": max(rel)}


def throughput(arch, cfg, data, device, precision, steps, warmup, compile_=False) -> dict:
    """samples/s: median of ``steps`` timed steps after ``warmup`` steps."""
    model = _model(arch, cfg, data, device)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    if compile_:
        model = torch.compile(model)
    batches = _batches(data, cfg, device, warmup + steps)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_first = time.perf_counter()
    first = float("nan")
    times = []
    for i, (x, y) in enumerate(batches):
        _sync(device)
        t0 = time.perf_counter()
        _step(model, opt, x, y, device, precision)
        _sync(device)
        if i == 0:
            first = time.perf_counter() - t_first  # includes compiling
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    out = {
        "samples_per_s": cfg.batch_size / statistics.median(times),
        "first_step_s": first,
    }
    if device.type == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def _with_time_limit(seconds: int, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, raising TimeoutError after ``seconds`` (main thread, POSIX)."""

    def alarm(signum, frame):
        raise TimeoutError(f"did not finish within {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        return fn(*args, **kwargs)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def short_build(archs, cfg, device, work: Path) -> dict:
    """2-epoch build of ``archs`` through the library path of ``rankzc bench build``."""
    from rankzc.store import Benchmark

    out = work / f"gpu_check_{cfg.precision}.db"
    t0 = time.perf_counter()
    summary = build_benchmark(out, archs, cfg, 0, device=device.type, progress=False)
    seconds = time.perf_counter() - t0
    with Benchmark.open(out, readonly=True) as b:
        labels = b.labels()["val_acc"].to_dict()
        epochs = b.epochs()
        proxies = b.proxy_records()
    errors = proxies[proxies["error"].notna()]
    return {
        "done": summary.done,
        "failed": summary.failed,
        "errors": summary.errors,
        "seconds": seconds,
        "labels": labels,
        "epoch_seconds": epochs.groupby("epoch")["seconds"].mean().to_dict(),
        "train_loss_last": epochs.groupby("epoch")["train_loss"].mean().to_dict(),
        "proxy_errors": {f"{r.arch_id}/{r.name}@{r.epoch}": r.error for r in errors.itertuples()},
        "proxy_epochs": sorted(set(proxies["epoch"])),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="tiny shapes on the CPU (the local check)")
    ap.add_argument("--device", default=None, help="default: cuda, or cpu with --cpu")
    ap.add_argument("--samples", type=int, default=None, help="synthetic samples (train+val)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None, help="steps compared and timed")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--tol", type=float, default=0.05)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument(
        "--compile-limit", type=int, default=900, help="seconds before a compile counts as failed"
    )
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--work", type=Path, default=None, help="folder of the build's stores")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    preset = "tiny" if args.cpu else "ntu60"
    device = resolve_device(args.device or ("cpu" if args.cpu else "cuda"))
    samples = args.samples or (120 if args.cpu else 600)
    steps = args.steps or (4 if args.cpu else 10)
    frames = 16 if args.cpu else 300
    classes = 5 if args.cpu else 60
    data_spec = f"synthetic:n={samples},frames={frames},classes={classes}"
    cfg = TrainConfig.for_preset(
        preset, data=data_spec, epochs=args.epochs, warmup_epochs=1, proxies="all"
    )
    t0 = time.perf_counter()
    data = load_train_data(cfg.data)
    data_seconds = time.perf_counter() - t0
    archs = [sample_architectures(1, depths=group, seed=0)[0] for group in DEPTH_GROUPS]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    report: dict = {
        "device": name or device.type,
        "torch": torch.__version__,
        "preset": preset,
        "data": cfg.data,
        "input_shape": list(data.x_train.shape[1:]),
        "train_samples": len(data.x_train),
        "batch_size": cfg.batch_size,
        "threads": torch.get_num_threads(),
        "tolerance_rel": args.tol,
        "data_seconds": data_seconds,
        "archs": [],
    }
    ok = True
    print(
        f"device {report['device']}, torch {torch.__version__}, preset {preset}, "
        f"input {tuple(data.x_train.shape[1:])}, batch {cfg.batch_size}"
    )
    print(
        f"{'depth':>5} {'loss diff':>10} {'fp32 s/s':>9} {'bf16 s/s':>9} {'compiled':>9} {'check':>6}"
    )
    for arch in archs:
        row: dict = {"depth": arch.depth, "arch": str(arch)}
        row["loss"] = loss_agreement(arch, cfg, data, device, steps)
        row["loss_ok"] = row["loss"]["max_rel_diff"] <= args.tol
        ok &= row["loss_ok"]
        for precision in ("fp32", "bf16"):
            row[precision] = throughput(arch, cfg, data, device, precision, steps, args.warmup)
        if args.no_compile:
            row["bf16_compile"] = {"skipped": True}
        else:
            try:
                row["bf16_compile"] = _with_time_limit(
                    args.compile_limit,
                    throughput,
                    arch,
                    cfg,
                    data,
                    device,
                    "bf16",
                    steps,
                    args.warmup,
                    compile_=True,
                )
            except Exception as err:  # noqa: BLE001 - a failed compile is a reported result
                row["bf16_compile"] = {
                    "failed": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}",
                    "traceback_tail": traceback.format_exc().splitlines()[-3:],
                }
        comp = row["bf16_compile"].get("samples_per_s")
        print(
            f"{arch.depth:>5} {row['loss']['max_rel_diff']:>10.4f} "
            f"{row['fp32']['samples_per_s']:>9.1f} {row['bf16']['samples_per_s']:>9.1f} "
            f"{(f'{comp:.1f}' if comp else 'failed' if 'failed' in row['bf16_compile'] else '-'):>9} "
            f"{'ok' if row['loss_ok'] else 'FAIL':>6}",
            flush=True,
        )
        report["archs"].append(row)
    if not args.no_build:
        work = args.work or Path(tempfile.mkdtemp(prefix="rankzc_gpu_check_"))
        work.mkdir(parents=True, exist_ok=True)
        report["build"] = {}
        for precision in ("fp32", "bf16"):
            run_cfg = TrainConfig.from_dict({**cfg.to_dict(), "precision": precision})
            b = short_build(archs, run_cfg, device, work)
            report["build"][precision] = b
            ok &= b["failed"] == 0
            labels = ", ".join(f"{v:.3f}" for v in b["labels"].values())
            print(
                f"build {precision}: {b['done']} done, {b['failed']} failed, {b['seconds']:.1f} s, "
                f"labels {labels}, proxy errors {len(b['proxy_errors'])}",
                flush=True,
            )
    report["ok"] = bool(ok)
    path = args.json or Path(f"benchmarks/output/gpu_check{'_cpu' if args.cpu else ''}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"{'all checks passed' if ok else 'CHECK FAILED'}; wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
