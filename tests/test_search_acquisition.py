"""``online``'s acquisitions (issue 27, item 3): greedy, upper confidence bound, Thompson."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_search import make_dominated_store, make_store

from rankzc.errors import RankzcError
from rankzc.search import Budget, parse_strategy, pool_from_store
from rankzc.search.pool import Pool
from rankzc.search.simulate import simulate
from rankzc.search.strategies import Context, OnlineStrategy, warm_start_scores
from rankzc.space import sample_architectures
from rankzc.store import Benchmark


def _pool(path):
    with Benchmark.open(path, readonly=True) as b:
        return pool_from_store(b)


@pytest.mark.parametrize(
    "text, model, acquisition",
    [
        ("online", "lambdarank", "greedy"),
        ("online:ucb", "lambdarank", "ucb"),
        ("online:ranknet:thompson", "ranknet", "thompson"),
        ("online::UCB", "lambdarank", "ucb"),
        ("online:wam:greedy", "wam", "greedy"),
    ],
)
def test_parse_acquisition(text, model, acquisition):
    s = parse_strategy(text)
    assert isinstance(s, OnlineStrategy)
    assert (s.model, s.acquisition) == (model, acquisition)


@pytest.mark.parametrize(
    "text, message",
    [
        ("online:lambdarank:bandit", "unknown acquisition 'bandit'; choose from greedy, ucb"),
        ("online:bandit", "or an acquisition: greedy, ucb, thompson"),
        ("online:lambdarank:ucb:x", "expected online[:<model>][:<acquisition>]"),
        ("evolve:ucb", "unknown model 'ucb'"),
    ],
)
def test_parse_acquisition_refuses(text, message):
    with pytest.raises(RankzcError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_strategy(text)


class _Replicates:
    """A stand-in for the chosen model: each bootstrap resample gives its own order of the
    pool positions (a pure function of the resampled rows), so replicates disagree."""

    def __init__(self, n: int):
        self.n = n

    def __call__(self, rows):
        rng = np.random.default_rng(int(np.sum(rows) * 7919 + len(rows)))
        base = np.linspace(0.0, 1.0, self.n)
        noise = rng.normal(0.0, 0.4, self.n)
        return lambda p: (base + noise)[np.asarray(p)]


def _ctx(n=30, trained=8, seed=3):
    archs = sample_architectures(n, seed=1)
    ids = [a.arch_id for a in archs]
    table = pd.DataFrame(
        {"encoding": [str(a) for a in archs], "depth": [a.depth for a in archs]}, index=ids
    )
    table["zen"] = np.arange(n, dtype=float)
    pool = Pool("gcn-nas", table, ["zen"])
    labels = {a: float(i) for i, a in enumerate(ids[:trained])}
    return Context(pool, ids[trained:], ids[:trained], labels, seed), n


def _percentiles(ctx, s, fit):
    from scipy.stats import rankdata

    rng = ctx.rng(31)
    pos = ctx.pool.table.index.get_indexer(ctx.candidates)
    out = []
    for _ in range(s.replicates):
        rows = np.sort(rng.integers(0, len(ctx.trained), len(ctx.trained)))
        v = fit(rows)(pos)
        out.append(rankdata(v) / len(v))
    return np.array(out)


def test_ucb_is_mean_plus_beta_sd_of_bootstrap_ranks():
    ctx, n = _ctx()
    s = OnlineStrategy("online:ucb", acquisition="ucb", diversity=0.0, beta=2.0)
    fit = _Replicates(n)
    R = _percentiles(ctx, s, fit)
    np.testing.assert_allclose(
        s.ensemble(ctx, ctx.trained, fit, ctx.pool.table.index.get_indexer(ctx.candidates)), R
    )
    a = R.mean(axis=0) + 2.0 * R.std(axis=0, ddof=1)
    warm = np.zeros(len(ctx.candidates))
    picked = s.acquire(ctx, ctx.trained, fit, 3, warm)
    assert picked == [ctx.candidates[i] for i in np.argsort(-a, kind="stable")[:3]]
    # beta matters: the mean alone picks another set here
    s0 = OnlineStrategy("online:ucb", acquisition="ucb", diversity=0.0, beta=0.0)
    mean_first = [ctx.candidates[i] for i in np.argsort(-R.mean(axis=0), kind="stable")[:3]]
    assert s0.acquire(ctx, ctx.trained, fit, 3, warm) == mean_first
    assert mean_first != picked


def test_ucb_batch_is_diverse():
    """With a strong diversity term the second pick is never a near copy of the first
    (Hamming distance <= 1) when a far candidate is almost as good."""
    ctx, n = _ctx(n=40)
    fit = _Replicates(n)
    A = ctx.pool.arch_matrix().set_axis(ctx.pool.table.index)
    plain = OnlineStrategy("online:ucb", acquisition="ucb", diversity=0.0)
    diverse = OnlineStrategy("online:ucb", acquisition="ucb", diversity=10.0)
    warm = np.zeros(len(ctx.candidates))
    b = diverse.acquire(ctx, ctx.trained, fit, 4, warm)
    assert len(set(b)) == 4
    d = [np.abs(A.loc[b[0]] - A.loc[x]).sum() for x in b[1:]]
    assert min(d) > 1
    assert plain.acquire(ctx, ctx.trained, fit, 1, warm) == b[:1]


def test_thompson_fills_each_slot_from_one_replicate():
    ctx, n = _ctx()
    s = OnlineStrategy("online:thompson", acquisition="thompson", replicates=4)
    fit = _Replicates(n)
    R = _percentiles(ctx, s, fit)
    draws = ctx.rng(37).permutation(len(R))
    picked = s.acquire(ctx, ctx.trained, fit, 3, np.zeros(len(ctx.candidates)))
    assert len(set(picked)) == 3
    taken: list[int] = []
    for slot, name in enumerate(picked):
        r = R[draws[slot]].copy()
        r[taken] = -np.inf
        i = int(np.argmax(r))
        assert ctx.candidates[i] == name
        taken.append(i)


@pytest.mark.parametrize("acq", ["ucb", "thompson"])
def test_acquisitions_find_a_dominant_feature_and_are_deterministic(tmp_path, acq):
    path = tmp_path / "d.db"
    make_dominated_store(path)
    pool = _pool(path)
    runs = [
        simulate(pool, [parse_strategy(f"online:{acq}", init=5)], Budget(archs=8), [0])[0]
        for _ in range(2)
    ]
    assert [x.arch_id for x in runs[0].steps] == [x.arch_id for x in runs[1].steps]
    assert runs[0].regret()[7] == 0  # the best of 80 within 8 trained


@pytest.mark.parametrize("acq", ["ucb", "thompson"])
def test_acquisitions_start_warm_and_batch_without_repeats(tmp_path, acq):
    path = tmp_path / "s.db"
    make_store(path)
    pool = _pool(path)
    s = parse_strategy(f"online:{acq}", batch=4, init=4)
    (t,) = simulate(pool, [s], Budget(archs=16), [1])
    warm = warm_start_scores(pool.without_labels(), 1).sort_values(ascending=False)
    assert {x.arch_id for x in t.steps[:4]} == set(warm.index[:4])
    ids = [x.arch_id for x in t.steps]
    assert len(ids) == len(set(ids)) == 16
