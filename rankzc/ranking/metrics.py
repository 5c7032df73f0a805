r"""Ranking quality of predicted scores against true accuracies.

* ``spearman``, ``kendall`` (tau-b): rank correlations (:mod:`scipy.stats`);
* ``pairwise_accuracy``: share of pairs with different accuracy ordered as the scores order
  them (a tie in the scores counts one half);
* ``top10pct_precision``: with :math:`k = \lceil 0.1 n \rceil`, the share of the :math:`k`
  best-scored architectures that are among the :math:`k` most accurate;
* ``regret_top1``: :math:`\max_a y_a - y_{\hat a}` for the best-scored architecture
  :math:`\hat a` (accuracy lost by picking it; 0 is best);
* ``within_depth_spearman``: mean over depths (with at least 3 architectures) of the
  Spearman correlation inside that depth; NaN when there is no depth.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import kendalltau

from rankzc.analysis import spearman

__all__ = ["METRICS", "ranking_metrics", "pairwise_accuracy"]

METRICS = (
    "spearman",
    "kendall",
    "pairwise_accuracy",
    "top10pct_precision",
    "regret_top1",
    "within_depth_spearman",
)


def pairwise_accuracy(pred: np.ndarray, y: np.ndarray, chunk: int = 2048) -> float:
    """Share of pairs with ``y_i != y_j`` ordered like ``pred`` (ties in ``pred`` count 1/2)."""
    pred = np.asarray(pred, dtype=float)
    y = np.asarray(y, dtype=float)
    good = total = 0.0
    for s in range(0, len(y), chunk):
        dy = np.sign(y[s : s + chunk, None] - y[None, :])
        dp = np.sign(pred[s : s + chunk, None] - pred[None, :])
        mask = dy != 0
        total += mask.sum()
        good += np.sum((dy == dp) & mask) + 0.5 * np.sum((dp == 0) & mask)
    return float(good / total) if total else math.nan


def ranking_metrics(
    pred: np.ndarray, y: np.ndarray, depth: np.ndarray | None = None
) -> dict[str, float]:
    """All :data:`METRICS` for one set of predictions."""
    pred = np.asarray(pred, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(y)
    k = max(1, math.ceil(0.1 * n))
    top_pred = np.argsort(-pred, kind="stable")[:k]
    top_true = np.argsort(-y, kind="stable")[:k]
    within = math.nan
    if depth is not None:
        depth = np.asarray(depth, dtype=float)
        vals = [
            spearman(pred[depth == d], y[depth == d])
            for d in np.unique(depth[~np.isnan(depth)])
            if np.sum(depth == d) >= 3
        ]
        vals = [v for v in vals if not math.isnan(v)]
        within = float(np.mean(vals)) if vals else math.nan
    tau = kendalltau(pred, y)[0] if np.ptp(pred) > 0 and np.ptp(y) > 0 else math.nan
    return {
        "spearman": spearman(pred, y),
        "kendall": float(tau),
        "pairwise_accuracy": pairwise_accuracy(pred, y),
        "top10pct_precision": len(set(top_pred) & set(top_true)) / k,
        "regret_top1": float(y.max() - y[top_pred[0]]),
        "within_depth_spearman": within,
    }
