r"""Ranking quality of predicted scores against true accuracies (from :mod:`rankzc.stats`).

* ``spearman``, ``kendall`` (tau-b): rank correlations;
* ``pairwise_accuracy``: share of pairs with different accuracy ordered as the scores order
  them (a tie in the scores counts one half), :math:`O(n \log n)`;
* ``top10pct_precision``: with :math:`k = \lceil 0.1 n \rceil`, the share of the :math:`k`
  best-scored architectures that are among the :math:`k` most accurate;
* ``regret_top1``: :math:`\max_a y_a - y_{\hat a}` for the best-scored architecture
  :math:`\hat a` (accuracy lost by picking it; 0 is best), in the labels' unit times
  ``regret_scale`` (the CLI passes :data:`POINTS`: labels are fractions, regret is in
  accuracy points);
* ``within_depth_spearman``: mean over depths (with at least 3 architectures) of the
  Spearman correlation inside that depth; NaN when there is no depth.

Every metric drops the architectures whose score or accuracy is not finite (the NaN
policy of :mod:`rankzc.stats`).
"""

from __future__ import annotations

import numpy as np

from rankzc import stats
from rankzc.stats import pairwise_accuracy

__all__ = ["METRICS", "POINTS", "ranking_metrics", "pairwise_accuracy"]

#: ``regret_scale`` that turns a regret in fractions of accuracy into accuracy points
POINTS = 100.0

METRICS = (
    "spearman",
    "kendall",
    "pairwise_accuracy",
    "top10pct_precision",
    "regret_top1",
    "within_depth_spearman",
)


def ranking_metrics(
    pred: np.ndarray,
    y: np.ndarray,
    depth: np.ndarray | None = None,
    *,
    regret_scale: float = 1.0,
) -> dict[str, float]:
    """All :data:`METRICS` for one set of predictions (regret times ``regret_scale``)."""
    return {
        "spearman": stats.spearman(pred, y),
        "kendall": stats.kendall(pred, y),
        "pairwise_accuracy": stats.pairwise_accuracy(pred, y),
        "top10pct_precision": stats.top_k_precision(pred, y, 0.1),
        "regret_top1": regret_scale * stats.regret(pred, y),
        "within_depth_spearman": stats.within_group_spearman(pred, y, depth),
    }
