r"""A level per depth plus one pooled within-depth regression (a fixed-effects model).

Where one structural variable, the *stratum* (GCN-NAS: the number of blocks), carries most
of the label, a ranker that must learn it from pairs spends its capacity there and can mix
strata the labels keep apart. This ranker separates the two parts of the label:

.. math::
    \hat y(a) = \ell_{d(a)} + \tfrac12\bigl(r_{\text{ridge}}(\tilde x_a) +
    r_{\text{trees}}(\tilde x_a)\bigr),

* :math:`\ell_d`: the **level** of stratum :math:`d`, the mean training label of its rows
  shrunk towards the overall mean by ``shrinkage`` pseudo-rows
  (:math:`\ell_d = (\sum_{i \in d} y_i + k\,\bar y) / (n_d + k)`);
* :math:`\tilde x_a`: the features, preprocessed as for the other rankers (signed log of
  heavy tails, training-median imputation with missing indicators, standardised), minus
  their training mean *within the row's stratum*, each then divided by its training
  standard deviation: what sets an architecture apart from the others of its depth;
* :math:`r`: two regressions of the within-stratum residual :math:`y - \ell_d`, fitted on
  all strata together (one model, pooled: a depth-4 and a depth-10 architecture with the
  same within-depth advantage share it), and averaged: ridge regression with its penalty
  chosen by generalised cross-validation (:class:`sklearn.linear_model.RidgeCV`) and
  gradient-boosted regression trees (LightGBM, small and subsampled).

The score is in the label's unit, so a within-stratum prediction moves an architecture
past the next stratum only where the model predicts a gap that large. A row of a stratum
the training rows do not have takes the level interpolated linearly between the nearest
known strata (the end level beyond them) and the overall feature means. Without a
stratum column in the features, or with ``stratum=None``, there is one stratum and the
ranker is the averaged regression alone.

Measured on the GCN-NAS study (``benchmarks/study_vs_depth.py``, 20 stratified hold-outs
of 60, the five data-free proxies plus the architecture encoding): see the README's
"Rank new GCN-NAS architectures".
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from rankzc.errors import RankzcError
from rankzc.ranking.base import BaseRanker, as_matrix, lightgbm_settings, subsample_rows
from rankzc.ranking.lgbtext import safe_model_text
from rankzc.ranking.preprocessing import ProxyPreprocessor
from rankzc.threads import native_threads

__all__ = ["StratifiedRanker"]

#: ridge penalties tried by generalised cross-validation
ALPHAS = np.logspace(-1, 4, 20)


class StratifiedRanker(BaseRanker):
    """Stratum level plus an averaged ridge and tree regression of the within-stratum
    residual (see the module docstring).

    Args:
        stratum: the feature column whose values are the strata (``"depth"``); ``None``,
            or a table without ``depth``: one stratum (another column named here must
            be in the table).
        shrinkage: pseudo-rows at the overall mean added to every stratum's level.
        n_estimators, learning_rate, num_leaves, min_child_samples, subsample,
            colsample_bytree: LightGBM settings of the tree regression.
        n_jobs: LightGBM threads; None = the thread policy's count (:mod:`rankzc.threads`).
        max_rows: most training rows used; above, a seeded random subset.
        seed: seed of LightGBM's subsampling.
    """

    name = "stratified"

    def __init__(
        self,
        stratum: str | None = "depth",
        shrinkage: float = 1.0,
        n_estimators: int = 300,
        learning_rate: float = 0.03,
        num_leaves: int = 7,
        min_child_samples: int = 20,
        subsample: float = 0.8,
        colsample_bytree: float = 0.5,
        n_jobs: int | None = None,
        max_rows: int | None = 10_000,
        seed: int = 0,
    ):
        self.stratum = stratum
        self.shrinkage = shrinkage
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.n_jobs = n_jobs
        self.max_rows = max_rows
        self.seed = seed

    # ----------------------------------------------------------------- helpers
    def _threads(self) -> int:
        """LightGBM's thread count (:func:`rankzc.threads.native_threads`)."""
        return native_threads(self.n_jobs, "stratified")

    def _strata_of(self, X: np.ndarray) -> np.ndarray:
        """The stratum value of every row (0 for all without a stratum column)."""
        if self.stratum_col_ is None:
            return np.zeros(len(X))
        s = X[:, self.stratum_col_]
        return np.where(np.isfinite(s), s, np.nan)

    def _known(self, s: np.ndarray) -> np.ndarray:
        """Index of each row's stratum in ``strata_`` (-1 where the stratum is unknown)."""
        idx = np.searchsorted(self.strata_, s)
        idx = np.clip(idx, 0, len(self.strata_) - 1)
        return np.where(self.strata_[idx] == s, idx, -1)

    def _levels(self, s: np.ndarray) -> np.ndarray:
        """Each row's level: its stratum's, interpolated for a stratum between known ones,
        the overall mean for a missing one."""
        out = np.full(len(s), self.overall_)
        finite = np.isfinite(s)
        out[finite] = np.interp(s[finite], self.strata_, self.levels_)
        return out

    def _centres_of(self, s: np.ndarray) -> np.ndarray:
        """Each row's centre: its stratum's training mean of the preprocessed features, the
        overall one for a stratum the training rows lack."""
        k = self._known(s)
        return np.where((k >= 0)[:, None], self.centres_[np.maximum(k, 0)], self.centre_all_)

    def _within(self, X: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Preprocessed features minus their stratum's training mean, scaled."""
        return (self.pre_.transform_matrix(X) - self._centres_of(s)) / self.scale_

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y) -> StratifiedRanker:
        from sklearn.linear_model import RidgeCV

        shrink = self.shrinkage
        if isinstance(shrink, bool) or not isinstance(shrink, (int, float)) or not shrink >= 0:
            raise RankzcError(f"stratified: shrinkage must be a number >= 0, got {shrink!r}")
        X, names = as_matrix(X, fitting=True)
        y = self._check_y(X, y)
        X, y = subsample_rows(X, y, self.max_rows, self.seed)
        self.feature_names_in_ = names
        if self.stratum is not None and self.stratum != "depth" and self.stratum not in names:
            # the default, depth, is absent from proxy-only tables: one stratum; a column
            # the user named must be there
            raise RankzcError(f"stratified: no feature column {self.stratum!r} to stratify by")
        self.stratum_col_ = names.index(self.stratum) if self.stratum in names else None
        s = self._strata_of(X)
        if np.isnan(s).any():
            raise RankzcError(f"stratified: the stratum column {self.stratum!r} has missing values")
        self.overall_ = float(y.mean())
        self.strata_ = np.unique(s)
        self.levels_ = np.array(
            [
                (y[s == v].sum() + shrink * self.overall_) / ((s == v).sum() + shrink)
                for v in self.strata_
            ]
        )
        self.pre_ = ProxyPreprocessor(transform="standard", direction=False).fit(X, y, names)
        Z = self.pre_.transform_matrix(X)
        self.centres_ = np.stack([Z[s == v].mean(axis=0) for v in self.strata_])
        self.centre_all_ = Z.mean(axis=0)
        D = Z - self._centres_of(s)
        sd = D.std(axis=0)
        self.scale_ = np.where(sd > 1e-12, sd, 1.0)
        D = D / self.scale_
        r = y - self._levels(s)
        ridge = RidgeCV(alphas=ALPHAS).fit(D, r)
        self.coef_, self.intercept_ = np.asarray(ridge.coef_, float), float(ridge.intercept_)
        self.alpha_ = float(ridge.alpha_)
        trees = lgb.LGBMRegressor(**lightgbm_settings(self)).fit(D, r)
        self.booster_ = trees.booster_
        return self

    def predict(self, X) -> np.ndarray:
        self._check_fitted("booster_")
        X, _ = as_matrix(X, self.feature_names_in_)
        s = self._strata_of(X)
        D = self._within(X, s)
        ridge = D @ self.coef_ + self.intercept_
        trees = np.asarray(self.booster_.predict(D, num_threads=self._threads()), dtype=float)
        return self._levels(s) + 0.5 * (ridge + trees)

    # -------------------------------------------------------------- persistence
    def _export(self):
        arrays: dict[str, np.ndarray] = {}
        pconf = self.pre_.export_into(arrays)
        arrays.update(
            strata=self.strata_,
            levels=self.levels_,
            centres=self.centres_,
            centre_all=self.centre_all_,
            scale=self.scale_,
            coef=self.coef_,
        )
        config = {
            "pre": pconf,
            "stratum_col": self.stratum_col_,
            "overall": self.overall_,
            "intercept": self.intercept_,
            "alpha": self.alpha_,
        }
        return config, arrays, {"model.txt": self.booster_.model_to_string()}

    def _import(self, config, arrays, texts) -> None:
        self.pre_ = ProxyPreprocessor.from_arrays(config["pre"], arrays)
        m_in = len(self.feature_names_in_)
        m = len(self.pre_.feature_names_out_)
        col = config["stratum_col"]
        if col is not None and (
            isinstance(col, bool) or not isinstance(col, int) or not 0 <= col < m_in
        ):
            raise RankzcError(f"stratified: stratum column {col!r} is not one of the {m_in} inputs")
        self.stratum_col_ = col
        strata = np.asarray(arrays["strata"], dtype=float)
        n = len(strata)
        shapes = {
            "strata": (n,),
            "levels": (n,),
            "centres": (n, m),
            "centre_all": (m,),
            "scale": (m,),
            "coef": (m,),
        }
        checked = {key: np.asarray(arrays[key], dtype=float) for key in shapes}
        for key, shape in shapes.items():
            if checked[key].shape != shape or not np.all(np.isfinite(checked[key])):
                raise RankzcError(f"stratified: {key} must be {shape} finite numbers")
        if n < 1 or np.any(np.diff(strata) <= 0):
            raise RankzcError("stratified: strata must be increasing")
        for key in ("overall", "intercept", "alpha"):
            v = config[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise RankzcError(f"stratified: {key} must be a finite number")
        for key, value in checked.items():
            setattr(self, f"{key}_", value)
        self.overall_, self.intercept_ = float(config["overall"]), float(config["intercept"])
        self.alpha_ = float(config["alpha"])
        # checked and rebuilt first: LightGBM crashes on hostile model text
        self.booster_ = lgb.Booster(model_str=safe_model_text(texts["model.txt"], m))
