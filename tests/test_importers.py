"""Importers on fixtures written in the exact formats of the study and NAS-Bench-Suite-Zero."""

from __future__ import annotations

import json

import pytest
from benchdata import PROXIES, write_nbsz_file, write_thesis_dir
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.errors import RankzcError
from rankzc.importers import import_nbsz, import_thesis
from rankzc.store import Benchmark


def test_thesis_import(tmp_path):
    written = write_thesis_dir(tmp_path / "archs", n=12, epochs=(0, 1, 3))
    report = import_thesis(tmp_path / "archs", tmp_path / "t.db")
    assert (report.read, report.added_architectures, report.added_runs) == (12, 12, 12)
    assert report.missing_values == 4  # the "Nan" grasp at init and after 3 epochs
    with Benchmark.open(tmp_path / "t.db") as bench:
        assert bench.meta["space"] == "gcn-nas"
        assert bench.proxy_epochs() == [-1, 0, 1, 3]
        assert sorted(bench.proxy_names()) == sorted(PROXIES)
        labels = bench.labels()
        feats = bench.features()
        archs = bench.architectures()
        for w in written:
            a = w["arch"]
            assert archs.loc[a.arch_id, "encoding"] == str(a)
            assert archs.loc[a.arch_id, "depth"] == a.depth
            assert labels.loc[a.arch_id, "val_acc"] == pytest.approx(w["val_acc"])
            assert feats.loc[a.arch_id, "zen"] == pytest.approx(w["zen"])
        assert feats["grasp"].isna().sum() == 1  # "Nan" stored as missing, not 0
        assert (feats["grasp"].fillna(1) != 0).all()
        assert bench.features(3).loc[written[1]["arch"].arch_id, "zen"] == pytest.approx(
            written[1]["zen"] + 3
        )


def test_thesis_reimport_adds_nothing(tmp_path):
    write_thesis_dir(tmp_path / "archs", n=5)
    import_thesis(tmp_path / "archs", tmp_path / "t.db")
    with Benchmark.open(tmp_path / "t.db") as bench:
        before = bench.counts()
    again = import_thesis(tmp_path / "archs", tmp_path / "t.db")
    assert (again.added_architectures, again.added_runs) == (0, 0)
    with Benchmark.open(tmp_path / "t.db") as bench:
        assert bench.counts() == before


def _set_acc(f, value):
    data = json.loads(f.read_text())
    (rec,) = data.values()
    rec["val_acc"] = value
    f.write_text(json.dumps(data))
    return next(iter(data))


def test_thesis_percent_column_converted(tmp_path):
    written = write_thesis_dir(tmp_path / "archs", n=3)
    for f in sorted((tmp_path / "archs").glob("*.json")):
        data = json.loads(f.read_text())
        (rec,) = data.values()
        _set_acc(f, rec["val_acc"] * 100)
    import_thesis(tmp_path / "archs", tmp_path / "t.db")
    with Benchmark.open(tmp_path / "t.db") as bench:
        labels = bench.labels()["val_acc"]
    for w in written:
        assert labels[w["arch"].arch_id] == pytest.approx(w["val_acc"])


@pytest.mark.parametrize("typo", [1.2, 93.0])
def test_thesis_mixed_accuracy_units_refused(tmp_path, typo):
    """The unit is decided from the whole column, never from one file's value."""
    write_thesis_dir(tmp_path / "archs", n=5)
    bad = sorted((tmp_path / "archs").glob("*.json"))[2]
    _set_acc(bad, typo)
    with pytest.raises(RankzcError, match="mixes fractions") as err:
        import_thesis(tmp_path / "archs", tmp_path / "t.db")
    assert bad.name in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(RankzcError, match=r"outside \[0, 1\]") as err:
        import_thesis(tmp_path / "archs", tmp_path / "t.db", accuracy_unit="fraction")
    assert bad.name in str(err.value)
    assert not (tmp_path / "t.db").exists()


def test_thesis_duplicate_architecture(tmp_path):
    write_thesis_dir(tmp_path / "archs", n=3)
    first = sorted((tmp_path / "archs").glob("*.json"))[0]
    data = json.loads(first.read_text())
    (rec,) = data.values()
    copy = tmp_path / "archs" / ("z" + first.name)
    copy.write_text(json.dumps({"other": {**rec, "val_acc": rec["val_acc"] - 0.1}}))
    with pytest.raises(RankzcError, match="--on-duplicate") as err:
        import_thesis(tmp_path / "archs", tmp_path / "t.db")
    assert first.name in str(err.value) and copy.name in str(err.value)
    report = import_thesis(tmp_path / "archs", tmp_path / "m.db", on_duplicate="mean")
    assert (report.read, report.duplicates, report.added_architectures) == (4, 1, 3)
    assert "1 duplicate records: averaged" in report.summary()
    with Benchmark.open(tmp_path / "m.db") as bench:
        archs = bench.architectures()
        aid = archs.index[archs["extra"].map(lambda e: "merged_from" in e)][0]
        assert bench.labels().loc[aid, "val_acc"] == pytest.approx(rec["val_acc"] - 0.05)


def _corrupt(directory, mutate):
    f = sorted(directory.glob("*.json"))[1]
    data = json.loads(f.read_text())
    (rec,) = data.values()
    text = mutate(data, rec)
    f.write_text(text if isinstance(text, str) else json.dumps(data))
    return f


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d, r: "{not json", "not valid JSON"),
        (lambda d, r: r.pop("val_acc"), "no 'val_acc'"),
        (lambda d, r: r.__setitem__("weights", [[0.2] * 7] * 4), "(L, 8)"),
        (lambda d, r: r.__setitem__("weights", [[0.2] * 8] * 5), "depth"),
        (lambda d, r: r.__setitem__("weights", [[0.2] * 5 + [0.05] * 3] * 4), "block 1"),
        (lambda d, r: r.__setitem__("val_acc", "high"), "not a number"),
    ],
)
def test_thesis_bad_input_names_file_and_keeps_store(tmp_path, mutate, message):
    write_thesis_dir(tmp_path / "archs", n=4)
    import_thesis(tmp_path / "archs", tmp_path / "t.db")
    before = (tmp_path / "t.db").read_bytes()
    bad = _corrupt(tmp_path / "archs", mutate)
    with pytest.raises(RankzcError) as err:
        import_thesis(tmp_path / "archs", tmp_path / "t.db")
    assert bad.name in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)
    with Benchmark.open(tmp_path / "t.db") as bench:
        assert bench.counts()["architectures"] == 4
    assert (tmp_path / "t.db").read_bytes() == before


def test_thesis_missing_directory(tmp_path):
    with pytest.raises(RankzcError, match="no such directory"):
        import_thesis(tmp_path / "nope", tmp_path / "t.db")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RankzcError, match="no \\*.json"):
        import_thesis(tmp_path / "empty", tmp_path / "t.db")
    assert not (tmp_path / "t.db").exists()


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("bare", [False, True])
def test_nbsz_both_shapes(tmp_path, nested, bare):
    path = tmp_path / "zc_nasbench201_cifar10.json"
    table = write_nbsz_file(path, n=15, nested=nested, bare=bare)
    report = import_nbsz(path, tmp_path / "n.db")
    assert report.read == 15
    with Benchmark.open(tmp_path / "n.db") as bench:
        assert bench.meta["space"] == "nasbench201"
        assert bench.meta["dataset"] == "cifar10"
        archs = bench.architectures()
        labels = bench.labels()
        feats = bench.features()
        assert len(archs) == 15 and archs["depth"].isna().all()
        for arch, rec in table.items():
            row = archs[archs["encoding"] == arch]
            assert len(row) == 1
            aid = row.index[0]
            assert row.iloc[0]["extra"]["tuple"] == list(eval(arch))
            assert labels.loc[aid, "val_acc"] == pytest.approx(rec["val_accuracy"] / 100)
            score = rec["nwot"] if bare else rec["nwot"]["score"]
            assert feats.loc[aid, "nwot"] == pytest.approx(score)


def test_nbsz_non_finite_and_errors(tmp_path):
    path = tmp_path / "zc_nasbench201_cifar10.json"
    table = write_nbsz_file(path, n=5)
    first = next(iter(table))
    table[first]["synflow"] = {"score": "Nan", "time": 0.1}
    table[first]["snip"] = {"score": float("inf"), "time": 0.1}
    path.write_text(json.dumps({"cifar10": table}).replace("Infinity", '"inf"'))
    import_nbsz(path, tmp_path / "n.db")
    with Benchmark.open(tmp_path / "n.db") as bench:
        feats = bench.features()
        assert feats["synflow"].isna().sum() == 1 and feats["snip"].isna().sum() == 1
        assert not (feats.fillna(1) == 0).any().any()
    two = tmp_path / "two.json"
    two.write_text(json.dumps({"cifar10": table, "cifar100": table}))
    with pytest.raises(RankzcError, match="--dataset"):
        import_nbsz(two, tmp_path / "x.db")
    import_nbsz(two, tmp_path / "x.db", dataset="cifar100")
    with pytest.raises(RankzcError, match="no dataset 'svhn'"):
        import_nbsz(two, tmp_path / "y.db", dataset="svhn")
    del table[first]["val_accuracy"]
    path.write_text(json.dumps({"cifar10": table}))
    with pytest.raises(RankzcError, match="val_accuracy"):
        import_nbsz(path, tmp_path / "z.db")
    assert (
        not (tmp_path / "z.db").exists()
        or Benchmark.open(tmp_path / "z.db").counts()["architectures"] == 0
    )


def test_real_thesis_table_5_1(tmp_path, thesis_dir):
    """The study's Table 5.1, the depth baseline and the warm-up rise, from ../shared."""
    from rankzc.analysis import single_proxy_report, warmup_report

    report = import_thesis(thesis_dir, tmp_path / "t.db")
    assert report.read == 693  # its time: benchmarks, not tests
    table_5_1 = {
        "epe_nas": 0.0090,
        "fisher": 0.2405,
        "flops": 0.7241,
        "grad_norm": 0.2653,
        "grad_sign": 0.4979,
        "grasp": -0.4244,
        "jacov": -0.0465,
        "l2_norm": 0.7325,
        "nwot": 0.1214,
        "params": 0.6164,
        "plain": 0.2490,
        "snip": 0.2468,
        "synflow": 0.7599,
        "zen": 0.7827,
    }
    with Benchmark.open(tmp_path / "t.db") as bench:
        single = single_proxy_report(bench, n_boot=100)
        warm = warmup_report(bench)
    assert single["n"] == 693
    for name, rho in table_5_1.items():
        assert round(single["proxies"][name]["spearman"], 4) == rho, name
    assert single["baselines"]["depth"]["spearman"] == pytest.approx(0.792, abs=0.001)
    for depth in ("4", "6", "8", "10"):
        assert abs(single["within_depth"][depth]["zen"]["spearman"]) < 0.15
    epochs = warm["epochs"]
    for name, rho in table_5_1.items():
        assert round(epochs["-1"]["proxies"][name]["spearman"], 4) == rho
    assert all(epochs[str(e)]["proxies"]["synflow"]["spearman"] > 0.805 for e in range(5, 10))


def test_real_nbsz_nwot(tmp_path, nbsz_file):
    from rankzc.analysis import single_proxy_report

    report = import_nbsz(nbsz_file, tmp_path / "n.db")
    assert report.read == 725
    with Benchmark.open(tmp_path / "n.db") as bench:
        single = single_proxy_report(bench, n_boot=50)
    assert single["n"] == 725
    assert single["proxies"]["nwot"]["spearman"] == pytest.approx(0.79, abs=0.01)


def _nbsz_with(path, table):
    path.write_text(json.dumps({"cifar10": table}))


@pytest.mark.parametrize("typo", [1.2, 93.0])
def test_nbsz_fraction_column_with_one_odd_value_refused(tmp_path, typo):
    """Fractions with one 1.2 (or one 93.0) used to turn every label into 0.00x."""
    path = tmp_path / "zc_nasbench201_cifar10.json"
    table = write_nbsz_file(path, n=8)
    for rec in table.values():
        rec["val_accuracy"] /= 100
    odd = list(table)[3]
    table[odd]["val_accuracy"] = typo
    _nbsz_with(path, table)
    # the suite's unit is percent: a column of fractions is refused, not divided again
    with pytest.raises(RankzcError, match="percentages, but 7 of 8 are <= 1"):
        import_nbsz(path, tmp_path / "n.db")
    res = CliRunner().invoke(main, ["import", "nbsz", str(path), "--out", str(tmp_path / "n.db")])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert "--accuracy-unit fraction" in res.output
    assert not (tmp_path / "n.db").exists()
    # auto (asked for) decides from the whole column and names the odd record
    with pytest.raises(RankzcError, match="mixes fractions") as err:
        import_nbsz(path, tmp_path / "n.db", accuracy_unit="auto")
    assert odd in str(err.value) and "--accuracy-unit" in str(err.value)
    assert not (tmp_path / "n.db").exists()
    if typo < 100:  # the user decides: percent takes every value as a percentage
        import_nbsz(path, tmp_path / "p.db", accuracy_unit="percent")
        with Benchmark.open(tmp_path / "p.db") as bench:
            assert bench.labels()["val_acc"].max() == pytest.approx(typo / 100)


def test_nbsz_duplicate_architecture_never_mixed(tmp_path):
    path = tmp_path / "zc_nasbench201_cifar10.json"
    table = write_nbsz_file(path, n=6)
    a, b = list(table)[:2]
    twin = {**table[b], "arch": a, "val_accuracy": 50.0}  # same arch as a, other values
    twin["nwot"] = {"score": -1000.0, "time": 0.01}
    table["dup-key"] = twin
    _nbsz_with(path, table)
    with pytest.raises(RankzcError, match="--on-duplicate") as err:
        import_nbsz(path, tmp_path / "n.db")
    assert repr(a) in str(err.value) and "'dup-key'" in str(err.value)
    res = CliRunner().invoke(main, ["import", "nbsz", str(path), "--out", str(tmp_path / "n.db")])
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output

    report = import_nbsz(path, tmp_path / "f.db", on_duplicate="first")
    assert (report.read, report.duplicates, report.added_architectures) == (7, 1, 6)
    with Benchmark.open(tmp_path / "f.db") as bench:
        archs = bench.architectures()
        aid = archs.index[archs["encoding"] == a][0]
        # the first record whole: its label with its proxies
        assert bench.labels().loc[aid, "val_acc"] == pytest.approx(table[a]["val_accuracy"] / 100)
        assert bench.features().loc[aid, "nwot"] == pytest.approx(table[a]["nwot"]["score"])

    res = CliRunner().invoke(
        main,
        ["import", "nbsz", str(path), "--out", str(tmp_path / "m.db"), "--on-duplicate", "mean"],
    )
    assert res.exit_code == 0 and "averaged" in res.output, res.output
    with Benchmark.open(tmp_path / "m.db") as bench:
        archs = bench.architectures()
        aid = archs.index[archs["encoding"] == a][0]
        want = (table[a]["val_accuracy"] + 50.0) / 200
        assert bench.labels().loc[aid, "val_acc"] == pytest.approx(want)
        want_nwot = (table[a]["nwot"]["score"] - 1000.0) / 2
        assert bench.features().loc[aid, "nwot"] == pytest.approx(want_nwot)


def test_cli_choices_are_the_importers_own():
    """The import command spells the importers' choices itself (fast start-up): same tuples."""
    from rankzc.commands import importing
    from rankzc.importers import common

    assert importing.ACCURACY_UNITS == common.ACCURACY_UNITS
    assert importing.DUPLICATE_POLICIES == common.DUPLICATE_POLICIES
