r"""Feature preprocessing fitted on the training rows only.

:class:`ProxyPreprocessor` turns raw proxy scores (and architecture encodings) into model
inputs, column by column, with state learnt from the training data alone:

1. **signed log** for heavy-tailed columns (``log="auto"``: the training values span more than
   ``log_span`` decades, as synflow, flops and params do):
   :math:`x \mapsto \operatorname{sign}(x) \log(1 + |x|)`;
2. **imputation**: a missing value becomes the training median, and every column that had a
   missing training value gets a 0/1 ``<name>__missing`` indicator;
3. **transform**: ``"quantile"`` maps a value to its training quantile in :math:`[0, 1]`
   (piecewise linear between ``n_quantiles`` training quantiles, ties averaged as in
   :class:`sklearn.preprocessing.QuantileTransformer`), ``"standard"`` to
   :math:`(x - \mu) / \sigma`, ``"none"`` leaves it; 0/1 columns are never transformed;
4. **direction** (``direction=True``): a column whose training Spearman :math:`\rho` with the
   label is negative is negated (quantile outputs become :math:`1 - u`), so that larger means
   better for every input.

The fitted state is plain arrays, saved without pickling (:meth:`export` / :meth:`from_state`).
"""

from __future__ import annotations

import numpy as np

from rankzc.errors import RankzcError
from rankzc.stats import spearman_columns

__all__ = ["ProxyPreprocessor", "proxy_directions", "spearman_columns", "signed_log"]

TRANSFORMS = ("quantile", "standard", "none")


def signed_log(x: np.ndarray) -> np.ndarray:
    r""":math:`\operatorname{sign}(x)\log(1 + |x|)`, NaN kept."""
    return np.sign(x) * np.log1p(np.abs(x))


def proxy_directions(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """+1 or -1 per column: the sign of its Spearman rho with ``y`` (+1 when undefined or 0)."""
    rho = spearman_columns(X, y)
    return np.where(np.nan_to_num(rho) < 0, -1.0, 1.0)


def _quantile_transform(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    refs = np.linspace(0.0, 1.0, len(q))
    up = np.interp(x, q, refs)
    down = -np.interp(-x, -q[::-1], -refs[::-1])
    return 0.5 * (up + down)


class ProxyPreprocessor:
    """Per-column preprocessing learnt from training rows (see the module docstring).

    Args:
        transform: ``"quantile"``, ``"standard"`` or ``"none"``.
        log: ``"auto"`` (heavy-tailed columns only), ``True`` (every non-binary column) or
            ``False``.
        direction: negate columns negatively correlated with the label.
        n_quantiles: most quantiles kept per column.
        log_span: decades of ``|x|`` (1st to 99th percentile) above which ``"auto"`` logs.
    """

    def __init__(
        self,
        transform: str = "quantile",
        log: bool | str = "auto",
        direction: bool = True,
        n_quantiles: int = 256,
        log_span: float = 3.0,
    ):
        if transform not in TRANSFORMS:
            raise RankzcError(
                f"transform must be one of {', '.join(TRANSFORMS)}, got {transform!r}"
            )
        self.transform = transform
        self.log = log
        self.direction = direction
        self.n_quantiles = n_quantiles
        self.log_span = log_span

    # ------------------------------------------------------------------ fitting
    def fit(self, X: np.ndarray, y: np.ndarray | None = None, names=None) -> ProxyPreprocessor:
        X = np.array(X, dtype=float, copy=True)
        n, m = X.shape
        names = list(names) if names is not None else [f"x{k}" for k in range(m)]
        self.names_in_ = names
        finite = ~np.isnan(X)
        self.binary_ = np.array(
            [set(np.unique(X[finite[:, k], k])) <= {0.0, 1.0} for k in range(m)], dtype=bool
        )
        self.log_ = np.zeros(m, dtype=bool)
        for k in range(m):
            if self.binary_[k] or not finite[:, k].any():
                continue
            if self.log is True:
                self.log_[k] = True
            elif self.log == "auto":
                a = np.abs(X[finite[:, k], k])
                lo, hi = np.percentile(a, [1, 99])
                span = np.log10(hi + 1e-300) - np.log10(max(lo, 1e-12))
                self.log_[k] = bool(hi > 0 and span > self.log_span)
        X[:, self.log_] = signed_log(X[:, self.log_])
        self.indicator_ = (~finite).any(axis=0)
        med = np.array(
            [np.median(X[finite[:, k], k]) if finite[:, k].any() else 0.0 for k in range(m)]
        )
        self.median_ = med
        X = np.where(finite, X, med)
        nq = int(max(2, min(self.n_quantiles, n)))
        probs = np.linspace(0, 100, nq)
        self.quantiles_ = np.percentile(X, probs, axis=0)  # (nq, m)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        self.sign_ = np.ones(m)
        if self.direction and y is not None:
            self.sign_ = proxy_directions(X, np.asarray(y, dtype=float))
        return self

    @property
    def feature_names_out_(self) -> list[str]:
        return list(self.names_in_) + [
            f"{n}__missing" for n, ind in zip(self.names_in_, self.indicator_, strict=True) if ind
        ]

    def transform_matrix(self, X: np.ndarray) -> np.ndarray:
        """Transformed features, then the missing indicators (float64)."""
        X = np.array(X, dtype=float, copy=True)
        if X.shape[1] != len(self.names_in_):
            raise RankzcError(f"expected {len(self.names_in_)} feature columns, got {X.shape[1]}")
        missing = np.isnan(X)
        X[:, self.log_] = signed_log(X[:, self.log_])
        X = np.where(missing, self.median_, X)
        out = X.copy()
        cont = ~self.binary_
        if self.transform == "quantile":
            for k in np.flatnonzero(cont):
                out[:, k] = _quantile_transform(X[:, k], self.quantiles_[:, k])
            flip = self.sign_ < 0
            out[:, flip] = 1.0 - out[:, flip]
        else:
            if self.transform == "standard":
                out[:, cont] = (X[:, cont] - self.mean_[cont]) / self.scale_[cont]
            out = out * self.sign_
        return np.hstack([out, missing[:, self.indicator_].astype(float)])

    def fit_transform(self, X, y=None, names=None) -> np.ndarray:
        return self.fit(X, y, names).transform_matrix(X)

    # -------------------------------------------------------------- persistence
    def export(self) -> tuple[dict, dict[str, np.ndarray]]:
        config = {
            "transform": self.transform,
            "log": self.log,
            "direction": self.direction,
            "n_quantiles": self.n_quantiles,
            "log_span": self.log_span,
            "names_in": list(self.names_in_),
        }
        arrays = {
            "binary": self.binary_.astype(np.float64),
            "log": self.log_.astype(np.float64),
            "indicator": self.indicator_.astype(np.float64),
            "median": self.median_,
            "quantiles": self.quantiles_,
            "mean": self.mean_,
            "scale": self.scale_,
            "sign": self.sign_,
        }
        return config, arrays

    def export_into(self, arrays: dict[str, np.ndarray], prefix: str = "pre.") -> dict:
        """Add the fitted arrays to a ranker's ``arrays`` under ``prefix`` and return the
        JSON configuration (what :meth:`from_arrays` reads back)."""
        config, own = self.export()
        arrays.update({f"{prefix}{k}": v for k, v in own.items()})
        return config

    @classmethod
    def from_arrays(
        cls, config: dict, arrays: dict[str, np.ndarray], prefix: str = "pre."
    ) -> ProxyPreprocessor:
        """The preprocessor a ranker file holds under ``prefix`` (see :meth:`export_into`)."""
        n = len(prefix)
        return cls.from_state(config, {k[n:]: v for k, v in arrays.items() if k.startswith(prefix)})

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> ProxyPreprocessor:
        pre = cls(
            transform=config["transform"],
            log=config["log"],
            direction=config["direction"],
            n_quantiles=config["n_quantiles"],
            log_span=config["log_span"],
        )
        pre.names_in_ = [str(n) for n in config["names_in"]]
        m = len(pre.names_in_)
        for key in ("binary", "log", "indicator", "median", "mean", "scale", "sign"):
            if np.shape(arrays[key]) != (m,):
                raise RankzcError(f"preprocessing state: {key} has shape {np.shape(arrays[key])}")
        q = np.shape(arrays["quantiles"])
        if len(q) != 2 or q[0] < 2 or q[1] != m:
            raise RankzcError(f"preprocessing state: quantiles has shape {q}")
        pre.binary_ = arrays["binary"].astype(bool)
        pre.log_ = arrays["log"].astype(bool)
        pre.indicator_ = arrays["indicator"].astype(bool)
        for key in ("median", "quantiles", "mean", "scale", "sign"):
            setattr(pre, f"{key}_", np.asarray(arrays[key], dtype=float))
        return pre
