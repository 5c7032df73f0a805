r"""Weighted arithmetic mean of min-max normalised proxies (the study's combiner).

With :math:`\rho_p` the Spearman correlation of proxy :math:`p` with the label on the
training rows, and :math:`\min_p, \max_p` its training range,

.. math::
    s(a) = \frac{\sum_p \rho_p \, \frac{x_{ap} - \min_p}{\max_p - \min_p}}{\sum_p |\rho_p|}.

Weights keep their sign, so a negatively correlated proxy counts against. The study
divides by :math:`\sum_p \rho_p`; whenever that sum is positive the two differ by a
positive factor and rank identically, but where the proxies correlate negatively on the
whole (:math:`\sum_p \rho_p < 0`, as on short training budgets) the study's form would
turn the ranking upside down. Fitted and scored on the same data this is the study's
in-sample figure (rho 0.766 reported; this definition gives 0.768 on the 693
architectures). ``log=True`` applies
:math:`\operatorname{sign}(x)\log(1+|x|)` to heavy-tailed columns before min-max (not the
study's definition). Missing values take the training median.
"""

from __future__ import annotations

import numpy as np

from rankzc.errors import RankzcError
from rankzc.ranking.base import BaseRanker, as_matrix
from rankzc.ranking.preprocessing import ProxyPreprocessor, spearman_columns

__all__ = ["WeightedMeanRanker"]


class WeightedMeanRanker(BaseRanker):
    """Spearman-weighted mean of min-max normalised features.

    Args:
        log: ``False`` (the study's definition) or ``"auto"`` (signed log of heavy tails).
    """

    name = "wam"

    def __init__(self, log: bool | str = False):
        self.log = log

    def fit(self, X, y) -> WeightedMeanRanker:
        X, names = as_matrix(X, fitting=True)
        y = self._check_y(X, y)
        self.feature_names_in_ = names
        self.pre_ = ProxyPreprocessor(transform="none", log=self.log, direction=False).fit(
            X, y, names
        )
        Z = self.pre_.transform_matrix(X)[:, : X.shape[1]]
        rho = np.nan_to_num(spearman_columns(X, y))
        total = np.abs(rho).sum()
        if total < 1e-12:
            raise RankzcError("wam: every feature has zero Spearman correlation with the label")
        self.weights_ = rho / total
        self.min_ = Z.min(axis=0)
        span = Z.max(axis=0) - self.min_
        self.span_ = np.where(span > 0, span, 1.0)
        return self

    def predict(self, X) -> np.ndarray:
        self._check_fitted("weights_")
        X, _ = as_matrix(X, self.feature_names_in_)
        Z = self.pre_.transform_matrix(X)[:, : X.shape[1]]
        return ((Z - self.min_) / self.span_) @ self.weights_

    def _export(self):
        arrays: dict[str, np.ndarray] = {}
        pconf = self.pre_.export_into(arrays)
        arrays.update(weights=self.weights_, min=self.min_, span=self.span_)
        return {"pre": pconf}, arrays, {}

    def _import(self, config, arrays, texts) -> None:
        self.pre_ = ProxyPreprocessor.from_arrays(config["pre"], arrays)
        self.weights_, self.min_, self.span_ = arrays["weights"], arrays["min"], arrays["span"]
