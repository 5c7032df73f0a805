"""Units by format: NAS-Bench-Suite-Zero defines percentages; ``auto`` only where asked."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.errors import RankzcError
from rankzc.importers import import_nbsz
from rankzc.importers.common import accuracy_fractions
from rankzc.store import Benchmark


def _nb201_table(n: int, low: float, high: float, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    table = {}
    while len(table) < n:
        ops = tuple(int(v) for v in rng.integers(0, 5, size=6))
        arch = str(ops)
        acc = float(rng.uniform(low, high))
        table[arch] = {"idx": str(len(table)), "arch": arch, "val_accuracy": acc,
                       "synflow": {"score": float(sum(ops)), "time": 0.1}}  # fmt: skip
    return table


def _write(path, dataset, table):
    path.write_text(json.dumps({dataset: table}))


def test_suite_table_with_one_architecture_at_chance_imports(tmp_path):
    """CIFAR-100 chance is 1 %: the suite's tables hold an architecture at exactly 1.0."""
    table = _nb201_table(30, 40.0, 73.0)
    chance = list(table)[4]
    table[chance]["val_accuracy"] = 1.0
    path = tmp_path / "zc_nasbench201_cifar100.json"
    _write(path, "cifar100", table)
    out = tmp_path / "c100.db"
    res = CliRunner().invoke(main, ["import", "nbsz", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    with Benchmark.open(out) as bench:
        labels = bench.labels()["val_acc"]
        archs = bench.architectures()
    by_arch = dict(zip(archs["encoding"], labels.reindex(archs.index), strict=True))
    assert by_arch[chance] == pytest.approx(0.01)
    assert labels.max() <= 0.73 and labels.min() == pytest.approx(0.01)
    # auto, asked for, agrees: exactly 1.0 never decides the unit
    import_nbsz(path, tmp_path / "auto.db", accuracy_unit="auto")
    with Benchmark.open(tmp_path / "auto.db") as bench:
        assert bench.labels()["val_acc"].min() == pytest.approx(0.01)


def test_imagenet_chance_below_one_percent_is_still_percent(tmp_path):
    """ImageNet16-120 chance is 0.83 %: the suite's unit decides, not the value."""
    table = _nb201_table(20, 15.0, 46.0, seed=1)
    low = list(table)[2]
    table[low]["val_accuracy"] = 0.83
    path = tmp_path / "zc_nasbench201_ImageNet16-120.json"
    _write(path, "ImageNet16-120", table)
    import_nbsz(path, tmp_path / "i.db")
    with Benchmark.open(tmp_path / "i.db") as bench:
        assert bench.labels()["val_acc"].min() == pytest.approx(0.0083)
    # auto cannot tell 0.83 from a fraction: it refuses, naming the record
    with pytest.raises(RankzcError, match="mixes fractions") as err:
        import_nbsz(path, tmp_path / "a.db", accuracy_unit="auto")
    assert low in str(err.value)


def test_auto_reads_one_as_either_unit():
    # a fraction column with a perfect architecture (1.0 = 100 %)
    assert accuracy_fractions({"a": 0.5, "b": 1.0, "c": 0.0}, "auto", "f") == {
        "a": 0.5, "b": 1.0, "c": 0.0}  # fmt: skip
    # a percent column with one architecture at chance on 100 classes
    out = accuracy_fractions({"a": 50.0, "b": 1.0, "c": 70.0}, "auto", "f")
    assert out == pytest.approx({"a": 0.5, "b": 0.01, "c": 0.7})
    # the format's unit is used when none is given; the user's unit wins
    assert accuracy_fractions({"a": 50.0, "b": 1.0}, None, "f", format_unit="percent") == (
        pytest.approx({"a": 0.5, "b": 0.01}))  # fmt: skip
    assert accuracy_fractions({"a": 0.5}, "fraction", "f", format_unit="percent") == {"a": 0.5}
    with pytest.raises(RankzcError, match=r"f: this format's accuracies are percentages"):
        accuracy_fractions({"a": 0.5, "b": 0.7, "c": 0.9}, None, "f", format_unit="percent")


def test_import_help_names_each_formats_unit():
    res = CliRunner().invoke(main, ["import", "nbsz", "--help"])
    assert "percent for nbsz" in " ".join(res.output.split())
