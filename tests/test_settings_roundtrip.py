"""A built benchmark records proxy settings that reproduce its initialisation scores.

This is what `rankzc fit` + `rankzc score` rely on: a new architecture is scored the way
the ranker's training architectures were.
"""

from __future__ import annotations

import numpy as np
import pytest

from rankzc.proxies.features import ProxySettings, score_architectures
from rankzc.proxies.registry import DEFINITION_CHANGES, DEFINITIONS
from rankzc.space import sample_architectures
from rankzc.store import Benchmark, default_benchmark_path
from rankzc.training import TrainConfig, build_benchmark

NAMES = ("params", "flops", "l2_norm", "synflow", "grad_norm", "snip", "nwot", "zen")


def test_build_settings_reproduce_init_scores(tmp_path):
    archs = sample_architectures(2, depths=(4, 6), seed=3)
    config = TrainConfig.for_preset(
        "tiny", data="synthetic:n=60,frames=12,classes=4", epochs=1, proxies=",".join(NAMES)
    )
    out = tmp_path / "b.db"
    build_benchmark(out, archs, config, seed=5, device="cpu", progress=False)
    with Benchmark.open(out) as bench:
        (settings,) = bench.proxy_settings()
        stored = bench.features(-1)
    assert ProxySettings.from_dict(settings).resample is False
    assert settings["definitions"] == DEFINITIONS  # scores say which definitions they follow
    again = score_architectures(archs, settings)
    for name in NAMES:
        np.testing.assert_allclose(
            again.loc[stored.index, name].to_numpy(float),
            stored[name].to_numpy(float),
            rtol=1e-6,
            err_msg=name,
        )


def test_shipped_settings_records_follow_the_current_definitions():
    """The shipped store was scored with the study's proxy definitions (one record per seed)."""
    path = default_benchmark_path()
    if not path.exists():
        pytest.skip("the default benchmark is not installed")
    with Benchmark.open(path, readonly=True) as bench:
        records = bench.proxy_settings()
        seeds = set(bench.runs()["seed"])
    assert {int(r["seed"]) for r in records} == seeds
    for settings in records:
        ps = ProxySettings.from_dict(settings)
        assert settings["definitions"] == ps.definitions
        # a store built under an older version names the proxies whose definitions
        # changed since as stale until it is rebuilt: the shipped one was built under
        # version 3, and version 4 changed grad_sign only (the exact softmax backward)
        assert 2 <= ps.definitions <= DEFINITIONS
        expected = {
            n for v, names in DEFINITION_CHANGES.items() if v > ps.definitions for n in names
        }
        assert set(ps.stale_proxies()) == expected
        assert expected <= {"grad_sign", "epe_nas", "synflow"}
