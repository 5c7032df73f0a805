r"""LambdaRank with gradient-boosted trees (LightGBM ``LGBMRanker``).

LambdaRank needs integer relevance levels and queries:

* **relevance**: the continuous label is cut into ``n_levels`` quantile bins of the training
  labels (level 0 = worst), fewer when there are fewer distinct labels; ``label_gain`` has one
  entry per level, linear (:math:`g_l = l`, default) or exponential (:math:`2^l - 1`, LightGBM's
  default, which puts almost all weight on the top level);
* **queries**: the training rows are shuffled (seeded) and cut into chunks of at most
  ``query_size`` rows (LightGBM refuses queries over 10,000 rows; the lambda gradients cost
  :math:`O(n_q^2)` per query);
* **truncation**: ``lambdarank_truncation_level`` is set to the largest query size unless
  ``truncation`` is given, so every pair of a query contributes a gradient. We rank whole
  search spaces and measure Spearman over all architectures, not NDCG@k of the top few; a
  small truncation would learn the top of each query only. There is no evaluation set, so
  ``eval_at`` is unused.

Trees are invariant to monotone transforms, but the same training-only preprocessing as the
other rankers (median imputation with missing indicators) is applied for consistency.

**Few labels: a label-free prior and extremely randomised splits.** Two defaults keep the
model sensible from 20 labels up, and neither reads more than the training rows:

* ``prior="rankagg"``: the boosting does not start from zero but from the label-free
  consensus of the proxies, a :class:`~rankzc.ranking.rankagg.RankAggRanker` fitted on the
  training rows' proxies (no labels), standardised on those rows and scaled by
  ``prior_weight`` (1 = one standard deviation of the consensus is worth one unit of
  LambdaRank score). It enters as LightGBM's ``init_score``, so the trees learn only the
  *corrections* the labels call for, and ``predict`` adds the same prior back:

  .. math:: s(a) = w\,\frac{c(a) - \bar c}{\sigma_c} + \sum_t f_t(a),

  with :math:`c` the consensus score, :math:`\bar c, \sigma_c` its mean and standard
  deviation on the training rows and :math:`f_t` the trees. With few labels the prior
  carries the order; with many, 500 trees overrule it where the labels disagree. Without
  proxy columns (``--features arch``) or with ``prior=None`` there is no prior.
* ``extra_trees=True``: LightGBM's extremely randomised trees (one random threshold per
  feature and node; Geurts et al. 2006), a variance reducer for small and noisy data.

Measured (``benchmarks/rankers2.py``, 5x3 CV, ``--features all``; at 20 / 50 / 100 / all
training labels, before (``prior=None, extra_trees=False``) and with the defaults):
NAS-Bench-201 CIFAR-10 0.816 / 0.872 / 0.924 / 0.963, now 0.869 / 0.904 / 0.928 / 0.963;
the GCN-NAS study 0.676 / 0.738 / 0.753 / 0.792, now 0.727 / 0.763 / 0.778 / 0.803. The
weight 1 was not tuned: a trial of larger weights helped NAS-Bench-201 at 20-50 labels and
cost both benchmarks on all their rows, so the unit scale stays.
"""

from __future__ import annotations

import math

import lightgbm as lgb
import numpy as np
import pandas as pd

from rankzc.errors import RankzcError
from rankzc.ranking.base import BaseRanker, as_matrix, lightgbm_settings, subsample_rows
from rankzc.ranking.lgbtext import safe_model_text
from rankzc.ranking.preprocessing import ProxyPreprocessor
from rankzc.threads import native_threads

__all__ = ["LambdaRankRanker", "relevance_levels", "query_chunks"]

MAX_QUERY = 10_000


def relevance_levels(y: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer levels ``0..L-1`` by training quantile bins of ``y``, and the ``L-1`` inner edges."""
    y = np.asarray(y, dtype=float)
    n_levels = int(max(1, min(n_levels, len(np.unique(y)))))
    edges = np.unique(np.quantile(y, np.linspace(0, 1, n_levels + 1)[1:-1]))
    return np.searchsorted(edges, y, side="right").astype(np.int32), edges


def query_chunks(n: int, query_size: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """A shuffled row order and the sizes of consecutive queries of at most ``query_size`` rows."""
    n_q = max(1, int(np.ceil(n / query_size)))
    order = rng.permutation(n)
    sizes = [len(c) for c in np.array_split(order, n_q)]
    return order, sizes


class LambdaRankRanker(BaseRanker):
    """LightGBM LambdaRank on quantile relevance levels (see the module docstring).

    Args:
        n_estimators, learning_rate, num_leaves, min_child_samples, subsample,
            colsample_bytree, reg_lambda: LightGBM settings.
        n_levels: most relevance levels.
        gain: ``"linear"`` or ``"exponential"`` label gain.
        query_size: most rows per query (below 10,000).
        query_repeats: how many different random partitions into queries the training rows
            appear in (more pairs across chunks, at the cost of more rows).
        truncation: ``lambdarank_truncation_level``; None = the largest query (all pairs).
        n_jobs: LightGBM threads; None = the thread policy's count (:mod:`rankzc.threads`).
        max_rows: most training rows used; above, a seeded random subset of this many
            (bounds the fitting time on large benchmarks; ``None``: every row).
        seed: seed of the query split and of LightGBM.
        prior: ``"rankagg"`` (the label-free consensus of the proxies is the starting
            score; see the module docstring) or ``None``.
        prior_weight: the prior's scale, in standard deviations of the consensus.
        extra_trees: LightGBM's extremely randomised trees.
    """

    name = "lambdarank"

    def __init__(
        self,
        n_estimators: int = 500,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 10,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        n_levels: int = 32,
        gain: str = "linear",
        query_size: int = 20,
        query_repeats: int = 4,
        truncation: int | None = None,
        n_jobs: int | None = None,
        max_rows: int | None = 10_000,
        seed: int = 0,
        prior: str | None = "rankagg",
        prior_weight: float = 1.0,
        extra_trees: bool = True,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.n_levels = n_levels
        self.gain = gain
        self.query_size = query_size
        self.query_repeats = query_repeats
        self.truncation = truncation
        self.n_jobs = n_jobs
        self.max_rows = max_rows
        self.seed = seed
        self.prior = prior
        self.prior_weight = prior_weight
        self.extra_trees = extra_trees

    def _fit_prior(self, X: np.ndarray, names: list[str]) -> np.ndarray:
        """Fit the label-free consensus of the training rows' proxies (``prior_``, None
        without a proxy) and return its offset on those rows."""
        from rankzc.ranking.features import is_proxy_column
        from rankzc.ranking.rankagg import RankAggRanker

        self.prior_ = None
        if self.prior is None or not any(is_proxy_column(n) for n in names):
            return np.zeros(len(X))
        try:
            prior = RankAggRanker().fit(pd.DataFrame(X, columns=names))
        except RankzcError:  # no proxy varies on these rows: nothing to start from
            return np.zeros(len(X))
        c = prior.predict(X)
        sd = float(np.std(c))
        if not np.isfinite(sd) or sd == 0:
            return np.zeros(len(X))
        self.prior_, self.prior_mean_, self.prior_sd_ = prior, float(np.mean(c)), sd
        return self._standardised(c)

    def _standardised(self, c: np.ndarray) -> np.ndarray:
        return float(self.prior_weight) * (c - self.prior_mean_) / self.prior_sd_

    def _offset(self, X: np.ndarray) -> np.ndarray:
        """The prior's contribution to the score of every row (0 without a prior)."""
        if getattr(self, "prior_", None) is None:
            return np.zeros(len(X))
        return self._standardised(self.prior_.predict(X))

    def _threads(self) -> int:
        """LightGBM's thread count (:func:`rankzc.threads.native_threads`)."""
        return native_threads(self.n_jobs, "lambdarank")

    def fit(self, X, y) -> LambdaRankRanker:
        if not 2 <= self.query_size < MAX_QUERY:
            raise RankzcError(f"lambdarank: query_size must be in 2..{MAX_QUERY - 1}")
        if self.gain not in ("linear", "exponential"):
            raise RankzcError(f"lambdarank: gain must be linear or exponential, got {self.gain!r}")
        if self.prior not in (None, "rankagg"):
            raise RankzcError(f"lambdarank: prior must be 'rankagg' or None, got {self.prior!r}")
        X, names = as_matrix(X, fitting=True)
        y = self._check_y(X, y)
        X, y = subsample_rows(X, y, self.max_rows, self.seed)
        self.feature_names_in_ = names
        offset = self._fit_prior(X, names)
        self.pre_ = ProxyPreprocessor(transform="quantile", direction=False).fit(X, y, names)
        Z = self.pre_.transform_matrix(X)
        levels, self.edges_ = relevance_levels(y, self.n_levels)
        n_lv = int(levels.max()) + 1
        gain = np.arange(n_lv, dtype=float) if self.gain == "linear" else 2.0 ** np.arange(n_lv) - 1
        rng = np.random.default_rng(self.seed)
        order, sizes = [], []
        for _ in range(max(1, int(self.query_repeats))):
            o, s = query_chunks(len(y), self.query_size, rng)
            order.append(o)
            sizes += s
        order = np.concatenate(order)
        trunc = int(self.truncation) if self.truncation is not None else int(max(sizes))
        model = lgb.LGBMRanker(
            objective="lambdarank",
            reg_lambda=self.reg_lambda,
            extra_trees=bool(self.extra_trees),
            label_gain=gain.tolist(),
            lambdarank_truncation_level=trunc,
            **lightgbm_settings(self),
        )
        model.fit(Z[order], levels[order], group=sizes, init_score=offset[order])
        self.booster_ = model.booster_
        self.n_levels_ = n_lv
        self.truncation_ = trunc
        return self

    def predict(self, X) -> np.ndarray:
        self._check_fitted("booster_")
        X, _ = as_matrix(X, self.feature_names_in_)
        Z = self.pre_.transform_matrix(X)
        trees = np.asarray(self.booster_.predict(Z, num_threads=self._threads()), dtype=float)
        return trees + self._offset(X)

    def _export(self):
        arrays: dict[str, np.ndarray] = {}
        pconf = self.pre_.export_into(arrays)
        arrays["edges"] = np.asarray(self.edges_, dtype=float)
        config = {"pre": pconf, "n_levels": self.n_levels_, "truncation": self.truncation_}
        config["prior"] = None
        if self.prior_ is not None:
            rconf, rarr, _ = self.prior_._export()
            config["prior"] = {
                "params": self.prior_.get_params(),
                "state": rconf,
                "mean": self.prior_mean_,
                "sd": self.prior_sd_,
            }
            arrays.update({f"prior.{k}": v for k, v in rarr.items()})
        return config, arrays, {"model.txt": self.booster_.model_to_string()}

    def _import(self, config, arrays, texts) -> None:
        self.pre_ = ProxyPreprocessor.from_arrays(config["pre"], arrays)
        self.edges_ = arrays["edges"]
        self.n_levels_ = int(config["n_levels"])
        self.truncation_ = int(config["truncation"])
        self.prior_ = None
        if config.get("prior"):  # absent in files written before the prior existed
            from rankzc.ranking.rankagg import RankAggRanker

            p = config["prior"]
            self.prior_ = RankAggRanker(**p["params"])
            self.prior_.feature_names_in_ = list(self.feature_names_in_)
            self.prior_._import(
                p["state"], {k[6:]: v for k, v in arrays.items() if k.startswith("prior.")}, {}
            )
            self.prior_mean_, self.prior_sd_ = float(p["mean"]), float(p["sd"])
            # sd 0 (or non-finite) would score every architecture NaN
            if not (math.isfinite(self.prior_sd_) and self.prior_sd_ > 0):
                raise RankzcError(
                    f"lambdarank: prior sd must be a positive finite number, got {p['sd']!r}"
                )
            if not math.isfinite(self.prior_mean_):
                raise RankzcError(f"lambdarank: prior mean must be finite, got {p['mean']!r}")
            weight = self.prior_weight
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise RankzcError("lambdarank: prior_weight must be a number")
            if not math.isfinite(weight):
                raise RankzcError(f"lambdarank: prior_weight must be finite, got {weight!r}")
        # checked and rebuilt first: LightGBM crashes on hostile model text
        n_inputs = len(self.pre_.feature_names_out_)
        self.booster_ = lgb.Booster(model_str=safe_model_text(texts["model.txt"], n_inputs))
