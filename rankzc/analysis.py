"""Correlation analysis of a benchmark: single proxies, baselines, depths, warm-up.

Rank correlations are computed with :func:`scipy.stats.spearmanr` and
:func:`scipy.stats.kendalltau` over the architectures where both the proxy and the
label are finite. They are *signed*: a proxy that ranks in the wrong direction has
a negative rho. Bootstrap 95% intervals resample architectures with replacement;
Spearman's rho on a resample is the Pearson correlation of its ranks, computed for
all resamples at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from rankzc.store import Benchmark

#: Baselines reported beside every result: architecture size and depth.
BASELINE_PROXIES = ("params", "flops")


def _finite_pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def _defined(x: np.ndarray, y: np.ndarray) -> bool:
    return len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0


def spearman(x: Any, y: Any) -> float:
    """Signed Spearman rho over finite pairs; NaN when undefined (< 3 pairs, a constant)."""
    x, y = _finite_pair(x, y)
    return float(stats.spearmanr(x, y).statistic) if _defined(x, y) else float("nan")


def rank_correlations(x: Any, y: Any) -> dict[str, float]:
    """Signed Spearman and Kendall (tau-b) over finite pairs; NaN when undefined."""
    x, y = _finite_pair(x, y)
    if not _defined(x, y):
        return {"spearman": float("nan"), "kendall": float("nan"), "n": int(len(x))}
    return {
        "spearman": float(stats.spearmanr(x, y).statistic),
        "kendall": float(stats.kendalltau(x, y).statistic),
        "n": int(len(x)),
    }


def bootstrap_spearman_ci(
    x: Any, y: Any, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> list[float]:
    """Percentile bootstrap interval of Spearman's rho (resampling architectures)."""
    x, y = _finite_pair(x, y)
    if len(x) < 3 or n_boot <= 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    rx = stats.rankdata(x[idx], axis=1)
    ry = stats.rankdata(y[idx], axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx * ry).sum(axis=1) / den
    rho = rho[np.isfinite(rho)]
    if rho.size == 0:
        return [float("nan"), float("nan")]
    alpha = (1 - level) / 2
    lo, hi = np.quantile(rho, [alpha, 1 - alpha])
    return [float(lo), float(hi)]


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
