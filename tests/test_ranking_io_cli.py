"""Ranker files (save/load round trip, corruption, versions) and the vote/fit/score CLI."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from benchdata import write_gcn_store
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.errors import RankzcError
from rankzc.ranking import RANKERS
from rankzc.ranking.io import FittedRanker, fit_ranker, load_ranker, save_ranker
from rankzc.space import sample_architectures, save_architectures
from rankzc.store import Benchmark

SETTINGS = {
    "preset": "tiny",
    "data": "synthetic",
    "batch_size": 4,
    "seed": 0,
    "device": "cpu",
    "proxies": ["params", "nwot"],
    "options": {},
}
FAST = {"ranknet": {"epochs": 5}, "lambdarank": {"n_estimators": 30}, "gnn": {"epochs": 3}}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A 40-architecture gcn-nas store with labels and (made-up) proxy scores + settings."""

    def label(a, rng):
        return 0.5 + 0.01 * sum(a.op_counts().values()) + 0.001 * rng.normal()

    def scores(a, rng):
        n_ops = sum(a.op_counts().values())
        return {"params": (1e4 * n_ops, 0.1, None), "nwot": (rng.normal(), 0.1, None)}

    path = tmp_path_factory.mktemp("store") / "b.db"
    return write_gcn_store(path, sample_architectures(40, seed=3), label, scores, settings=SETTINGS)


@pytest.mark.parametrize("name", list(RANKERS))
@pytest.mark.parametrize("features", ["proxies", "all"])
def test_round_trip_identical_scores(store, tmp_path, name, features):
    if name == "gnn" and features == "proxies":
        pytest.skip("gnn reads the architecture graph: it needs --features arch or all")
    with Benchmark.open(store) as b:
        fitted = fit_ranker(b, name, features=features, params=FAST.get(name))
        table = b.features().join(b.architectures()["encoding"])
    path = save_ranker(fitted, tmp_path / "r.rzc")
    loaded = load_ranker(path)
    # the store's settings, narrowed to the proxies the ranker reads
    assert loaded.settings == {**SETTINGS, "proxies": ["nwot", "params"]}
    assert loaded.feature_names == fitted.feature_names
    np.testing.assert_array_equal(fitted.score_table(table), loaded.score_table(table))
    with zipfile.ZipFile(path) as zf:  # nothing pickled
        assert not any(n.endswith((".pkl", ".pt", ".pickle")) for n in zf.namelist())


def _rewrite(path, out, edit):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    edit(members)
    with zipfile.ZipFile(out, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)


def test_bad_files_give_one_line_errors(store, tmp_path):
    with Benchmark.open(store) as b:
        path = save_ranker(fit_ranker(b, "wam"), tmp_path / "r.rzc")
    (tmp_path / "junk.rzc").write_bytes(b"not a zip at all")
    with pytest.raises(RankzcError, match="not a rankzc ranker"):
        load_ranker(tmp_path / "junk.rzc")

    def newer(m):
        man = json.loads(m["manifest.json"])
        man["format_version"] = 99
        m["manifest.json"] = json.dumps(man).encode()

    def flip(m):
        blob = bytearray(m["arrays.safetensors"])
        blob[-1] ^= 0xFF
        m["arrays.safetensors"] = bytes(blob)

    _rewrite(path, tmp_path / "new.rzc", newer)
    with pytest.raises(RankzcError, match="incompatible"):
        load_ranker(tmp_path / "new.rzc")
    _rewrite(path, tmp_path / "bad.rzc", flip)
    with pytest.raises(RankzcError, match="checksum"):
        load_ranker(tmp_path / "bad.rzc")
    for p in ("junk", "new", "bad"):
        with pytest.raises(RankzcError) as err:
            load_ranker(tmp_path / f"{p}.rzc")
        assert "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError):
        load_ranker(tmp_path / "absent.rzc")
    loaded = load_ranker(path)
    with pytest.raises(RankzcError, match="features missing from the input: nwot"):
        loaded.score_table(pd.DataFrame({"params": [1.0]}))


def test_score_new_architectures_computes_proxies(store, tmp_path):
    with Benchmark.open(store) as b:
        fitted = fit_ranker(b, "single")
    path = save_ranker(fitted, tmp_path / "r.rzc")
    archs = sample_architectures(3, seed=11)
    out = load_ranker(path).score(archs)
    assert list(out["rank"]) == [1, 2, 3]
    assert set(out.index) == {a.arch_id for a in archs}
    assert {"params", "nwot", "score"} <= set(out.columns)
    assert out["score"].is_monotonic_decreasing


def test_cli_vote_fit_score(store, tmp_path):
    run = CliRunner().invoke
    res = run(main, ["vote", "-b", str(store), "--max-size", "2", "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["subsets"]) == 3 and out["seconds"] >= 0
    assert out["subsets"][0]["proxies"] in (["params"], ["nwot"], ["nwot", "params"])
    scores = [s["score"] for s in out["subsets"]]
    assert scores == sorted(scores, reverse=True)
    assert run(main, ["vote", "-b", str(store), "--top", "1"]).exit_code == 0

    rzc = tmp_path / "m.rzc"
    res = run(
        main,
        ["fit", "--model", "lambdarank", "-b", str(store), "--features", "all",
         "--param", "n_estimators=20", "--out", str(rzc), "--format", "json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_architectures"] == 40 and rzc.exists()

    csv = tmp_path / "f.csv"
    archs = sample_architectures(5, seed=9)
    pd.DataFrame(
        {"arch": [str(a) for a in archs], "params": np.arange(5.0) * 1e4, "nwot": 0.0},
        index=pd.Index([a.arch_id for a in archs], name="arch_id"),
    ).to_csv(csv)
    # a hand-made table records no settings: refused unless --allow-mismatch (#24)
    res = run(main, ["score", "-r", str(rzc), "--features-csv", str(csv)])
    assert res.exit_code == 1 and "no settings sidecar f.csv.json" in res.output, res.output
    res = run(main, ["score", "-r", str(rzc), "--features-csv", str(csv), "--format", "json",
                     "--allow-mismatch"])  # fmt: skip
    assert res.exit_code == 0, res.output
    ranking = json.loads(res.stdout)["ranking"]
    # competition ranks: 1..5, equal only where the scores are equal (two rows below the
    # whole training range of params may tie)
    by_rank = sorted(ranking, key=lambda r: r["rank"])
    assert len(ranking) == 5 and by_rank[0]["rank"] == 1
    for a, b in zip(by_rank, by_rank[1:], strict=False):
        assert (a["rank"] == b["rank"]) == (a["score"] == b["score"]) and a["score"] >= b["score"]
    res = run(main, ["score", "-r", str(rzc), "--features-csv", str(csv), "--top", "2",
                     "--allow-mismatch"])  # fmt: skip
    assert res.exit_code == 0 and "lambdarank ranking (2 shown)" in res.output

    arch_rzc = tmp_path / "a.rzc"
    assert run(main, ["fit", "-m", "wam", "-b", str(store), "--features", "arch",
                      "--out", str(arch_rzc)]).exit_code == 0  # fmt: skip
    js = tmp_path / "archs.json"
    save_architectures(archs, js)
    res = run(main, ["score", "-r", str(arch_rzc), "--archs", str(js), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["ranking"]) == 5
    res = run(
        main, ["score", "-r", str(arch_rzc), "--sample", "4", "--top", "2", "--format", "json"]
    )
    assert res.exit_code == 0 and len(json.loads(res.stdout)["ranking"]) == 2


def test_cli_errors_are_one_line(store, tmp_path):
    run = CliRunner().invoke
    bad_csv = tmp_path / "bad.csv"
    pd.DataFrame({"params": [1.0]}, index=["x"]).to_csv(bad_csv)
    rzc = tmp_path / "m.rzc"
    assert run(main, ["fit", "-m", "single", "-b", str(store), "--out", str(rzc)]).exit_code == 0
    cases = [
        (["score", "-r", str(rzc), "--features-csv", str(bad_csv)], "no settings sidecar"),
        (
            ["score", "-r", str(rzc), "--features-csv", str(bad_csv), "--allow-mismatch"],
            "features missing",
        ),  # fmt: skip
        (["score", "-r", str(rzc)], "exactly one of"),
        (["score", "-r", str(tmp_path / "none.rzc"), "--sample", "2"], "no such"),
        (
            ["fit", "-m", "wam", "-b", str(store), "--param", "bogus=1", "--out", str(rzc)],
            "--param",
        ),
        (["vote", "-b", str(store), "--proxies", "zen"], "zen"),
        (["vote", "-b", str(tmp_path / "none.db")], "no such"),
    ]
    for args, needle in cases:
        res = run(main, args)
        assert res.exit_code == 1, (args, res.output)
        errors = [line for line in res.output.splitlines() if not line.startswith("Warning: ")]
        assert needle in res.output and len(errors) == 1, (args, res.output)


def test_thesis_ranker_without_settings_refuses_to_compute_proxies():
    from rankzc.ranking.single import SingleProxyRanker

    X = pd.DataFrame({"zen": [1.0, 2.0, 3.0]})
    fr = FittedRanker(
        SingleProxyRanker().fit(X, [1.0, 2.0, 3.0]),
        features="proxies", feature_names=["zen"], proxies=["zen"], space="gcn-nas",
    )  # fmt: skip
    with pytest.raises(RankzcError, match="no proxy settings"):
        fr.score(sample_architectures(2))


def test_cli_score_with_settings_override(tmp_path):
    from rankzc.ranking.single import SingleProxyRanker

    X = pd.DataFrame({"params": [1.0, 2.0, 3.0]})
    fr = FittedRanker(
        SingleProxyRanker().fit(X, [1.0, 2.0, 3.0]),
        features="proxies", feature_names=["params"], proxies=["params"], space="gcn-nas",
    )  # fmt: skip
    path = save_ranker(fr, tmp_path / "s.rzc")
    run = CliRunner().invoke
    res = run(main, ["score", "-r", str(path), "--sample", "2", "--format", "json"])
    assert res.exit_code == 1 and "no proxy settings" in res.output
    settings = json.dumps({k: v for k, v in SETTINGS.items() if k != "proxies"})
    res = run(main, ["score", "-r", str(path), "--sample", "2", "--settings", settings,
                     "--format", "json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["ranking"]
    assert rows[0]["params"] >= rows[1]["params"]  # params ranks itself, best first
    res = run(main, ["score", "-r", str(path), "--sample", "2", "--settings", "{oops"])
    assert res.exit_code == 1 and "--settings" in res.output
