"""One store, one configuration: builds and imports refuse to add another; readers never mix."""

from __future__ import annotations

import pytest
from benchdata import write_thesis_dir
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.errors import StoreError
from rankzc.store import Benchmark, config_hash

A = {"preset": "cpu", "epochs": 4, "data": "synthetic"}
B = {"preset": "tiny", "epochs": 1, "data": "synthetic"}


def _run(bench, arch, seed, config, acc, proxy):
    run_id, _, _ = bench.get_or_create_run(arch, seed, config)
    bench.finish_run(run_id, val_acc=acc, train_seconds=1.0)
    bench.record_proxies(
        arch,
        -1,
        {"zen": (proxy, 0.1, None)},
        run_id=run_id,
        settings={"preset": config["preset"], "seed": seed},
    )


def test_repeated_seeds_are_one_configuration_another_is_refused(tmp_path):
    path = tmp_path / "s.db"
    with Benchmark.create(path, space="s", dataset="d", source="t") as b:
        b.add_architectures([{"arch_id": a, "space": "s", "encoding": a} for a in ("x", "y")])
        for seed in (0, 1):  # two seeds of one configuration: normal
            b.check_config(A)
            _run(b, "x", seed, A, 0.8 + seed / 10, 1.0 + seed)
            _run(b, "y", seed, A, 0.6, 3.0)
        assert list(b.configurations().index) == [config_hash(A)]
        assert b.labels().loc["x", "val_acc"] == pytest.approx(0.85)
        assert b.features().loc["x", "zen"] == pytest.approx(1.5)
        with pytest.raises(StoreError, match="another training configuration") as err:
            b.check_config(B)
        assert "preset tiny" in str(err.value) and "--allow-mixed-config" in str(err.value)
        b.check_config(B, allow_mixed=True)
        _run(b, "x", 0, B, 0.1, 100.0)
    with Benchmark.open(path, readonly=True) as b:
        with pytest.raises(StoreError, match="2 training configurations"):
            b.labels()
        with pytest.raises(StoreError, match="training configurations"):
            b.features()
        with pytest.raises(StoreError):
            b.table()
        b.select_config(config_hash(A))
        assert b.labels().loc["x", "val_acc"] == pytest.approx(0.85)  # B's 0.1 left out
        assert b.features().loc["x", "zen"] == pytest.approx(1.5)  # B's 100 left out
        b.select_config(config_hash(B))
        assert list(b.labels().index) == ["x"] and b.labels()["val_acc"].iloc[0] == 0.1
        with pytest.raises(StoreError, match="no training configuration"):
            b.select_config("nope")


def test_bench_build_into_an_imported_store_is_refused(tmp_path):
    """The issue's case: a tiny-preset build added to the study's labels."""
    archs = tmp_path / "archs"
    write_thesis_dir(archs, n=6)
    out = tmp_path / "t.db"
    runner = CliRunner()
    assert runner.invoke(main, ["import", "thesis", str(archs), "--out", str(out)]).exit_code == 0
    before = out.read_bytes()
    with Benchmark.open(out, readonly=True) as b:
        labels = b.labels()
    build = ["bench", "build", "--out", str(out), "--sample", "1", "--preset", "tiny", "--epochs"]
    build += ["1", "--data", "synthetic:n=40,frames=8", "--proxies", "params", "--quiet"]
    res = runner.invoke(main, build)
    assert res.exit_code == 1, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert "another training configuration" in res.output and "thesis-gcn-nas" in res.output
    assert out.read_bytes() == before
    # explicitly asked: the run is added, and readers refuse to mix the two
    res = runner.invoke(main, [*build, "--allow-mixed-config"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["export", "--benchmark", str(out), "--out", str(tmp_path / "e.csv")])
    assert res.exit_code == 1 and "2 training configurations" in res.output, res.output
    assert "--benchmark STORE#HASH" in res.output
    with Benchmark.open(out, readonly=True) as b:
        study = b.configurations().index[0]
    csv = tmp_path / "study.csv"
    res = runner.invoke(main, ["export", "--benchmark", f"{out}#{study}", "--out", str(csv)])
    assert res.exit_code == 0, res.output
    assert "wrote 6 architectures" in res.output
    res = runner.invoke(main, ["export", "--benchmark", f"{out}#nope", "--out", str(csv)])
    assert res.exit_code == 1 and "no training configuration 'nope'" in res.output
    with Benchmark.open(out, readonly=True) as b:
        study = b.configurations().index[0]
        assert b.select_config(study).labels().equals(labels)


def test_import_of_another_source_is_refused(tmp_path):
    archs = tmp_path / "archs"
    write_thesis_dir(archs, n=3)
    out = tmp_path / "t.db"
    with Benchmark.create(out, space="gcn-nas", dataset="x", source="rankzc bench build") as b:
        b.add_architectures([{"arch_id": "a", "space": "gcn-nas", "encoding": "e"}])
        run_id, _, _ = b.get_or_create_run("a", 0, B)
        b.finish_run(run_id, val_acc=0.5, train_seconds=1.0)
    res = CliRunner().invoke(main, ["import", "thesis", str(archs), "--out", str(out)])
    assert res.exit_code == 1 and "another training configuration" in res.output, res.output
    res = CliRunner().invoke(
        main, ["import", "thesis", str(archs), "--out", str(out), "--allow-mixed-config"]
    )
    assert res.exit_code == 0, res.output


def test_features_into_a_store_scored_under_other_settings_is_refused(tmp_path):
    from rankzc.space import SPACE, sample_architectures

    db = tmp_path / "b.db"
    archs = sample_architectures(3, depths=(4,), seed=1)

    def add(items):
        with Benchmark.create(db, space=SPACE, dataset="synthetic", source="test") as b:
            b.add_architectures(
                {"arch_id": a.arch_id, "space": SPACE, "encoding": str(a), "depth": a.depth}
                for a in items
            )

    add(archs[:2])
    args = ["features", "--benchmark", str(db), "--proxies", "params", "--preset", "tiny"]
    args += ["--data", "synthetic:n=40,frames=8,classes=3"]
    res = CliRunner().invoke(main, [*args, "--batch-size", "8"])
    assert res.exit_code == 0, res.output
    add(archs[2:])
    with Benchmark.open(db, readonly=True) as b:
        before = b.counts()
    res = CliRunner().invoke(main, [*args, "--batch-size", "6", "--seed", "4"])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert "other settings" in res.output and "batch_size 8" in res.output
    with Benchmark.open(db, readonly=True) as b:
        assert b.counts() == before
    # another seed (and another proxy list) of the same settings is fine
    res = CliRunner().invoke(main, [*args, "--batch-size", "8", "--seed", "4"])
    assert res.exit_code == 0 and "scored 1 architectures" in res.output, res.output
