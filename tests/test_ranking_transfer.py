"""Transfer between benchmarks: alignment by name, per-benchmark ranks, CLI."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.errors import RankzcError
from rankzc.ranking.transfer import align_columns, rank_normalise, transfer_evaluate
from rankzc.space import sample_architectures
from rankzc.store import Benchmark


def make_store(path, proxies, *, scale=1.0, seed=0, n=40, labels=True):
    """A gcn-nas store whose accuracy rises with 'q'; proxies are q (times scale) + noise."""
    rng = np.random.default_rng(seed)
    archs = sample_architectures(n, seed=seed)
    with Benchmark.create(path, space="gcn-nas", dataset="toy", source="test") as b:
        b.add_architectures(
            {"arch_id": a.arch_id, "space": "gcn-nas", "encoding": str(a), "depth": a.depth}
            for a in archs
        )
        for a in archs:
            q = rng.normal()
            if labels:
                run, _, _ = b.get_or_create_run(a.arch_id, 0, {"toy": True})
                b.finish_run(run, val_acc=0.5 + 0.05 * np.tanh(q), train_seconds=1)
            scores = {
                p: (float(scale * np.exp(q + 0.3 * rng.normal())), 0.1, None) for p in proxies
            }
            b.record_proxies(a.arch_id, -1, scores)
    return path


def test_rank_normalise_and_alignment():
    X = pd.DataFrame(
        {"a": [10.0, 30.0, 20.0, np.nan], "b": [1.0, 1.0, 2.0, 3.0], "depth": [4.0, 6, 4, 8]}
    )
    r = rank_normalise(X)
    assert r["depth"].tolist() == [4.0, 6, 4, 8]  # encoding columns stay as they are
    np.testing.assert_allclose(r["a"].to_numpy()[:3], [1 / 3, 1.0, 2 / 3])
    assert np.isnan(r["a"].iloc[3])
    np.testing.assert_allclose(r["b"], [1.5 / 4, 1.5 / 4, 3 / 4, 1.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cols = align_columns(["a", "b", "depth"], ["b", "c", "depth"])
    assert cols == ["b", "depth"]
    assert "only in A: a" in str(caught[0].message) and "only in B: c" in str(caught[0].message)
    with pytest.raises(RankzcError, match="share no proxy") as err:
        align_columns(["a", "depth"], ["c", "depth"])
    assert "\n" not in str(err.value)


def test_scale_does_not_matter(tmp_path):
    a = make_store(tmp_path / "a.db", ["p1", "p2"], seed=0)
    b = make_store(tmp_path / "b.db", ["p1", "p2", "p3"], seed=1, scale=1e6)
    b2 = make_store(tmp_path / "b2.db", ["p1", "p2", "p3"], seed=1, scale=1.0)
    with pytest.warns(RuntimeWarning, match="only in B: p3"):
        r = transfer_evaluate(a, b, ["single", "wam", "lambdarank"])
    with pytest.warns(RuntimeWarning):
        r2 = transfer_evaluate(a, b2, ["single", "wam", "lambdarank"])
    assert r["proxies"] == ["p1", "p2"]
    for m in ("single", "wam", "lambdarank"):
        assert r["models"][m]["spearman"] == pytest.approx(r2["models"][m]["spearman"])
        assert r["models"][m]["spearman"] > 0.7
    assert r["reference"]["best_single_proxy"]["proxy"] in ("p1", "p2", "p3")
    assert r["reference"]["rankagg"]["spearman"] > 0.7


def test_cli_transfer_and_disjoint_error(tmp_path):
    a = make_store(tmp_path / "a.db", ["p1", "p2"], seed=0)
    b = make_store(tmp_path / "b.db", ["p2", "p3"], seed=1, scale=1e3, labels=False)
    c = make_store(tmp_path / "c.db", ["x1"], seed=2)
    runner = CliRunner()
    res = runner.invoke(
        main, ["evaluate", "-b", str(a), "--transfer-to", str(c), "--models", "wam"]
    )
    assert res.exit_code == 1
    assert res.output.startswith("Error: transfer: A and B share no proxy")
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(
        main, ["evaluate", "-b", str(a), "--transfer-to", str(b), "--models", "wam", "-o", "x.json"]
    )
    assert res.exit_code == 1 and "--out: not with --transfer-to" in res.output
    # fit on A for B, score B from its store (B has no labels)
    out = tmp_path / "r.rzc"
    res = runner.invoke(
        main, ["fit", "-m", "lambdarank", "-b", str(a), "--transfer-to", str(b), "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "only in A: p1" in res.output
    res = runner.invoke(main, ["score", "-r", str(out), "--benchmark", str(b), "--format", "json"])
    assert res.exit_code == 0, res.output
    import json

    ranking = json.loads(res.stdout)["ranking"]
    assert len(ranking) == 40
    res = runner.invoke(
        main, ["fit", "-m", "wam", "-b", str(a), "--transfer-to", str(c), "-o", str(out)]
    )
    assert res.exit_code == 1 and "share no proxy" in res.output
