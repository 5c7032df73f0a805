"""Build the benchmark shipped as ``rankzc/data/default.db`` and report its labels.

Usage::

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/build_default.py [--work out/default.db]
        [--archs 200] [--repeat 200] [--seeds 3] [--sampling density] [--executor ray] [--workers 2]
        [--finalize-only] [--curves PNG]

Runs (resumably; run it again after an interruption) up to three passes::

    rankzc bench build --out WORK --sample 10 --sampling density --preset cpu \\
        --warmup-epochs 2 --seeds 0,1,2 --executor ray --workers 2 --quiet
    rankzc bench build --out WORK --sample 200 --sampling density --preset cpu \\
        --warmup-epochs 2 --seeds 0,1,2 --executor ray --workers 2 --quiet

(with ``--repeat R`` below ``--archs``, a pass of the first R under every seed and a
last pass of all ``--archs`` with ``--repeat-archs R``). The benchmark is every
architecture under seed 0 and the first ``--repeat`` (by default all 200) also under
seeds 1 to ``--seeds`` - 1. Three seeds by default: on the density-sampled
architectures one seed's label has an intraclass correlation of about 0.6-0.7 (the
round-8 check, ``benchmarks/output/label_recipe_r8_density.json``: 0.77 on 24
architectures; the round-9 build's first 51 pairs: 0.66, all 200: 0.689), so the mean
of two seeds has a reliability of about 0.8 (Spearman-Brown) and the mean of three about
0.87 (the shipped store: 0.871, ``benchmarks/output/default_build.json``). Seeds
that another build already trained are skipped, so raising ``--seeds`` adds only the
new seeds' runs. The first pass trains the first 10 under every seed before the rest,
so that the label noise is known early (sampling is a prefix: later passes draw the
same first architectures, with the same run keys, and skip their runs). ``--sampling
density`` draws each architecture's share of switches on uniformly
(:func:`rankzc.space.sample_architectures`): on the ``actions`` task the share of fixed
operators on is what separates architectures, and uniform draws all have about half on
(the round-8 check on 60 uniform architectures: seed-to-seed Spearman 0.22,
``benchmarks/output/default_r8_check.json``). Then it copies the store with ``VACUUM
INTO`` (one compact file, no ``-wal``/``-shm``) to ``rankzc/data/default.db`` and prints
the spread of the labels, the seed noise (seeds 0 and 1), the reliability of the mean
label that ``rankzc evaluate`` prints, the build's wall time (first run started to last
run finished, from the store) and the file size, as a table and JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from rankzc.store import Benchmark, default_benchmark_path


def build_commands(
    work: Path,
    archs: int,
    executor: str,
    workers: int,
    repeat: int = 200,
    sampling: str = "density",
    seeds: int = 3,
) -> list[list[str]]:
    """The passes: the first 10, then ``repeat`` architectures under every seed, then all
    (a pass that another already covers is left out)."""
    firsts = [n for n in dict.fromkeys((min(10, repeat), repeat)) if n]
    cmds = [build_command(work, n, executor, workers, None, sampling, seeds) for n in firsts]
    if repeat < archs:
        cmds.append(build_command(work, archs, executor, workers, repeat, sampling, seeds))
    return cmds


def build_command(
    work: Path,
    archs: int,
    executor: str,
    workers: int,
    repeat: int | None = 200,
    sampling: str = "density",
    seeds: int = 3,
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "rankzc.cli",
        "bench",
        "build",
        "--out",
        str(work),
        "--sample",
        str(archs),
        "--sampling",
        sampling,
        "--preset",
        "cpu",
        "--warmup-epochs",
        "2",
        "--seeds",
        ",".join(str(s) for s in range(seeds)),
        "--executor",
        executor,
        "--quiet",
    ]
    if repeat is not None:
        cmd += ["--repeat-archs", str(repeat)]
    if executor == "ray":
        cmd += ["--workers", str(workers)]
    return cmd


def check_finished(work: Path, expected_runs: int) -> None:
    """Refuse to ship a store with unfinished or failed runs, or fewer runs than planned."""
    with Benchmark.open(work, readonly=True) as b:
        counts = b.counts()
    if counts["done"] != counts["runs"] or counts["runs"] < expected_runs:
        sys.exit(
            f"Error: {work}: {counts['done']} of {counts['runs']} runs done, "
            f"{counts['failed']} failed, {expected_runs} planned; not copied "
            "(resume the build, or --allow-partial)"
        )


def finalize(work: Path, target: Path) -> dict:
    """Copy ``work`` compacted into ``target`` (atomically) and describe it."""
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(f"file:{work.resolve()}?mode=ro", uri=True)
    try:
        conn.execute("VACUUM INTO ?", (str(tmp),))
    finally:
        conn.close()
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")  # a single file, no -wal/-shm
    finally:
        conn.close()
    os.replace(tmp, target)
    from rankzc.analysis import label_noise

    with Benchmark.open(target, readonly=True) as b:
        labels = b.labels()
        runs = b.runs()
        counts = b.counts()
        epochs = b.proxy_epochs()
        repeats = label_noise(b)["repeats"] or {}  # what `rankzc evaluate` prints
    start = dt.datetime.fromisoformat(runs["started_at"].min())
    end = dt.datetime.fromisoformat(runs["finished_at"].dropna().max())
    acc = labels["val_acc"]
    noise = seed_noise(runs)
    return {
        "path": str(target),
        "bytes": target.stat().st_size,
        "counts": counts,
        "proxy_epochs": epochs,
        "depths": {int(k): int(v) for k, v in labels["depth"].value_counts().sort_index().items()},
        "val_acc": {
            "min": float(acc.min()),
            "max": float(acc.max()),
            "mean": float(acc.mean()),
            "std": float(acc.std()),
            "spread_points": float(100 * (acc.max() - acc.min())),
        },
        "by_depth_mean": {
            int(k): float(v) for k, v in labels.groupby("depth")["val_acc"].mean().items()
        },
        "repeated_archs": noise["n"],
        "seed_to_seed_spearman": noise.get("spearman"),
        "seed_noise": noise,
        "seed_noise_by_depth": {
            int(d): seed_noise(runs[runs["arch_id"].map(labels["depth"]) == d])
            for d in sorted(labels["depth"].unique())
        },
        "seed_noise_below_deepest": seed_noise(
            runs[runs["arch_id"].map(labels["depth"]) < labels["depth"].max()]
        ),
        "run_val_acc_min": float(runs["val_acc"].min()),
        "runs_per_architecture": float(labels["n_runs"].mean()),
        "reliability": repeats.get("reliability"),
        "reliability_ci95": repeats.get("reliability_ci95"),
        "build_wall_seconds": (end - start).total_seconds(),
        "train_seconds_mean": float(labels["train_seconds"].mean()),
        "config": runs["config"].iloc[0],
    }


def seed_noise(runs) -> dict:
    """Seed-to-seed agreement (:func:`rankzc.stats.seed_agreement`) of the architectures
    trained under seeds 0 and 1, from a store's runs (one column per seed)."""
    from rankzc.stats import seed_agreement

    pairs = runs.pivot_table(index="arch_id", columns="seed", values="val_acc")
    if pairs.shape[1] < 2:
        return {"n": 0}
    pairs = pairs.iloc[:, :2].dropna()
    return seed_agreement(pairs.iloc[:, 0], pairs.iloc[:, 1])


def plot_curves(work: Path, png: Path) -> None:
    """One panel per depth: every run's training loss per epoch (seed 0 solid, seed 1
    dashed, seed 2 dotted), titled with the depth's labels; a last panel: seed 0 against
    seed 1 labels of the architectures trained under both (empty with one seed)."""
    from rankzc.plotting import integer_ticks, line_styles, pyplot

    plt = pyplot()
    with Benchmark.open(work, readonly=True) as b:
        runs = b.runs()
        epochs = b.epochs()
        depth = b.architectures()["depth"]
    runs = runs[runs["status"] == "done"].assign(depth=lambda r: r["arch_id"].map(depth))
    depths = sorted(runs["depth"].unique())
    fig, axes = plt.subplots(1, len(depths) + 1, figsize=(4 * (len(depths) + 1), 3.6))
    for ax, d in zip(axes, depths, strict=False):
        sub = runs[runs["depth"] == d]
        for _, run in sub.iterrows():
            e = epochs[epochs["run_id"] == run["run_id"]].sort_values("epoch")
            ax.plot(
                e["epoch"] + 1,
                e["train_loss"],
                lw=0.6,
                alpha=0.5,
                color=("C0", "C3", "C2")[min(int(run["seed"]), 2)],
                ls=("-", "--", ":")[min(int(run["seed"]), 2)],
            )
        acc = 100 * sub["val_acc"]
        ax.set_title(f"depth {d}: {len(sub)} runs, label {acc.mean():.1f} ± {acc.std():.1f}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        integer_ticks(ax.xaxis)
    ax = axes[-1]
    pairs = runs.pivot_table(index=["arch_id", "depth"], columns="seed", values="val_acc")
    a, b = ([*pairs.columns[:2], None, None])[:2]  # seeds 0 and 1 (none with one seed)
    pairs = pairs[[c for c in (a, b) if c is not None]].dropna().reset_index()
    for style, d in zip(line_styles(len(depths)), depths, strict=True):
        if b is None:
            break
        sub = pairs[pairs["depth"] == d]
        ax.scatter(
            100 * sub[a],
            100 * sub[b],
            label=f"depth {d}",
            color=style["color"],
            marker=style["marker"],
            s=18,
        )
    lo, hi = 100 * runs["val_acc"].min() - 1, 100 * runs["val_acc"].max() + 1
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
    noise = seed_noise(runs)
    ax.set_title(f"seed 0 vs 1 ({noise['n']} archs, rho {noise.get('spearman', float('nan')):.2f})")
    ax.set_xlabel("label, seed 0 (%)")
    ax.set_ylabel("label, seed 1 (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main() -> None:
    from rankzc.space import SAMPLINGS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("out/default.db"))
    ap.add_argument("--archs", type=int, default=200)
    ap.add_argument(
        "--repeat", type=int, default=200, help="architectures under every seed (the rest: seed 0)"
    )
    ap.add_argument("--seeds", type=int, default=3, help="seeds of the repeated architectures")
    ap.add_argument("--sampling", default="density", choices=list(SAMPLINGS))
    ap.add_argument("--executor", default="ray", choices=["local", "ray"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--target", type=Path, default=default_benchmark_path())
    ap.add_argument("--finalize-only", action="store_true")
    ap.add_argument("--allow-partial", action="store_true", help="copy an unfinished build")
    ap.add_argument("--retry-failed", action="store_true", help="train failed runs again")
    ap.add_argument(
        "--curves", type=Path, default=None, help="also draw the runs' curves into this PNG"
    )
    args = ap.parse_args()
    if not args.finalize_only:
        cmds = build_commands(
            args.work,
            args.archs,
            args.executor,
            args.workers,
            args.repeat,
            args.sampling,
            args.seeds,
        )
        # Ray starts its workers 15 nice levels below the driver; on a shared machine
        # that starves them, so they keep the driver's priority (set with nice -n).
        env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_worker_niceness": "0"}
        for cmd in cmds:
            cmd += ["--retry-failed"] if args.retry_failed else []
            print("$", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, env=env)
    if not args.allow_partial:
        check_finished(args.work, args.archs + args.repeat * (args.seeds - 1))
    info = finalize(args.work, args.target)
    if args.curves:
        plot_curves(args.target, args.curves)
    v = info["val_acc"]
    print(f"{'file':<22}{info['path']} ({info['bytes'] / 1e6:.2f} MB)")
    print(f"{'runs':<22}{info['counts']['done']} done, {info['counts']['failed']} failed")
    print(f"{'depths':<22}{info['depths']}")
    print(
        f"{'val_acc':<22}min {v['min']:.3f} max {v['max']:.3f} mean {v['mean']:.3f} "
        f"std {v['std']:.3f} ({v['spread_points']:.1f} points)"
    )
    print(f"{'proxy epochs':<22}{info['proxy_epochs']}")
    print(
        f"{'seeds 0 and 1':<22}{info['repeated_archs']} architectures, seed-to-seed Spearman "
        f"{info['seed_to_seed_spearman']:.3f}"
    )
    if info["reliability"] is not None:
        lo, hi = info["reliability_ci95"]
        print(
            f"{'reliability':<22}{info['reliability']:.3f} [{lo:.3f}, {hi:.3f}] of the mean "
            f"label over {info['runs_per_architecture']:.2f} runs"
        )
    sn = info["seed_noise"]
    if "icc" in sn:
        print(
            f"{'seed noise':<22}seed sd {sn['seed_sd_points']:.2f} points, between "
            f"architectures {sn['between_sd_points']:.2f}, ICC {sn['icc']:.3f}"
        )
    print(f"{'build wall time':<22}{info['build_wall_seconds'] / 60:.1f} min")
    json.dump(info, sys.stdout, indent=2, default=str)
    print()


if __name__ == "__main__":
    main()
