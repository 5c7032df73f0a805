"""benchmarks/build_default.py: the passes it runs and the seed noise it reports (the
build itself takes hours; tests/test_training_default.py checks the store it ships)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import benchmark_script


@pytest.fixture(scope="module")
def bd():
    return benchmark_script("build_default")


def _opt(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd else None


def test_default_passes_train_every_architecture_under_three_seeds(bd):
    cmds = bd.build_commands(Path("w.db"), 200, "ray", 2)
    assert [_opt(c, "--sample") for c in cmds] == ["10", "200"]
    assert all(_opt(c, "--seeds") == "0,1,2" for c in cmds)
    assert all(_opt(c, "--sampling") == "density" for c in cmds)
    assert all("--repeat-archs" not in c for c in cmds)


def test_fewer_repeated_architectures_add_a_last_pass(bd):
    cmds = bd.build_commands(Path("w.db"), 200, "local", 1, repeat=60, seeds=2)
    assert [_opt(c, "--sample") for c in cmds] == ["10", "60", "200"]
    assert all(_opt(c, "--seeds") == "0,1" for c in cmds)
    assert _opt(cmds[-1], "--repeat-archs") == "60"
    assert all("--workers" not in c for c in cmds)  # local executor


def test_seed_noise_pairs_seeds_0_and_1_whatever_else_was_trained(bd):
    rng = np.random.default_rng(0)
    truth = rng.normal(0.7, 0.03, 40)
    rows = [
        {"arch_id": f"a{i}", "seed": s, "val_acc": truth[i] + rng.normal(0, 0.01)}
        for i in range(40)
        for s in ((0, 1, 2) if i < 30 else (0, 1))  # a third seed for some only
    ]
    noise = bd.seed_noise(pd.DataFrame(rows))
    assert noise["n"] == 40
    assert 0.5 < noise["icc"] <= 1 and noise["spearman"] > 0.5
    assert bd.seed_noise(pd.DataFrame([r for r in rows if r["seed"] == 0])) == {"n": 0}
