"""The SQLite benchmark store: round trips, idempotence, runs, refusal of foreign files."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rankzc.errors import StoreError
from rankzc.store import Benchmark, config_hash

names = st.sampled_from(["synflow", "zen", "snip", "nwot", "params"])
scores = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64))
arch_ids = st.text("0123456789abcdef", min_size=4, max_size=16)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.dictionaries(
        arch_ids,
        st.tuples(
            st.floats(0, 1),
            st.sampled_from([4, 6, 8, 10, None]),
            st.dictionaries(names, scores, min_size=1),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_round_trip(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("store") / "b.db"
    with Benchmark.create(path, space="s", dataset="d", source="test") as bench:
        bench.add_architectures(
            {"arch_id": a, "space": "s", "encoding": f"enc-{a}", "depth": d, "extra": {"k": a}}
            for a, (_, d, _) in data.items()
        )
        for a, (acc, _, proxies) in data.items():
            run_id, status, last = bench.get_or_create_run(a, 0, {"lr": 0.1})
            assert (status, last) == ("running", -1)
            bench.finish_run(run_id, val_acc=acc, train_seconds=1.0)
            bench.record_proxies(a, -1, {k: (v, 0.5, None) for k, v in proxies.items()})
    with Benchmark.open(path, readonly=True) as bench:
        labels = bench.labels()
        feats = bench.features()
        archs = bench.architectures()
        for a, (acc, depth, proxies) in data.items():
            assert labels.loc[a, "val_acc"] == pytest.approx(acc)
            assert archs.loc[a, "encoding"] == f"enc-{a}"
            assert archs.loc[a, "extra"] == {"k": a}
            got_depth = archs.loc[a, "depth"]
            assert (depth is None and got_depth is pd_na()) or got_depth == depth
            for name, value in proxies.items():
                got = feats.loc[a, name]
                if value is None or not math.isfinite(value):
                    assert math.isnan(got)  # missing, never 0
                else:
                    assert got == value


def pd_na():
    import pandas as pd

    return pd.NA


def test_reimport_adds_nothing_and_runs_resume(tmp_path):
    path = tmp_path / "b.db"
    rec = {"arch_id": "a1", "space": "s", "encoding": "e", "depth": 4}
    with Benchmark.create(path, space="s", dataset="d", source="t") as bench:
        assert bench.add_architectures([rec]) == 1
        assert bench.add_architectures([rec]) == 0
        run_id, _, _ = bench.get_or_create_run("a1", 3, {"epochs": 2})
        bench.record_epoch(
            run_id, 0, val_acc=0.4, val_loss=1.0, seconds=2.0, proxies={"zen": (1.5, 0.1, None)}
        )
    with Benchmark.create(path, space="s", dataset="d", source="t") as bench:
        again = bench.get_or_create_run("a1", 3, {"epochs": 2})
        assert again == (run_id, "running", 0)
        other = bench.get_or_create_run("a1", 4, {"epochs": 2})
        assert other[0] != run_id
        assert bench.features(0).loc["a1", "zen"] == 1.5
        bench.fail_run(other[0], "NaN loss")
        runs = bench.runs().set_index("run_id")
        assert runs.loc[other[0], "status"] == "failed"
        assert runs.loc[other[0], "error"] == "NaN loss"
        assert bench.counts()["runs"] == 2
        assert bench.labels().empty


def test_transaction_rolls_back(tmp_path):
    path = tmp_path / "b.db"
    with Benchmark.create(path, space="s", dataset="d", source="t") as bench:
        with pytest.raises(RuntimeError):
            with bench.transaction():
                bench.add_architectures([{"arch_id": "x", "space": "s", "encoding": "e"}])
                raise RuntimeError("boom")
        assert bench.architectures().empty


def test_refuses_foreign_files(tmp_path):
    text = tmp_path / "notes.db"
    text.write_text("hello")
    with pytest.raises(StoreError, match="not an SQLite file"):
        Benchmark.open(text)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreError, match="not a rankzc benchmark"):
        Benchmark.open(other)
    with pytest.raises(StoreError, match="no such benchmark"):
        Benchmark.open(tmp_path / "missing.db")
    Benchmark.create(tmp_path / "a.db", space="s", dataset="d", source="t").close()
    with pytest.raises(StoreError, match="space"):
        Benchmark.create(tmp_path / "a.db", space="other", dataset="d", source="t")


def test_missing_proxies_and_table(tmp_path):
    with Benchmark.create(tmp_path / "b.db", space="s", dataset="d", source="t") as bench:
        bench.add_architectures(
            {"arch_id": a, "space": "s", "encoding": a, "depth": None} for a in ("a", "b")
        )
        bench.record_proxies(
            "a",
            -1,
            {"zen": (1.0, 0.1, None), "snip": (None, 0.1, "boom")},
            settings={"preset": "tiny"},
        )
        assert bench.missing_proxies(["zen", "snip"]) == ["b"]
        assert bench.proxy_settings() == [{"preset": "tiny"}]
        table = bench.table()
        assert "depth" not in table.columns
        assert np.isnan(table.loc["b", "zen"])
        recs = bench.proxy_records()
        assert recs.set_index("name").loc["snip", "error"] == "boom"


def test_config_hash_is_order_independent():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
