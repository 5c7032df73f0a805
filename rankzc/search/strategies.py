r"""Search strategies: which candidate to train next.

Every strategy is a pure function of the search state: :meth:`Strategy.propose` sees the
pool, what has been trained so far (in order, with labels), the search seed and the step
number, and returns the next candidates. Any randomness is drawn from a generator seeded
with ``(seed, step)``, so a search rerun after an interruption makes the same choices (the
live loop also records every planned batch before training it).

Names (``--strategy``):

* ``random``: candidates in a seeded random order (the baseline of every NAS paper);
* ``proxy:<name>``: best proxy score first (direction from the proxy registry);
  ``proxy:auto``: the proxy chosen without labels (:func:`label_free_proxy`);
* ``depth``: deepest first (with ``proxy:params`` and ``proxy:flops``, the free orders;
  :func:`free_references`);
* ``vote[:p1,p2,...]``: the study's majority vote without labels: every candidate plays
  every other pool member on the chosen proxies (default ``fisher,synflow,zen``, the
  study's best subset) and is ranked by its Copeland score (wins - losses);
* ``wam[:p1,...]``: equal-weight mean of the min-max normalised proxies (default: all
  pool proxies), each oriented by its registered direction (no labels, so no Spearman
  weights);
* ``ranker:<file.rzc>``: a fitted ranker (``rankzc fit``) ranks the pool;
* ``online[:<model>]``: until ``init`` labels exist, the warm start
  (:func:`warm_start_scores`: the free size order, ties as in the references);
  then, before every batch, the model that ranks the trained rows best (held-out pairwise
  accuracy) among the warm start, the consensus, every single feature with its sign from
  the trained rows, ``wam`` and, from ``learn_after`` labels, a ranker of the ranking
  layer (default ``lambdarank``) ranks the untrained ones (see :class:`OnlineStrategy`);
  ``online[:<model>]:ucb`` and ``online[:<model>]:thompson`` pick with the uncertainty
  of that choice instead of its best first (acquisition over a bootstrap ensemble);
* ``evolve[:<model>]``: local search. After the warm start, it proposes neighbours of the
  ``parents`` best trained architectures (one switch flipped, or two blocks added or
  removed, as depths step by two) and trains the one the current ranker scores best. In
  live mode the neighbours are new architectures, scored with proxies when proposed (the
  space is far too big to enumerate); in simulation they are the untrained pool members
  nearest (Hamming distance of the encoding) to the parents.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rankzc.errors import RankzcError
from rankzc.search.pool import Pool

#: The study's best majority-vote subset (README, "Combining proxies").
VOTE_DEFAULT = ("fisher", "synflow", "zen")
#: how ``online`` picks among the untrained once its model is chosen
ACQUISITIONS = ("greedy", "ucb", "thompson")
ONLINE_DEFAULT_MODEL = "lambdarank"


@dataclass
class Context:
    """What a strategy sees when it proposes (see the module docstring)."""

    pool: Pool
    candidates: list[str]
    trained: list[str]
    labels: dict[str, float]
    seed: int
    depths: tuple[int, ...] = (4, 6, 8, 10)
    #: live mode: score new architectures, add them to the pool, return the ids of those
    #: that may be trained (within the limits, not trained yet)
    add_candidates: Callable[[list], list[str]] | None = None

    @property
    def step(self) -> int:
        return len(self.trained)

    def rng(self, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([int(self.seed) % 2**32, self.step, salt])


def tie_break(ids: Sequence[str], seed: int) -> np.ndarray:
    """A seeded pseudo-random key per arch id, independent of the pool's order and size."""
    return np.array(
        [int(hashlib.sha256(f"{seed}:{a}".encode()).hexdigest()[:12], 16) for a in ids],
        dtype=float,
    )


def top_k(ids: Sequence[str], scores: np.ndarray, k: int, seed: int) -> list[str]:
    """The ``k`` ids with the highest score (NaN last), ties in seeded random order."""
    if not len(ids) or k <= 0:
        return []
    s = np.asarray(scores, dtype=float)
    s = np.where(np.isfinite(s), s, -np.inf)
    order = np.lexsort((tie_break(ids, seed), -s))
    return [ids[i] for i in order[:k]]


def _direction(name: str) -> float:
    from rankzc.proxies.registry import registered

    spec = registered().get(name)
    return 1.0 if spec is None or spec.higher_is_better else -1.0


def _oriented(pool: Pool, names: Sequence[str]) -> np.ndarray:
    X = pool.proxy_matrix(names).to_numpy(dtype=float)
    return X * np.array([_direction(n) for n in names])


def label_free_scores(pool: Pool, proxies: Sequence[str] | None = None) -> pd.Series:
    """The label-free order of the pool (higher = train first); the ONE place it is chosen.

    Uses the ranking layer's label-free model ``rankagg`` when it is registered; until
    then, the mean normalised rank over the proxies, each oriented by its registered
    direction (the fallback).
    """
    from rankzc.ranking.registry import RANKERS, make_ranker

    names = list(proxies if proxies is not None else pool.proxies)
    if not names:
        return pd.Series(0.0, index=pool.table.index)
    X = pool.proxy_matrix(names)
    if "rankagg" in RANKERS:
        est = make_ranker("rankagg")
        if "directions" in est.get_params():
            est.set_params(directions={n: _direction(n) for n in names})
        return pd.Series(est.fit(X, None).predict(X), index=X.index)
    ranks = (X * [_direction(n) for n in names]).rank(pct=True)  # fallback
    return ranks.mean(axis=1, skipna=True).fillna(0.0)


# ---------------------------------------------------------------------------- base
@dataclass
class Strategy:
    """Base: a name, the proxies it reads (for the cost split) and ``propose``."""

    name: str
    reads: list[str] = field(default_factory=list)
    #: most candidates proposed at once (0 = any number)
    batch: int = 0

    def check(self, pool: Pool) -> None:
        """Raise :class:`RankzcError` when the strategy cannot run on ``pool``."""

    def propose(self, ctx: Context, k: int) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class OrderStrategy(Strategy):
    """Train in a fixed order of the pool (computed once per pool)."""

    def scores(self, pool: Pool) -> pd.Series:  # pragma: no cover - abstract
        raise NotImplementedError

    def propose(self, ctx: Context, k: int) -> list[str]:
        key = ("order", self.name)
        if key not in ctx.pool.cache:  # once per pool (the cache empties when it grows)
            ctx.pool.cache[key] = self.scores(ctx.pool)
        s = ctx.pool.cache[key].reindex(ctx.candidates).to_numpy(dtype=float)
        return top_k(ctx.candidates, s, k, ctx.seed)


@dataclass
class RandomStrategy(OrderStrategy):
    def scores(self, pool: Pool) -> pd.Series:
        return pd.Series(0.0, index=pool.table.index)  # every tie is broken at random


@dataclass
class ProxyStrategy(OrderStrategy):
    proxy: str = ""

    def check(self, pool: Pool) -> None:
        pool.check_proxies([self.proxy], f"--strategy {self.name}")

    def scores(self, pool: Pool) -> pd.Series:
        return pd.Series(_oriented(pool, [self.proxy])[:, 0], index=pool.table.index)


@dataclass
class DepthStrategy(OrderStrategy):
    """``depth``: deepest first (a free order, like params or flops)."""

    def check(self, pool: Pool) -> None:
        if not has_depth(pool):
            raise RankzcError(f"--strategy {self.name}: the pool's architectures have no depth")

    def scores(self, pool: Pool) -> pd.Series:
        return pool.table["depth"].astype(float)


def label_free_proxy(pool: Pool) -> str | None:
    """The proxy chosen without labels: the one (size measures aside) whose oriented scores
    agree best (Spearman) with the label-free consensus of the pool."""
    from rankzc.stats import spearman

    names = [p for p in pool.proxies if p not in SIZE_COLUMNS]
    names = [p for p in names if pool.table[p].nunique(dropna=True) > 1]
    if not names:
        return None
    cons = label_free_scores(pool).to_numpy(dtype=float)
    rho = {p: spearman(_oriented(pool, [p])[:, 0], cons) for p in names}
    return max(names, key=lambda p: rho[p] if math.isfinite(rho[p]) else -2.0)


def free_references(pool: Pool) -> list[str]:
    """The free orders every simulated search is compared with: params, flops and depth
    (where the pool has them) and the best single proxy chosen without labels."""
    out = [f"proxy:{c}" for c in SIZE_COLUMNS if c in pool.proxies and pool.table[c].nunique() > 1]
    if has_depth(pool):
        out.append("depth")
    if label_free_proxy(pool) is not None:
        out.append("proxy:auto")
    return out


@dataclass
class VoteStrategy(OrderStrategy):
    def check(self, pool: Pool) -> None:
        pool.check_proxies(self.reads, f"--strategy {self.name}")

    def scores(self, pool: Pool) -> pd.Series:
        X = _oriented(pool, self.reads)
        out = np.empty(len(X))
        step = max(1, 2_000_000 // max(1, X.size))
        for s in range(0, len(X), step):
            d = X[s : s + step, None, :] - X[None, :, :]
            net = np.nansum(np.sign(d), axis=2)
            out[s : s + step] = np.sum(net > 0, axis=1) - np.sum(net < 0, axis=1)
        return pd.Series(out / max(1, len(X) - 1), index=pool.table.index)


@dataclass
class WamStrategy(OrderStrategy):
    def check(self, pool: Pool) -> None:
        pool.check_proxies(self.reads, f"--strategy {self.name}")

    def scores(self, pool: Pool) -> pd.Series:
        X = _oriented(pool, self.reads)
        lo, hi = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        Z = (X - lo) / span
        Z = np.where(np.isnan(Z), np.nanmedian(Z, axis=0), Z)
        return pd.Series(Z.mean(axis=1), index=pool.table.index)


@dataclass
class RankerStrategy(OrderStrategy):
    path: Path = Path()
    fitted: object = None

    def check(self, pool: Pool) -> None:
        fitted = self.fitted
        if fitted.space != pool.space:
            raise RankzcError(
                f"--strategy {self.name}: the ranker was fitted on space {fitted.space!r}, "
                f"the pool is {pool.space!r}"
            )
        pool.check_proxies(fitted.proxies, f"--strategy {self.name}")

    def scores(self, pool: Pool) -> pd.Series:
        return self.fitted.score_table(pool.table)


# ------------------------------------------------------------ model-based strategies
def _small_data_params(model: str, n: int, seed: int) -> dict:
    """Parameters that let a ranker learn from a handful of labels."""
    from rankzc.ranking.registry import ranker_class

    params = ranker_class(model)().get_params()
    out = {}
    if "seed" in params:
        out["seed"] = int(seed) % 2**31
    if model == "lambdarank":
        out.update(min_child_samples=max(2, min(10, n // 5)), n_estimators=200)
        # No label-free prior and no extremely randomised trees here: the trained rows were
        # picked in the label-free order, which is already a feature (zero_cost_order) and
        # the tie-break, so a prior refitted on them counts it twice and keeps the search
        # on the consensus plateau. Measured (benchmarks/search.py, study, 5 seeds): regret
        # after 20 / 50 trained 0.377 / 0.105 with both, 0.255 / 0.133 without.
        out.update(prior=None, extra_trees=False)
    return out


@dataclass
class PredictorStrategy(Strategy):
    """Shared by ``online`` and ``evolve``: the warm start and the refitted ranker."""

    model: str = ONLINE_DEFAULT_MODEL
    init: int = 5

    def check(self, pool: Pool) -> None:
        from rankzc.ranking.registry import ranker_class

        ranker_class(self.model)  # unknown names fail here
        if self.init < 2:
            raise RankzcError(f"--strategy {self.name}: init must be >= 2, got {self.init}")

    def zero_cost(self, pool: Pool) -> pd.Series:
        if "zero_cost" not in pool.cache:
            pool.cache["zero_cost"] = label_free_scores(pool)
        return pool.cache["zero_cost"]

    def features(self, pool: Pool) -> pd.DataFrame:
        X = pd.concat([pool.proxy_matrix(), pool.arch_matrix().set_axis(pool.table.index)], axis=1)
        X["zero_cost_order"] = self.zero_cost(pool)
        return X

    def predictor(self, ctx: Context) -> Callable[[list[str]], np.ndarray] | None:
        """A function scoring candidate ids, fitted on the labels so far (None: too few)."""
        from rankzc.ranking.registry import make_ranker

        labelled = [a for a in ctx.trained if math.isfinite(ctx.labels.get(a, math.nan))]
        if len(labelled) < self.init:
            return None
        y = np.array([ctx.labels[a] for a in labelled])
        if np.ptp(y) == 0:
            return None
        X = self.features(ctx.pool)
        seed = int(ctx.rng(11).integers(2**31))
        try:
            est = make_ranker(self.model, **_small_data_params(self.model, len(y), seed))
            est.fit(X.loc[labelled], y)
        except RankzcError:
            return None  # e.g. no feature varies with the labels yet: keep the warm start
        return lambda ids: np.asarray(est.predict(X.loc[list(ids)]), dtype=float)

    def order(self, ctx: Context, ids: list[str], k: int, score) -> list[str]:
        zc = self.zero_cost(ctx.pool).reindex(ids).to_numpy(dtype=float)
        if score is None:
            return top_k(ids, zc, k, ctx.seed)
        s = score(ids)
        s = np.where(np.isfinite(s), s, -np.inf)
        # ties of the model (e.g. a tree that cannot split yet) follow the label-free order
        order = np.lexsort((tie_break(ids, ctx.seed), -np.nan_to_num(zc, nan=-np.inf), -s))
        return [ids[i] for i in order[:k]]


#: columns that measure model size, the free orders a user gets without any proxy
SIZE_COLUMNS = ("params", "flops")


def size_column(pool: Pool) -> str | None:
    """The pool's size measure (params, else flops), if it has one that varies."""
    for col in SIZE_COLUMNS:
        if col in pool.proxies and pool.table[col].nunique(dropna=True) > 1:
            return col
    return None


def has_depth(pool: Pool) -> bool:
    return "depth" in pool.table and pool.table["depth"].nunique(dropna=True) > 1


def _order_rank(ids: Sequence[str], keys: Sequence[np.ndarray], seed: int) -> np.ndarray:
    """Position (0 = first) of every id in the order by ``keys`` (first key first, higher
    first, NaN last), remaining ties in seeded random order."""
    cols = [tie_break(ids, seed)]
    for k in reversed(keys):
        k = np.asarray(k, dtype=float)
        cols.append(-np.where(np.isfinite(k), k, -np.inf))
    order = np.lexsort(tuple(cols))
    pos = np.empty(len(ids))
    pos[order] = np.arange(len(ids))
    return pos


def warm_start_scores(pool: Pool, seed: int = 0) -> pd.Series:
    """The label-free warm start of ``online`` (higher = train first).

    The size order a user gets for free: deepest first where the space has depths, else
    the largest (params, else flops) first, its ties in the same seeded random order as
    the ``depth`` and ``proxy:params`` references (:func:`top_k`); the label-free
    consensus (:func:`label_free_scores`) where the pool has no size measure. Until labels
    decide otherwise, ``online`` therefore trains exactly what the free order trains.
    (Rounds 5 and 6 interleaved the consensus with the size order: on NAS-Bench-201 the
    params order reached regret 0.09 after 10 trained, the interleave 0.30, because half
    of the first picks followed a consensus whose top 20 hold none of the best.)
    """
    ids = list(pool.table.index)
    col = size_key(pool)
    if col is None:
        return label_free_scores(pool).reindex(ids)
    key = pool.table[col].to_numpy(dtype=float)
    return pd.Series(-_order_rank(ids, [key], seed), index=ids)


def size_key(pool: Pool) -> str | None:
    """The column of the warm start's size order (depth, else params, else flops)."""
    return "depth" if has_depth(pool) else size_column(pool)


def _ranks(M: np.ndarray) -> np.ndarray:
    """Column-wise average ranks (rows = observations)."""
    from scipy.stats import rankdata

    return rankdata(M, axis=0)


def _spearman_signs(X: np.ndarray, y: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """+1/-1 per column: the sign of its Spearman correlation with ``y`` (prior on 0)."""
    if len(y) < 3:
        return prior.copy()
    R = _ranks(X) - (len(y) + 1) / 2
    ry = _ranks(y[:, None])[:, 0] - (len(y) + 1) / 2
    c = R.T @ ry
    return np.where(c > 0, 1.0, np.where(c < 0, -1.0, prior))


def heldout_pairwise(
    y: np.ndarray, fit: Callable[[np.ndarray], np.ndarray], folds: int
) -> np.ndarray:
    """Cross-validated pairwise accuracy of one or more models on the labelled rows.

    The rows are split into ``folds`` folds (row ``i`` in fold ``i % folds``; every row
    alone when ``folds >= len(y)``: leave-one-out). For each fold, ``fit(train_index)``
    returns predictions of the ``n`` labelled rows followed by those of ``r >= 0``
    reference rows (shape ``(n + r,)`` or ``(n + r, m)`` for ``m`` models). Each held-out
    row gets its **out-of-fold percentile**: the share of the reference predictions
    below its own (ties count half); without reference rows, of the labelled rows'
    predictions. Every pair of labelled rows with different labels then counts 1 when
    the percentiles order it like the labels, 1/2 when they tie, 0 otherwise. Returns
    the accuracy per model (NaN without a pair).

    A row is never compared with a prediction made by a model fitted on its own label:
    comparing a held-out row with the training rows' fitted values rewards a model that
    memorises its rows (one that reproduces the training labels and predicts their mean
    elsewhere scores about 0.75 with no signal at all).
    """
    n = len(y)
    k = max(2, min(int(folds), n))
    fold = np.arange(n) % k
    Q = None
    for f in range(k):
        test = np.nonzero(fold == f)[0]
        train = np.nonzero(fold != f)[0]
        P = np.asarray(fit(train), dtype=float)
        P = P[:, None] if P.ndim == 1 else P
        if Q is None:
            Q = np.full((n, P.shape[1]), np.nan)
        ref = P[n:] if len(P) > n else P[:n]
        below = (ref[None, :, :] < P[test][:, None, :]).sum(axis=1)
        same = (ref[None, :, :] == P[test][:, None, :]).sum(axis=1)
        Q[test] = (below + 0.5 * same) / len(ref)
    dy = np.sign(y[:, None] - y[None, :])
    dq = np.sign(Q[:, None, :] - Q[None, :, :])
    ok = np.triu(dy != 0, 1)
    cnt = ok.sum()
    if not cnt:
        return np.full(Q.shape[1], np.nan)
    agree = np.where(dq == 0, 0.5, (dq == dy[:, :, None]).astype(float))
    return (agree * ok[:, :, None]).sum(axis=(0, 1)) / cnt


@dataclass
class ColumnScorer:
    """Column ``j`` of a candidate model: ``self(rows)`` fits it on the trained rows
    ``rows`` and returns a scorer of pool positions (None if it cannot be fitted)."""

    fit: Callable
    j: int

    def __call__(self, rows: np.ndarray):
        try:
            scorer = self.fit(rows)
        except (RankzcError, ValueError):
            return None
        j = self.j

        def score(p):
            s = np.asarray(scorer(p), dtype=float)
            return s[:, j] if s.ndim == 2 else s

        return score


#: most pool rows that place held-out predictions (:meth:`OnlineStrategy.reference`)
REFERENCE_ROWS = 256


@dataclass
class OnlineStrategy(PredictorStrategy):
    """``online``: warm start, then the model that ranks the trained rows best.

    Until ``init`` labels exist, candidates come in the warm-start order
    (:func:`warm_start_scores`). Then, before every batch, each candidate model is scored by
    its held-out pairwise accuracy on the trained rows (:func:`heldout_pairwise`,
    ``folds`` folds, leave-one-out while fewer rows) and the best one ranks the untrained
    candidates (ties in the warm-start order). The candidates, in order of preference on a
    tie: the warm start itself and the consensus (no labels); every single feature (proxy,
    depth) with the sign of its Spearman correlation on the training rows; ``wam``
    (Spearman-weighted mean of those features); and, once ``learn_after`` labels exist,
    the learned ranker ``model`` on proxies, architecture encoding and the label-free
    order. Every candidate but the incumbent (:meth:`incumbent`, the model the last batch
    followed) and the warm start must beat the others by :meth:`switch_margin` (``margin``,
    or more while labels are too few to tell one of the challengers from chance), so a
    handful of labels neither throws away a good free order nor flips between models; going
    back to the warm start needs no proof. The warm start is judged by its size key (pairs
    within one level tie), not by its seeded tie order. While the trained rows
    hold one level of the size key, the chosen model orders candidates only within levels
    (:meth:`rank`).

    **Acquisition.** ``greedy`` (default) trains the chosen model's best candidates. With
    ``ucb`` or ``thompson`` the chosen model is refitted on ``replicates`` bootstrap
    resamples of the trained rows, and each replicate ranks the untrained candidates
    (percentile ranks :math:`r_b(a) \\in (0, 1]`). ``ucb`` takes the candidates with the
    highest :math:`\\bar r(a) + \\beta\\, s_r(a)` (mean and standard deviation over the
    replicates), and keeps a batch diverse: after each pick, every candidate at Hamming
    distance :math:`d` from it (architecture encoding) loses
    :math:`\\text{diversity} \\cdot e^{-d/2}` for the rest of the batch. ``thompson``
    fills each slot of a batch with the best candidate of one replicate drawn without
    replacement (Thompson sampling from the bootstrap posterior; Osband & Van Roy 2015).
    While the chosen model is the warm start or the consensus (no labels), there is
    nothing to be uncertain about and every acquisition is greedy.
    """

    folds: int = 5
    learn_after: int = 15
    margin: float = 0.25
    #: chance of any switch without signal (see :meth:`switch_margin`)
    alpha: float = 0.1
    #: ``greedy`` (the chosen model's best first), ``ucb`` or ``thompson``
    acquisition: str = "greedy"
    #: bootstrap replicates of the chosen model (``ucb``, ``thompson``)
    replicates: int = 8
    #: ``ucb``: weight of the replicates' standard deviation of the percentile rank
    beta: float = 1.0
    #: ``ucb``: most acquisition a pick takes from its neighbours in the same batch
    diversity: float = 0.25
    #: before each batch: (seed, labels, model chosen, its criterion after any margin,
    #: the incumbent), for reports and tests
    chosen: list = field(default_factory=list, repr=False)

    def warm(self, pool: Pool, seed: int) -> pd.Series:
        key = ("warm", seed)
        if key not in pool.cache:
            pool.cache[key] = warm_start_scores(pool, seed)
        return pool.cache[key]

    def simple_columns(self, pool: Pool) -> list[str]:
        if "simple_cols" not in pool.cache:
            cols = [c for c in pool.proxies if pool.table[c].nunique(dropna=True) > 1]
            if has_depth(pool):
                cols.append("depth")
            pool.cache["simple_cols"] = cols
        return pool.cache["simple_cols"]

    def simple_matrix(self, pool: Pool) -> np.ndarray:
        """The single features, missing values at the column median (for fitting)."""
        if "simple_X" not in pool.cache:
            X = pool.table[self.simple_columns(pool)].to_numpy(dtype=float)
            med = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0)
            pool.cache["simple_X"] = np.where(np.isfinite(X), X, med)
        return pool.cache["simple_X"]

    def candidates(self, ctx: Context, labelled: list[str]):
        """``[(names, fit)]``: ``fit(rows)`` fits on ``labelled[rows]`` and returns a
        scorer of pool positions (one column per name: the singles come as one block)."""
        pool = ctx.pool
        # the warm start judged by its claim (larger first), not its seeded tie order:
        # within a level of the size key its pairs count as ties (1/2), not as chance
        key = size_key(pool)
        warm = pool.table[key] if key is not None else self.warm(pool, ctx.seed)
        fixed = np.column_stack(
            [
                warm.to_numpy(dtype=float),
                self.zero_cost(pool).reindex(pool.table.index).to_numpy(dtype=float),
            ]
        )
        cols = self.simple_columns(pool)
        Xall = self.simple_matrix(pool)
        pos = pool.table.index.get_indexer(labelled)
        y = np.array([ctx.labels[a] for a in labelled])
        prior = np.array([_direction(c) if c != "depth" else 1.0 for c in cols])
        out = [(["warm start", "consensus"], lambda rows: lambda p: fixed[p])]

        def singles(rows):
            sign = _spearman_signs(Xall[pos[rows]], y[rows], prior)
            return lambda p: Xall[p] * sign

        def wam(rows):  # Spearman-weighted mean of min-max normalised features
            if len(rows) < 3:
                return lambda p: np.zeros(len(p))
            R = _ranks(Xall[pos[rows]]) - (len(rows) + 1) / 2
            ry = _ranks(y[rows][:, None])[:, 0] - (len(rows) + 1) / 2
            den = np.sqrt((R**2).sum(axis=0) * (ry**2).sum())
            rho = np.divide(R.T @ ry, den, out=np.zeros(R.shape[1]), where=den > 0)
            lo, hi = Xall[pos[rows]].min(axis=0), Xall[pos[rows]].max(axis=0)
            span = np.where(hi > lo, hi - lo, 1.0)
            return lambda p: ((Xall[p] - lo) / span) @ rho

        if cols:
            out.append((list(cols), singles))
            out.append((["wam"], wam))
        if len(labelled) >= self.learn_after:
            from rankzc.ranking.registry import make_ranker

            X = self.features(pool)
            seed = int(ctx.rng(11).integers(2**31))

            def learned(rows):
                est = make_ranker(self.model, **_small_data_params(self.model, len(rows), seed))
                est.fit(X.iloc[pos[rows]], y[rows])
                return lambda p: np.asarray(est.predict(X.iloc[p]), dtype=float)

            out.append(([self.model], learned))
        return out, pos, y

    def choose(self, ctx: Context, labelled: list[str]):
        """The candidate with the best held-out pairwise accuracy: a scorer of positions.

        Every candidate but the incumbent (:meth:`incumbent`: the model the last pick
        followed) and the warm start pays :meth:`switch_margin`, so a handful of labels
        neither leaves a good free order nor flips between models (each switch restarts
        from another model's top).
        """
        cands, pos, y = self.candidates(ctx, labelled)
        incumbent = self.incumbent(ctx, labelled, cands)
        margin = self.switch_margin(len(y), sum(len(names) for names, _ in cands) - 1)
        # out-of-fold predictions are placed among the same pool rows' predictions
        at = np.concatenate([pos, self.reference(ctx.pool, ctx.seed)])
        best = (-np.inf, "warm start", None, 0)
        for names, fit in cands:

            def preds(rows, fit=fit, m=len(names)):
                try:
                    return fit(rows)(at)
                except (RankzcError, ValueError):
                    return np.zeros((len(at), m))  # cannot fit on these rows: no order

            accs = heldout_pairwise(y, preds, self.folds)
            for j, name in enumerate(names):
                free = name in (incumbent, "warm start")  # going home needs no proof
                acc = float(accs[j]) - (0.0 if free else margin)
                if math.isfinite(acc) and acc > best[0]:
                    best = (acc, name, fit, j)
        self.chosen.append((ctx.seed, len(labelled), best[1], best[0], incumbent))
        if best[2] is None:
            return None
        return ColumnScorer(best[2], best[3])

    def reference(self, pool: Pool, seed: int) -> np.ndarray:
        """Pool positions (at most ``REFERENCE_ROWS``, seeded) among whose predictions a
        held-out row's prediction is placed (:func:`heldout_pairwise`)."""
        key = ("reference", seed)
        if key not in pool.cache:
            n = len(pool.table)
            rng = np.random.default_rng([seed, 41])
            pool.cache[key] = np.sort(rng.permutation(n)[:REFERENCE_ROWS])
        return pool.cache[key]

    def switch_margin(self, n: int, challengers: int) -> float:
        """What a challenger must beat the incumbent by, with ``n`` labels and
        ``challengers`` models competing: ``margin``, or more where ``n`` is small enough
        that the best of the challengers without any signal would clear it.

        Under no signal a model's pairwise accuracy on ``n`` rows is :math:`(1 + \\tau)/2`
        with Kendall's :math:`\\tau` of standard deviation
        :math:`\\sqrt{2(2n+5) / (9n(n-1))}`. The margin is at least the one-sided
        :math:`1 - \\alpha/(2mL)` normal quantile of that spread: ``alpha`` shared
        (Bonferroni) by the :math:`m` challengers, each with the sign it was given on the
        same rows (two chances), and by :math:`L = 1 + \\log_2(n / \\text{init})` looks
        (one per doubling of the labels: successive looks share most of their rows).
        On the study (all of the first labels of depth 10, where no proxy orders the
        labels) a fixed 0.25 let one of 17 chance orders replace the depth order in 7 of
        10 searches at 5 labels, and later switches cost 0.03 points of regret at 20
        trained; with this margin online trains there what the depth order trains, and a
        feature that orders 5 labels perfectly among 5 challengers still wins at once.
        """
        from scipy.stats import norm

        if n < 2 or challengers < 1:
            return self.margin
        sd = 0.5 * math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))
        looks = 1.0 + math.log2(max(n, self.init) / self.init)
        return max(self.margin, float(norm.isf(self.alpha / (2 * challengers * looks))) * sd)

    def incumbent(self, ctx: Context, labelled: list[str], cands) -> str:
        """The model the last batch followed, recomputed from the search state alone (so a
        resumed search chooses as an uninterrupted one): the first candidate, in order of
        preference, that, fitted on the labels before that batch, ranked exactly that
        batch first among the candidates of its step; else the warm start."""
        last = ctx.trained[-max(1, self.batch) :]
        rows = np.nonzero(~np.isin(labelled, last))[0]
        before = [labelled[i] for i in rows]
        if not last or len(before) < self.init or len(before) == len(labelled):
            return "warm start"
        ids = [*ctx.candidates, *last]
        at = ctx.pool.table.index.get_indexer(ids)
        warm = self.warm(ctx.pool, ctx.seed).reindex(ids).to_numpy(dtype=float)
        for names, fit in cands:
            try:
                M = np.asarray(fit(rows)(at), dtype=float)
            except (RankzcError, ValueError):
                continue
            M = M[:, None] if M.ndim == 1 else M
            for j, name in enumerate(names):
                if set(self.rank(ctx, ids, M[:, j], warm, before)[: len(last)]) == set(last):
                    return name
        return "warm start"

    def rank(
        self, ctx: Context, ids: list[str], s: np.ndarray, warm: np.ndarray, labelled
    ) -> list[str]:
        """``ids`` in the chosen model's order (scores ``s``; ties in the warm-start order).

        While the trained rows hold one level of the size key (e.g. all of depth 10,
        where the warm start ties them all and no model can have been judged across
        levels), the model orders only within the size order's levels."""
        keys = [s, warm]
        col = size_key(ctx.pool)
        if col is not None and ctx.pool.table.loc[list(labelled), col].nunique() < 2:
            keys.insert(0, ctx.pool.table.loc[ids, col].to_numpy(dtype=float))
        return [ids[i] for i in np.argsort(_order_rank(ids, keys, ctx.seed))]

    def ensemble(self, ctx: Context, labelled: list[str], fit, cand_pos: np.ndarray) -> np.ndarray:
        """``(replicates, candidates)`` percentile ranks of the candidates (1 = best) under
        the chosen model ``fit`` (a :class:`ColumnScorer`) refitted on ``replicates``
        bootstrap resamples of the trained rows."""
        rng = ctx.rng(31)
        n = len(labelled)
        out = []
        for _ in range(self.replicates):
            rows = np.sort(rng.integers(0, n, n))
            score = fit(rows)
            if score is None:
                continue  # a resample the model cannot fit on adds no replicate
            s = np.asarray(score(cand_pos), dtype=float)
            s = np.where(np.isfinite(s), s, -np.inf)
            out.append(_ranks(s[:, None])[:, 0] / len(s))
        return np.array(out).reshape(len(out), len(cand_pos))

    def acquire(self, ctx: Context, labelled: list[str], fit, k: int, warm: np.ndarray):
        """``k`` candidates by upper confidence bound or Thompson sampling over the
        bootstrap ensemble (see :class:`OnlineStrategy`); None if no replicate fitted."""
        ids = ctx.candidates
        R = self.ensemble(ctx, labelled, fit, ctx.pool.table.index.get_indexer(ids))
        if len(R) < 2:
            return None
        ties = (tie_break(ids, ctx.seed), -warm)
        picked: list[int] = []
        if self.acquisition == "thompson":
            draws = ctx.rng(37).permutation(len(R))
            for slot in range(min(k, len(ids))):
                a = R[draws[slot % len(R)]].copy()
                a[picked] = -np.inf
                picked.append(int(np.lexsort((*ties, -a))[0]))
            return [ids[i] for i in picked]
        a = R.mean(axis=0) + self.beta * R.std(axis=0, ddof=1)
        A = ctx.pool.arch_matrix().set_axis(ctx.pool.table.index).loc[ids].to_numpy(float)
        penalty = np.zeros(len(ids))
        for _ in range(min(k, len(ids))):
            b = a - penalty
            b[picked] = -np.inf
            i = int(np.lexsort((*ties, -b))[0])
            picked.append(i)
            # diversity: candidates close to a pick (Hamming distance of the encoding)
            # lose up to ``diversity`` of acquisition for the rest of the batch
            near = np.exp(-np.abs(A - A[i]).sum(axis=1) / 2.0)
            penalty = np.maximum(penalty, self.diversity * near)
        return [ids[i] for i in picked]

    def propose(self, ctx: Context, k: int) -> list[str]:
        labelled = [a for a in ctx.trained if math.isfinite(ctx.labels.get(a, math.nan))]
        warm = self.warm(ctx.pool, ctx.seed).reindex(ctx.candidates).to_numpy(dtype=float)
        ys = [ctx.labels[a] for a in labelled]
        if len(labelled) < self.init or np.ptp(ys) == 0:
            return top_k(ctx.candidates, warm, min(k, max(1, self.init - len(labelled))), ctx.seed)
        chosen = self.choose(ctx, labelled)
        if chosen is None:
            return top_k(ctx.candidates, warm, k, ctx.seed)
        if self.acquisition != "greedy":
            picked = self.acquire(ctx, labelled, chosen, k, warm)
            if picked is not None:
                return picked
        score = chosen(np.arange(len(labelled)))
        if score is None:
            return top_k(ctx.candidates, warm, k, ctx.seed)
        s = np.asarray(score(ctx.pool.table.index.get_indexer(ctx.candidates)), dtype=float)
        return self.rank(ctx, ctx.candidates, s, warm, labelled)[:k]


@dataclass
class EvolveStrategy(PredictorStrategy):
    parents: int = 3
    neighbours: int = 20

    def propose(self, ctx: Context, k: int) -> list[str]:
        labelled = [a for a in ctx.trained if math.isfinite(ctx.labels.get(a, math.nan))]
        if len(labelled) < self.init:
            return self.order(ctx, ctx.candidates, min(k, self.init - len(labelled)), None)
        parents = sorted(labelled, key=lambda a: -ctx.labels[a])[: self.parents]
        if ctx.add_candidates is not None:
            ids = ctx.add_candidates(self.mutants(ctx, parents))
        else:
            ids = self.nearest(ctx, parents)
        if not ids:  # no neighbour left: fall back to the whole pool
            ids = ctx.candidates
        return self.order(ctx, ids, k, self.predictor(ctx))

    def nearest(self, ctx: Context, parents: list[str]) -> list[str]:
        if not ctx.candidates:
            return []
        A = ctx.pool.arch_matrix().set_axis(ctx.pool.table.index)
        P = A.loc[parents].to_numpy(dtype=float)
        C = A.loc[ctx.candidates].to_numpy(dtype=float)
        dist = np.abs(C[:, None, :] - P[None, :, :]).sum(axis=2).min(axis=1)
        order = np.lexsort((tie_break(ctx.candidates, ctx.seed), dist))
        return [ctx.candidates[i] for i in order[: self.neighbours]]

    def mutants(self, ctx: Context, parents: list[str]) -> list:
        from rankzc.space import Architecture

        rng = ctx.rng(23)
        archs = [Architecture.parse(str(ctx.pool.table.at[p, "encoding"])) for p in parents]
        seen: set[str] = set()
        out = []
        for _ in range(self.neighbours * 20):
            if len(out) >= self.neighbours:
                break
            child = mutate(archs[int(rng.integers(len(archs)))], rng, ctx.depths)
            if child is not None and str(child) not in seen:
                seen.add(str(child))
                out.append(child)
        return out


def mutate(arch, rng: np.random.Generator, depths: Sequence[int]):
    """One neighbour of a GCN-NAS architecture: a switch flipped, or two blocks added/removed.

    Returns None when the drawn move is not valid (a block left without a dynamic
    module, a depth outside ``depths``).
    """
    from rankzc.space import OPS, Architecture

    blocks = [list(b) for b in arch.blocks]
    move = int(rng.integers(3))
    if move == 0:  # flip one switch
        b, s = int(rng.integers(len(blocks))), int(rng.integers(len(OPS)))
        blocks[b][s] = not blocks[b][s]
    elif move == 1:  # add two blocks, copies of existing ones at random places
        if len(blocks) + 2 not in depths:
            return None
        for _ in range(2):
            src = blocks[int(rng.integers(len(blocks)))]
            blocks.insert(int(rng.integers(len(blocks) + 1)), list(src))
    else:  # remove two blocks
        if len(blocks) - 2 not in depths:
            return None
        for _ in range(2):
            blocks.pop(int(rng.integers(len(blocks))))
    try:
        return Architecture(tuple(tuple(b) for b in blocks))
    except RankzcError:
        return None


# ------------------------------------------------------------------------ parsing
def parse_strategy(text: str, *, batch: int = 1, init: int = 5) -> Strategy:
    """A strategy from its ``--strategy`` name (see the module docstring)."""
    from rankzc.proxies.registry import get_proxy

    text = text.strip()
    kind, _, arg = text.partition(":")
    kind = kind.lower()
    if kind == "random" and not arg:
        return RandomStrategy(text)
    if kind == "depth" and not arg:
        return DepthStrategy(text)
    if kind == "proxy" and arg == "auto":
        return ProxyStrategy(text, reads=[], proxy="auto")
    if kind == "proxy":
        if not arg:
            raise RankzcError("--strategy proxy:<name>: name a proxy, e.g. proxy:zen")
        return ProxyStrategy(text, reads=[arg], proxy=arg)
    if kind in ("vote", "wam"):
        names = [n.strip() for n in arg.split(",") if n.strip()] if arg else None
        if names is not None:
            for n in names:
                get_proxy(n)
        if kind == "vote":
            return VoteStrategy(text, reads=list(names or VOTE_DEFAULT))
        return WamStrategy(text, reads=names or [])
    if kind == "ranker":
        from rankzc.ranking.io import load_ranker

        if not arg:
            raise RankzcError("--strategy ranker:<file.rzc>: name a ranker file")
        fitted = load_ranker(Path(arg))
        return RankerStrategy(text, reads=list(fitted.proxies), path=Path(arg), fitted=fitted)
    if kind in ("online", "evolve"):
        from rankzc.ranking.registry import RANKERS

        parts = [a.strip().lower() for a in arg.split(":")] if arg else []
        acquisition = "greedy"
        if kind == "online" and parts and parts[-1] in ACQUISITIONS:
            acquisition = parts.pop()
        if kind == "online" and len(parts) == 2 and parts[0] in RANKERS:
            raise RankzcError(
                f"--strategy {text}: unknown acquisition {parts[1]!r}; choose from "
                f"{', '.join(ACQUISITIONS)}"
            )
        if len(parts) > 1:
            raise RankzcError(
                f"--strategy {text}: expected {kind}[:<model>]"
                + ("[:<acquisition>]" if kind == "online" else "")
            )
        model = (parts[0] if parts else "") or ONLINE_DEFAULT_MODEL
        if model not in RANKERS:
            extra = f"; or an acquisition: {', '.join(ACQUISITIONS)}" if kind == "online" else ""
            raise RankzcError(
                f"--strategy {text}: unknown model {model!r}; choose from "
                f"{', '.join(RANKERS)}{extra}"
            )
        if batch < 1:
            raise RankzcError(f"--batch: must be >= 1, got {batch}")
        if kind == "online":
            return OnlineStrategy(
                text, batch=batch, model=model, init=init, acquisition=acquisition
            )
        return EvolveStrategy(text, batch=batch, model=model, init=init)
    raise RankzcError(
        f"--strategy {text!r}: expected random, proxy:<name>, vote[:p,...], wam[:p,...], "
        "ranker:<file.rzc>, online[:<model>], evolve[:<model>] or depth"
    )


def prepare(strategy: Strategy, pool: Pool) -> Strategy:
    """Fill defaults that depend on the pool (wam's proxies), then check."""
    if isinstance(strategy, WamStrategy) and not strategy.reads:
        strategy.reads = list(pool.proxies)
    if isinstance(strategy, PredictorStrategy):
        strategy.reads = list(pool.proxies)
    if isinstance(strategy, ProxyStrategy) and strategy.name.lower() == "proxy:auto":
        strategy.proxy = label_free_proxy(pool) or ""
        if not strategy.proxy:
            raise RankzcError("--strategy proxy:auto: the pool has no proxy besides size")
        strategy.reads = [strategy.proxy]
    strategy.check(pool)
    return strategy
