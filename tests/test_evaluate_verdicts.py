"""`rankzc evaluate`'s verdicts: --epoch reaches every model, label noise and the ceiling from
repeated seeds, and one-line refusals of data that cannot be evaluated (nothing changes)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.ranking import evaluation
from rankzc.ranking.evaluation import evaluate_models
from rankzc.stats import spearman, spearman_brown
from rankzc.store import Benchmark

CONFIG = {"preset": "toy", "epochs": 1}


def make_store(
    path,
    n: int = 60,
    seeds_for: int = 0,
    n_val: int = 50,
    constant: bool = False,
    nan_proxies: bool = False,
    seed: int = 0,
):
    """A store through the Benchmark API: ``n`` architectures of a tuple space, labels that
    are multiples of ``1/n_val`` (two runs under seeds 0 and 1 for the first ``seeds_for``),
    proxies at initialisation that know nothing (``p``, ``q``) and after epoch 1 a ``p``
    that follows the true quality."""
    rng = np.random.default_rng(seed)
    quality = rng.uniform(0.3, 0.9, size=n)
    with Benchmark.create(path, space="toy", dataset="toy", source="test") as bench:
        ids = [f"a{i:03d}" for i in range(n)]
        bench.add_architectures(
            {"arch_id": a, "space": "toy", "encoding": f"({i % 3}, {i % 5})", "depth": None}
            for i, a in enumerate(ids)
        )
        for i, a in enumerate(ids):
            for s in (0, 1) if i < seeds_for else (0,):
                acc = 0.5 if constant else rng.binomial(n_val, quality[i]) / n_val
                run_id, _, _ = bench.get_or_create_run(a, s, CONFIG)
                bench.finish_run(run_id, val_acc=acc, train_seconds=1.0)
            init = {
                "p": None if nan_proxies else float(rng.normal()),
                "q": None if nan_proxies else float(rng.normal()),
            }
            bench.record_proxies(a, -1, init)
            bench.record_proxies(
                a, 1, {"p": float(quality[i] + 0.02 * rng.normal()), "q": float(rng.normal())}
            )
    return quality


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_rankers_see_the_epochs_scores(tmp_path, monkeypatch):
    db = tmp_path / "e.db"
    make_store(db, n=80)
    seen = []
    real = evaluation.make_ranker

    def spy(name, **params):
        model = real(name, **params)
        fit = model.fit

        def recording_fit(X, y):
            seen.append(X.copy())
            return fit(X, y)

        model.fit = recording_fit
        return model

    monkeypatch.setattr(evaluation, "make_ranker", spy)
    with Benchmark.open(db, readonly=True) as bench:
        after = bench.features(1)
        res1 = evaluate_models(bench, ["wam", "vote"], folds=4, repeats=1, epoch=1, ablation=False)
        for X in seen:  # every fit got the epoch-1 scores of its training rows
            assert np.allclose(X[["p", "q"]].to_numpy(), after.iloc[X.index][["p", "q"]].to_numpy())
        seen.clear()
        res0 = evaluate_models(bench, ["wam", "vote"], folds=4, repeats=1, epoch=-1, ablation=False)
    assert res1["epoch"] == 1 and res0["epoch"] == -1
    assert res1["models"]["wam"]["spearman_mean"] > 0.6 > res0["models"]["wam"]["spearman_mean"]
    assert res1["models"]["vote"]["spearman_mean"] > 0.6 > res0["models"]["vote"]["spearman_mean"]


def test_cli_epoch_reaches_models_report_and_fit(tmp_path):
    db = tmp_path / "e.db"
    make_store(db, n=80)
    out = {}
    for epoch in ("-1", "1"):
        res = run(
            "evaluate", "-b", db, "--models", "wam", "--epoch", epoch, "--folds", "4",
            "--repeats", "1", "--bootstrap", "0", "--format", "json",
            "--report", tmp_path / f"r{epoch}",
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        out[epoch] = json.loads(res.stdout)
    assert out["1"]["models"]["wam"]["spearman_mean"] > 0.6
    assert out["-1"]["models"]["wam"]["spearman_mean"] < 0.6
    assert out["1"]["proxies"]["p"]["spearman"] > 0.6  # single-proxy table too
    assert "after epoch 1" in (tmp_path / "r1" / "report.md").read_text()
    res = run("fit", "-m", "single", "-b", db, "--epoch", "1", "-o", tmp_path / "s.rzc")
    assert res.exit_code == 0, res.output
    assert "proxy: p" in res.output


def test_repeated_seeds_give_the_mean_label_and_the_ceiling(tmp_path):
    db = tmp_path / "r.db"
    make_store(db, n=60, seeds_for=40)
    with Benchmark.open(db, readonly=True) as bench:
        runs = bench.run_labels()
        labels = bench.labels()
    by = runs.pivot(index="arch_id", columns="seed", values="val_acc")
    assert labels["val_acc"].to_numpy() == pytest.approx(by.mean(axis=1).to_numpy())
    both = by.dropna()
    assert len(both) == 40
    r = spearman(both[0], both[1])
    k = (40 * 2 + 20) / 60
    res = run("evaluate", "-b", db, "--format", "json", "--bootstrap", "300")
    assert res.exit_code == 0, res.output
    noise = json.loads(res.stdout)["label_noise"]
    rep = noise["repeats"]
    assert noise["n_repeated"] == 40 and noise["runs_per_architecture"] == pytest.approx(k)
    assert rep["seed_to_seed_spearman"] == pytest.approx(r, abs=1e-12)
    kh = 60 / (40 / 2 + 20)  # Spearman-Brown with the harmonic mean of the run counts
    assert noise["runs_per_architecture_harmonic"] == pytest.approx(kh)
    assert rep["reliability"] == pytest.approx(spearman_brown(r, kh), abs=1e-12)
    assert rep["ceiling"] == pytest.approx(np.sqrt(spearman_brown(r, kh)), abs=1e-12)
    lo, hi = rep["reliability_ci95"]
    assert lo < rep["reliability"] < hi
    assert noise["validation_size"] == 50  # labels are multiples of 1/50
    assert 0 < noise["binomial"]["noise_share"] < 1
    text = run("evaluate", "-b", db, "--bootstrap", "100").output
    assert "seed-to-seed Spearman" in text
    # one ceiling, the measured one (the binomial estimate is rougher and not repeated)
    assert text.count("Ceiling") == 1 and "ceiling <=" not in text
    assert f"Ceiling for any ranker's Spearman: ~ {rep['ceiling']:.3f}" in text
    assert "validation set of 50" in text


def test_no_repeats_says_the_ceiling_is_unknown(tmp_path):
    db = tmp_path / "n.db"
    make_store(db, n=30)
    res = run("evaluate", "-b", db, "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    assert "ceiling unknown" in res.output


@pytest.mark.parametrize(
    "kind, args, message",
    [
        ("constant", (), "labels have no spread"),
        ("nan", (), "is missing (NaN)"),
        ("ok", ("--epoch", "3"), "no proxy scores at epoch 3 (epochs with scores: -1, 1)"),
        ("constant", ("--models", "ranknet"), "labels have no spread"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(tmp_path, kind, args, message):
    db = tmp_path / "b.db"
    make_store(db, n=20, constant=kind == "constant", nan_proxies=kind == "nan")
    before = digest(db)
    res = run("evaluate", "-b", db, "--bootstrap", "0", *args)
    assert res.exit_code != 0
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], res.output
    assert digest(db) == before


@pytest.mark.parametrize("model", ["ranknet", "lambdarank", "single", "wam", "vote"])
def test_every_ranker_refuses_labels_without_spread(model):
    from rankzc.errors import RankzcError
    from rankzc.ranking.registry import make_ranker

    X = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(RankzcError, match="no spread"):
        make_ranker(model).fit(X, np.full(30, 0.7))


def test_ranknet_fits_when_the_held_out_rows_take_every_other_label():
    from rankzc.ranking.ranknet import RankNetRanker

    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.zeros(40)
    perm = np.random.default_rng(0).permutation(40)
    y[perm[0]] = 1.0  # the only different label lands in the validation part (seed 0)
    model = RankNetRanker(epochs=3).fit(X, y)
    assert np.isfinite(model.predict(X)).all()


def test_vote_says_when_its_score_comes_from_sampled_pairs(tmp_path):
    db = tmp_path / "v.db"
    make_store(db, n=60)  # 1,770 pairs
    res = run("vote", "-b", db, "--epoch", "1", "--max-pairs", "1000", "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["sampled"] and "estimated from" in out["note"] and out["pairs"] < 1000
    res = run("vote", "-b", db, "--epoch", "1", "--max-pairs", "1000")
    assert "pairwise accuracy estimated from" in res.output and "random pairs" in res.output
    out = json.loads(run("vote", "-b", db, "--epoch", "1", "--format", "json").output)
    assert not out["sampled"] and "note" not in out


def test_too_few_labels_is_one_line(tmp_path):
    db = tmp_path / "f.db"
    make_store(db, n=2)
    res = run("evaluate", "-b", db, "--bootstrap", "0")
    assert res.exit_code != 0
    assert res.output.strip().splitlines() == [
        f"Error: {db}: only 2 labelled architecture(s); need at least 3 to rank"
    ]


def test_models_all_with_proxies_only_skips_rankers_that_need_the_encoding(tmp_path, monkeypatch):
    """``--models all`` means every ranker that can read the chosen features: with proxies
    only, gnn is left out with a note instead of reported as failed."""
    db = tmp_path / "e.db"
    make_store(db, n=60)
    fitted = []
    real = evaluation.make_ranker
    monkeypatch.setattr(
        evaluation, "make_ranker", lambda name, **p: fitted.append(name) or real(name, **p)
    )
    res = run(
        "evaluate", "-b", db, "--models", "all", "--folds", "3", "--repeats", "1",
        "--bootstrap", "0", "--format", "json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    models = json.loads(res.stdout)["models"]
    assert "gnn" not in models and "gnn" not in fitted
    assert {"single", "wam", "lambdarank", "rankagg"} <= set(models)
    assert "gnn skipped" in res.stderr


def test_binomial_line_is_an_estimate_with_its_assumption(tmp_path):
    db = tmp_path / "b.db"
    make_store(db, n=60)  # one seed each: only the binomial estimate applies
    text = run("evaluate", "-b", db, "--bootstrap", "50").output
    assert "Binomial estimate" in text and "assuming independent errors" in text
    assert "bound" not in text.replace("not a bound", "")
    res = json.loads(run("evaluate", "-b", db, "--bootstrap", "50", "--format", "json").output)
    assert res["ceiling"]["source"] == "binomial estimate" and res["ceiling"]["approximate"]
    b = res["label_noise"]["binomial"]
    assert b["assumption"] == "independent errors across architectures"
    assert "ceiling_at_most" not in b and 0 < b["ceiling_estimate"] < 1


def test_proxies_add_runs_the_same_model_without_proxies_on_the_same_folds(tmp_path):
    from rankzc.stats import holm

    db = tmp_path / "a.db"
    make_store(db, n=80)
    params = {"lambdarank": {"n_estimators": 30}}
    kw = dict(folds=4, repeats=2, epoch=1, params=params)
    res = evaluate_models(db, ["lambdarank", "rankagg"], features="all", **kw)
    add = res["models"]["lambdarank"]["proxies_add"]
    arch = evaluate_models(db, ["lambdarank"], features="arch", **kw)["models"]["lambdarank"]
    # the architecture-only fits are exactly those of --features arch on the same splits
    np.testing.assert_allclose(add["per_fold_spearman_arch_only"], arch["per_fold_spearman"])
    with_p = np.array(res["models"]["lambdarank"]["per_fold_spearman"])
    d = with_p - np.array(arch["per_fold_spearman"])
    assert add["mean_diff"] == pytest.approx(d.mean())
    lo, hi = add["ci95"]
    assert lo < add["mean_diff"] < hi and lo > 0  # epoch-1 p knows the quality; arch does not
    assert "proxies_add" not in res["models"]["rankagg"]  # label-free: nothing to ablate
    assert res["ablation"]["models"] == ["lambdarank"]
    # Holm over every model-baseline comparison of the run
    comps = [c for m in res["models"].values() for c in m["comparisons"].values()]
    np.testing.assert_allclose(
        [c["p_holm"] for c in comps], holm([c["p_value"] for c in comps]), equal_nan=True
    )
    # --features proxies: the architecture features come from the store
    prox = evaluate_models(db, ["lambdarank"], features="proxies", **kw)
    assert np.isfinite(prox["models"]["lambdarank"]["proxies_add"]["mean_diff"])
    off = evaluate_models(db, ["lambdarank"], features="all", ablation=False, **kw)
    assert "proxies_add" not in off["models"]["lambdarank"]
    # the learning curve carries it at every size
    curve = evaluate_models(db, ["lambdarank"], features="all", train_size=[20, 40], **kw)
    for point in curve["learning_curve"]["lambdarank"]:
        assert np.isfinite(point["proxies_add"]["mean_diff"])


def test_evaluate_json_and_table_report_the_no_proxy_ablation(tmp_path):
    db = tmp_path / "c.db"
    make_store(db, n=60)
    args = ["evaluate", "-b", db, "--models", "lambdarank", "--features", "all"]
    args += ["--folds", "3", "--repeats", "1", "--epoch", "1", "--bootstrap", "20"]
    res = json.loads(run(*args, "--format", "json").output)
    add = res["models"]["lambdarank"]["proxies_add"]
    assert np.isfinite(add["mean_diff"]) and all(np.isfinite(add["ci95"]))
    assert np.isfinite(add["arch_only_spearman_mean"]) and "p_holm" in add
    text = run(*args).output
    assert "What the proxies add" in text and "architecture alone" in text
