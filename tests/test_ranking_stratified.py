"""The stratified ranker: a level per stratum plus one pooled within-stratum regression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from rankzc.errors import RankzcError
from rankzc.ranking import make_ranker
from rankzc.ranking.io import load_ranker, save_ranker
from rankzc.ranking.stratified import StratifiedRanker


def strata_data(n: int = 400, seed: int = 0, within: float = 1.0):
    """Depth sets the level (gaps of one within-depth sd); ``good`` adds a within-depth
    advantage shared by every depth; ``noise`` is noise."""
    rng = np.random.default_rng(seed)
    depth = rng.choice([4, 6, 8, 10], size=n)
    good = rng.normal(size=n) + 0.3 * depth  # correlated with depth, as params are
    noise = rng.normal(size=n)
    level = {4: 0.930, 6: 0.940, 8: 0.944, 10: 0.946}
    y = np.array([level[d] for d in depth])
    y = y + 0.002 * within * (good - 0.3 * depth) + 0.001 * rng.normal(size=n)
    X = pd.DataFrame({"depth": depth.astype(float), "good": good, "noise": noise})
    return X, y


def rho(a, b) -> float:
    return float(spearmanr(a, b)[0])


def within_rho(score, X, y) -> float:
    d = X["depth"].to_numpy()
    return float(np.mean([rho(score[d == v], y[d == v]) for v in np.unique(d)]))


def test_beats_the_stratum_alone_and_ranks_within_it():
    X, y = strata_data(400)
    Xt, yt = strata_data(300, seed=1)
    pred = StratifiedRanker().fit(X, y).predict(Xt)
    assert rho(pred, yt) > rho(Xt["depth"], yt) + 0.03
    assert within_rho(pred, Xt, yt) > 0.7
    # depth is not lost: the mean score of each depth keeps the levels' order
    means = [pred[Xt["depth"] == d].mean() for d in (4, 6, 8, 10)]
    assert means == sorted(means)


def test_without_a_within_signal_the_order_is_the_levels():
    """Noise within the strata moves scores by less than the gaps between levels."""
    X, y = strata_data(400, within=0.0)
    Xt, _ = strata_data(300, seed=1, within=0.0)
    pred = StratifiedRanker().fit(X, y).predict(Xt)
    assert rho(pred, Xt["depth"]) > 0.9
    d = Xt["depth"].to_numpy()
    assert pred[d == 4].max() < pred[d == 6].min()


def test_levels_are_shrunk_means_and_unknown_strata_interpolate():
    X = pd.DataFrame({"depth": [4.0, 4.0, 8.0, 8.0, 8.0, 8.0], "x": [0, 1, 0, 1, 2, 3]})
    y = np.array([1.0, 3.0, 5.0, 5.0, 7.0, 7.0])
    m = StratifiedRanker(shrinkage=2.0, n_estimators=2).fit(X, y)
    overall = y.mean()
    np.testing.assert_allclose(m.strata_, [4.0, 8.0])
    np.testing.assert_allclose(m.levels_, [(4 + 2 * overall) / 4, (24 + 2 * overall) / 6])
    lv = m._levels(np.array([4.0, 6.0, 8.0, 12.0, np.nan]))
    np.testing.assert_allclose(lv[:4], [m.levels_[0], m.levels_.mean(), m.levels_[1], m.levels_[1]])
    assert lv[4] == pytest.approx(overall)
    # an unknown depth scores (finite) from its interpolated level
    assert np.isfinite(m.predict(pd.DataFrame({"depth": [6.0, 12.0], "x": [1.0, 1.0]}))).all()


def test_no_stratum_column_is_one_stratum():
    X, y = strata_data(200)
    flat = StratifiedRanker(stratum=None).fit(X, y)
    assert flat.stratum_col_ is None and len(flat.strata_) == 1
    no_col = StratifiedRanker().fit(X[["good", "noise"]], y)
    assert no_col.stratum_col_ is None
    assert np.isfinite(no_col.predict(X[["good", "noise"]])).all()


def test_missing_stratum_in_training_is_refused():
    X, y = strata_data(50)
    X.loc[3, "depth"] = np.nan
    with pytest.raises(RankzcError, match="stratum column 'depth' has missing values"):
        StratifiedRanker().fit(X, y)
    with pytest.raises(RankzcError, match="shrinkage"):
        StratifiedRanker(shrinkage=-1).fit(*strata_data(50))
    with pytest.raises(RankzcError, match="no feature column 'blocks' to stratify by"):
        StratifiedRanker(stratum="blocks").fit(*strata_data(50))
    assert StratifiedRanker(stratum="noise").fit(*strata_data(50)).stratum_col_ == 2


def test_parameters_unchanged_and_saved_state_round_trips():
    X, y = strata_data(120)
    m = make_ranker("stratified", n_estimators=20).fit(X, y)
    assert m.get_params() == make_ranker("stratified", n_estimators=20).get_params()
    config, arrays, texts = m._export()
    again = StratifiedRanker(n_estimators=20)
    again.feature_names_in_ = m.feature_names_in_
    again._import(config, arrays, texts)
    np.testing.assert_array_equal(again.predict(X), m.predict(X))


@pytest.mark.parametrize(
    ("where", "key", "value", "needle"),
    [
        ("arrays", "strata", np.array([8.0, 4.0]), "strata must be increasing"),
        ("arrays", "levels", np.array([0.9]), "levels must be"),
        ("arrays", "coef", np.full(3, np.inf), "coef must be"),
        ("config", "stratum_col", 9, "stratum column 9"),
        ("config", "intercept", "x", "intercept must be a finite number"),
    ],
)
def test_edited_state_is_refused(where, key, value, needle):
    X, y = strata_data(120)
    X = X[X["depth"].isin([4, 8])].reset_index(drop=True)
    y = y[: len(X)]
    m = StratifiedRanker(n_estimators=5).fit(X, y)
    config, arrays, texts = m._export()
    (config if where == "config" else arrays)[key] = value
    fresh = StratifiedRanker()
    fresh.feature_names_in_ = m.feature_names_in_
    with pytest.raises(RankzcError, match=needle):
        fresh._import(config, arrays, texts)


def test_fit_save_score_through_the_ranker_file(tmp_path):
    from benchdata import ops_label, ops_scores, write_gcn_store

    from rankzc.ranking.io import fit_ranker
    from rankzc.space import sample_architectures
    from rankzc.store import Benchmark

    store = write_gcn_store(
        tmp_path / "b.db", sample_architectures(60, seed=5), ops_label, ops_scores
    )
    with Benchmark.open(store) as b:
        fitted = fit_ranker(b, "stratified", features="all")
    path = save_ranker(fitted, tmp_path / "s.rzc")
    loaded = load_ranker(path)
    assert loaded.model.name == "stratified"
    assert loaded.model.stratum_col_ is not None  # GCN-NAS encodings carry the depth
