"""Markdown report of a ranker comparison, with PNG plots (matplotlib, Agg backend).

Written by :func:`rankzc.ranking.evaluation.evaluate_models` when ``report_dir`` is given:
``report.md``, ``proxy_correlations.png`` (via :mod:`rankzc.analysis`), ``warmup.png``
(when the store has proxies after several epochs), ``predicted_vs_true.png`` (out-of-fold
predictions of the first repeat) and ``learning_curve.png`` (when a learning curve was run).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from rankzc.atomicfile import save_figure, write_text
from rankzc.ranking.features import FeatureSet
from rankzc.ranking.metrics import METRICS

__all__ = ["write_report"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def _scatter(path: Path, oof: dict[str, np.ndarray], y: np.ndarray) -> None:
    plt = _plt()
    names = [m for m in oof if np.isfinite(oof[m]).any()]
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows), squeeze=False)
    for ax, m in zip(axes.ravel(), names, strict=False):
        ok = np.isfinite(oof[m])
        ax.scatter(rankdata(oof[m][ok]) / ok.sum(), y[ok], s=6, alpha=0.6)
        ax.set_title(m)
        ax.set_xlabel("predicted rank (out of fold, 0-1)")
        ax.set_ylabel("true accuracy")
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)  # whole or not at all
    plt.close(fig)


def _learning(path: Path, curve: dict[str, list[dict]]) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for m, pts in curve.items():
        xs = [p["train_size"] for p in pts]
        mu = np.array([np.nan if p["spearman_mean"] is None else p["spearman_mean"] for p in pts])
        sd = np.array([0.0 if p["spearman_std"] is None else p["spearman_std"] for p in pts])
        ax.errorbar(xs, mu, yerr=sd, marker="o", capsize=3, label=m)
    ax.set_xlabel("training architectures per fold")
    ax.set_ylabel("held-out Spearman")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=110)  # whole or not at all
    plt.close(fig)


def write_report(
    report_dir: str | Path, result: dict, fs: FeatureSet, oof: dict[str, np.ndarray], bench=None
) -> Path:
    """Write ``report.md`` and its plots into ``report_dir``; return the Markdown path."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    from rankzc.ranking.evaluation import comparison_text

    lines = [
        "# Ranker comparison",
        "",
        f"{result['n_architectures']} labelled architectures, features `{result['features']}` "
        f"({result['n_features']} columns), proxies scored after epoch {result.get('epoch', -1)}. "
        f"{result['cv']['note']}.",
        "",
        "| model | " + " | ".join(METRICS) + " | compared with | Spearman diff [95% CI] | p |",
        "|---" * (len(METRICS) + 4) + "|",
    ]
    for name, e in result["models"].items():
        if e.get("failed"):
            lines.append(
                f"| {name} | "
                + " | ".join("-" for _ in METRICS)
                + f" | - | failed: {e['error']} | - |"
            )
            continue
        cells = [f"{_fmt(e[f'{m}_mean'])} ± {_fmt(e[f'{m}_std'])}" for m in METRICS]
        vs, diff, p = comparison_text(e.get("vs_baseline"))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {vs} | {diff} | {p} |")
    for name, e in result.get("cv_baselines", {}).items():
        cells = [f"{_fmt(e[f'{m}_mean'])} ± {_fmt(e[f'{m}_std'])}" for m in METRICS]
        lines.append(f"| baseline: {name} | " + " | ".join(cells) + " | - | - | - |")
    lines += [
        "",
        f"Compared with: the strongest baseline ({result.get('strongest_baseline')}); "
        f"{result.get('comparison', '')}.",
        "",
    ]
    if bench is not None and not isinstance(bench, (str, Path, FeatureSet)) and fs.proxies:
        try:
            from rankzc import analysis
        except ImportError:  # pragma: no cover - analysis helpers absent
            analysis = None
        if analysis is not None:
            single = analysis.single_proxy_report(
                bench, epoch=int(result.get("epoch", -1)), n_boot=200, group_by_depth=False
            )
            analysis.plot_proxy_correlations(single, str(out / "proxy_correlations.png"))
            lines += ["## Single proxies", "", "![](proxy_correlations.png)", ""]
            if len(bench.proxy_epochs()) > 1:  # warm-up curves span every epoch
                analysis.plot_warmup(analysis.warmup_report(bench), str(out / "warmup.png"))
                lines += ["## Warm-up", "", "![](warmup.png)", ""]
    _scatter(out / "predicted_vs_true.png", oof, fs.y.to_numpy(dtype=float))
    lines += ["## Predicted against true (out of fold)", "", "![](predicted_vs_true.png)", ""]
    if result.get("learning_curve"):
        _learning(out / "learning_curve.png", result["learning_curve"])
        lines += ["## Learning curve", "", "![](learning_curve.png)", ""]
        curve = result["learning_curve"]
        sizes = [p["train_size"] for p in next(iter(curve.values()), [])]
        lines += ["| model | " + " | ".join(f"n = {s}" for s in sizes) + " |"]
        lines += ["|---" * (len(sizes) + 1) + "|"]
        for m, pts in curve.items():
            cells = [f"{_fmt(p['spearman_mean'])} ± {_fmt(p['spearman_std'])}" for p in pts]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    path = out / "report.md"
    write_text(path, "\n".join(lines) + "\n")
    return path
