"""Correlation analysis of a benchmark: single proxies, baselines, depths, warm-up.

Every statistic comes from :mod:`rankzc.stats` (one NaN policy: pairs where the proxy
or the label is not finite are dropped). Correlations are *signed*: a proxy that ranks
in the wrong direction has a negative rho. Bootstrap 95% intervals resample
architectures with replacement, on ranks, with a bounded number of rows
(:func:`rankzc.stats.bootstrap_spearman`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from rankzc.stats import bootstrap_spearman_ci, rank_correlations, spearman
from rankzc.store import Benchmark

__all__ = [
    "BASELINE_PROXIES",
    "spearman",
    "rank_correlations",
    "bootstrap_spearman_ci",
    "proxy_correlations",
    "single_proxy_report",
    "warmup_report",
    "plot_warmup",
    "plot_proxy_correlations",
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


def single_proxy_report(
    bench: Benchmark,
    *,
    epoch: int = -1,
    n_boot: int = 1000,
    seed: int = 0,
    group_by_depth: bool = True,
) -> dict[str, Any]:
    """The ``rankzc evaluate`` report: proxies, baselines and within-depth correlations."""
    labels = bench.labels()
    feats = bench.features(epoch).reindex(labels.index)
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


def plot_warmup(report: dict[str, Any], path: str, *, min_n: int = 1) -> None:
    """Line plot of Spearman against scoring epoch, one line per proxy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = sorted((int(e), v) for e, v in report["epochs"].items() if v["n"] >= min_n)
    names = sorted({p for _, v in epochs for p in v["proxies"]})
    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = plt.get_cmap("tab20").colors
    for i, name in enumerate(names):
        xs = [e for e, v in epochs if name in v["proxies"]]
        ys = [v["proxies"][name]["spearman"] for e, v in epochs if name in v["proxies"]]
        style = "-" if i < len(colors) // 2 else "--"
        ax.plot(
            xs, ys, style, marker="o", markersize=3, label=name, color=colors[2 * i % len(colors)]
        )
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("scored after epoch (-1 = initialisation)")
    ax.set_ylabel("Spearman rho with final accuracy")
    ax.set_title("Proxy rank correlation during warm-up")
    ax.legend(ncol=2, fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_proxy_correlations(report: dict[str, Any], path: str) -> None:
    """Bar chart of each proxy's Spearman with its bootstrap interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = sorted(report["proxies"].items(), key=lambda kv: np.nan_to_num(kv[1]["spearman"]))
    names = [k for k, _ in items]
    rho = np.array([v["spearman"] for _, v in items], dtype=float)
    ci = np.array([v.get("ci95", [np.nan, np.nan]) for _, v in items], dtype=float)
    err = np.abs(np.vstack([rho - ci[:, 0], ci[:, 1] - rho]))
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.5))
    ax.barh(names, rho, xerr=np.nan_to_num(err), color="tab:blue", alpha=0.8)
    for base, value in report.get("baselines", {}).items():
        if base == "depth":
            ax.axvline(value["spearman"], color="tab:red", linestyle="--", label="depth baseline")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("Spearman rho with accuracy (95% bootstrap interval)")
    if report.get("baselines", {}).get("depth"):
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
