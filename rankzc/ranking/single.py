r"""The best single proxy, chosen on the training data.

``fit`` computes every column's Spearman :math:`\rho` with the label on the training rows and
keeps the column with the largest :math:`|\rho|`; ``predict`` returns
:math:`\operatorname{sign}(\rho)\, x` for that column, a missing value replaced by the
training median. This is the baseline every combiner is compared with.

:class:`SignedColumnRanker` is the trivial rule behind the ``depth``, ``params`` and
``flops`` baselines of :func:`rankzc.ranking.evaluation.evaluate_models`: one given column,
negated when its Spearman with the training labels is negative (a missing value stays
missing, so the rows without it drop out of the metrics). Both are fitted and scored by the
same fold engine as every model, so their choices see the training rows only.
"""

from __future__ import annotations

import numpy as np

from rankzc.errors import RankzcError
from rankzc.ranking.base import BaseRanker, as_matrix
from rankzc.ranking.preprocessing import spearman_columns
from rankzc.stats import spearman

__all__ = ["SingleProxyRanker", "SignedColumnRanker"]


class SingleProxyRanker(BaseRanker):
    """Rank by the one feature with the highest training ``|Spearman|``, oriented by its sign."""

    name = "single"

    def __init__(self):
        pass

    def fit(self, X, y) -> SingleProxyRanker:
        X, names = as_matrix(X, fitting=True)
        y = self._check_y(X, y)
        rho = spearman_columns(X, y)
        if np.all(np.isnan(rho)):
            raise RankzcError("single: no feature varies together with the labels")
        k = int(np.nanargmax(np.abs(rho)))
        self.feature_names_in_ = names
        self.column_ = k
        self.rho_ = float(rho[k])
        self.sign_ = -1.0 if rho[k] < 0 else 1.0
        col = X[:, k]
        self.median_ = float(np.nanmedian(col)) if np.isfinite(col).any() else 0.0
        return self

    @property
    def proxy_(self) -> str:
        return self.feature_names_in_[self.column_]

    def predict(self, X) -> np.ndarray:
        self._check_fitted("column_")
        X, _ = as_matrix(X, self.feature_names_in_)
        col = X[:, self.column_]
        return self.sign_ * np.where(np.isnan(col), self.median_, col)

    def _export(self):
        return (
            {"column": self.column_, "rho": self.rho_, "sign": self.sign_, "median": self.median_},
            {},
            {},
        )

    def _import(self, config, arrays, texts) -> None:
        self.column_ = int(config["column"])
        self.rho_ = float(config["rho"])
        self.sign_ = float(config["sign"])
        self.median_ = float(config["median"])


class SignedColumnRanker(BaseRanker):
    """Rank by one column (the only one, or ``column``), with the sign of its training
    Spearman (``+1`` when that is zero or undefined); missing values stay missing."""

    name = "signed column"

    def __init__(self, column: str | None = None):
        self.column = column

    def fit(self, X, y) -> SignedColumnRanker:
        X, names = as_matrix(X, fitting=True)
        y = np.asarray(y, dtype=float).ravel()
        if len(y) != len(X):
            raise RankzcError(f"X has {len(X)} rows but y has {len(y)} labels")
        if self.column is None and X.shape[1] != 1:
            raise RankzcError(f"signed column: one column expected, got {X.shape[1]}")
        if self.column is not None and self.column not in names:
            raise RankzcError(f"signed column: no column {self.column!r}")
        k = 0 if self.column is None else names.index(self.column)
        rho = spearman(X[:, k], y)
        self.feature_names_in_ = names
        self.column_ = k
        self.rho_ = float(rho)
        self.sign_ = -1.0 if rho < 0 else 1.0
        return self

    def predict(self, X) -> np.ndarray:
        self._check_fitted("column_")
        X, _ = as_matrix(X, self.feature_names_in_)
        return self.sign_ * X[:, self.column_]
