"""Hostile ranker files, bounded work (issue 24, items 4 and 9).

Every count or width a ranker file declares is checked against a budget before anything
is built, and the file may not choose the data ``score`` reads. The hostile files are made
from genuine ones with their checksums recomputed (as an attacker would), so only the
content checks stand between them and torch / LightGBM.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from benchdata import write_gcn_store
from click.testing import CliRunner
from test_pickle_limits import CRASH
from test_ranker_files import _edit_manifest, _edit_model_text

from rankzc.cli import main
from rankzc.errors import RankzcError
from rankzc.ranking.budget import (
    MAX_LAYERS,
    MAX_RANKER_DATA_VALUES,
    MAX_TOTAL_LEAVES,
    MAX_TREES,
    MAX_WIDTH,
    check_ranker_data,
)
from rankzc.ranking.io import fit_ranker, load_ranker, save_ranker
from rankzc.ranking.lgbtext import safe_model_text
from rankzc.space import sample_architectures
from rankzc.store import Benchmark

SETTINGS = {
    "preset": "tiny",
    "data": "synthetic:n=40,frames=16,classes=5",
    "batch_size": 4,
    "seed": 0,
    "device": "cpu",
    "proxies": ["params", "zen"],
    "options": {},
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    def label(a, rng):
        return 0.5 + 0.01 * sum(a.op_counts().values()) + 0.01 * rng.normal()

    def scores(a, rng):
        n_ops = sum(a.op_counts().values())
        return {"params": (1e4 * n_ops, 0.1, None), "zen": (n_ops + rng.normal(), 0.1, None)}

    out = tmp_path_factory.mktemp("budget")
    store = write_gcn_store(
        out / "b.db", sample_architectures(40, seed=4), label, scores, settings=SETTINGS
    )
    fits = {
        "gnn": ("all", {"epochs": 2, "hidden": 8, "layers": 2}),
        "ranknet": ("proxies", {"epochs": 2, "hidden": [8, 4]}),
        "lambdarank": ("proxies", {"n_estimators": 10, "num_leaves": 4}),
    }
    paths = {}
    with Benchmark.open(store) as b:
        for name, (features, params) in fits.items():
            fitted = fit_ranker(b, name, features=features, params=params)
            paths[name] = save_ranker(fitted, out / f"{name}.rzc")
    return paths


def _refused(path, match: str) -> str:
    with pytest.raises(RankzcError, match=match) as err:
        load_ranker(path)
    msg = str(err.value)
    assert "corrupted ranker file" in msg and "\n" not in msg
    return msg


def _params(**values):
    def edit(man):
        man["params"].update(values)

    return edit


# ------------------------------------------------------------------ networks
@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"layers": 10**8}, f"gnn: layers 100000000 outside 1..{MAX_LAYERS}"),
        ({"layers": 0}, "gnn: layers 0 outside"),
        ({"layers": 2.5}, "gnn: layers 2.5 outside"),
        ({"hidden": 10**6}, f"gnn: hidden 1000000 outside 1..{MAX_WIDTH}"),
        ({"dropout": 7}, r"gnn: dropout must be a number in \[0, 1\)"),
    ],
)
def test_gnn_sizes_are_checked_before_building(files, tmp_path, values, match):
    """layers = 10**8 hung `score` with memory growing (2.6 GB after 90 s)."""
    path = _edit_manifest(files["gnn"], tmp_path / "g.rzc", _params(**values))
    _refused(path, match)


def test_gnn_declared_vocabulary_is_bounded(files, tmp_path):
    def edit(man):
        man["state"]["vocab"] = ["x"] * 200_000

    _refused(_edit_manifest(files["gnn"], tmp_path / "g.rzc", edit), "gnn: number of vocab")


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"hidden": [1] * 100_000}, f"number of hidden layers 100000 outside 0..{MAX_LAYERS}"),
        ({"hidden": [8, 10**9]}, f"hidden width 1000000000 outside 1..{MAX_WIDTH}"),
        ({"hidden": [8, -4]}, "hidden width -4 outside"),
        ({"hidden": "wide"}, "hidden must be a list"),
    ],
)
def test_ranknet_sizes_are_checked_before_building(files, tmp_path, values, match):
    """hidden = [1] * 100000 (a 36 KB file) took 55 s and 1.1 GB before refusal."""
    _refused(_edit_manifest(files["ranknet"], tmp_path / "r.rzc", _params(**values)), match)


def test_ranknet_input_count_is_bounded(files, tmp_path):
    def edit(man):
        man["state"]["n_in"] = 10**12

    _refused(_edit_manifest(files["ranknet"], tmp_path / "r.rzc", edit), "ranknet: n_in")


# ------------------------------------------------------------------ LightGBM text
def _trees(text: str, n: int, leaves: int = 1, arrays: bool = True) -> str:
    head = text[: text.index("Tree=0")]
    head = "\n".join(ln for ln in head.split("\n") if not ln.startswith("tree_sizes="))
    tree = "num_leaves={}\nnum_cat=0\n" + ("leaf_value=0.5\nshrinkage=1\n" if arrays else "")
    body = "".join(f"Tree={i}\n" + tree.format(leaves) + "\n" for i in range(n))
    return head + body + "end of trees\n"


def test_too_many_trees_are_refused_before_parsing(files, tmp_path):
    """1,000,000 one-leaf trees (3.1 MB) loaded in 51 s at 2.5 GB."""
    n_in = len(load_ranker(files["lambdarank"]).feature_names)
    path = _edit_model_text(files["lambdarank"], tmp_path / "t.rzc",
                            lambda t: _trees(t, MAX_TREES + 1))  # fmt: skip
    _refused(path, f"{MAX_TREES + 1} trees \\(the limit for a ranker file is {MAX_TREES}\\)")
    # at the limit, one-leaf trees are accepted (the budget is the only difference)
    ok = _edit_model_text(files["lambdarank"], tmp_path / "ok.rzc", lambda t: _trees(t, 50))
    assert np.isfinite(load_ranker(ok).model.predict(np.zeros((1, n_in)))).all()


def test_declared_leaves_are_counted_before_any_tree_is_parsed(files):
    with zipfile.ZipFile(files["lambdarank"]) as zf:
        genuine = zf.read("text/model.txt").decode()
    n_in = genuine.split("max_feature_idx=")[1].split("\n")[0]
    # 16 trees declaring 131072 leaves each but holding no arrays: the leaf budget refuses
    # the text before the first tree's (missing) arrays are looked at
    text = _trees(genuine, 16, leaves=131_072, arrays=False)
    with pytest.raises(RankzcError, match=f"over {MAX_TOTAL_LEAVES} leaves in all"):
        safe_model_text(text, int(n_in) + 1)
    with pytest.raises(RankzcError, match="no leaf_value"):  # within the budget: parsed
        safe_model_text(_trees(genuine, 2, leaves=3, arrays=False), int(n_in) + 1)


# ------------------------------------------------------------------ lambdarank prior
@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("sd", 0, "prior sd must be a positive finite number"),
        ("sd", -1.0, "prior sd must be a positive finite number"),
        ("sd", float("nan"), "prior sd must be a positive finite number"),
        ("sd", float("inf"), "prior sd must be a positive finite number"),
        ("mean", float("inf"), "prior mean must be finite"),
    ],
)
def test_lambdarank_prior_that_would_score_nan_is_refused(files, tmp_path, key, value, match):
    """sd = 0 scored every architecture NaN with exit 0."""
    with zipfile.ZipFile(files["lambdarank"]) as zf:
        assert json.loads(zf.read("manifest.json"))["state"]["prior"], "the file has a prior"

    def edit(man):
        man["state"]["prior"][key] = value

    path = _edit_manifest(files["lambdarank"], tmp_path / "p.rzc", edit)
    _refused(path, match)
    res = CliRunner().invoke(main, ["score", "-r", str(path), "--sample", "2"])
    assert res.exit_code == 1 and res.output.count("\n") == 1 and match in res.output


def test_prior_weight_must_be_finite(files, tmp_path):
    path = _edit_manifest(files["lambdarank"], tmp_path / "w.rzc", _params(prior_weight=1e400))
    _refused(path, "prior_weight must be finite")


# ------------------------------------------------------------------ recorded data
def test_budget_of_recorded_data():
    check_ranker_data("synthetic")
    check_ranker_data("synthetic:n=20000,classes=10,frames=8,seed=0,difficulty=0.3,persons=1")
    check_ranker_data("study:ntu60-xview")
    with pytest.raises(
        RankzcError, match=f"limit for data a ranker file chooses is {MAX_RANKER_DATA_VALUES:,}"
    ):
        check_ranker_data("synthetic:n=10000,frames=300")
    with pytest.raises(RankzcError, match="may not choose a path to read; pass --data"):
        check_ranker_data("ntu:/data/ntu60_3danno.pkl:xsub")


def _with_data(files, tmp_path, data: str):
    def edit(man):
        man["settings"]["data"] = data

    return _edit_manifest(files["ranknet"], tmp_path / "d.rzc", edit)


def test_recorded_oversized_synthetic_data_is_refused_before_any_work(files, tmp_path):
    """settings.data = synthetic:n=10000,frames=300 made `score --sample 1` allocate 5 GB."""
    path = _with_data(files, tmp_path, "synthetic:n=10000,frames=300")
    fitted = load_ranker(path)  # loading reads no data
    with pytest.raises(RankzcError, match="synthetic data of 450,000,000 numbers"):
        fitted.score(sample_architectures(1, seed=0), quiet=True)
    res = CliRunner().invoke(main, ["score", "-r", str(path), "--sample", "1"])
    assert res.exit_code == 1 and res.output.count("\n") == 1, res.output
    assert "pass --data to choose it" in res.output
    # the user's own choice is the user's: a small data set named with --data is used
    res = CliRunner().invoke(
        main, ["score", "-r", str(path), "--sample", "1", "--quiet", "--format", "json",
               "--data", "synthetic:n=40,frames=16,classes=5"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["ranking"]) == 1


def test_a_ranker_may_not_choose_a_data_path(files, tmp_path):
    """settings.data naming the 101-byte crash pickle crashed `score --sample 1`."""
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(CRASH)
    path = _with_data(files, tmp_path, f"ntu:{evil}")
    code = "import sys; from rankzc.cli import main; sys.argv[0] = 'rankzc'; main()"
    res = subprocess.run(
        [sys.executable, "-c", code, "score", "-r", str(path), "--sample", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 1, (res.returncode, res.stderr[-500:])
    assert res.stderr.count("\n") == 1 and "may not choose a path to read" in res.stderr
    # given by the user, the path is read, and the pickle is refused in one line
    res = subprocess.run(
        [sys.executable, "-c", code, "score", "-r", str(path), "--sample", "1",
         "--data", f"ntu:{evil}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 1, (res.returncode, res.stderr[-500:])
    assert res.stderr.count("\n") == 1 and "refused to unpickle" in res.stderr


# ------------------------------------------------------------------ evaluate exit code
def test_evaluate_exits_non_zero_when_every_model_fails(files, monkeypatch):
    from rankzc.ranking.wam import WeightedMeanRanker

    store = files["gnn"].parent / "b.db"
    args = ["evaluate", "-b", str(store), "--features", "proxies", "--folds", "2", "--quiet",
            "--bootstrap", "10"]  # fmt: skip
    # gnn reads the architecture graph: with --features proxies it is refused before any fit
    res = CliRunner().invoke(main, [*args, "--models", "gnn"])
    assert res.exit_code == 2, res.output
    # a model that fails on the data: every model failed -> 1, some failed -> 3 (or 0)

    def broken(self, X, y):
        raise ValueError("broken on purpose")

    monkeypatch.setattr(WeightedMeanRanker, "fit", broken)
    res = CliRunner().invoke(main, [*args, "--models", "wam"])
    assert res.exit_code == 1, res.output
    assert "every model in --models failed (wam:" in res.output
    res = CliRunner().invoke(main, [*args, "--models", "wam,vote"])
    assert res.exit_code == 3, res.output
    res = CliRunner().invoke(main, [*args, "--models", "wam,vote", "--keep-going"])
    assert res.exit_code == 0, res.output  # one model ran: its figures are the answer
