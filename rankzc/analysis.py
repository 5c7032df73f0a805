"""Correlation analysis of a benchmark: single proxies, baselines, depths, warm-up.

Every statistic comes from :mod:`rankzc.stats` (one NaN policy: pairs where the proxy
or the label is not finite are dropped). Correlations are *signed*: a proxy that ranks
in the wrong direction has a negative rho. Bootstrap 95% intervals resample
architectures with replacement, on ranks, with a bounded number of rows
(:func:`rankzc.stats.bootstrap_spearman`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from rankzc.atomicfile import save_figure
from rankzc.errors import RankzcError
from rankzc.stats import (
    bootstrap_spearman,
    bootstrap_spearman_ci,
    rank_correlations,
    spearman,
    spearman_brown,
)
from rankzc.store import Benchmark

__all__ = [
    "BASELINE_PROXIES",
    "spearman",
    "rank_correlations",
    "bootstrap_spearman_ci",
    "proxy_correlations",
    "label_noise",
    "validation_size",
    "check_evaluable",
    "single_proxy_report",
    "warmup_report",
    "plot_warmup",
    "warmup_figure",
    "plot_proxy_correlations",
    "proxy_correlations_figure",
]

#: Baselines reported beside every result: architecture size and depth.
BASELINE_PROXIES = ("params", "flops")


def proxy_correlations(
    features: pd.DataFrame,
    labels: pd.Series,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per proxy column: spearman, kendall, n and ci95 against ``labels`` (aligned on index)."""
    y = labels.reindex(features.index)
    out = {}
    for name in features.columns:
        res: dict[str, Any] = rank_correlations(features[name], y)
        res["ci95"] = bootstrap_spearman_ci(features[name], y, n_boot=n_boot, seed=seed)
        out[name] = res
    return out


#: meta keys a store may use to record the size of the validation set behind its labels
VALIDATION_SIZE_KEYS = ("validation_size", "val_size", "n_val")


def validation_size(bench: Benchmark, labels: pd.Series | None = None) -> tuple[int | None, str]:
    """Size of the validation set behind the labels, and where it comes from.

    Recorded in the store's meta (``validation_size``), or inferred: the smallest
    ``n <= 100,000`` such that every run's label is a multiple of ``1/n`` (to 1e-6 of a sample),
    when there are at least 5 distinct labels and ``n`` is not a power of ten (labels
    rounded to decimals would look like that). ``(None, reason)`` otherwise.
    """
    meta = bench.meta
    for key in VALIDATION_SIZE_KEYS:
        if key in meta:
            try:
                return int(meta[key]), f"recorded in the store ({key})"
            except ValueError:
                pass
    y = (bench.run_labels()["val_acc"] if labels is None else labels).to_numpy(dtype=float)
    u = np.unique(y[np.isfinite(y)])
    if len(u) < 5:
        return None, "fewer than 5 distinct labels"
    probe = u[: min(len(u), 300)]
    for lo in range(2, 100_001, 5000):
        n = np.arange(lo, min(lo + 5000, 100_001), dtype=float)[:, None]
        prod = n * probe[None, :]
        ok = np.all(np.abs(prod - np.round(prod)) < 1e-6, axis=1)
        if ok.any():
            size = int(n[np.argmax(ok), 0])
            prod = size * u
            if not np.all(np.abs(prod - np.round(prod)) < 1e-6):
                continue
            if math.log10(size).is_integer():
                return None, f"labels are multiples of 1/{size}: rounded decimals, not a count"
            return size, f"inferred: every label is a multiple of 1/{size}"
    return None, "labels are not multiples of 1/n for any n up to 100,000"


def label_noise(
    bench: Benchmark,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    labels: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """How much of the labels' ranking is noise: the ceiling any ranker can reach.

    **Repeated runs.** Where architectures were trained under more than one seed, the
    seed-to-seed Spearman ``r`` is computed between each such architecture's first and
    second run (by seed). The label used everywhere is the mean over an architecture's
    runs, ``k`` runs on (harmonic) average; its reliability is the Spearman-Brown corrected
    :math:`R = k r / (1 + (k - 1) r)`, and no ranker's correlation with these labels can be
    expected above :math:`\\sqrt{R}` (the correlation of the noise-free ranking with the
    noisy labels). Intervals: percentile bootstrap over architectures, mapped through the
    same (monotone) formulas. Without repeats the ceiling is unknown.

    **Binomial estimate (not a bound).** When the validation-set size ``n`` is known
    (:func:`validation_size`), sampling ``n`` validation examples gives each label a
    variance :math:`p(1-p)/(n k)` *if every architecture's errors were drawn independently*;
    its share of the labels' variance estimates the noise share, and
    :math:`\\sqrt{1 - \text{share}}` the ceiling. The assumption fails when all
    architectures are scored on one shared validation set (the usual case): their errors on
    the same examples are correlated, the part of the sampling noise that they share moves
    every label together and does not reorder them, so the relevant noise is smaller and
    the ceiling is usually *higher* than this estimate (a simulation with one shared set
    gave an estimate of 0.478 where noise-free accuracies reached 0.796). It is reported
    as an estimate under that assumption, never as a bound.
    """
    runs = bench.run_labels()
    labels = bench.labels() if labels is None else labels
    out: dict[str, Any] = {"n_architectures": int(len(labels))}
    counts = runs.groupby("arch_id").size()
    repeated = counts[counts >= 2].index
    # Spearman-Brown for unequal run counts: the mean label's noise variance averages
    # 1/k_i over architectures, so the effective k is the harmonic mean of the counts
    n_runs = labels["n_runs"].to_numpy(float) if len(labels) else np.array([])
    k = float(len(n_runs) / np.sum(1.0 / n_runs)) if len(n_runs) else math.nan
    out["runs_per_architecture"] = float(n_runs.mean()) if len(n_runs) else math.nan
    out["runs_per_architecture_harmonic"] = k
    out["n_repeated"] = int(len(repeated))
    if len(repeated) >= 3:
        rep = runs[runs["arch_id"].isin(repeated)].sort_values(["arch_id", "seed"])
        first = rep.groupby("arch_id")["val_acc"].nth(0).to_numpy(float)
        second = rep.groupby("arch_id")["val_acc"].nth(1).to_numpy(float)
        r = spearman(first, second)
        reps, scale = bootstrap_spearman(first, second, n_boot=n_boot, seed=seed)
        reps = reps[np.isfinite(reps)]
        r_ci = [math.nan, math.nan]
        if reps.size:
            alpha = (1 - level) / 2
            lo, hi = np.quantile(reps, [alpha, 1 - alpha])
            r_ci = [float(r + scale * (lo - r)), float(r + scale * (hi - r))]
        # a reliability is a variance share: a negative estimate (r < 0) means none
        rel = max(0.0, float(spearman_brown(r, k))) if np.isfinite(r) else math.nan
        rel_ci = [max(0.0, float(spearman_brown(v, k))) if np.isfinite(v) else v for v in r_ci]

        def root(v: float) -> float:
            return math.sqrt(v) if np.isfinite(v) and v >= 0 else (0.0 if v < 0 else math.nan)

        out["repeats"] = {
            "seed_to_seed_spearman": r,
            "seed_to_seed_ci95": r_ci,
            "reliability": rel,
            "reliability_ci95": rel_ci,
            "ceiling": root(rel),
            "ceiling_ci95": [root(v) for v in rel_ci],
            "ceiling_is_approximate": True,
            "note": (
                f"{len(repeated)} architectures with runs under >= 2 seeds; reliability of "
                f"the mean label over {k:.2f} runs (Spearman-Brown with the harmonic mean of "
                "the runs per architecture); ceiling = sqrt(reliability), approximate"
            ),
        }
    else:
        out["repeats"] = None
        out["note"] = (
            "ceiling unknown: no architecture was trained under more than one seed "
            "(train some under two, e.g. bench build --seeds 0,1, to measure the label noise)"
        )
    n_val, why = validation_size(bench, runs["val_acc"])
    out["validation_size"] = n_val
    out["validation_size_source"] = why
    out["chance"] = store_chance(bench, n_val)
    y = labels["val_acc"].to_numpy(float)
    if n_val and len(y) >= 3 and np.var(y, ddof=1) > 0:
        noise = float(np.mean(y * (1 - y) / (n_val * labels["n_runs"].to_numpy(float))))
        share = min(1.0, noise / float(np.var(y, ddof=1)))
        out["binomial"] = {
            "validation_size": n_val,
            "noise_sd": math.sqrt(noise),
            "label_sd": float(np.std(y, ddof=1)),
            "noise_share": share,
            "ceiling_estimate": math.sqrt(1 - share),
            "assumption": "independent errors across architectures",
            "note": (
                "estimate from binomial sampling of the validation set, assuming every "
                "architecture's errors are independent; a shared validation set makes them "
                "correlated (less noise on the ranking, ceiling usually higher), and seed or "
                "data-order noise adds to it: neither a lower nor an upper bound"
            ),
        }
    return out


def store_chance(
    bench: Benchmark, n_val: int | None = None, config: str | None = None
) -> dict[str, Any] | None:
    """:func:`chance_level` of a store's finished runs (``n_val`` inferred when not given;
    ``config``: only the runs of that training configuration hash, None when it has no
    runs): what ``evaluate``, ``bench build`` and a live ``search`` say of labels at
    chance."""
    runs = bench.runs()
    runs = runs[runs["status"] == "done"]
    if config is not None:  # a filter, not select_config: the caller's handle is left as is
        runs = runs[runs["config_hash"] == config]
    if runs.empty:
        return None
    if n_val is None:
        n_val, _ = validation_size(bench, runs["val_acc"])
    return chance_level(runs, n_val)


def chance_line(chance: dict[str, Any] | None) -> str | None:
    """The one line naming labels within binomial noise of chance (``chance``: from
    :func:`store_chance`), or None; ``evaluate``, ``bench build`` and a live ``search``
    print it."""
    if not chance or not chance["at_chance"]:
        return None
    return (
        f"Chance level: {chance['note']} (best label {chance['best_label']:.3f}); a preset "
        "such as tiny tries the pipeline, --preset cpu (or ntu60 on real data) gives labels"
    )


def chance_level(runs: pd.DataFrame, n_val: int | None) -> dict[str, Any] | None:
    r"""Whether the labels are within binomial noise of chance, or None when unknown.

    The number of classes ``K`` comes from the runs' recorded data (a synthetic data
    spec's ``classes``; every run must agree); chance is ``1/K``. The labels are "at
    chance" when the best run is within three binomial standard deviations
    :math:`3\sqrt{c(1-c)/n}` of chance ``c`` (``n`` the validation size; without it,
    within 0.02).
    """
    classes = set()
    for config in runs.get("config", pd.Series(dtype=object)):
        data = config.get("data", "") if isinstance(config, dict) else ""
        found = re.search(r"(?:^|[:,])classes=(\d+)", str(data))
        if not found:
            return None
        classes.add(int(found.group(1)))
    y = runs["val_acc"].to_numpy(float)
    y = y[np.isfinite(y)]
    if len(classes) != 1 or not len(y):
        return None
    c = 1.0 / classes.pop()
    margin = 3 * math.sqrt(c * (1 - c) / n_val) if n_val else 0.02
    at_chance = bool(y.max() <= c + margin)
    return {
        "chance": c,
        "best_label": float(y.max()),
        "margin": margin,
        "at_chance": at_chance,
        "note": (
            f"no label is more than {margin:.3f} above chance ({c:.3f}): the training "
            "recipe learned nothing these labels could rank"
            if at_chance
            else f"labels above chance ({c:.3f})"
        ),
    }


def check_evaluable(bench: Benchmark, epoch: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The labels and the proxy scores at ``epoch`` of the labelled architectures, after
    refusing what cannot be evaluated (one-line errors).

    No labelled architecture, labels without spread, no proxy scores at ``epoch`` (the
    error lists the epochs that have scores) or only missing ones.
    """
    labels = bench.labels()
    if labels.empty:
        raise RankzcError(f"{bench.path}: no labelled architectures to evaluate")
    y = labels["val_acc"].to_numpy(float)
    if len(y) < 3:
        raise RankzcError(
            f"{bench.path}: only {len(y)} labelled architecture(s); need at least 3 to rank"
        )
    if np.nanmin(y) == np.nanmax(y):
        raise RankzcError(
            f"{bench.path}: labels have no spread: all {len(y)} labelled architectures have "
            f"val_acc = {y[0]:g}, so there is nothing to rank"
        )
    epochs = bench.proxy_epochs()
    if epoch not in epochs:
        have = ", ".join(str(e) for e in epochs) or "none"
        raise RankzcError(
            f"{bench.path}: no proxy scores at epoch {epoch} (epochs with scores: {have})"
        )
    feats = bench.features(epoch).reindex(labels.index)
    if not np.isfinite(feats.to_numpy(dtype=float)).any():
        raise RankzcError(
            f"{bench.path}: every proxy score of the labelled architectures at epoch {epoch} "
            "is missing (NaN)"
        )
    return labels, feats


def single_proxy_report(
    bench: Benchmark,
    *,
    epoch: int = -1,
    n_boot: int = 1000,
    seed: int = 0,
    group_by_depth: bool = True,
    labels: pd.DataFrame | None = None,
    features: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The ``rankzc evaluate`` report: proxies, baselines and within-depth correlations.

    ``labels`` and ``features`` (as returned by :func:`check_evaluable`) save reading them
    again from the store.
    """
    labels = bench.labels() if labels is None else labels
    feats = (bench.features(epoch) if features is None else features).reindex(labels.index)
    feats = feats.dropna(axis=1, how="all")
    y = labels["val_acc"]
    result: dict[str, Any] = {
        "n": int(len(labels)),
        "epoch": epoch,
        "proxies": proxy_correlations(feats, y, n_boot=n_boot, seed=seed),
    }
    baselines = {}
    has_depth = bench.has_depth() and labels["depth"].notna().any()
    if has_depth:
        depth = labels["depth"].astype(float)
        baselines["depth"] = rank_correlations(depth, y)
        baselines["depth"]["ci95"] = bootstrap_spearman_ci(depth, y, n_boot=n_boot, seed=seed)
    for name in BASELINE_PROXIES:
        if name in result["proxies"]:
            baselines[name] = dict(result["proxies"][name])
    result["baselines"] = baselines
    if has_depth and group_by_depth:
        within: dict[str, Any] = {}
        for depth, idx in labels.groupby("depth").groups.items():
            sub = {
                name: rank_correlations(feats.loc[idx, name], y.loc[idx]) for name in feats.columns
            }
            within[str(int(depth))] = sub
        result["within_depth"] = within
    return result


def warmup_report(bench: Benchmark, proxies: Iterable[str] | None = None) -> dict[str, Any]:
    """Spearman of each proxy, scored after each epoch, against the final label.

    Each epoch uses the architectures that have scores for it (epoch -1 is
    initialisation), as in the study's Figure 5.1.
    """
    labels = bench.labels()["val_acc"]
    epochs: dict[str, Any] = {}
    for epoch in bench.proxy_epochs():
        feats = bench.features(epoch, proxies=proxies)
        feats = feats.loc[feats.index.intersection(labels.index)].dropna(axis=1, how="all")
        if feats.empty:
            continue
        y = labels.reindex(feats.index)
        epochs[str(epoch)] = {
            "n": int(feats.notna().any(axis=1).sum()),
            "proxies": {name: rank_correlations(feats[name], y) for name in feats.columns},
        }
    return {"epochs": epochs}


def warmup_figure(report: dict[str, Any], *, min_n: int = 1):
    """The figure of :func:`plot_warmup`: Spearman against scoring epoch, one line per
    proxy, each with its own colour and marker; the legend beside the axes; a tick on
    every epoch scored (-1 labelled "init")."""
    from rankzc.plotting import legend_outside, line_styles, pyplot

    plt = pyplot()
    epochs = sorted((int(e), v) for e, v in report["epochs"].items() if v["n"] >= min_n)
    names = sorted({p for _, v in epochs for p in v["proxies"]})
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for name, style in zip(names, line_styles(len(names)), strict=True):
        xs = [e for e, v in epochs if name in v["proxies"]]
        ys = [v["proxies"][name]["spearman"] for e, v in epochs if name in v["proxies"]]
        ax.plot(xs, ys, markersize=5, linewidth=1.2, label=name, **style)
    ax.axhline(0, color="grey", linewidth=0.8)
    ticks = [e for e, _ in epochs]
    if len(ticks) > 20:  # every epoch would crowd the axis: whole numbers only
        from rankzc.plotting import integer_ticks

        integer_ticks(ax.xaxis)
    else:
        ax.set_xticks(ticks, ["init" if e == -1 else str(e) for e in ticks])
    ax.set_xlabel("proxies scored after epoch (init = at initialisation)")
    ax.set_ylabel("Spearman rho with final accuracy")
    ax.set_title("Proxy rank correlation during warm-up")
    ax.grid(alpha=0.3)
    legend_outside(ax, fontsize=8, title="proxy")
    fig.tight_layout()
    return fig


def plot_warmup(report: dict[str, Any], path: str, *, min_n: int = 1) -> None:
    """Line plot of Spearman against scoring epoch, one line per proxy
    (:func:`warmup_figure`)."""
    from rankzc.plotting import pyplot

    fig = warmup_figure(report, min_n=min_n)
    try:
        save_figure(fig, path, dpi=120, bbox_inches="tight")  # whole or not at all
    finally:
        pyplot().close(fig)


def proxy_correlations_figure(report: dict[str, Any]):
    """The figure of :func:`plot_proxy_correlations`."""
    from rankzc.plotting import pyplot

    plt = pyplot()
    items = sorted(report["proxies"].items(), key=lambda kv: np.nan_to_num(kv[1]["spearman"]))
    names = [k for k, _ in items]
    rho = np.array([v["spearman"] for _, v in items], dtype=float)
    ci = np.array([v.get("ci95", [np.nan, np.nan]) for _, v in items], dtype=float)
    err = np.abs(np.vstack([rho - ci[:, 0], ci[:, 1] - rho]))
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.5))
    ax.barh(names, rho, xerr=np.nan_to_num(err), color="tab:blue", alpha=0.8)
    depth = report.get("baselines", {}).get("depth")
    if depth:
        ax.axvline(depth["spearman"], color="tab:red", linestyle="--", label="depth baseline")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("Spearman rho with accuracy (95% bootstrap interval)")
    when = (
        "at initialisation" if report.get("epoch", -1) == -1 else f"after epoch {report['epoch']}"
    )
    ax.set_title(f"Single proxies {when} (n = {report.get('n', '?')})")
    if depth:
        from rankzc.plotting import legend_outside

        legend_outside(ax, fontsize=8)
    fig.tight_layout()
    return fig


def plot_proxy_correlations(report: dict[str, Any], path: str) -> None:
    """Bar chart of each proxy's Spearman with its bootstrap interval."""
    from rankzc.plotting import pyplot

    fig = proxy_correlations_figure(report)
    try:
        save_figure(fig, path, dpi=120, bbox_inches="tight")  # whole or not at all
    finally:
        pyplot().close(fig)
