"""Rank new architectures with a ranker fitted on the study (issue 22).

``rankzc import thesis`` records the study's proxy settings; ``fit``/``evaluate --proxies``
choose the proxy inputs; ``score`` recomputes only the ranker's proxies, the data-free
ones on a placeholder minibatch of the study's shape, the data-reading ones only with
``--data ntu:PATH``. Everything runs on small files the tests write (the study's real
files in ../shared are used only by the last test, skipped when absent).
"""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from benchdata import write_gcn_store, write_thesis_dir
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.importers import import_thesis
from rankzc.importers.thesis import STUDY_SETTINGS
from rankzc.proxies.features import (
    ProxySettings,
    iter_scores,
    unreproducible,
)
from rankzc.proxies.registry import DEFINITIONS, PROXIES
from rankzc.space import sample_architectures
from rankzc.store import Benchmark

DATA_FREE = ["synflow", "zen", "l2_norm", "params", "flops"]
READING = sorted(set(PROXIES) - set(DATA_FREE))
#: the study's settings at the tiny preset: the placeholder path, cheaply
TINY_STUDY = {
    "preset": "tiny",
    "data": "study:ntu60-xview",
    "batch_size": 4,
    "seed": 0,
    "definitions": DEFINITIONS,
}


def manifest(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


def run(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error(res, needle: str) -> None:
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert needle in lines[0], res.output


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A small store in the study's format, imported as the study is."""
    base = tmp_path_factory.mktemp("study")
    write_thesis_dir(base / "archs", n=24, epochs=())
    import_thesis(base / "archs", base / "t.db")
    return base / "t.db"


@pytest.fixture(scope="module")
def free_ranker(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("rankers") / "s.rzc"
    res = run(["fit", "-m", "lambdarank", "-b", study, "--features", "all",
               "--proxies", ",".join(DATA_FREE), "--param", "n_estimators=20", "--out", out])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Note:" not in res.output  # every proxy can be recomputed: nothing to say
    return out


@pytest.fixture(scope="module")
def all_ranker(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("rankers") / "all.rzc"
    res = run(["fit", "-m", "wam", "-b", study, "--out", out])
    assert res.exit_code == 0, res.output
    return out, res.output


# ------------------------------------------------------------------ study settings
def test_import_records_the_study_settings(study):
    with Benchmark.open(study) as b:
        settings = json.loads(b.meta["proxy_settings"])
    assert settings["preset"] == "ntu60" and settings["data"] == "study:ntu60-xview"
    assert settings["batch_size"] == 20 and settings["input_shape"] == [3, 300, 25, 2]
    assert settings["num_classes"] == 60 and settings["loss"] == "cross_entropy"
    assert settings["proxies"] == sorted(PROXIES)  # the files' proxies
    ps = ProxySettings.from_dict(settings)  # the record loads as settings
    assert unreproducible(ps) == READING  # these need the study's data
    assert unreproducible({**settings, "proxies": DATA_FREE}) == []


def test_registry_data_flags():
    """Exactly the five proxies the issue names read only the minibatch's shape."""
    assert sorted(n for n, p in PROXIES.items() if not p.needs_data) == sorted(DATA_FREE)


def test_placeholder_gives_the_data_free_scores_of_real_data():
    """Data-free proxies on the study's placeholder equal those on any minibatch of the
    same shape: the flag ``needs_data=False`` is true of each of them."""
    archs = sample_architectures(2, seed=5)
    settings = ProxySettings.from_dict({**TINY_STUDY, "proxies": DATA_FREE, "device": "cpu"})
    placeholder = {a.arch_id: r for a, r in iter_scores(archs, settings)}
    gen = torch.Generator().manual_seed(1)
    x = torch.randn((4, 3, 16, 25, 2), generator=gen)
    y = torch.randint(0, 60, (4,), generator=gen)
    real = {a.arch_id: r for a, r in iter_scores(archs, settings, batch=(x, y, 60))}
    for arch_id, results in placeholder.items():
        for name in DATA_FREE:
            got, want = results[name].score, real[arch_id][name].score
            assert got is not None and got == pytest.approx(want, rel=1e-6), name


def test_study_flops_count_the_whole_minibatch():
    """The study recorded the FLOPs of its minibatch of 20; its settings say so."""
    archs = sample_architectures(1, seed=2)
    per_sample = ProxySettings.from_dict({**TINY_STUDY, "proxies": ["flops"]})
    batch = ProxySettings.from_dict(
        {**TINY_STUDY, "proxies": ["flops"], "options": STUDY_SETTINGS["options"]}
    )
    ((_, one),) = iter_scores(archs, per_sample)
    ((_, four),) = iter_scores(archs, batch)
    assert STUDY_SETTINGS["options"] == {"flops_per": "batch", "zen_batch": 4}
    assert one["flops"].score > 0 and four["flops"].score == 4 * one["flops"].score


def test_placeholder_refuses_data_reading_proxies():
    settings = ProxySettings.from_dict({**TINY_STUDY, "proxies": ["zen", "nwot"]})
    with pytest.raises(Exception, match=r"nwot; give --data ntu:PATH.*--proxies zen"):
        list(iter_scores(sample_architectures(1), settings))


# ------------------------------------------------------------------------ fit
def test_fit_proxies_records_exactly_those(free_ranker):
    m = manifest(free_ranker)
    assert m["proxies"] == DATA_FREE
    assert m["settings"]["proxies"] == DATA_FREE
    assert m["settings"]["data"] == "study:ntu60-xview" and m["settings"]["preset"] == "ntu60"
    assert not set(m["feature_names"]) & set(READING)


def test_fit_with_data_reading_proxies_says_so_in_one_line(all_ranker):
    path, output = all_ranker
    notes = [line for line in output.splitlines() if line.startswith("Note:")]
    assert len(notes) == 1
    assert all(n in notes[0] for n in READING)
    assert "--proxies flops,l2_norm,params,synflow,zen" in notes[0]
    assert sorted(manifest(path)["proxies"]) == sorted(PROXIES)


# ---------------------------------------------------------------------- score
def test_score_computes_only_the_rankers_proxies(free_ranker, monkeypatch):
    import rankzc.proxies.features as features

    asked = []
    real = features.compute_proxies

    def spy(model, batch, *args, names=None, **kwargs):
        asked.append(list(names))
        assert batch[0].abs().sum() == 0  # the placeholder, no data loaded
        return real(model, batch, *args, names=names, **kwargs)

    monkeypatch.setattr(features, "compute_proxies", spy)
    settings = json.dumps(TINY_STUDY)  # the study's placeholder at the tiny preset
    res = run(["score", "-r", free_ranker, "--sample", 2, "--settings", settings,
               "--quiet", "--format", "json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert asked == [DATA_FREE, DATA_FREE]
    rows = json.loads(res.stdout)["ranking"]
    assert len(rows) == 2 and all(np.isfinite(r[n]) for r in rows for n in DATA_FREE)
    assert not set(rows[0]) & set(READING)


def test_score_data_reading_ranker_without_data_refuses_before_any_work(all_ranker, monkeypatch):
    import rankzc.models as models

    def boom(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(models, "build_model", boom)
    res = run(["score", "-r", all_ranker[0], "--sample", 2])
    one_error(res, "give --data ntu:PATH")
    assert all(n in res.output for n in READING)
    assert "--proxies flops,l2_norm,params,synflow,zen" in res.output


def write_ntu_npy(base, n: int = 6, t: int = 8):
    """A tiny NTU set in the .npy layout (train/val data and label pickles)."""
    (base / "xview").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for part in ("train", "val"):
        x = rng.standard_normal((n, 3, t, 25, 2)).astype(np.float32)
        np.save(base / "xview" / f"{part}_data_joint.npy", x)
        names = [f"S001C00{1 + i % 3}P001R001A00{1 + i}.skeleton" for i in range(n)]
        with open(base / "xview" / f"{part}_label.pkl", "wb") as fh:
            pickle.dump((names, [i % 5 for i in range(n)]), fh)
    return base


def test_score_with_data_computes_data_reading_proxies(study, tmp_path, monkeypatch):
    import rankzc.proxies.features as features

    out = tmp_path / "n.rzc"
    res = run(["fit", "-m", "wam", "-b", study, "--proxies", "zen,nwot", "--out", out])
    assert res.exit_code == 0 and "nwot" in res.output  # the note names it
    data = write_ntu_npy(tmp_path / "ntu")
    settings = json.dumps(TINY_STUDY)
    base = ["score", "-r", out, "--sample", 2, "--settings", settings, "--quiet"]
    one_error(run(base), "give --data ntu:PATH")
    one_error(run([*base, "--data", "synthetic"]), "give ntu:PATH")
    one_error(run([*base, "--data", f"ntu:{data}:xsub"]), "xview")
    batches = []
    real = features.compute_proxies

    def spy(model, batch, *args, names=None, **kwargs):
        batches.append((batch[0].clone(), list(names)))
        return real(model, batch, *args, names=names, **kwargs)

    monkeypatch.setattr(features, "compute_proxies", spy)
    res = run([*base, "--data", f"ntu:{data}:xview", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["ranking"]
    assert len(rows) == 2 and all(np.isfinite(r["zen"]) for r in rows)
    assert [names for _, names in batches] == [["zen", "nwot"]] * 2
    x = batches[0][0]  # the NTU training samples, resampled to the preset's 16 frames
    assert tuple(x.shape) == (4, 3, 16, 25, 2) and x.abs().sum() > 0


# ------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A store with only params and nwot scores."""

    def scores(a, rng):
        return {"params": (1e4 * a.depth, 0.1, None), "nwot": (rng.normal(), 0.1, None)}

    path = tmp_path_factory.mktemp("small") / "b.db"
    settings = {"preset": "tiny", "data": "synthetic", "batch_size": 4, "seed": 0}
    return write_gcn_store(
        path,
        sample_architectures(20, seed=2),
        lambda a, rng: 0.5 + 0.01 * a.depth + 0.01 * rng.normal(),
        scores,
        settings=settings,
    )


@pytest.mark.parametrize(
    "proxies, needle",
    [
        ("params,bogus", "unknown proxy 'bogus'"),
        ("params,synflow", "has no scores for synflow"),
        (" , ", "no proxy names"),
    ],
)
def test_fit_bad_proxies_one_line_nothing_written(small, tmp_path, proxies, needle):
    out = tmp_path / "r.rzc"
    one_error(run(["fit", "-m", "wam", "-b", small, "--proxies", proxies, "--out", out]), needle)
    assert not out.exists()


def test_fit_proxies_with_arch_features_refused(small, tmp_path):
    out = tmp_path / "r.rzc"
    one_error(
        run(
            [
                "fit",
                "-m",
                "wam",
                "-b",
                small,
                "--features",
                "arch",
                "--proxies",
                "params",
                "--out",
                out,
            ]
        ),  # fmt: skip
        "reads no proxies",
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "proxies, needle",
    [("bogus", "unknown proxy 'bogus'"), ("synflow,params", "has no scores for synflow")],
)
def test_evaluate_bad_proxies_one_line_nothing_written(small, tmp_path, proxies, needle):
    report = tmp_path / "report"
    res = run(["evaluate", "-b", small, "--models", "wam", "--proxies", proxies,
               "--report", report])  # fmt: skip
    one_error(res, needle)
    assert not report.exists()


def test_evaluate_proxies_restricts_proxies_and_models(small):
    res = run(["evaluate", "-b", small, "--proxies", "params", "--models", "wam",
               "--folds", 2, "--repeats", 1, "--bootstrap", 0, "--quiet", "--format", "json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert list(out["proxies"]) == ["params"]
    assert out["n_features"] == 1 and out["cv_baselines"]["best proxy"]["chosen"] == {"params": 2}


def test_score_data_only_when_computing(small, tmp_path):
    out = tmp_path / "r.rzc"
    assert run(["fit", "-m", "wam", "-b", small, "--out", out]).exit_code == 0
    one_error(run(["score", "-r", out, "-b", small, "--data", "synthetic"]), "--data")


# --------------------------------------------------------- the study's real files
@pytest.mark.slow  # 10-13 s: the default suite stays under 5 minutes
def test_real_study_ranker_is_reproducible(thesis_dir, tmp_path):
    """On the study's 693 files: a ranker on the data-free proxies needs no data; one on
    all 14 needs the study's data for 9 of them."""
    from rankzc.ranking.io import fit_ranker

    import_thesis(thesis_dir, tmp_path / "t.db")
    with Benchmark.open(tmp_path / "t.db") as b:
        assert json.loads(b.meta["proxy_settings"])["data"] == STUDY_SETTINGS["data"]
        free = fit_ranker(b, "wam", features="all", proxies=DATA_FREE)
        every = fit_ranker(b, "wam", features="proxies")
    assert free.info["n_architectures"] == 693
    assert free.settings["proxies"] == DATA_FREE and unreproducible(free.settings) == []
    assert unreproducible(every.settings) == READING


@pytest.mark.slow  # 10-13 s: the default suite stays under 5 minutes
def test_real_study_settings_recompute_params_and_flops_exactly(thesis_dir, tmp_path):
    """Under the recorded settings, params and flops of two of the study's depth-4
    architectures come out exactly as the study recorded them (no data read)."""
    from rankzc.space import Architecture

    import_thesis(thesis_dir, tmp_path / "t.db")
    with Benchmark.open(tmp_path / "t.db") as b:
        settings = json.loads(b.meta["proxy_settings"])
        archs = b.architectures()
        stored = b.features(-1)
    ids = archs.index[archs["depth"] == 4][:2]
    items = [Architecture.parse(archs.loc[i, "encoding"]) for i in ids]
    ps = ProxySettings.from_dict({**settings, "proxies": ["params", "flops"], "device": "cpu"})
    for arch, results in iter_scores(items, ps):
        for name in ("params", "flops"):
            assert results[name].score == stored.loc[arch.arch_id, name], name
