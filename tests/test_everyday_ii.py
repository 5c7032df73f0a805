"""Everyday use II (issue 23): verdicts in words, exit codes, the learning curve and the fit
summary printed, small stores, one spelling per idea, start lines, written files named."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_evaluate_verdicts import make_store

from rankzc.cli import main
from rankzc.ranking import evaluation

ROOT = Path(__file__).resolve().parents[1]
FAST = ("--folds", "3", "--repeats", "1", "--bootstrap", "50")


def run(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = tmp_path_factory.mktemp("ev") / "e.db"
    make_store(db, n=60, seeds_for=20)
    return db


# ------------------------------------------------------------------ 1. verdict
def test_evaluate_ends_with_one_verdict_and_one_ceiling(store):
    res = run("evaluate", "-b", store, "--models", "single,wam", *FAST)
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    verdict, ceiling = lines[-2], lines[-1]
    out = json.loads(run("evaluate", "-b", store, "--models", "single,wam", *FAST,
                         "--format", "json").stdout)  # fmt: skip
    best = max(out["models"], key=lambda m: out["models"][m]["spearman_mean"])
    vs = out["models"][best]["vs_baseline"]
    assert verdict.startswith(f"Verdict: the best ranker is {best} ")
    assert f"strongest baseline, {out['strongest_baseline']}" in verdict
    assert f"Δ {vs['mean_diff']:+.3f} [{vs['ci95'][0]:+.3f}, {vs['ci95'][1]:+.3f}]" in verdict
    assert f"p = {vs['p_value']:.2g}" in verdict
    word = "not distinguishable" if vs["p_value"] >= 0.05 else "than"
    assert word in verdict
    assert ceiling.startswith("Ceiling for any ranker's Spearman: ~")
    assert res.stdout.count("Ceiling") == 1 and "ceiling <=" not in res.stdout
    assert out["verdict"].startswith("Verdict:") and out["ceiling"]["source"] == "repeated seeds"
    # the footer says once what Δ is
    assert res.stdout.count("model minus") == 1


def test_single_and_best_proxy_baseline_are_one_row(store):
    res = run("evaluate", "-b", store, "--models", "single", *FAST)
    assert res.exit_code == 0, res.output
    assert "single = baseline: best proxy" in res.stdout
    assert "│ baseline: best proxy" not in res.stdout


def test_regret_is_in_accuracy_points(store):
    out = json.loads(run("evaluate", "-b", store, "--models", "wam", *FAST,
                         "--format", "json").stdout)  # fmt: skip
    regret = out["models"]["wam"]["regret_top1_mean"]
    # labels are fractions in [0.3, 0.9]: a regret in points is above 1 unless it is 0
    assert regret == 0 or regret > 1, regret
    assert "points" in out["units"]
    res = run("evaluate", "-b", store, "--models", "wam", *FAST)
    assert "regret@1 (pts)" in res.stdout


# ------------------------------------------------------------------ 2. exit codes
def test_an_impossible_model_is_refused_before_any_work(store, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("worked before refusing")

    monkeypatch.setattr(evaluation, "evaluate_models", boom)
    import rankzc.analysis

    monkeypatch.setattr(rankzc.analysis, "single_proxy_report", boom)
    res = run("evaluate", "-b", store, "--models", "gnn")
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [
        "Error: --models gnn: needs the architecture encoding, which --features proxies "
        "does not give; use --features arch or all"
    ]


def test_a_model_failing_on_the_data_exits_3_unless_keep_going(store, monkeypatch):
    real = evaluation._fit_predict

    def fit_predict(name, *a, **k):
        if name == "wam":
            raise RuntimeError("broken on this data")
        return real(name, *a, **k)

    monkeypatch.setattr(evaluation, "_fit_predict", fit_predict)
    res = run("evaluate", "-b", store, "--models", "single,wam", *FAST)
    assert res.exit_code == 3, res.output
    assert "failed: wam (split 1: RuntimeError: broken on this data)" in res.stdout
    assert "Verdict: the best ranker is single" in res.stdout
    assert res.stderr.strip().startswith("Error: 1 of 2 models failed")
    res = run("evaluate", "-b", store, "--models", "single,wam", *FAST, "--keep-going")
    assert res.exit_code == 0, res.output
    res = run("evaluate", "-b", store, "--models", "wam", *FAST, "--keep-going")
    assert res.exit_code == 1, res.output  # nothing to report: every model failed


def test_readme_documents_the_exit_codes():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    for code in ("0", "1", "2", "3"):
        assert re.search(rf"^\| `?{code}`? \|", section, flags=re.M), code
    assert "--keep-going" in section


# ------------------------------------------------------------------ 3. hidden results
def test_train_size_prints_its_learning_curve(store):
    res = run("evaluate", "-b", store, "--models", "wam", *FAST, "--train-size", "10,20")
    assert res.exit_code == 0, res.output
    assert "Learning curve" in res.stdout
    header = next(line for line in res.stdout.splitlines() if "N=10" in line)
    assert "N=20" in header
    assert re.search(r"│ wam +│ +-?\d\.\d{3} ± \d\.\d{3} │", res.stdout)


def test_fit_says_what_it_fitted_and_how_to_get_the_honest_figure(store, tmp_path):
    out = tmp_path / "w.rzc"
    res = run("fit", "-m", "wam", "-b", store, "-o", out, "--proxies", "p,q")
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert "fitted wam on 60 labelled architectures x 2 features" in text
    assert "features: p, q" in text
    assert "in-sample Spearman" in text and "in-sample:" in text and "optimistic" not in text
    assert f"held-out estimate: rankzc evaluate -b {store} --models wam --proxies p,q" in text
    assert f"ranker written to {out}" in text
    res = run("fit", "-m", "rankagg", "-b", store, "-o", tmp_path / "r.rzc")
    assert res.exit_code == 0, res.output
    assert "labels not read" in res.stdout and "it read no labels" in res.stdout
    assert "optimistic" not in res.stdout


# ------------------------------------------------------------------ 4. small stores
def test_a_small_store_says_so_once_and_shows_what_can_be_computed(tmp_path, monkeypatch):
    db = tmp_path / "s.db"
    make_store(db, n=10)

    def boom(*a, **k):
        raise AssertionError("cross-validated 10 architectures")

    monkeypatch.setattr(evaluation, "evaluate_models", boom)
    res = run("evaluate", "-b", db, "--models", "all", "--bootstrap", "50")
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert text.count("too few to cross-validate") == 1
    assert "(None)" not in text and "<= 0.000" not in text and "- ± -" not in text
    assert "Trivial baselines" not in text  # the store has no depth, params or flops
    assert "Single proxies" in text and "Verdict: the strongest single proxy" in text
    # folds x 2 also counts
    db2 = tmp_path / "m.db"
    make_store(db2, n=25)
    res = run("evaluate", "-b", db2, "--models", "wam", "--folds", "13", "--bootstrap", "50")
    assert res.exit_code == 0 and "need at least 26" in res.stdout, res.output
