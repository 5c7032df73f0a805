"""Bad input to importers and JSON sidecars: one-line errors, never a traceback (issue 24,
item 11): deep nesting (RecursionError), numbers like 1e400 and epoch keys of thousands of
digits (OverflowError), proxies named like reserved columns, a string cell in a features
CSV. Nothing is written to the output store when an import is refused.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from benchdata import write_gcn_store, write_nbsz_file, write_thesis_dir
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.errors import RankzcError
from rankzc.importers.common import RESERVED_COLUMNS
from rankzc.jsonfile import MAX_JSON_DEPTH, read_json
from rankzc.ranking.io import fit_ranker, save_ranker
from rankzc.space import sample_architectures
from rankzc.store import Benchmark


def _one_line_error(args: list[str]) -> str:
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1, (res.exit_code, res.output[-600:])
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1, res.output[-600:]
    assert res.exception is None or isinstance(res.exception, SystemExit)
    return res.output


def _first_thesis_file(directory):
    path = sorted(directory.glob("*.json"))[0]
    data = json.loads(path.read_text())
    ((key, rec),) = data.items()
    return path, key, rec


def _rewrite(path, key, rec, text: str | None = None) -> None:
    path.write_text(text if text is not None else json.dumps({key: rec}))


# ----------------------------------------------------------------------------- JSON
def test_read_json_depth_limit(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(RankzcError, match=f"a.json: JSON nested deeper than {MAX_JSON_DEPTH}"):
        read_json(path)
    path.write_text("[" * 100_000 + "]" * 100_000)  # RecursionError inside json
    with pytest.raises(RankzcError, match="a.json: JSON nested deeper than"):
        read_json(path)
    path.write_text('{"a": ' * MAX_JSON_DEPTH + "1" + "}" * MAX_JSON_DEPTH)
    assert read_json(path) is not None


def test_read_json_huge_numbers(tmp_path):
    path = tmp_path / "n.json"
    path.write_text('{"a": 1e400, "b": ' + "9" * 5000 + ', "c": 12}')
    data = read_json(path)
    assert data["a"] == float("inf") and data["b"] == float("inf") and data["c"] == 12


def test_thesis_import_of_deeply_nested_json(tmp_path):
    d = tmp_path / "t"
    write_thesis_dir(d, n=3)
    path, key, rec = _first_thesis_file(d)
    _rewrite(
        path, key, rec, json.dumps({key: rec})[:-1] + ', "x": ' + "[" * 50_000 + "]" * 50_000 + "}"
    )
    out = _one_line_error(["import", "thesis", str(d), "--out", str(tmp_path / "t.db")])
    assert path.name in out and "nested deeper than" in out
    assert not (tmp_path / "t.db").exists()


def test_nbsz_import_of_deeply_nested_json(tmp_path):
    path = tmp_path / "zc_nasbench201_cifar10.json"
    path.write_text('{"cifar10": ' + "[" * 50_000 + "]" * 50_000 + "}")
    out = _one_line_error(["import", "nbsz", str(path), "--out", str(tmp_path / "n.db")])
    assert path.name in out and "nested deeper than" in out
    assert not (tmp_path / "n.db").exists()


# -------------------------------------------------------------------- numbers, epochs
@pytest.mark.parametrize("literal", ["1e400", "-1e400", "9" * 5000])
def test_thesis_accuracy_overflow_is_one_line(tmp_path, literal):
    d = tmp_path / "t"
    write_thesis_dir(d, n=3)
    path, key, rec = _first_thesis_file(d)
    rec["val_acc"] = 0.5
    text = json.dumps({key: rec}).replace('"val_acc": 0.5', f'"val_acc": {literal}')
    _rewrite(path, key, rec, text)
    out = _one_line_error(["import", "thesis", str(d), "--out", str(tmp_path / "t.db")])
    assert path.name in out and "val_acc" in out and "not finite" in out


def test_thesis_huge_proxy_scores_and_times_are_stored_as_missing(tmp_path):
    d = tmp_path / "t"
    write_thesis_dir(d, n=3, epochs=())
    path, key, rec = _first_thesis_file(d)
    rec["zero_cost_scores"]["zen"]["score"] = 0.25
    rec["time"] = 7.5
    text = json.dumps({key: rec})
    text = text.replace('"score": 0.25', '"score": ' + "9" * 400).replace(
        '"time": 7.5', '"time": 1e400'
    )
    _rewrite(path, key, rec, text)
    res = CliRunner().invoke(main, ["import", "thesis", str(d), "--out", str(tmp_path / "t.db")])
    assert res.exit_code == 0, res.output
    with Benchmark.open(tmp_path / "t.db", readonly=True) as b:
        feats = b.features()
        assert feats["zen"].isna().sum() == 1 and len(feats) == 3


def test_thesis_epoch_key_of_5000_digits_is_one_line(tmp_path):
    d = tmp_path / "t"
    write_thesis_dir(d, n=3, epochs=())
    path, key, rec = _first_thesis_file(d)
    rec["zero_cost_scores_" + "7" * 5000] = rec["zero_cost_scores"]
    _rewrite(path, key, rec)
    out = _one_line_error(["import", "thesis", str(d), "--out", str(tmp_path / "t.db")])
    assert path.name in out and "epoch 77777777777777777... outside 0..100000" in out
    rec.pop("zero_cost_scores_" + "7" * 5000)
    rec["zero_cost_scores_" + "1" * 25] = rec["zero_cost_scores"]  # an int SQLite cannot hold
    _rewrite(path, key, rec)
    out = _one_line_error(["import", "thesis", str(d), "--out", str(tmp_path / "t.db")])
    assert "outside 0..100000" in out and not (tmp_path / "t.db").exists()


# -------------------------------------------------------------------- reserved names
@pytest.mark.parametrize("name", ["val_acc", "depth", "encoding", "arch_id", "Val_Acc", ""])
def test_thesis_proxy_named_like_a_reserved_column_is_refused(tmp_path, name):
    d = tmp_path / "t"
    write_thesis_dir(d, n=3, epochs=())
    path, key, rec = _first_thesis_file(d)
    rec["zero_cost_scores"][name] = {"score": 1.0, "time": 0.1}
    _rewrite(path, key, rec)
    out = _one_line_error(["import", "thesis", str(d), "--out", str(tmp_path / "t.db")])
    assert path.name in out and "zero_cost_scores" in out and "proxy name" in out
    assert not (tmp_path / "t.db").exists()


@pytest.mark.parametrize("name", ["depth", "encoding", "score", "rank"])
def test_nbsz_proxy_named_like_a_reserved_column_is_refused(tmp_path, name):
    path = tmp_path / "zc_nasbench201_cifar10.json"
    table = write_nbsz_file(path, n=5)
    first = next(iter(table))
    table[first][name] = {"score": 1.0, "time": 0.1}
    path.write_text(json.dumps({"cifar10": table}))
    out = _one_line_error(["import", "nbsz", str(path), "--out", str(tmp_path / "n.db")])
    assert path.name in out and f"proxy name {name!r} is reserved" in out
    assert not (tmp_path / "n.db").exists()


def test_reserved_names_cover_the_table_columns(tmp_path):
    def label(a, rng):
        return 0.5 + 0.01 * a.depth

    store = write_gcn_store(tmp_path / "b.db", sample_architectures(4, seed=1), label,
                            lambda a, rng: {"zen": (1.0, 0.1, None)})  # fmt: skip
    with Benchmark.open(store, readonly=True) as b:
        columns = {*b.table().columns, *b.labels().columns, *b.architectures().columns}
    assert columns - {"zen"} <= RESERVED_COLUMNS


# -------------------------------------------------------------------- sidecars, CSV
SC_SETTINGS = {"preset": "tiny", "data": "synthetic", "batch_size": 4, "seed": 0,
               "device": "cpu", "proxies": ["zen", "params"], "options": {}}  # fmt: skip


@pytest.fixture(scope="module")
def ranker(tmp_path_factory):
    out = tmp_path_factory.mktemp("sc")

    def scores(a, rng):
        return {"zen": (a.depth + rng.normal(), 0.1, None), "params": (rng.normal(), 0.1, None)}

    store = write_gcn_store(out / "b.db", sample_architectures(30, seed=2),
                            lambda a, rng: 0.5 + 0.01 * a.depth + 0.01 * rng.normal(), scores,
                            settings=SC_SETTINGS)  # fmt: skip
    with Benchmark.open(store) as b:
        return save_ranker(fit_ranker(b, "wam"), out / "r.rzc")


def _features_csv(path, cell=None):
    archs = sample_architectures(4, seed=9)
    table = pd.DataFrame(
        {"arch": [str(a) for a in archs], "zen": np.arange(4.0), "params": np.ones(4)},
        index=pd.Index([a.arch_id for a in archs], name="arch_id"),
    )
    if cell is not None:
        table["zen"] = table["zen"].astype(object)
        table.iloc[2, table.columns.get_loc("zen")] = cell
    table.to_csv(path)
    # the sidecar `rankzc features` writes (required by score --features-csv, #24)
    path.with_name(path.name + ".json").write_text(json.dumps({"settings": SC_SETTINGS}))
    return path


def test_deeply_nested_sidecar_is_one_line(ranker, tmp_path):
    csv = _features_csv(tmp_path / "f.csv")
    (tmp_path / "f.csv.json").write_text('{"settings": ' + "[" * 50_000 + "]" * 50_000 + "}")
    out = _one_line_error(["score", "-r", str(ranker), "--features-csv", str(csv)])
    assert "f.csv.json" in out and "nested deeper than" in out


def test_string_cell_in_a_features_csv_is_one_line(ranker, tmp_path):
    csv = _features_csv(tmp_path / "f.csv", cell="fast")
    out = _one_line_error(["score", "-r", str(ranker), "--features-csv", str(csv)])
    assert "f.csv" in out and "feature column 'zen' holds a value that is not a number" in out
    ok = _features_csv(tmp_path / "g.csv")
    res = CliRunner().invoke(main, ["score", "-r", str(ranker), "--features-csv", str(ok)])
    assert res.exit_code == 0, res.output
