"""End to end on real labels: fit on the study, recompute held-out proxies from scratch.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/study_end_to_end.py \\
        --study ../shared/data/thesis-gcn-nas/architectures [--holdout 60] [--seed 0] \\
        [--proxies synflow,zen,l2_norm,params,flops] [--features all] [--model stratified] \\
        [--cache out/e2e_scores.jsonl] [--out benchmarks/output/study_end_to_end.json]

1. Hold out ``--holdout`` of the study's architectures, stratified by depth (the same
   share of every depth, drawn with ``--seed``), and import the other ones into a
   temporary store (``rankzc import thesis`` on links to their files), which records
   the study's proxy settings.
2. Fit ``--model`` on that store with ``--features`` and ``--proxies``, as
   ``rankzc fit`` does, and save the ranker file (it records the settings).
3. Score the held-out architectures three ways and report the Spearman rho of each
   with their true accuracy (95% bootstrap interval over architectures):

   (a) **recomputed**: the ranker's proxies computed from scratch by rankzc under the
       recorded settings (no stored score is read: ``FittedRanker.score``);
   (b) **stored**: the ranker applied to the study's recorded scores of the same
       architectures;
   (c) **depth**: the number of blocks alone.

   It also prints each proxy's Spearman between recomputed and stored values.

Recomputed scores are cached per architecture in ``--cache`` (JSON lines), so an
interrupted run resumes; ``--limit N`` scores at most N more architectures per call.
Prints a table and writes ``--out`` (JSON).

``--stored-splits K`` instead repeats steps 1-3 (b) and (c) for hold-out seeds
``0 .. K-1`` (no recomputation): how much one split of 60 says, and how often the
ranker on stored scores beats depth. ``--seeds 0-9`` repeats all of steps 1-3,
recomputation included, for those hold-out seeds (the cache serves every seed; two
processes with different seeds may share it) and writes the per-seed figures and their
means to ``<out>_recomputed_splits.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _split(files: list[Path], holdout: int, seed: int) -> tuple[list[Path], list[Path]]:
    """Held-out files stratified by depth (largest remainders), and the rest."""
    from rankzc.space import Architecture

    by_depth: dict[int, list[Path]] = {}
    for f in files:
        record = next(iter(json.loads(f.read_text()).values()))
        by_depth.setdefault(Architecture.from_weights(record["weights"]).depth, []).append(f)
    n = len(files)
    quota = {d: holdout * len(v) / n for d, v in by_depth.items()}
    take = {d: int(q) for d, q in quota.items()}
    for d in sorted(quota, key=lambda d: quota[d] - take[d], reverse=True)[
        : holdout - sum(take.values())
    ]:
        take[d] += 1
    rng = np.random.default_rng(seed)
    held: list[Path] = []
    for d in sorted(by_depth):
        group = sorted(by_depth[d])
        idx = rng.choice(len(group), size=take[d], replace=False)
        held += [group[i] for i in sorted(idx)]
    held_set = set(held)
    return held, [f for f in files if f not in held_set]


def _spearman_ci(x, y, seed: int = 0, n_boot: int = 2000) -> tuple[float, float, float]:
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    rho = float(spearmanr(x, y)[0])
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, len(x), len(x))
        r = spearmanr(x[i], y[i])[0]
        if np.isfinite(r):
            boots.append(r)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return rho, float(lo), float(hi)


def _fit_on(train: list[Path], args: argparse.Namespace, proxies: list[str]):
    """Import ``train`` into a temporary store, fit, save and load the ranker file."""
    from rankzc.importers import import_thesis
    from rankzc.ranking.io import fit_ranker, load_ranker, save_ranker
    from rankzc.store import Benchmark

    with tempfile.TemporaryDirectory() as tmp:
        links = Path(tmp) / "train"
        links.mkdir()
        for f in train:
            (links / f.name).symlink_to(f.resolve())
        store = Path(tmp) / "train.db"
        import_thesis(links, store)
        with Benchmark.open(store, readonly=True) as bench:
            fitted = fit_ranker(bench, args.model, features=args.features, proxies=proxies)
        return load_ranker(save_ranker(fitted, Path(tmp) / "ranker.rzc"))


def _held_table(held: list[Path], proxies: list[str]):
    """Truth, depth and the study's stored scores of the held-out files."""
    import pandas as pd

    from rankzc.space import Architecture

    rows = []
    for f in held:
        record = next(iter(json.loads(f.read_text()).values()))
        arch = Architecture.from_weights(record["weights"])
        stored = {k: v["score"] for k, v in record["zero_cost_scores"].items()}
        rows.append(
            {"file": f.name, "arch": str(arch), "depth": arch.depth, "acc": record["val_acc"]}
            | {p: stored.get(p) for p in proxies}
        )
    return pd.DataFrame(rows).set_index("file")


def stored_splits(args: argparse.Namespace) -> None:
    files = sorted(Path(args.study).glob("*.json"))
    proxies = [p for p in args.proxies.split(",") if p]
    rows = []
    for seed in range(args.stored_splits):
        held, train = _split(files, args.holdout, seed)
        ranker = _fit_on(train, args, proxies)
        table = _held_table(held, proxies)
        acc = table["acc"].to_numpy(float)
        from scipy.stats import spearmanr

        r_stored = float(spearmanr(ranker.score_table(table), acc)[0])
        r_depth = float(spearmanr(table["depth"], acc)[0])
        rows.append({"seed": seed, "stored": r_stored, "depth": r_depth})
        print(f"split {seed}: stored {r_stored:.3f}, depth {r_depth:.3f}", flush=True)
    d = np.array([r["stored"] - r["depth"] for r in rows])
    summary = {
        "benchmark": "study_end_to_end_stored_splits",
        "command": "python benchmarks/study_end_to_end.py " + " ".join(sys.argv[1:]),
        "splits": rows,
        "stored_mean": float(np.mean([r["stored"] for r in rows])),
        "depth_mean": float(np.mean([r["depth"] for r in rows])),
        "stored_minus_depth_mean": float(d.mean()),
        "stored_minus_depth_sd": float(d.std(ddof=1)) if len(d) > 1 else None,
        "stored_above_depth": int((d > 0).sum()),
    }
    print(
        f"{len(rows)} splits of {args.holdout}: stored {summary['stored_mean']:.3f}, depth "
        f"{summary['depth_mean']:.3f}, difference {d.mean():+.3f} (sd {d.std(ddof=1):.3f}); "
        f"stored above depth in {summary['stored_above_depth']} of {len(rows)}"
    )
    out = args.out.with_name(args.out.stem + "_splits.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", required=True, help="the study's architectures directory")
    ap.add_argument("--holdout", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="stratified")
    ap.add_argument("--features", default="all")
    ap.add_argument("--proxies", default="synflow,zen,l2_norm,params,flops")
    ap.add_argument("--cache", type=Path, default=Path("out/e2e_scores.jsonl"))
    ap.add_argument("--limit", type=int, default=None, help="score at most N more, then stop")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/output/study_end_to_end.json"))
    ap.add_argument("--stored-splits", type=int, default=0, help="K hold-out seeds, stored only")
    ap.add_argument(
        "--seeds", default="", help="hold-out seeds, e.g. 0-9: every step, recomputation included"
    )
    args = ap.parse_args()
    if args.stored_splits:
        stored_splits(args)
        return

    files = sorted(Path(args.study).glob("*.json"))
    if not files:
        sys.exit(f"{args.study}: no study files")
    proxies = [p for p in args.proxies.split(",") if p]
    if args.seeds:
        recomputed_splits(args, files, proxies)
        return
    report = _recomputed_split(args, files, proxies, args.seed)
    if report is None:
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


def _seed_list(text: str) -> list[int]:
    """``"0-9"`` or ``"1,3,5"`` (or both: ``"0-2,7"``)."""
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def _read_cache(path: Path, settings) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut by an interrupted writer
                    continue
                if row.get("settings") == settings:
                    done[row["file"]] = row
    return done


def _recomputed_split(
    args: argparse.Namespace, files: list[Path], proxies: list[str], seed: int
) -> dict | None:
    """Steps 1-3 for hold-out ``seed``: the report, or None while architectures of the
    hold-out are still to be scored (``--limit``)."""
    from rankzc.space import Architecture

    held, train = _split(files, args.holdout, seed)
    t0 = time.perf_counter()
    ranker = _fit_on(train, args, proxies)
    fit_seconds = time.perf_counter() - t0
    table = _held_table(held, proxies)  # truth and the study's stored scores

    # recomputed: from scratch, cached per architecture (shared by every seed and by
    # processes running beside each other: each appends whole lines)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    done = _read_cache(args.cache, ranker.settings)
    todo = [f for f in table.index if f not in done]
    if args.limit is not None:
        todo = todo[: args.limit]
    for i, name in enumerate(todo):
        t = time.perf_counter()
        arch = Architecture.parse(table.loc[name, "arch"])
        scored = ranker.score([arch], quiet=True)
        row = {
            "file": name,
            "settings": ranker.settings,
            "seconds": time.perf_counter() - t,
            "proxies": {p: float(scored.iloc[0][p]) for p in ranker.proxies},
        }
        with args.cache.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        done[name] = row
        print(
            f"seed {seed}: {i + 1}/{len(todo)} depth {arch.depth}: {row['seconds']:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    ready = [f for f in table.index if f in done]
    if len(ready) < len(table):
        print(f"{len(ready)} of {len(table)} held-out architectures scored; run again")
        return None

    recomputed = table.copy()
    for p in ranker.proxies:
        recomputed[p] = [done[f]["proxies"][p] for f in table.index]
    s_recomputed = ranker.score_table(recomputed)
    s_stored = ranker.score_table(table)
    acc = table["acc"].to_numpy(float)
    results = {
        "recomputed": _spearman_ci(s_recomputed, acc),
        "stored": _spearman_ci(s_stored, acc),
        "depth": _spearman_ci(table["depth"], acc),
    }
    from scipy.stats import spearmanr

    agreement = {
        p: float(spearmanr(recomputed[p].astype(float), table[p].astype(float))[0])
        for p in ranker.proxies
    }
    seconds = [done[f]["seconds"] for f in table.index]
    per_depth = {
        int(d): float(np.mean([done[f]["seconds"] for f in table.index[table["depth"] == d]]))
        for d in sorted(table["depth"].unique())
    }
    print(
        f"{args.model} ({args.features}, proxies {','.join(ranker.proxies)}) fitted on "
        f"{len(train)} study architectures, {len(held)} held out, seed {seed} "
        f"({', '.join(f'{(table.depth == d).sum()} at depth {d}' for d in sorted(per_depth))})"
    )
    print(f"{'held-out scores':<24} {'Spearman':>8}  95% CI")
    for name, (rho, lo, hi) in results.items():
        print(f"{name:<24} {rho:>8.3f}  [{lo:.3f}, {hi:.3f}]")
    print("recomputed vs stored proxy values (Spearman): " + ", ".join(
        f"{p} {r:.3f}" for p, r in agreement.items()
    ))  # fmt: skip
    print(
        "seconds per architecture (recomputing, one thread): "
        + ", ".join(f"depth {d}: {s:.1f}" for d, s in per_depth.items())
        + f"; mean {np.mean(seconds):.1f}",
        flush=True,
    )
    return {
        "benchmark": "study_end_to_end",
        "command": "python benchmarks/study_end_to_end.py " + " ".join(sys.argv[1:]),
        "model": args.model,
        "features": args.features,
        "proxies": ranker.proxies,
        "n_train": len(train),
        "n_holdout": len(held),
        "holdout_seed": seed,
        "spearman": {k: {"rho": v[0], "ci95": [v[1], v[2]]} for k, v in results.items()},
        "proxy_agreement": agreement,
        "seconds_per_arch_by_depth": per_depth,
        "fit_seconds": fit_seconds,
    }


def recomputed_splits(args: argparse.Namespace, files: list[Path], proxies: list[str]) -> None:
    """Steps 1-3, recomputation included, for every seed of ``--seeds``; a summary."""
    rows = []
    for seed in _seed_list(args.seeds):
        report = _recomputed_split(args, files, proxies, seed)
        if report is None:
            return
        sp = report["spearman"]
        rows.append({k: sp[k]["rho"] for k in ("recomputed", "stored", "depth")} | {"seed": seed})
    diff = np.array([r["recomputed"] - r["depth"] for r in rows])
    gap = np.array([r["recomputed"] - r["stored"] for r in rows])
    summary = {
        "benchmark": "study_end_to_end_recomputed_splits",
        "command": "python benchmarks/study_end_to_end.py " + " ".join(sys.argv[1:]),
        "model": args.model,
        "features": args.features,
        "proxies": proxies,
        "holdout": args.holdout,
        "splits": rows,
        "recomputed_mean": float(np.mean([r["recomputed"] for r in rows])),
        "stored_mean": float(np.mean([r["stored"] for r in rows])),
        "depth_mean": float(np.mean([r["depth"] for r in rows])),
        "recomputed_minus_depth_mean": float(diff.mean()),
        "recomputed_minus_depth_sd": float(diff.std(ddof=1)) if len(diff) > 1 else None,
        "recomputed_above_depth": int((diff > 0).sum()),
        "recomputed_minus_stored_max_abs": float(np.abs(gap).max()),
    }
    print(
        f"{len(rows)} hold-outs of {args.holdout}, proxies recomputed: recomputed "
        f"{summary['recomputed_mean']:.3f}, stored {summary['stored_mean']:.3f}, depth "
        f"{summary['depth_mean']:.3f}; recomputed minus depth {diff.mean():+.3f}"
        + (f" (sd {diff.std(ddof=1):.3f})" if len(diff) > 1 else "")
        + f", above depth in {summary['recomputed_above_depth']} of {len(rows)}; "
        f"|recomputed - stored| at most {summary['recomputed_minus_stored_max_abs']:.3f}"
    )
    out = args.out.with_name(args.out.stem + "_recomputed_splits.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
