"""Learning curves and label noise of a training recipe (how the ``cpu`` recipe was chosen).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/label_recipe.py [--per-depth 2] [--epochs 8]
        [--long 2] [--train-samples 400] [--data synthetic:...] [--batch 16]
        [--jobs 2] [--out benchmarks/output/label_recipe]

For ``--per-depth`` architectures of every depth (sampled with seed 0), trains the
recipe (``--epochs``, milestones scaled as in :class:`rankzc.training.TrainConfig`) and,
with ``--long F``, the same recipe with ``F`` times the epochs, and records the
validation accuracy after every epoch. Writes ``OUT.json`` (curves, times) and
``OUT.png`` (one panel per depth: each architecture's curve under the recipe, solid,
and the long run, dashed) and prints a table:

* ``levelled``: per depth, the mean change of accuracy over the recipe's last two
  epochs, and the mean difference between the long run's label and the recipe's
  label (both in points; small means more training would not change the label);
* ``noise``: the binomial standard deviation :math:`\\sqrt{p(1-p)/N_{val}}` of a label
  (at the mean label) next to the standard deviation of the labels across the
  architectures; the recipe's criterion is noise <= spread / 4;
* time per architecture (training + validation, one thread, no proxies).

With ``--seeds 0,1`` every architecture is also trained under the second seed and the
table adds the seed-to-seed Spearman, the intraclass correlation ICC(1) of the two labels,
and the seed and between-architecture standard deviations (points).

The pre-build check of the shipped benchmark's recipe (round 8: the ``cpu`` recipe with
its 2-epoch learning-rate warm-up; 24 architectures, 6 per depth with the two extremes,
under two seeds) is ``benchmarks/output/label_recipe_r8.*``::

    OMP_NUM_THREADS=1 python benchmarks/label_recipe.py --per-depth 6 --extremes \
        --seeds 0,1 --long 0 --val-every 4 --out benchmarks/output/label_recipe_r8
    # the same with --sampling density --out benchmarks/output/label_recipe_r8_density

The committed ``benchmarks/output/label_recipe_cpu.*`` (the ``cpu`` recipe before its
warm-up; ``--lr-warmup 0`` reproduces it),
``label_recipe_400x32.json`` and ``label_recipe_1600x8.json`` (the two rejected
alternatives at about the same cost) came from::

    D=synthetic:n=8000,frames=8,classes=10,difficulty=0.3,persons=1
    python benchmarks/label_recipe.py --jobs 1 --per-depth 2 --width 0.125 \
        --train-samples 800 --epochs 16 --batch 32 --lr 0.08 --val-every 4 \
        --seeds 0,1 --long 0 --data $D --out benchmarks/output/label_recipe_cpu
    python benchmarks/label_recipe.py --jobs 1 --per-depth 2 --width 0.125 \
        --train-samples 400 --epochs 32 --batch 16 --lr 0.04 --val-every 8 \
        --seeds 0,1 --long 0 --data $D --out benchmarks/output/label_recipe_400x32
    python benchmarks/label_recipe.py --per-depth 2 --width 0.125 --train-samples 1600 \
        --epochs 8 --batch 32 --lr 0.08 --seeds 0,1 --long 0 --data $D \
        --out benchmarks/output/label_recipe_1600x8

The older ``label_recipe_lr0.04.*`` (the previous 12-epoch, 400-sample, width-1/4
recipe) and ``label_recipe_lr0.1.*`` (the study's learning rate) came from::

    python benchmarks/label_recipe.py --per-depth 1 --epochs 6 --train-samples 400 \
        --width 0.25 --lr 0.04 --data synthetic:n=3200,frames=8,classes=10,difficulty=0.3,persons=1
    # the same with --lr 0.1

The recipe is chosen by these two criteria only (levelled off, noise small), never
by the correlation the proxies reach on it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def _train(job: tuple) -> dict:
    import torch

    torch.set_num_threads(1)
    from rankzc.space import Architecture
    from rankzc.training import TrainConfig, Trainer, load_train_data

    enc, cfg_dict, seed = job
    cfg = TrainConfig.from_dict(cfg_dict)
    data = load_train_data(cfg.data)
    curve: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    trainer = Trainer(Architecture.parse(enc), cfg, seed, data, device="cpu")
    # the curve: (epoch, accuracy) after every validated epoch
    trainer.run(
        lambda rec: (
            curve.append((rec.epoch + 1, rec.val_acc))
            if rec.epoch >= 0 and rec.val_acc is not None
            else None
        )
    )
    return {
        "encoding": enc,
        "epochs": cfg.epochs,
        "curve": curve,
        "seconds": time.perf_counter() - t0,
        "n_val": len(data.y_val),
        "n_train": cfg.train_samples or len(data.y_train),
    }


def extremes(depth: int) -> list:
    """The space's two extremes at ``depth``: every switch on, and the fewest switches on
    (no fixed operator, one dynamic module, ``M_S``, in every block)."""
    from rankzc.space import OPS, Architecture

    every = "-".join(["1" * len(OPS)] * depth)
    fewest = "-".join(["".join("1" if op == "M_S" else "0" for op in OPS)] * depth)
    return [Architecture.parse(every), Architecture.parse(fewest)]


def main() -> None:
    from rankzc.space import SAMPLINGS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-depth", type=int, default=2)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    ap.add_argument("--long", type=float, default=2.0, help="factor of the long run (0: none)")
    ap.add_argument("--train-samples", type=int, default=None, help="default: the preset's")
    ap.add_argument("--data", default="synthetic")
    ap.add_argument("--batch", type=int, default=None, help="default: the preset's")
    ap.add_argument("--lr", type=float, default=None, help="default: the preset's")
    ap.add_argument("--seed", type=int, default=0, help="seed of the architecture sample")
    ap.add_argument(
        "--seeds",
        default="0",
        help="training seeds, e.g. 0,1: with two, report the seed-to-seed Spearman and "
        "the intraclass correlation of the labels (the long run uses the first seed)",
    )
    ap.add_argument("--val-every", type=int, default=1, help="points of the curve (epochs)")
    ap.add_argument("--width", type=float, default=None, help="model width (default: preset's)")
    ap.add_argument(
        "--lr-warmup",
        type=int,
        default=None,
        help="epochs of learning-rate warm-up (default: the preset's)",
    )
    ap.add_argument(
        "--sampling",
        default="uniform",
        choices=list(SAMPLINGS),
        help="how the architectures are sampled (rankzc.space.sample_architectures)",
    )
    ap.add_argument(
        "--extremes",
        action="store_true",
        help="per depth, two of --per-depth are the space's extremes: every switch on, and "
        "the fewest (one dynamic module, M_S, in every block)",
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/output/label_recipe"))
    args = ap.parse_args()

    from rankzc.space import DEPTHS, sample_architectures
    from rankzc.training import TrainConfig

    # a curve: validate after every --val-every epochs (training is unchanged)
    changes = {"val_every": args.val_every}
    if args.batch:
        changes["batch_size"] = args.batch
    if args.train_samples:
        changes["train_samples"] = args.train_samples
    if args.lr:
        changes["lr"] = args.lr
    if args.width:
        changes["model"] = {"width": args.width}
    if args.lr_warmup is not None:
        changes["lr_warmup_epochs"] = args.lr_warmup
    seeds = [int(x) for x in args.seeds.split(",")]
    base = TrainConfig.for_preset(
        args.preset, data=args.data, epochs=args.epochs, proxies="none", **changes
    )
    archs = []
    for depth in DEPTHS:
        ends = extremes(depth) if args.extremes else []
        archs += ends + sample_architectures(
            args.per_depth - len(ends),
            seed=args.seed,
            depths=[depth],
            exclude=ends,
            sampling=args.sampling,
        )
    configs = {"recipe": base}
    if args.long:
        long_epochs = int(round(base.epochs * args.long))
        configs["long"] = TrainConfig.for_preset(
            args.preset,
            data=args.data,
            epochs=long_epochs,
            proxies="none",
            **{
                **changes,
                "train_samples": base.train_samples,
                "batch_size": base.batch_size,
                "lr": base.lr,
                "model": base.model,
            },
        )
    jobs = [(str(a), base.to_dict(), s) for s in seeds[1:] for a in archs]
    jobs += [(str(a), cfg.to_dict(), seeds[0]) for cfg in configs.values() for a in archs]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as ex:
        results = list(ex.map(_train, jobs))
    wall = time.perf_counter() - t0
    by_run: dict[str, list[dict]] = {name: [] for name in configs}
    other_seeds: dict[int, dict[str, float]] = {s: {} for s in seeds[1:]}
    for (enc, cfg_dict, seed), res in zip(jobs, results, strict=True):
        res["depth"] = next(a.depth for a in archs if str(a) == enc)
        res["seed"] = seed
        if seed != seeds[0]:
            other_seeds[seed][enc] = res["curve"][-1][1]
            continue
        name = next(n for n, c in configs.items() if c.to_dict() == cfg_dict)
        by_run[name].append(res)

    rec = by_run["recipe"]
    labels = np.array([r["curve"][-1][1] for r in rec])
    n_val = rec[0]["n_val"]
    p = float(labels.mean())
    binomial = math.sqrt(p * (1 - p) / n_val)
    summary: dict = {
        "config": base.to_dict(),
        "n_train": rec[0]["n_train"],
        "n_val": n_val,
        "label_mean": p,
        "label_std": float(labels.std(ddof=1)),
        "binomial_sd": binomial,
        "noise_over_spread": binomial / float(labels.std(ddof=1)),
        "seconds_per_arch": float(np.mean([r["seconds"] for r in rec])),
        "wall_seconds": wall,
        "depths": {},
    }
    print(
        f"recipe: {base.epochs} epochs, batch {base.batch_size}, {summary['n_train']} train / "
        f"{n_val} val samples, data {base.data}"
    )
    print(f"{'depth':>5} {'label':>7} {'last2':>7} {'long-rec':>9} {'s/arch':>7}")
    for depth in DEPTHS:
        rs = [r for r in rec if r["depth"] == depth]
        last2 = [100 * (r["curve"][-1][1] - r["curve"][-2][1]) for r in rs if len(r["curve"]) > 1]
        row = {
            "label": float(np.mean([r["curve"][-1][1] for r in rs])),
            "last_two_epochs_points": float(np.mean(last2)) if last2 else None,
            "seconds": float(np.mean([r["seconds"] for r in rs])),
        }
        if "long" in by_run:
            ls = [r for r in by_run["long"] if r["depth"] == depth]
            row["long_minus_recipe_points"] = float(
                np.mean(
                    [
                        100 * (a["curve"][-1][1] - b["curve"][-1][1])
                        for a, b in zip(ls, rs, strict=True)
                    ]
                )
            )
        summary["depths"][depth] = row
        print(
            f"{depth:>5} {row['label']:>7.3f} {row['last_two_epochs_points'] or 0:>+7.2f} "
            f"{row.get('long_minus_recipe_points', float('nan')):>+9.2f} {row['seconds']:>7.1f}"
        )
    print(
        f"labels: mean {p:.3f}, sd {summary['label_std']:.3f} over {len(labels)} architectures; "
        f"binomial sd {binomial:.4f} = {summary['noise_over_spread']:.2f} of the spread "
        f"(criterion <= 0.25); {summary['seconds_per_arch']:.1f} s per architecture"
    )
    if len(seeds) > 1:
        summary["seeds"] = _seed_agreement(rec, other_seeds[seeds[1]])
        print(
            "seeds {}/{}: Spearman {spearman:.3f}, intraclass correlation {icc:.3f}, "
            "seed sd {seed_sd_points:.2f} points, between-architecture sd "
            "{between_sd_points:.2f} points".format(seeds[0], seeds[1], **summary["seeds"])
        )
        summary["runs_other_seeds"] = {str(k): v for k, v in other_seeds.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary["runs"] = by_run
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    _plot(by_run, base, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")


def _seed_agreement(rec: list[dict], other: dict[str, float]) -> dict:
    """Seed-to-seed agreement of the labels (:func:`rankzc.stats.seed_agreement`)."""
    from rankzc.stats import seed_agreement

    a = [r["curve"][-1][1] for r in rec]
    return seed_agreement(a, [other[r["encoding"]] for r in rec])


def _plot(by_run: dict, base, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rankzc.space import DEPTHS

    fig, axes = plt.subplots(1, len(DEPTHS), figsize=(3.2 * len(DEPTHS), 3), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, depth in zip(axes, DEPTHS, strict=True):
        encs = sorted({r["encoding"] for r in by_run["recipe"] if r["depth"] == depth})
        for name, style in (("recipe", "-"), ("long", "--")):
            for r in by_run.get(name, []):
                if r["depth"] != depth:
                    continue
                c = colours[encs.index(r["encoding"]) % len(colours)]
                ep, acc = zip(*r["curve"], strict=True)
                ax.plot(ep, acc, style, color=c, lw=1.2)
        ax.axvline(base.epochs, color="grey", lw=0.6)
        ax.set_title(f"depth {depth}")
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("validation accuracy")
    title = f"{base.preset} recipe ({base.epochs} epochs"
    title += ", solid) vs longer (dashed)" if by_run.get("long") else ")"
    fig.suptitle(f"{title}; one colour per architecture", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    main()
