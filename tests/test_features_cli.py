"""``rankzc features`` and :func:`rankzc.proxies.features.score_architectures`."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.proxies import proxy_names
from rankzc.proxies.features import ProxySettings, minibatch_index, score_architectures
from rankzc.space import SPACE, sample_architectures, save_architectures
from rankzc.store import Benchmark

SMALL_DATA = "synthetic:n=120"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_sample_tiny_gives_four_rows_of_fourteen_finite_proxies(tmp_path):
    out = tmp_path / "f.csv"
    res = run("features", "--sample", "4", "--preset", "tiny", "--out", str(out))
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out)
    assert len(df) == 4
    assert list(df.columns[:3]) == ["arch_id", "encoding", "depth"]
    assert list(df.columns[3:]) == proxy_names() and len(proxy_names()) == 14
    assert all(math.isfinite(v) for v in df[proxy_names()].to_numpy().ravel())
    meta = json.loads((tmp_path / "f.csv.json").read_text())
    assert meta["settings"]["preset"] == "tiny" and meta["settings"]["batch_size"] == 20
    assert meta["settings"]["proxies"] == proxy_names()


def test_archs_file_to_parquet_with_metadata(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    archs = sample_architectures(3, depths=(4,), seed=5)
    path = tmp_path / "archs.json"
    save_architectures(archs, path)
    out = tmp_path / "f.parquet"
    res = run(
        "features", "--archs", str(path), "--out", str(out), "--proxies", "params,synflow",
        "--preset", "tiny", "--data", SMALL_DATA, "--batch-size", "6", "--seed", "3",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    assert df.index.name == "arch_id"
    assert list(df.columns) == ["encoding", "depth", "params", "synflow"]
    assert list(df["encoding"]) == [str(a) for a in archs]
    meta = json.loads(pq.read_schema(out).metadata[b"rankzc"])
    assert meta["settings"]["seed"] == 3 and meta["settings"]["proxies"] == ["params", "synflow"]
    # the recorded settings rebuild the same scores
    again = score_architectures(archs, ProxySettings.from_dict(meta["settings"]))
    pd.testing.assert_frame_equal(again[["params", "synflow"]], df[["params", "synflow"]])


def test_benchmark_store_is_filled_and_resumes(tmp_path):
    db = tmp_path / "b.db"
    archs = sample_architectures(3, depths=(4, 6), seed=1)

    def add(items):
        with Benchmark.create(db, space=SPACE, dataset="synthetic", source="test") as b:
            b.add_architectures(
                {"arch_id": a.arch_id, "space": SPACE, "encoding": str(a), "depth": a.depth,
                 "extra": {}}
                for a in items
            )  # fmt: skip

    add(archs[:2])
    args = ["features", "--benchmark", str(db), "--proxies", "params,snip,nwot",
            "--preset", "tiny", "--data", SMALL_DATA, "--batch-size", "8"]  # fmt: skip
    res = run(*args)
    assert res.exit_code == 0, res.output
    assert "scored 2 architectures" in res.output
    res = run(*args)
    assert "already have 3 proxies" in res.output
    add(archs[2:])
    res = run(*args)
    assert "scored 1 architectures (2 already done)" in res.output
    with Benchmark.open(db) as b:
        feats = b.features(epoch=-1)
        settings = b.proxy_settings()
        records = b.proxy_records(epoch=-1)
    assert sorted(feats.index) == sorted(a.arch_id for a in archs)
    assert list(feats.columns) == ["nwot", "params", "snip"] and feats.notna().all().all()
    assert settings and settings[0]["proxies"] == ["params", "snip", "nwot"]
    assert records["seconds"].notna().all()


def test_user_mistakes_are_one_line_errors(tmp_path):
    r = CliRunner().invoke(main, ["features", "--sample", "2", "--archs", "x.json"])
    assert r.exit_code != 0
    r = CliRunner().invoke(main, ["features", "--sample", "2", "--out", str(tmp_path / "a.csv"),
                                  "--proxies", "nope"])  # fmt: skip
    assert r.exit_code == 1 and "unknown proxy 'nope'" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["features", "--sample", "2"])
    assert r.exit_code == 1 and "--out" in r.output
    r = CliRunner().invoke(main, ["features", "--benchmark", str(tmp_path / "none.db")])
    assert r.exit_code == 1 and "not found" in r.output


def test_scores_do_not_depend_on_the_other_architectures():
    archs = sample_architectures(3, depths=(4,), seed=2)
    settings = ProxySettings(
        preset="tiny", data=SMALL_DATA, batch_size=6, proxies=("grad_norm", "zen", "l2_norm")
    )
    a = score_architectures(archs, settings)
    b = score_architectures(list(reversed(archs))[:2], settings)
    pd.testing.assert_frame_equal(a.loc[b.index], b)
    assert not torch.equal(minibatch_index(50, 6, 0), minibatch_index(50, 6, 1))
    other_seed = score_architectures(archs[:1], ProxySettings(**{**settings.__dict__, "seed": 1}))
    assert other_seed["l2_norm"].iloc[0] != a["l2_norm"].iloc[0]


@pytest.mark.slow  # two spawned workers: about 10 s on a quiet machine, 30 s under load
def test_two_workers_give_the_same_table_and_store_as_one(tmp_path):
    """Issue 26: scoring across worker processes (one minibatch per worker, one model per
    candidate, deepest first) gives what one process gives, row for row."""
    archs = sample_architectures(4, depths=(4, 6), seed=7)
    path = tmp_path / "archs.json"
    save_architectures(archs, path)
    common = ["--archs", str(path), "--proxies", "params,grad_norm,nwot,synflow,jacov",
              "--preset", "tiny", "--data", SMALL_DATA, "--batch-size", "6", "-q"]  # fmt: skip
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert run("features", *common, "--out", str(one)).exit_code == 0
    res = run("features", *common, "--out", str(two), "--workers", "2")
    assert res.exit_code == 0, res.output
    a, b = pd.read_csv(one), pd.read_csv(two)
    pd.testing.assert_frame_equal(a, b)
    assert list(b["encoding"]) == [str(x) for x in archs]  # the input's order
    # a store filled by two workers holds the same scores
    db = tmp_path / "b.db"
    with Benchmark.create(db, space=SPACE, dataset="synthetic", source="test") as bench:
        bench.add_architectures(
            {"arch_id": x.arch_id, "space": SPACE, "encoding": str(x), "depth": x.depth}
            for x in archs
        )
    res = run("features", "--benchmark", str(db), *common[2:], "--workers", "2")
    assert res.exit_code == 0, res.output
    with Benchmark.open(db, readonly=True) as bench:
        feats = bench.features(-1)
    names = ["params", "grad_norm", "nwot", "synflow", "jacov"]
    pd.testing.assert_frame_equal(
        feats.loc[a["arch_id"], names].reset_index(drop=True),
        a[names],
        check_names=False,
    )
