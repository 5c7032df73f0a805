"""Majority-vote subset search against a brute-force loop; study values on the real data."""

from __future__ import annotations

import numpy as np
import pytest

from rankzc.errors import RankzcError
from rankzc.ranking.vote import MajorityVoteRanker, search_subsets, vote_accuracy


def brute_force(X: np.ndarray, y: np.ndarray, cols: tuple[int, ...], ties: str = "draw") -> float:
    """The vote rule pair by pair; a NaN proxy abstains, equal values abstain ("draw") or
    vote for the second ("study"); a cancelled vote is half right ("draw") or predicts the
    second ("study")."""
    good = total = 0.0
    for i in range(len(y)):
        for j in range(i + 1, len(y)):
            if y[i] == y[j]:
                continue
            net = 0
            for c in cols:
                d = X[i, c] - X[j, c]
                if np.isnan(d):
                    continue
                net += 1 if d > 0 else (-1 if d < 0 or ties == "study" else 0)
            total += 1
            if net == 0 and ties == "draw":
                good += 0.5
            else:
                good += (net > 0) == (y[i] > y[j])
    return good / total


@pytest.mark.parametrize("ties", ["draw", "study"])
@pytest.mark.parametrize("with_nan", [False, True])
def test_search_matches_brute_force(with_nan, ties):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(18, 5))
    X[:, 1] = np.round(X[:, 1])  # ties in a proxy
    y = X[:, 0] + rng.normal(size=18)
    y[3] = y[4]  # a tie in accuracy (pair skipped)
    if with_nan:
        X[2, 0] = np.nan
        X[7, 3] = np.nan
    res = search_subsets(X, y, list("abcde"), max_size=5, ties=ties)
    assert len(res["subsets"]) == 31 and res["ties"] == ties
    for s in res["subsets"]:
        cols = tuple(s["columns"])
        assert s["score"] == pytest.approx(brute_force(X, y, cols, ties), abs=1e-12), cols
        assert s["proxies"] == sorted("abcde"[c] for c in cols)
        assert vote_accuracy(X, y, cols, ties=ties) == pytest.approx(s["score"], abs=1e-12)
    scores = [s["score"] for s in res["subsets"]]
    assert scores == sorted(scores, reverse=True)


def test_even_subset_tie_rule():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])  # proxies disagree: the vote cancels
    assert vote_accuracy(X, np.array([1.0, 0.0]), ties="study") == 0.0  # goes to the second
    assert vote_accuracy(X, np.array([0.0, 1.0]), ties="study") == 1.0
    assert vote_accuracy(X, np.array([1.0, 0.0])) == 0.5  # a draw counts one half
    assert vote_accuracy(X, np.array([0.0, 1.0])) == 0.5


@pytest.mark.parametrize("ties", ["draw", "study"])
def test_search_and_predict_use_one_tie_rule(ties):
    """Predicting architecture a against a single reference t decides the pair (a, t) the
    way the subset search scores it: win <-> 1, draw <-> 1/2, loss <-> 0."""
    rng = np.random.default_rng(4)
    X = np.round(rng.normal(size=(40, 3)))  # many equal values
    X[rng.random(X.shape) < 0.1] = np.nan
    y = X[:, 0] + X[:, 1] + rng.normal(size=40)
    y = np.nan_to_num(y)
    m = MajorityVoteRanker(max_size=3, orient=False, ties=ties).fit(X, y)
    cols = m.subset_
    checked = 0
    for a in range(20):
        t = a + 20
        m.reference_ = X[[t]][:, cols]
        score = m.predict(X[[a]])[0]
        acc = vote_accuracy(X[[a, t]], np.array([1.0, 0.0]), cols, ties=ties)
        assert (score + 1) / 2 == acc, (a, X[a, cols], X[t, cols])
        checked += acc == 0.5
    assert ties == "study" or checked > 0  # some draws were exercised


def test_search_errors():
    with pytest.raises(RankzcError, match="same accuracy"):
        search_subsets(np.ones((4, 2)), np.ones(4))
    with pytest.raises(RankzcError, match="min-size"):
        search_subsets(np.ones((4, 2)), np.arange(4.0), min_size=3, max_size=2)


def test_copeland_scores_new_architectures():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4))
    y = X[:, 0] + X[:, 1] + X[:, 2] + 0.1 * rng.normal(size=60)
    m = MajorityVoteRanker(max_size=3).fit(X, y)
    assert sorted(m.subset_.tolist()) == [0, 1, 2]
    new = np.array([[10.0, 10, 10, 0], [-10.0, -10, -10, 0], [10.0, -10, np.nan, 0]])
    s = m.predict(new)
    # beats every training architecture, loses to all, draws (one vote each way, one abstains)
    assert s.tolist() == [1.0, -1.0, 0.0]


def test_study_table_5_2(thesis_store):
    """Doc Table 5.2: best three-proxy subsets, and zen alone."""
    from rankzc.ranking.features import feature_matrix

    fs = feature_matrix(thesis_store, "proxies")
    for ties in ("study", "draw"):  # the study's proxies have no equal values that matter
        res = search_subsets(
            fs.X.to_numpy(), fs.y.to_numpy(), fs.proxies, max_size=3, min_size=3, ties=ties
        )
        top = [(tuple(s["proxies"]), round(s["score"], 4)) for s in res["subsets"][:5]]
        assert top[0] == (("fisher", "synflow", "zen"), 0.7899)
    top = [(tuple(s["proxies"]), round(s["score"], 4)) for s in res["subsets"][:5]]
    assert top[0] == (("fisher", "synflow", "zen"), 0.7899)
    assert top[1] == (("nwot", "synflow", "zen"), 0.7888)
    assert top[2] == (("flops", "synflow", "zen"), 0.7885)
    assert {t[1] for t in top[3:]} == {0.7883}
    zen = fs.proxies.index("zen")
    assert round(vote_accuracy(fs.X.to_numpy(), fs.y.to_numpy(), [zen]), 4) == 0.7912


def test_study_wam_in_sample(thesis_store):
    """Doc: WAM of min-max proxies weighted by Spearman, in-sample ~0.768 (study printed 0.766)."""
    from rankzc.ranking.evaluation import evaluate_models

    res = evaluate_models(thesis_store, ["wam"], cv="none")
    assert res["cv"]["optimistic"]
    assert res["models"]["wam"]["spearman_mean"] == pytest.approx(0.768, abs=0.001)


@pytest.fixture(scope="module")
def thesis_store(thesis_dir, tmp_path_factory):
    from click.testing import CliRunner

    from rankzc.cli import main
    from rankzc.store import Benchmark

    out = tmp_path_factory.mktemp("thesis") / "t.db"
    res = CliRunner().invoke(main, ["import", "thesis", str(thesis_dir), "--out", str(out)])
    assert res.exit_code == 0, res.output
    with Benchmark.open(out) as bench:
        yield bench


def test_sampled_pairs_bound_memory_and_stay_close():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 3))
    y = X[:, 0] + rng.normal(size=400)
    exact = search_subsets(X, y, max_size=1)
    approx = search_subsets(X, y, max_size=1, max_pairs=20_000)
    assert not exact["sampled"] and approx["sampled"] and approx["pairs"] < 20_000
    best = {tuple(s["columns"]): s["score"] for s in exact["subsets"]}
    for s in approx["subsets"]:
        assert s["score"] == pytest.approx(best[tuple(s["columns"])], abs=0.02)


def test_prediction_does_not_scale_with_training_rows():
    """Above max_reference training rows, new architectures play a fixed-size seeded sample;
    the scores stay close to playing every training row."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 3))
    y = X.sum(axis=1) + rng.normal(size=3000)
    full = MajorityVoteRanker(max_reference=10_000).fit(X, y)
    small = MajorityVoteRanker(max_reference=300).fit(X, y)
    assert full.reference_.shape[0] == 3000 and small.reference_.shape[0] == 300
    new = rng.normal(size=(200, 3))
    assert np.abs(full.predict(new) - small.predict(new)).max() < 0.15
    assert np.corrcoef(full.predict(new), small.predict(new))[0, 1] > 0.99


def test_vote_refuses_a_table_without_feature_columns():
    import pandas as pd

    with pytest.raises(RankzcError, match="vote: no feature column to vote with"):
        MajorityVoteRanker().fit(pd.DataFrame(index=range(5)), np.arange(5.0))
