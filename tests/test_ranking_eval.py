"""Cross-validated comparison: same folds for every model, no leakage, report, study figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rankzc.errors import RankzcError
from rankzc.ranking import evaluation
from rankzc.ranking.evaluation import evaluate_models, make_folds, results_table
from rankzc.ranking.features import FeatureSet, arch_features, feature_matrix, parse_tuple
from rankzc.ranking.metrics import METRICS, pairwise_accuracy, ranking_metrics

FAST = {"ranknet": {"epochs": 8}, "lambdarank": {"n_estimators": 40}}


def feature_set(n: int = 90, seed: int = 0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    depth = rng.choice([4.0, 6.0, 8.0], size=n)
    z = rng.normal(size=n)
    y = 0.9 + 0.01 * depth + 0.005 * z
    X = pd.DataFrame(
        {"a": np.exp(depth + z), "b": -z + rng.normal(size=n), "c": rng.normal(size=n)},
        index=[f"id{i}" for i in range(n)],
    )
    return FeatureSet(
        X=X,
        y=pd.Series(y, index=X.index),
        depth=pd.Series(depth, index=X.index),
        space="toy",
        features="proxies",
        proxies=["a", "b", "c"],
    )


def test_metrics_known_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    m = ranking_metrics(y, y, depth=np.array([1, 1, 1, 1.0]))
    assert m["spearman"] == 1 and m["kendall"] == 1 and m["pairwise_accuracy"] == 1
    assert m["top10pct_precision"] == 1 and m["regret_top1"] == 0
    assert m["within_depth_spearman"] == 1
    r = ranking_metrics(-y, y)
    assert r["spearman"] == -1 and r["pairwise_accuracy"] == 0 and r["regret_top1"] == 3
    assert np.isnan(r["within_depth_spearman"])
    assert pairwise_accuracy(np.zeros(4), y) == 0.5  # ties in the prediction count 1/2


def test_evaluate_models_keys_and_paired_test():
    res = evaluate_models(
        feature_set(), ["vote", "wam", "ranknet", "lambdarank"], folds=3, repeats=2, params=FAST
    )
    assert list(res["models"]) == ["vote", "wam", "ranknet", "lambdarank"]
    assert list(res["cv_baselines"]) == ["best proxy", "depth"]
    strongest = res["strongest_baseline"]
    means = {b: e["spearman_mean"] for b, e in res["cv_baselines"].items()}
    assert strongest == max(means, key=means.get)
    for entry in res["models"].values():
        for m in METRICS:
            assert f"{m}_mean" in entry and f"{m}_std" in entry
        assert len(entry["per_fold_spearman"]) == 6
        test = entry["vs_baseline"]
        assert entry["compared_with"] == strongest == test["baseline"]
        assert set(test) >= {"mean_diff", "ci95", "p_value", "t", "test"}
        assert "Nadeau" in test["test"] and test["n_splits"] == 6
        lo, hi = test["ci95"]
        assert lo < test["mean_diff"] < hi and 0 <= test["p_value"] <= 1
        assert set(entry["comparisons"]) == {"best proxy", "depth"}
        diff = np.mean(entry["per_fold_spearman"]) - means[strongest]
        assert test["mean_diff"] == pytest.approx(diff, abs=1e-12)
    assert res["cv"]["folds"] == 3 and res["cv"]["repeats"] == 2 and not res["cv"]["optimistic"]
    assert res["models"]["lambdarank"]["spearman_mean"] > 0.5
    json.dumps(res, allow_nan=False)  # JSON-clean (NaN -> None)
    table = results_table(res)
    assert "lambdarank" in table.index and table.loc["wam", "vs"] == strongest


def test_best_proxy_baseline_is_chosen_among_proxies_only():
    """With encodings among the features, 'best proxy' never picks an encoding column, and
    'best encoding column' is reported beside it."""
    fs = feature_set()
    fs.X["depth_enc"] = fs.depth.to_numpy() * 10.0  # the strongest column, not a proxy
    fs.features = "all"
    res = evaluate_models(fs, ["single"], folds=3, repeats=1)
    base = res["cv_baselines"]
    assert set(base["best proxy"]["chosen"]) <= {"a", "b", "c"}
    assert base["best encoding column"]["chosen"] == {"depth_enc": 3}
    # the encoding column is depth x 10: the same ranking as the depth rule, fold by fold
    assert base["best encoding column"]["per_fold_spearman"] == pytest.approx(
        base["depth"]["per_fold_spearman"], abs=1e-12
    )


def test_trivial_baseline_sign_comes_from_training_rows():
    fs = feature_set()
    fs.depth = -fs.depth  # depth now correlates negatively: the rule flips it on training rows
    res = evaluate_models(fs, ["wam"], folds=3, repeats=1)
    assert res["cv_baselines"]["depth"]["spearman_mean"] > 0.5


def test_a_model_that_cannot_fit_is_reported_and_the_others_go_on(monkeypatch):
    from rankzc.ranking.wam import WeightedMeanRanker

    def broken(self, X, y):
        raise RankzcError("wam: broken on purpose")

    monkeypatch.setattr(WeightedMeanRanker, "fit", broken)
    res = evaluate_models(feature_set(), ["wam", "single"], folds=3, repeats=1)
    assert res["models"]["wam"] == {"failed": True, "error": "split 1: wam: broken on purpose"}
    assert res["models"]["single"]["spearman_mean"] > 0.5
    assert "failed: split 1: wam" in results_table(res).loc["wam", "diff"]


def test_labels_without_spread_are_refused():
    fs = feature_set()
    fs.y[:] = 0.5
    with pytest.raises(RankzcError, match="no spread"):
        evaluate_models(fs, ["wam"], folds=3, repeats=1)


def test_nadeau_bengio_on_the_folds_matches_the_formula():
    res = evaluate_models(feature_set(90), ["wam"], folds=5, repeats=2)
    rho = np.array(res["models"]["wam"]["per_fold_spearman"])
    ref = np.array(res["cv_baselines"][res["strongest_baseline"]]["per_fold_spearman"])
    d = rho - ref
    se = np.sqrt((1 / 10 + 18 / 72) * d.var(ddof=1))
    assert res["models"]["wam"]["vs_baseline"]["t"] == pytest.approx(d.mean() / se, rel=1e-9)


def test_cv_none_is_labelled_optimistic_and_train_size():
    fs = feature_set()
    res = evaluate_models(fs, ["wam"], cv="none")
    assert res["cv"]["optimistic"] and "optimistic" in res["cv"]["note"]
    assert len(res["models"]["wam"]["per_fold_spearman"]) == 1
    res = evaluate_models(fs, ["single"], folds=3, repeats=1, train_size=[10, 30])
    assert [p["train_size"] for p in res["learning_curve"]["single"]] == [10, 30]
    with pytest.raises(RankzcError, match="train_size"):
        evaluate_models(fs, ["single"], folds=3, repeats=1, train_size=80)
    with pytest.raises(RankzcError, match="unknown model"):
        evaluate_models(fs, ["magic"])


def test_same_folds_and_no_test_row_reaches_fit(monkeypatch):
    """Every model is fitted on exactly the training rows of each fold, never a test row."""
    sentinel = 123456.0
    folds = make_folds(60, folds=3, repeats=2, seed=0)
    seen: list[tuple[str, set]] = []
    real = evaluation.make_ranker

    def spy(name, **params):
        model = real(name, **params)
        fit = model.fit

        def recording_fit(X, y):
            seen.append((name, set(X.index), bool((X.to_numpy() == sentinel).any())))
            return fit(X, y)

        model.fit = recording_fit
        return model

    monkeypatch.setattr(evaluation, "make_ranker", spy)
    poisoned = feature_set(60)
    test0 = folds[0][1]
    poisoned.X.iloc[test0] = sentinel
    models = ["single", "vote", "wam", "ranknet", "lambdarank"]
    seen.clear()
    evaluate_models(poisoned, models, folds=3, repeats=2, params=FAST)
    assert len(seen) == len(models) * len(folds)
    for f, (train, _test) in enumerate(folds):
        for k in range(len(models)):
            name, idx, poisoned_seen = seen[f * len(models) + k]
            assert idx == set(train.tolist()), (f, name)  # same folds for every model
            if f == 0:
                assert not poisoned_seen, f"{name}: a test row of fold 0 reached fit"
    # sanity: the spy does see the poisoned rows where they are training rows
    assert any(p for _, _, p in seen[len(models) :])


def test_report_dir(tmp_path):
    res = evaluate_models(
        feature_set(),
        ["wam", "lambdarank"],
        folds=3,
        repeats=1,
        train_size=[20, 40],
        report_dir=tmp_path,
        params=FAST,
    )
    text = (tmp_path / "report.md").read_text()
    assert "| lambdarank |" in text and "learning_curve.png" in text
    assert (tmp_path / "predicted_vs_true.png").stat().st_size > 1000
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000
    assert res["report"].endswith("report.md")


def test_arch_features():
    enc = arch_features(["(0, 2, 3)", "(1, 2, 0)"], "nasbench201")
    assert list(enc.columns) == ["pos0=0", "pos0=1", "pos1=2", "pos2=0", "pos2=3"]
    assert enc.to_numpy().tolist() == [[1, 0, 1, 0, 1], [0, 1, 1, 1, 0]]
    again = arch_features(["(4, 2, 3)"], "nasbench201", columns=enc.columns)
    assert again.to_numpy().tolist() == [[0, 0, 1, 0, 1]]
    gcn = arch_features(["10000101-01100011-10100100-00011001"], "gcn-nas")
    assert gcn.shape == (1, 89) and gcn.loc[0, "depth"] == 4
    with pytest.raises(RankzcError, match="integer tuple"):
        parse_tuple("abc")


@pytest.fixture(scope="module")
def nb201_store(nbsz_file, tmp_path_factory):
    from click.testing import CliRunner

    from rankzc.cli import main
    from rankzc.store import Benchmark

    out = tmp_path_factory.mktemp("nbsz") / "n.db"
    res = CliRunner().invoke(main, ["import", "nbsz", str(nbsz_file), "--out", str(out)])
    assert res.exit_code == 0, res.output
    with Benchmark.open(out) as bench:
        yield bench


def test_nb201_lambdarank_beats_single(nb201_store):
    fs = feature_matrix(nb201_store, "proxies")
    assert fs.X.shape == (725, 12)
    res = evaluate_models(fs, ["lambdarank"], folds=5, repeats=1)
    lam, single = res["models"]["lambdarank"], res["cv_baselines"]["best proxy"]
    assert lam["spearman_mean"] > 0.93 and single["spearman_mean"] < 0.82
