"""The fold engine of ``evaluate``: one fit/predict path for models, ablations and baselines.

The halves data set makes any choice made on a test row visible: with two folds, every
column orders the labels one way in one half and the other way in the other half, so a
ranker (or a baseline's column choice, or a sign) fitted on the training half scores
about -1 on the test half, while one that saw the test rows scores positive on at least
one split. RankNet's renamed ``input_transform`` and the old files that say ``transform``
are checked here too.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from benchdata import OPS_SETTINGS, ops_label, ops_scores, write_gcn_store
from click.testing import CliRunner
from test_ranker_files import _edit_manifest

from rankzc.cli import main
from rankzc.ranking import evaluation
from rankzc.ranking.evaluation import (
    TABLE_COLUMNS,
    evaluate_models,
    fold_rankers,
    make_folds,
    run_folds,
)
from rankzc.ranking.features import FeatureSet
from rankzc.ranking.io import fit_ranker, load_ranker, save_ranker
from rankzc.ranking.single import SignedColumnRanker
from rankzc.space import sample_architectures
from rankzc.store import Benchmark

FAST = {"ranknet": {"epochs": 8}, "lambdarank": {"n_estimators": 40}}
LEARNED = ["single", "vote", "wam", "ranknet", "lambdarank"]


def halves(n: int = 80, features: str = "proxies") -> FeatureSet:
    """Labels follow every column in the first 2-fold test half and run against it in
    the other (``h`` says which half; constant within a training half)."""
    (_, first), (_, second) = make_folds(n, folds=2, repeats=1, seed=0)
    assert len(first) + len(second) == n
    rng = np.random.default_rng(1)
    c = rng.normal(size=n)
    s = np.ones(n)
    s[second] = -1.0
    cols = {
        "a": c + 0.05 * rng.normal(size=n),
        "b": c + 0.3 * rng.normal(size=n),
        "params": 1e6 * np.exp(c + 0.1 * rng.normal(size=n)),
        "flops": 1e8 * (c + 0.1 * rng.normal(size=n)),
        "h": (s < 0).astype(float),
    }
    proxies = list(cols)
    if features == "all":
        cols["enc"] = c + 0.2 * rng.normal(size=n)  # an architecture column, not a proxy
    idx = [f"a{i}" for i in range(n)]
    X = pd.DataFrame(cols, index=idx)
    depth = 4.0 + 2 * np.digitize(c, np.quantile(c, [0.25, 0.5, 0.75]))
    return FeatureSet(
        X=X,
        y=pd.Series(0.9 + 0.01 * s * c, index=idx),
        depth=pd.Series(depth, index=idx),
        space="toy",
        features=features,
        proxies=proxies,
    )


def test_every_choice_is_made_on_the_training_half():
    """Models, the no-proxy ablation and every baseline (the best proxy, the best encoding
    column, depth/params/flops signs) score about -1 on each held-out half: nothing was
    chosen, signed or fitted on a test row."""
    res = evaluate_models(halves(features="all"), LEARNED, folds=2, repeats=1, params=FAST)
    base = res["cv_baselines"]
    assert list(base) == ["best proxy", "depth", "params", "flops", "best encoding column"]
    for name, e in base.items():
        assert max(e["per_fold_spearman"]) < -0.5, (name, e["per_fold_spearman"])
    assert base["best proxy"]["chosen"] == {"a": 2}
    assert base["best encoding column"]["chosen"] == {"enc": 2}
    assert res["ablation"]["models"] == LEARNED
    for m in LEARNED:
        entry = res["models"][m]
        assert max(entry["per_fold_spearman"]) < -0.5, (m, entry["per_fold_spearman"])
        arch = entry["proxies_add"]["per_fold_spearman_arch_only"]
        assert max(arch) < -0.5, (m, arch)


def test_every_fit_sees_the_training_rows_only(monkeypatch):
    """Models and baselines go through the one fit/predict path, each with exactly the
    training rows of its split; the test rows only reach predict."""
    fs = halves(features="all")
    splits = make_folds(len(fs.y), folds=3, repeats=2, seed=0)
    seen = []
    real = evaluation._fit_predict

    def spy(name, params, X_tr, y_tr, X_te):
        seen.append((name, set(X_tr.index), set(X_te.index), list(X_tr.columns)))
        return real(name, params, X_tr, y_tr, X_te)

    monkeypatch.setattr(evaluation, "_fit_predict", spy)
    evaluate_models(fs, ["wam"], folds=3, repeats=2)
    names = ["wam", "wam", "best proxy", "depth", "params", "flops", "best encoding column"]
    assert len(seen) == len(splits) * len(names)
    for f, (train, test) in enumerate(splits):
        block = seen[f * len(names) : (f + 1) * len(names)]
        assert [b[0] for b in block] == names
        for name, tr, te, _ in block:
            assert tr == set(train.tolist()) and te == set(test.tolist()), (f, name)
    cols = {b[0]: b[3] for b in seen[2 : len(names)]}
    assert cols == {
        "best proxy": ["a", "b", "params", "flops", "h"],
        "depth": ["depth"],
        "params": ["params"],
        "flops": ["flops"],
        "best encoding column": ["enc"],
    }


def test_the_long_table_holds_every_split_of_every_ranker():
    fs = halves()
    X = fs.X.reset_index(drop=True)
    y = fs.y.to_numpy()
    depth = fs.depth.to_numpy()
    splits = make_folds(len(y), folds=3, repeats=2, seed=0)
    rankers = fold_rankers(fs, X, ["single", "wam"], {}, depth=depth)
    run = run_folds(rankers, y, splits, depth=depth, oof_splits=3)
    t = run.table
    assert list(t.columns) == list(TABLE_COLUMNS)
    assert len(t) == len(splits) * 6 and not run.failed
    assert set(t["kind"]) == {"model", "baseline"}
    for (kind, model), rows in t.groupby(["kind", "model"]):
        assert rows["split"].tolist() == list(range(len(splits))), (kind, model)
        assert (rows["n_train"] + rows["n_test"] == len(y)).all()
    # the same figures as evaluate_models, which reads this table
    res = evaluate_models(fs, ["single", "wam"], folds=3, repeats=2)
    wam = t[(t["model"] == "wam") & (t["kind"] == "model")]
    assert wam["spearman"].tolist() == pytest.approx(res["models"]["wam"]["per_fold_spearman"])
    depth_rows = t[t["model"] == "depth"]
    assert depth_rows["spearman"].tolist() == pytest.approx(
        res["cv_baselines"]["depth"]["per_fold_spearman"]
    )
    # out-of-fold predictions: every architecture once over the first repeat
    assert np.isfinite(run.oof["wam"]).all() and set(run.oof) == {"single", "wam"}


def test_a_failing_model_is_recorded_and_skipped_on_later_splits(monkeypatch):
    from rankzc.errors import RankzcError
    from rankzc.ranking.wam import WeightedMeanRanker

    calls = []

    def broken(self, X, y):
        calls.append(1)
        raise RankzcError("wam: broken on purpose")

    monkeypatch.setattr(WeightedMeanRanker, "fit", broken)
    fs = halves()
    X, y = fs.X.reset_index(drop=True), fs.y.to_numpy()
    splits = make_folds(len(y), folds=3, repeats=1, seed=0)
    ticks = []
    run = run_folds(
        fold_rankers(fs, X, ["wam", "single"], {}), y, splits, tick=lambda: ticks.append(1)
    )
    assert len(calls) == 1 and run.error("model", "wam") == "split 1: wam: broken on purpose"
    assert run.rows("model", "wam").empty and len(run.rows("model", "single")) == 3
    assert len(ticks) == 2 * 3  # models count in the progress, baselines do not


def test_signed_column_takes_its_sign_from_the_training_rows():
    X = pd.DataFrame({"depth": [1.0, 2.0, 3.0, np.nan]})
    r = SignedColumnRanker().fit(X.iloc[:3], [3.0, 2.0, 1.0])
    assert r.sign_ == -1.0 and r.rho_ == pytest.approx(-1.0)
    out = r.predict(X)
    assert out[:3].tolist() == [-1.0, -2.0, -3.0] and np.isnan(out[3])  # missing stays missing
    assert SignedColumnRanker().fit(X.iloc[:3], [5.0, 5.0, 5.0]).sign_ == 1.0  # undefined: +


# ---------------------------------------------------------------- RankNet's input_transform
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("fe") / "b.db"
    archs = sample_architectures(40, seed=5)
    return write_gcn_store(path, archs, ops_label, ops_scores, settings=OPS_SETTINGS, seed=1)


def test_old_ranknet_files_with_transform_still_load(store, tmp_path):
    with Benchmark.open(store) as b:
        fitted = fit_ranker(
            b, "ranknet", params={"epochs": 2, "hidden": [4], "input_transform": "standard"}
        )
    path = save_ranker(fitted, tmp_path / "new.rzc")
    manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))
    assert manifest["params"]["input_transform"] == "standard"
    assert "transform" not in manifest["params"]

    def rename(man):  # a file written before the rename
        man["params"]["transform"] = man["params"].pop("input_transform")

    old = _edit_manifest(path, tmp_path / "old.rzc", rename)
    loaded = load_ranker(old)
    assert loaded.model.input_transform == "standard"
    X = np.random.default_rng(0).random((5, len(loaded.feature_names)))
    assert np.allclose(loaded.model.predict(X), load_ranker(path).model.predict(X))


def test_cli_fit_takes_either_name(store, tmp_path):
    for i, spelling in enumerate(("transform", "input_transform")):
        out = tmp_path / f"r{i}.rzc"
        res = CliRunner().invoke(
            main,
            ["fit", "-m", "ranknet", "-b", str(store), "-o", str(out),
             "--param", "epochs=2", "--param", f"{spelling}=none"],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        assert load_ranker(out).model.input_transform == "none"
    res = CliRunner().invoke(
        main,
        ["fit", "-m", "ranknet", "-b", str(store), "-o", str(tmp_path / "x.rzc"),
         "--param", "transform=none", "--param", "input_transform=none"],
    )  # fmt: skip
    assert res.exit_code != 0 and "not both" in res.output
