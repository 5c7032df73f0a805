r"""Search strategies: which candidate to train next.

Every strategy is a pure function of the search state: :meth:`Strategy.propose` sees the
pool, what has been trained so far (in order, with labels), the search seed and the step
number, and returns the next candidates. Any randomness is drawn from a generator seeded
with ``(seed, step)``, so a search rerun after an interruption makes the same choices (the
live loop also records every planned batch before training it).

Names (``--strategy``):

* ``random``: candidates in a seeded random order (the baseline of every NAS paper);
* ``proxy:<name>``: best proxy score first (direction from the proxy registry);
* ``vote[:p1,p2,...]``: the study's majority vote without labels: every candidate plays
  every other pool member on the chosen proxies (default ``fisher,synflow,zen``, the
  study's best subset) and is ranked by its Copeland score (wins - losses);
* ``wam[:p1,...]``: equal-weight mean of the min-max normalised proxies (default: all
  pool proxies), each oriented by its registered direction (no labels, so no Spearman
  weights);
* ``ranker:<file.rzc>``: a fitted ranker (``rankzc fit``) ranks the pool;
* ``online[:<model>]``: predictor-based search warm-started by zero-cost proxies. Until
  ``init`` labels exist, candidates come in the label-free order (:func:`label_free_scores`);
  then a ranker of the ranking layer (default ``lambdarank``; any name of
  :data:`rankzc.ranking.registry.RANKERS`) is fitted on the trained architectures
  (proxies + architecture encoding + the label-free score), ranks the untrained ones, and
  the best ``batch`` are trained; refit, repeat;
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
    from rankzc.proxies.registry import PROXIES

    spec = PROXIES.get(name)
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


@dataclass
class OnlineStrategy(PredictorStrategy):
    def propose(self, ctx: Context, k: int) -> list[str]:
        labelled = sum(1 for a in ctx.trained if math.isfinite(ctx.labels.get(a, math.nan)))
        if labelled < self.init:  # warm start: the label-free order, up to init labels
            return self.order(ctx, ctx.candidates, min(k, self.init - labelled), None)
        return self.order(ctx, ctx.candidates, k, self.predictor(ctx))


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

        model = arg or ONLINE_DEFAULT_MODEL
        if model not in RANKERS:
            raise RankzcError(
                f"--strategy {text}: unknown model {model!r}; choose from {', '.join(RANKERS)}"
            )
        if batch < 1:
            raise RankzcError(f"--batch: must be >= 1, got {batch}")
        cls = OnlineStrategy if kind == "online" else EvolveStrategy
        return cls(text, batch=batch, model=model, init=init)
    raise RankzcError(
        f"--strategy {text!r}: expected random, proxy:<name>, vote[:p,...], wam[:p,...], "
        "ranker:<file.rzc>, online[:<model>] or evolve[:<model>]"
    )


def prepare(strategy: Strategy, pool: Pool) -> Strategy:
    """Fill defaults that depend on the pool (wam's proxies), then check."""
    if isinstance(strategy, WamStrategy) and not strategy.reads:
        strategy.reads = list(pool.proxies)
    if isinstance(strategy, PredictorStrategy):
        strategy.reads = list(pool.proxies)
    strategy.check(pool)
    return strategy
