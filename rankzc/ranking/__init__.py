"""Rankers that combine zero-cost proxies (and architecture encodings) into one score.

Models (scikit-learn style, higher score = better): ``single`` (best proxy),
``vote`` (majority vote, Copeland score), ``wam`` (weighted arithmetic mean), ``ranknet``
(pairwise-logistic MLP), ``lambdarank`` (LightGBM). See :func:`make_ranker`,
:func:`rankzc.ranking.evaluation.evaluate_models` and :func:`rankzc.ranking.io.load_ranker`.
"""

from rankzc.ranking.registry import RANKERS, make_ranker, ranker_class

__all__ = ["RANKERS", "make_ranker", "ranker_class"]
