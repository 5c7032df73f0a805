"""The benchmark shipped as rankzc/data/default.db (built by benchmarks/build_default.py)."""

from __future__ import annotations

import pytest

from rankzc.space import DEPTHS, Architecture
from rankzc.store import Benchmark, default_benchmark_path
from rankzc.training import TrainConfig


@pytest.fixture(scope="module")
def bench():
    path = default_benchmark_path()
    if not path.exists():
        pytest.skip("the default benchmark is not installed")
    with Benchmark.open(path, readonly=True) as b:
        yield b


def test_default_benchmark_is_one_compact_file():
    path = default_benchmark_path()
    if not path.exists():
        pytest.skip("the default benchmark is not installed")
    assert path.stat().st_size < 2_000_000
    for suffix in ("-wal", "-shm"):
        assert not path.with_name(path.name + suffix).exists()


def test_default_benchmark_labels(bench):
    labels = bench.labels()
    runs = bench.runs()
    assert len(labels) >= 100 and (runs["status"] == "done").all()
    assert set(labels["depth"]) == set(DEPTHS)
    acc = labels["val_acc"]
    config = TrainConfig.from_dict(runs["config"].iloc[0])
    assert config.preset == "cpu" and config.warmup_epochs >= 2
    chance = 1 / 10
    assert acc.max() - acc.min() >= 0.10  # labels spread over >= 10 points
    assert acc.min() > chance + 0.02 and acc.max() < 1.0
    # every label is the last epoch's validation accuracy
    epochs = bench.epochs()
    last = epochs[epochs["epoch"] == config.epochs - 1].set_index("arch_id")["val_acc"]
    assert (last.loc[labels.index] == acc).all()


def test_default_benchmark_proxies(bench):
    assert bench.proxy_epochs() == [-1, 0, 1]
    for epoch in (-1, 0, 1):
        feats = bench.features(epoch)
        assert feats.shape[1] == 14 and len(feats) == len(bench.labels())
    archs = bench.architectures()
    for arch_id, enc in archs["encoding"].items():
        assert Architecture.parse(enc).arch_id == arch_id
