"""Common base of the rankers: scikit-learn style ``fit(X, y) -> self`` and ``predict(X)``.

A ranker's ``predict`` returns one score per row; a *higher score means a better (more
accurate) architecture*. ``X`` is a :class:`pandas.DataFrame` (columns are feature names) or
a 2-D array; rankers remember the training columns in ``feature_names_in_`` and reorder a
DataFrame given to ``predict`` by name. Missing values are NaN.

Persistence (:mod:`rankzc.ranking.io`) goes through ``_export`` / ``_import``: JSON-able
configuration, named float arrays (stored with safetensors) and named text blobs (e.g. a
LightGBM text model). Nothing is ever pickled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from rankzc.errors import RankzcError
from rankzc.stats import spearman

__all__ = ["BaseRanker", "as_matrix", "lightgbm_settings", "subsample_rows"]


def as_matrix(
    X, names: Sequence[str] | None = None, *, fitting: bool = False
) -> tuple[np.ndarray, list[str]]:
    """Float matrix and column names of ``X``.

    When ``names`` is given and ``fitting`` is False, a DataFrame is reordered to ``names``
    (extra columns are ignored; absent ones raise :class:`RankzcError` naming them) and an
    array must have ``len(names)`` columns.
    """
    if isinstance(X, pd.DataFrame):
        cols = [str(c) for c in X.columns]
        if names is not None and not fitting:
            missing = [n for n in names if n not in set(cols)]
            if missing:
                shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
                raise RankzcError(f"features missing from the input: {shown}")
            X = X.loc[:, list(names)]
            cols = list(names)
        values = X.to_numpy(dtype=float, na_value=np.nan)
    else:
        values = np.asarray(X, dtype=float)
        if values.ndim == 1:
            values = values[:, None]
        if names is not None and not fitting:
            if values.shape[1] != len(names):
                raise RankzcError(f"expected {len(names)} feature columns, got {values.shape[1]}")
            cols = list(names)
        else:
            cols = [f"x{k}" for k in range(values.shape[1])]
    if values.ndim != 2:
        raise RankzcError(f"features must be a 2-D table, got shape {values.shape}")
    return values, cols


def subsample_rows(
    X: np.ndarray, y: np.ndarray, max_rows: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``X, y`` unchanged up to ``max_rows`` rows; above, a seeded random subset (row order
    kept) that still has two different labels."""
    if max_rows is None or len(y) <= int(max_rows):
        return X, y
    if int(max_rows) < 2:
        raise RankzcError(f"max_rows must be >= 2, got {max_rows}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(y), size=int(max_rows), replace=False))
    if y[idx].min() == y[idx].max():  # keep a pair to rank: add the extremes
        idx = np.unique(np.concatenate([idx, [int(np.argmin(y)), int(np.argmax(y))]]))
    return X[idx], y[idx]


def lightgbm_settings(est) -> dict:
    """The LightGBM keyword arguments every boosted ranker takes from its parameters
    (``n_estimators``, ``learning_rate``, ``num_leaves``, ``min_child_samples``,
    ``subsample``, ``colsample_bytree``, ``seed`` and its ``_threads()``), run
    deterministically and silently."""
    return {
        "n_estimators": est.n_estimators,
        "learning_rate": est.learning_rate,
        "num_leaves": est.num_leaves,
        "min_child_samples": est.min_child_samples,
        "subsample": est.subsample,
        "subsample_freq": 1 if est.subsample < 1 else 0,
        "colsample_bytree": est.colsample_bytree,
        "n_jobs": est._threads(),
        "random_state": est.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }


class BaseRanker(BaseEstimator):
    """Base class: parameters in ``__init__`` (unchanged), fitted state ending in ``_``."""

    #: registry name (``single``, ``vote``, ...), set by subclasses
    name: str = ""

    def fit(self, X, y) -> BaseRanker:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, X, y) -> float:
        """Spearman correlation between ``predict(X)`` and ``y``."""
        return spearman(self.predict(X), np.asarray(y, dtype=float))

    def _check_fitted(self, attr: str) -> None:
        if not hasattr(self, attr):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")

    @staticmethod
    def _check_y(X: np.ndarray, y) -> np.ndarray:
        y = np.asarray(y, dtype=float).ravel()
        if len(y) != len(X):
            raise RankzcError(f"X has {len(X)} rows but y has {len(y)} labels")
        if len(y) < 2 or not np.all(np.isfinite(y)):
            raise RankzcError("need at least 2 finite labels to fit a ranker")
        if y.min() == y.max():
            raise RankzcError(
                f"labels have no spread: all {len(y)} training architectures have the same "
                f"accuracy ({y[0]:g}), so there is nothing to rank"
            )
        return y

    # persistence hooks: (json config, arrays, texts)
    def _export(self) -> tuple[dict, dict[str, np.ndarray], dict[str, str]]:  # pragma: no cover
        raise NotImplementedError

    def _import(
        self, config: dict, arrays: dict[str, np.ndarray], texts: dict[str, str]
    ) -> None:  # pragma: no cover
        raise NotImplementedError
