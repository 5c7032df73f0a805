"""benchmarks/study_end_to_end.py: seed lists, the shared cache, the summary over seeds.

The script's recomputation runs at the study's input shape (minutes per hold-out), so
these tests check its bookkeeping on made-up reports; the real run is in the README.
"""

from __future__ import annotations

import argparse
import json

import pytest
from conftest import benchmark_script


@pytest.fixture(scope="module")
def e2e():
    return benchmark_script("study_end_to_end")


def test_seed_lists(e2e):
    assert e2e._seed_list("0-3") == [0, 1, 2, 3]
    assert e2e._seed_list("1,3,5") == [1, 3, 5]
    assert e2e._seed_list("0-2,7") == [0, 1, 2, 7]


def test_cache_keeps_rows_of_these_settings_and_skips_a_cut_line(e2e, tmp_path):
    path = tmp_path / "c.jsonl"
    rows = [
        {"file": "a.json", "settings": {"batch": 20}, "proxies": {"zen": 1.0}},
        {"file": "b.json", "settings": {"batch": 4}, "proxies": {"zen": 2.0}},
        {"file": "c.json", "settings": {"batch": 20}, "proxies": {"zen": 3.0}},
    ]
    text = "\n".join(json.dumps(r) for r in rows) + '\n{"file": "d.js'  # cut mid-write
    path.write_text(text)
    done = e2e._read_cache(path, {"batch": 20})
    assert sorted(done) == ["a.json", "c.json"]
    assert e2e._read_cache(tmp_path / "absent.jsonl", {}) == {}


def _report(seed, recomputed, stored, depth):
    return {
        "spearman": {
            "recomputed": {"rho": recomputed},
            "stored": {"rho": stored},
            "depth": {"rho": depth},
        },
        "holdout_seed": seed,
    }


def test_summary_over_seeds(e2e, tmp_path, monkeypatch):
    figures = {0: (0.80, 0.81, 0.82), 1: (0.85, 0.84, 0.80), 2: (0.79, 0.79, 0.75)}
    monkeypatch.setattr(
        e2e, "_recomputed_split", lambda args, files, proxies, seed: _report(seed, *figures[seed])
    )
    args = argparse.Namespace(
        seeds="0-2", model="stratified", features="all", holdout=60, out=tmp_path / "e.json"
    )
    e2e.recomputed_splits(args, [], ["zen"])
    out = json.loads((tmp_path / "e_recomputed_splits.json").read_text())
    assert [r["seed"] for r in out["splits"]] == [0, 1, 2]
    assert out["recomputed_mean"] == pytest.approx(2.44 / 3)
    assert out["depth_mean"] == pytest.approx(0.79)
    assert out["recomputed_minus_depth_mean"] == pytest.approx(0.07 / 3)
    assert out["recomputed_above_depth"] == 2
    assert out["recomputed_minus_stored_max_abs"] == pytest.approx(0.01)


def test_summary_waits_for_unscored_seeds(e2e, tmp_path, monkeypatch):
    monkeypatch.setattr(e2e, "_recomputed_split", lambda *a: None)  # --limit left work
    args = argparse.Namespace(
        seeds="0-1", model="stratified", features="all", holdout=60, out=tmp_path / "e.json"
    )
    e2e.recomputed_splits(args, [], ["zen"])
    assert not (tmp_path / "e_recomputed_splits.json").exists()
