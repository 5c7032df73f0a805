"""``rankzc proxies`` and the memory plan checked before scoring (issue 15 items 9 and 5)."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.errors import RankzcError
from rankzc.models import build_model
from rankzc.proxies import compute_proxies, memory, proxy_names
from rankzc.proxies import features as features_mod
from rankzc.proxies.features import ProxySettings, load_minibatch, score_architectures
from rankzc.space import sample_architectures

DATA = "synthetic:n=40,frames=16,classes=5"
NO_NWOT = ("grad_norm", "snip", "grasp", "jacov", "fisher", "grad_sign", "zen")


def run(*args: str):
    return CliRunner().invoke(main, list(args))


# --------------------------------------------------------------------- rankzc proxies
def test_proxies_lists_every_proxy_with_needs_cost_and_paper():
    """A table like every other command's (issue 23): a title, a header, one row each."""
    res = run("proxies")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "zero-cost proxies" in lines[0]
    header = next(ln for ln in lines if ln.startswith("┃"))
    assert [c.strip() for c in header.strip("┃").split("┃")][:5] == [
        "proxy", "direction", "data", "labels", "gradients"
    ]  # fmt: skip
    rows = {
        cells[0]: cells
        for cells in ([c.strip() for c in ln.strip("│").split("│")] for ln in lines)
        if len(cells) == 8
    }
    assert sorted(rows) == proxy_names()
    assert all(r[1] in ("higher", "lower") for r in rows.values())
    assert rows["synflow"][2] == "shape only" and "Tanaka" in rows["synflow"][7]
    assert rows["snip"][3:5] == ["yes", "yes"] and "SNIP" in rows["snip"][7]
    assert any("tie rule" in ln for ln in lines)  # synflow's note
    assert "one training step (" in res.output and "training steps" not in res.output


def test_proxies_json_and_csv_agree():
    data = json.loads(run("proxies", "--format", "json").output)
    rows = {r["proxy"]: r for r in data["proxies"]}
    assert sorted(rows) == proxy_names()
    assert rows["nwot"]["labels"] is False and rows["nwot"]["gradients"] is False
    assert rows["grad_sign"]["labels"] is True and rows["zen"]["data"] == "shape only"
    assert all(r["paper"] for r in rows.values())
    assert any("tie rule" in n for n in data["notes"])
    table = list(csv.DictReader(io.StringIO(run("proxies", "--format", "csv").output)))
    assert [r["proxy"] for r in table] == proxy_names()
    assert {r["proxy"]: r["paper"] for r in table} == {k: r["paper"] for k, r in rows.items()}


def test_costs_come_from_the_benchmark_file():
    costs = json.loads(run("proxies", "--format", "json").output)["costs"]
    if costs is None:
        pytest.skip("rankzc/data/proxy_costs.json is not installed")
    assert "benchmarks/proxies.py" in costs["command"]
    assert set(costs["proxies"]) == set(proxy_names())
    assert costs["proxies"]["grasp"]["10"] > costs["proxies"]["l2_norm"]["10"]


# ------------------------------------------------------------------ memory plan
def tiny_case(names):
    settings = ProxySettings(preset="tiny", data=DATA, batch_size=8, proxies=names)
    archs = sample_architectures(2, depths=(4,), seed=1)
    return settings, archs


def passes_for(settings, archs):
    x, _, classes = load_minibatch(settings)
    per, params = features_mod._forward_bytes(
        "tiny", 4, tuple(int(v) for v in x.shape[1:]), max(5, classes)
    )
    return memory.pass_bytes(per, params, 8, settings.names, zen_batch=8)


def fits_in_two_chunks(passes) -> int:
    half = max(v / 2 if k in memory.SPLITTABLE else v for k, v in passes.items())
    return int(memory.BASE_BYTES + half) + 1


def test_scoring_that_cannot_fit_is_refused_before_any_work(monkeypatch):
    settings, archs = tiny_case(list(NO_NWOT))
    monkeypatch.setattr(memory, "available_memory", lambda device="cpu": 1000)
    calls = []
    monkeypatch.setattr(features_mod, "compute_proxies", lambda *a, **k: calls.append(1))
    with pytest.raises(RankzcError, match="not enough memory .*tiny preset.*--batch-size"):
        score_architectures(archs, settings)
    assert calls == []


def test_nwot_does_not_force_the_gradient_pass_unsplit(monkeypatch):
    # issue 22: nwot's codes come from a graph-free forward of the whole minibatch, so a
    # plan that splits the gradient passes keeps nwot, with its unsplit value
    settings, archs = tiny_case(["nwot", "grasp", "grad_norm"])
    passes = passes_for(settings, archs)
    unsplit = memory.BASE_BYTES + max(passes.values())
    avail = fits_in_two_chunks(passes)
    assert avail < unsplit
    monkeypatch.setattr(memory, "available_memory", lambda device="cpu": avail)
    with pytest.warns(RuntimeWarning, match="split into"):
        df = score_architectures(archs[:1], settings)
    x, y, classes = load_minibatch(settings)
    torch.manual_seed(settings.seed)
    model = build_model(archs[0], "tiny", num_classes=max(5, classes))
    ref = compute_proxies(model, (x, y), names=["nwot"], seed=0)
    assert df["nwot"].iloc[0] == ref["nwot"].score


def test_the_minibatch_is_split_to_fit_and_scores_follow(monkeypatch):
    settings, archs = tiny_case(list(NO_NWOT))
    passes = passes_for(settings, archs)
    monkeypatch.setattr(memory, "available_memory", lambda device="cpu": fits_in_two_chunks(passes))
    plan = features_mod.check_memory(archs[:1], settings)
    assert not plan.exact and plan.peak_bytes <= fits_in_two_chunks(passes)
    messages: list[str] = []
    with pytest.warns(RuntimeWarning, match="split into [248] chunks"):
        df = score_architectures(archs[:1], settings, report=messages.append)
    assert any("memory: estimated peak" in m and "chunk" in m for m in messages)
    # the same as computing with the plan's chunks
    x, y, classes = load_minibatch(settings)
    torch.manual_seed(settings.seed)
    model = build_model(archs[0], "tiny", num_classes=max(5, classes))
    ref = compute_proxies(
        model,
        (x, y),
        names=list(NO_NWOT),
        seed=0,
        splits=plan.splits,
        recompute=plan.recompute,
        hess_splits=plan.hess_splits,
    )
    for name in NO_NWOT:
        assert df[name].iloc[0] == pytest.approx(ref[name].score, rel=1e-6), name


def test_progress_per_proxy_at_the_study_scale(monkeypatch):
    settings, archs = tiny_case(["params", "synflow", "grad_norm"])
    monkeypatch.setattr(features_mod, "HEAVY_BYTES", 0)  # treat tiny as the study's scale
    messages: list[str] = []
    score_architectures(archs, settings, report=messages.append)
    assert messages[0].startswith("memory: estimated peak")
    lines = [m for m in messages if m.startswith("architecture ")]
    assert len(lines) == 2 * 3
    assert all(m.startswith(("architecture 1/2 (depth 4): ", "architecture 2/2")) for m in lines)
    assert {m.split(": ")[1].split()[0] for m in lines} == {"params", "synflow", "grad_norm"}


def test_cli_refuses_in_one_line_before_writing(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "available_memory", lambda device="cpu": 1000)
    out = tmp_path / "f.csv"
    res = run("features", "--sample", "1", "--preset", "tiny", "--data", DATA, "--out", str(out))
    assert res.exit_code == 1
    assert res.output.startswith("Error: not enough memory") and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not out.exists()


def test_estimate_tracks_the_measured_scale():
    # one sample of the study's network creates hundreds of MB in its forward pass,
    # and 20 samples with grasp need far more than a laptop has (the issue saw 13.6 GB)
    from rankzc.space import Architecture

    arch = Architecture(tuple((True,) + (False,) * 4 + (True, False, False) for _ in range(4)))
    per, params = memory.forward_bytes(lambda: build_model(arch, "tiny"), (1, 3, 16, 25, 2))
    assert per > 0 and params > 0
    bigger, _ = memory.forward_bytes(lambda: build_model(arch, "tiny"), (1, 3, 32, 25, 2))
    assert 1.5 * per < bigger <= 2 * per  # nearly linear in the frames (V x V maps are not)
    passes = memory.pass_bytes(per, params, 20, proxy_names(), zen_batch=20)
    assert passes["grasp"] > passes["shared"] > passes["per-sample"]
