"""Label noise: the harmonic mean in Spearman-Brown, chance-level labels named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rankzc.analysis import chance_level, label_noise
from rankzc.space import sample_architectures
from rankzc.stats import spearman_brown

DATA = "synthetic:n=200,classes=5,frames=8,seed=0,difficulty=0.5,persons=1,split=xsub"


def _runs(labels, data=DATA):
    return pd.DataFrame({"val_acc": labels, "config": [{"data": data}] * len(labels)})


def test_labels_within_binomial_noise_of_chance_are_named():
    at = chance_level(_runs([0.18, 0.21, 0.22, 0.19]), n_val=1000)
    assert at["chance"] == pytest.approx(0.2) and at["at_chance"]
    assert "learned nothing" in at["note"]
    above = chance_level(_runs([0.18, 0.21, 0.45]), n_val=1000)
    assert not above["at_chance"]
    # a small validation set widens the margin: 0.25 is within noise of 0.2 with 100 samples
    assert chance_level(_runs([0.25]), n_val=100)["at_chance"]
    assert not chance_level(_runs([0.25]), n_val=10_000)["at_chance"]


def test_chance_unknown_without_a_class_count():
    assert chance_level(_runs([0.2], data="ntu:/x"), n_val=100) is None
    mixed = pd.DataFrame(
        {"val_acc": [0.2, 0.3], "config": [{"data": DATA}, {"data": DATA.replace("=5", "=10")}]}
    )
    assert chance_level(mixed, n_val=100) is None


def test_spearman_brown_uses_the_harmonic_mean_of_runs(tmp_path):
    from rankzc.store import Benchmark

    archs = sample_architectures(12, seed=0)
    rng = np.random.default_rng(0)
    true = rng.normal(0.7, 0.05, len(archs))
    with Benchmark.create(tmp_path / "b.db", space="gcn-nas", dataset="toy", source="t") as b:
        b.add_architectures(
            {"arch_id": a.arch_id, "space": "gcn-nas", "encoding": str(a), "depth": a.depth}
            for a in archs
        )
        for i, a in enumerate(archs):
            seeds = (0, 1, 2, 3) if i < 4 else (0,)  # 4 architectures x 4 runs, 8 x 1
            for s in seeds:
                run, _, _ = b.get_or_create_run(a.arch_id, s, {"data": DATA})
                b.finish_run(run, val_acc=float(true[i] + rng.normal(0, 0.01)), train_seconds=1)
    with Benchmark.open(tmp_path / "b.db", readonly=True) as b:
        noise = label_noise(b, n_boot=50)
    assert noise["runs_per_architecture"] == pytest.approx(2.0)  # (4*4 + 8) / 12
    assert noise["runs_per_architecture_harmonic"] == pytest.approx(12 / (4 / 4 + 8))
    r = noise["repeats"]["seed_to_seed_spearman"]
    expected = spearman_brown(r, 12 / 9)
    assert noise["repeats"]["reliability"] == pytest.approx(max(0.0, expected))
    assert noise["repeats"]["ceiling_is_approximate"] is True
    assert noise["chance"]["chance"] == pytest.approx(0.2) and not noise["chance"]["at_chance"]
