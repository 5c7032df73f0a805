"""Per-proxy intervals of ``rankzc evaluate`` are bootstrap intervals, not points.

A proxy correlated about 0.6 with accuracy on 60 architectures has a 95% interval some
0.3 wide; an interval collapsed onto the estimate passes ``lo <= rho <= hi`` but not this.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from benchdata import write_gcn_store
from click.testing import CliRunner

from rankzc.analysis import proxy_correlations
from rankzc.cli import main
from rankzc.space import sample_architectures


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    X = pd.DataFrame({"good": y + 0.8 * rng.normal(size=n), "noise": rng.normal(size=n)})
    return X, pd.Series(y)


def _check(entry):
    lo, hi = entry["ci95"]
    assert lo < entry["spearman"] < hi, entry
    assert 0.1 < hi - lo < 0.9, entry


def test_proxy_correlations_give_bootstrap_intervals():
    X, y = _data()
    out = proxy_correlations(X, y, n_boot=300, seed=0)
    for name in X.columns:
        _check(out[name])
    # a wider interval with fewer architectures
    few = proxy_correlations(X.iloc[:20], y.iloc[:20], n_boot=300, seed=0)
    width = lambda e: e["ci95"][1] - e["ci95"][0]  # noqa: E731
    assert width(few["good"]) > width(out["good"])


def test_evaluate_reports_an_interval_for_every_proxy(tmp_path):
    def label(a, rng):
        return 0.5 + 0.01 * a.depth + 0.02 * rng.normal()

    def scores(a, rng):
        return {
            "zen": (a.depth + 2.0 * rng.normal(), 0.1, None),
            "nwot": (float(rng.normal()), 0.1, None),
            "params": (1e4 * a.depth + 1e4 * rng.normal(), 0.1, None),
        }

    db = write_gcn_store(tmp_path / "s.db", sample_architectures(60, seed=2), label, scores)
    res = CliRunner().invoke(
        main, ["evaluate", "-b", str(db), "--bootstrap", "300", "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["proxies"]) == {"zen", "nwot", "params"}
    for entry in out["proxies"].values():
        _check(entry)
    _check(out["baselines"]["depth"])
