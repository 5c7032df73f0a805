"""`rankzc import`, `evaluate`, `warmup` and `export` through click's test runner."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from benchdata import write_nbsz_file, write_thesis_dir
from click.testing import CliRunner

from rankzc.cli import main


@pytest.fixture()
def thesis_db(tmp_path):
    write_thesis_dir(tmp_path / "archs", n=24, epochs=(0, 1, 2))
    out = tmp_path / "t.db"
    res = CliRunner().invoke(main, ["import", "thesis", str(tmp_path / "archs"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "24 new" in res.output
    return out


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_evaluate_json(thesis_db):
    res = run("evaluate", "--benchmark", thesis_db, "--format", "json", "--bootstrap", "200")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n"] == 24
    zen = out["proxies"]["zen"]
    assert zen["spearman"] > 0.8 and zen["ci95"][0] <= zen["spearman"] <= zen["ci95"][1]
    assert -1 <= out["proxies"]["snip"]["kendall"] <= 1
    assert set(out["baselines"]) == {"depth", "params", "flops"}
    assert out["baselines"]["depth"]["spearman"] > 0.5
    assert set(out["within_depth"]) <= {"4", "6", "8", "10"}
    assert "zen" in next(iter(out["within_depth"].values()))


def test_evaluate_table(thesis_db):
    res = run("evaluate", "-b", thesis_db, "--bootstrap", "50")
    assert res.exit_code == 0, res.output
    assert "zen" in res.output and "Trivial baselines" in res.output
    assert "within each depth" in res.output


def test_warmup_json_and_plot(thesis_db, tmp_path):
    plot = tmp_path / "w.png"
    res = run("warmup", "-b", thesis_db, "--format", "json", "--plot", plot)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["epochs"]) == {"-1", "0", "1", "2"}
    assert out["epochs"]["-1"]["n"] == 24
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"
    init = run("evaluate", "-b", thesis_db, "--format", "json", "--bootstrap", "0")
    single = json.loads(init.stdout)["proxies"]
    for name, value in out["epochs"]["-1"]["proxies"].items():
        assert value["spearman"] == pytest.approx(single[name]["spearman"])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export(thesis_db, tmp_path, suffix):
    out = tmp_path / f"e{suffix}"
    res = run("export", "-b", thesis_db, "--out", out)
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out).reset_index()
    assert list(df.columns[:4]) == ["arch_id", "encoding", "depth", "val_acc"]
    assert "synflow" in df.columns and "zen" in df.columns and len(df) == 24


def test_import_nbsz_cli(tmp_path):
    path = tmp_path / "zc_nasbench201_cifar10.json"
    write_nbsz_file(path, n=30)
    res = run("import", "nbsz", path, "--out", tmp_path / "n.db")
    assert res.exit_code == 0, res.output
    res = run("evaluate", "-b", tmp_path / "n.db", "--format", "json", "--bootstrap", "0")
    out = json.loads(res.stdout)
    assert out["n"] == 30 and out["proxies"]["nwot"]["spearman"] > 0.5
    assert "depth" not in out["baselines"] and "within_depth" not in out
    exp = tmp_path / "n.csv"
    assert run("export", "-b", tmp_path / "n.db", "--out", exp).exit_code == 0
    assert list(pd.read_csv(exp).columns[:3]) == ["arch_id", "encoding", "val_acc"]


def _one_line_error(res, *needles):
    assert res.exit_code != 0
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln]
    assert len(lines) == 1, res.output
    for n in needles:
        assert n in lines[0], res.output


def test_bad_input_one_line_errors(tmp_path, thesis_db):
    _one_line_error(
        run("import", "thesis", tmp_path / "missing", "--out", tmp_path / "x.db"),
        "missing",
        "no such directory",
    )
    notjson = tmp_path / "bad"
    notjson.mkdir()
    (notjson / "a.json").write_text("{oops")
    before = thesis_db.read_bytes()
    _one_line_error(
        run("import", "thesis", notjson, "--out", thesis_db), "a.json", "not valid JSON"
    )
    assert thesis_db.read_bytes() == before
    _one_line_error(run("evaluate", "-b", thesis_db, "--format", "xml"), "--format")
    fake = tmp_path / "fake.db"
    fake.write_text("not a store")
    _one_line_error(run("evaluate", "-b", fake), "fake.db", "not a rankzc benchmark")
    _one_line_error(run("export", "-b", thesis_db, "--out", tmp_path / "x.xlsx"), "x.xlsx")
    _one_line_error(run("evaluate", "-b", thesis_db, "--models", "magic"), "magic")
    _one_line_error(run("warmup", "-b", thesis_db, "--proxies", "nope"), "nope")
    _one_line_error(
        run("import", "nbsz", tmp_path / "none.json", "--out", tmp_path / "y.db"), "none.json"
    )


def test_shipped_benchmark_is_default_and_left_unchanged(tmp_path):
    from rankzc.store import default_benchmark_path

    path = default_benchmark_path()
    before = path.read_bytes()
    res = run("evaluate", "--format", "json", "--bootstrap", "0")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n"] >= 100
    assert run("fit", "--model", "single", "--out", tmp_path / "r.rzc").exit_code == 0
    assert run("export", "--out", tmp_path / "d.csv").exit_code == 0
    assert path.read_bytes() == before
    assert not path.with_name(path.name + "-wal").exists()
