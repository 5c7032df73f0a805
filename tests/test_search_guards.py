"""Simulated search: regret against the feasible pool's best, and no label reaches a model.

Each test here guards one fault of ``benchmarks/inject_faults.py``: regret taken against
the best trained architecture, a pool best that ignores ``--max-params``, a learned model
of ``online``/``evolve`` fitted on labels of untrained architectures, or a label in place
of the zero-cost-order feature.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rankzc.ranking import registry
from rankzc.search import Budget, parse_strategy
from rankzc.search.loop import Step, Trace
from rankzc.search.pool import Pool
from rankzc.search.simulate import simulate
from rankzc.search.strategies import label_free_scores
from rankzc.space import sample_architectures


def make_pool(n: int = 60, seed: int = 0) -> Pool:
    """A labelled pool: 'zen' follows the label loosely, 'synflow' is noise, params grow
    with the label (so the best architecture is among the largest)."""
    rng = np.random.default_rng(seed)
    archs = sample_architectures(n, seed=seed)
    acc = rng.uniform(0.5, 0.9, size=n)
    table = pd.DataFrame(
        {
            "encoding": [str(a) for a in archs],
            "depth": [float(a.depth) for a in archs],
            "val_acc": acc,
            "train_seconds": 1.0,
            "zen": acc + 0.1 * rng.normal(size=n),
            "synflow": rng.normal(size=n),
            "params": 1e6 * (1.0 + acc + 0.01 * rng.normal(size=n)),
        },
        index=pd.Index([a.arch_id for a in archs], name="arch_id"),
    )
    return Pool("gcn-nas", table, ["zen", "synflow", "params"])


def test_regret_is_the_pool_best_minus_the_best_trained():
    t = Trace("x", 0, [Step("a", 0.5, None), Step("b", math.nan, None), Step("c", 0.7, None)])
    t.pool_best = 0.9
    assert t.regret() == pytest.approx([0.4, 0.4, 0.2])
    pool = make_pool()
    (trace,) = simulate(pool, [parse_strategy("proxy:synflow")], Budget(archs=3), [0])
    best = pool.table["val_acc"].max()
    assert trace.best().label < best  # the noise order did not find the best in 3
    assert trace.pool_best == best
    assert trace.regret()[-1] == pytest.approx(best - trace.best().label) and trace.regret()[-1] > 0


def test_pool_best_is_the_best_within_max_params():
    pool = make_pool()
    table = pool.table
    limit = float(table["params"].median())
    ok = table["params"] <= limit
    assert table.loc[~ok, "val_acc"].max() > table.loc[ok, "val_acc"].max()  # best is too big
    (trace,) = simulate(pool, [parse_strategy("random")], Budget(archs=5), [0], max_params=limit)
    assert trace.pool_best == table.loc[ok, "val_acc"].max()
    assert trace.feasible == int(ok.sum())
    assert all(table.at[s.arch_id, "params"] <= limit for s in trace.steps)
    assert min(trace.regret()) >= 0


@pytest.mark.parametrize("strategy", ["online", "evolve"])
def test_learned_models_see_only_the_trained_labels(strategy, monkeypatch):
    """Every fit of a search's ranker gets trained rows and their labels only, and the
    zero_cost_order feature is the label-free order, never a label."""
    pool = make_pool()
    fits = []
    real = registry.make_ranker

    def spy(name, **params):
        model = real(name, **params)
        fit = model.fit

        def recording_fit(X, y=None):
            fits.append((name, X.copy(), None if y is None else np.asarray(y, dtype=float)))
            return fit(X, y)

        model.fit = recording_fit
        return model

    monkeypatch.setattr(registry, "make_ranker", spy)
    s = parse_strategy(f"{strategy}:lambdarank", init=4)
    if strategy == "online":
        s.learn_after = 6
    (trace,) = simulate(pool, [s], Budget(archs=10), [0])
    trained = {st.arch_id: st.label for st in trace.steps}
    free = label_free_scores(pool.without_labels())
    learned = [f for f in fits if f[0] == "lambdarank"]
    assert learned, "the search never fitted its ranker"
    for name, X, y in fits:
        if y is None:  # the label-free order
            assert "val_acc" not in X.columns
            continue
        assert set(X.index) <= set(trained), f"{name} fitted on untrained architectures"
        assert y.tolist() == pytest.approx([trained[a] for a in X.index])
        if "zero_cost_order" in X.columns:
            assert X["zero_cost_order"].to_numpy() == pytest.approx(
                free.reindex(X.index).to_numpy()
            )
        for col in X.columns:  # no column is the label itself
            assert not np.allclose(X[col].to_numpy(dtype=float), y), col
