"""Small things a user trips on (issue 14.7): one-line RankzcErrors from models and proxies,
one JSON cleaner / device resolver / error describer, Parquet support installed."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from rankzc.errors import RankzcError, describe_error
from rankzc.space import sample_architectures

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def arch():
    return sample_architectures(1, depths=(4,), seed=0)[0]


def test_model_mistakes_are_rankzc_errors(arch):
    from rankzc.models import UnitGCN, build_model, spatial_partition
    from rankzc.models.dynamic import DynamicGraph
    from rankzc.models.graph import fixed_operator_sum

    A = spatial_partition()
    with pytest.raises(RankzcError, match="aggregation must be one of"):
        UnitGCN(4, 8, A, [True] * 8, aggregation="bogus")
    with pytest.raises(RankzcError, match="expected 8 switches, got 3"):
        UnitGCN(4, 8, A, [True] * 3)
    with pytest.raises(RankzcError, match="fixed switches, got 1"):
        fixed_operator_sum(A, [True])
    with pytest.raises(RankzcError, match="unknown dynamic module"):
        DynamicGraph("bogus", 4, 1)
    model = build_model(arch, preset="tiny")
    with pytest.raises(RankzcError, match=r"input: expected shape \(N, 3, T, 25, 2\)"):
        model(torch.zeros(2, 3, 8, 18, 2))


def test_synflow_option_mistake_is_a_rankzc_error(arch):
    from rankzc.models import build_model
    from rankzc.proxies import compute_proxies

    torch.manual_seed(0)
    model = build_model(arch, preset="tiny")
    x, y = torch.randn(4, 3, 16, 25, 2), torch.tensor([0, 1, 2, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = compute_proxies(model, (x, y), names=["synflow"], options={"synflow_bn": "bogus"})
    assert res["synflow"].score is None
    assert res["synflow"].error.startswith("synflow_bn")  # a user error: its message only


def test_one_json_cleaner():
    from rankzc.commands import _common
    from rankzc.jsonfile import jsonable
    from rankzc.ranking import evaluation, io

    data = {
        1: [np.float64("nan"), np.int64(3), (math.inf, -math.inf)],
        "a": np.arange(2),
        "b": {"c": np.float32(0.5), "d": None, "e": True, "f": "x"},
    }
    assert jsonable(data) == {
        "1": [None, 3, [None, None]],
        "a": [0, 1],
        "b": {"c": 0.5, "d": None, "e": True, "f": "x"},
    }
    kept = jsonable(data, nan=True)
    assert math.isnan(kept["1"][0]) and kept["1"][2] == [math.inf, -math.inf]
    assert type(kept["1"][1]) is int and type(kept["b"]["c"]) is float
    # the one cleaner everywhere (no private copies left)
    for module in (_common, evaluation, io):
        assert module.jsonable is jsonable
        assert not hasattr(module, "_clean") and not hasattr(module, "_jsonable")


def test_one_device_resolver(monkeypatch):
    from rankzc.device import resolve_device
    from rankzc.proxies.features import ProxySettings
    from rankzc.training import trainer

    assert trainer.resolve_device is resolve_device
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(RankzcError, match=r"--device cuda: no CUDA device is available"):
        resolve_device("cuda")
    with pytest.raises(RankzcError, match=r"^device cuda: no CUDA device is available"):
        ProxySettings(device="cuda").resolved_device()
    with pytest.raises(RankzcError, match="must be auto, cpu or cuda"):
        resolve_device("meta")
    with pytest.raises(RankzcError, match="must be auto, cpu or cuda"):
        resolve_device("gpu7")


def test_one_error_describer():
    from rankzc.proxies import compute
    from rankzc.training import trainer

    assert trainer.describe_error is describe_error
    assert compute._describe is describe_error
    assert describe_error(KeyError("x")) == "KeyError: 'x'"
    assert describe_error(ValueError("first\nsecond")) == "ValueError: first"
    assert describe_error(RuntimeError()) == "RuntimeError"
    assert describe_error(RankzcError("f.csv: bad\nmore")) == "f.csv: bad"
    from rankzc.ranking import evaluation

    assert not hasattr(evaluation, "_describe") and evaluation.describe_error is describe_error


def test_parquet_is_a_declared_dependency():
    tomllib = pytest.importorskip("tomllib")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = [d.split(">")[0].split("=")[0].strip() for d in meta["project"]["dependencies"]]
    assert "pyarrow" in deps


def test_parquet_export_round_trip(tmp_path):
    import pandas as pd

    from rankzc.commands._common import atomic_write_frame

    df = pd.DataFrame({"zen": [1.0, float("nan")]}, index=pd.Index(["a", "b"], name="arch_id"))
    atomic_write_frame(df, tmp_path / "t.parquet", settings={"seed": np.int64(1)})
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert back.index.tolist() == ["a", "b"] and np.isnan(back["zen"].iloc[1])


def test_describe_error_names_the_cause_of_a_ray_task_error():
    """A failed Ray task is described by what the task raised, not by the task's name."""

    class RayTaskError(Exception):  # the shape of ray.exceptions.RayTaskError
        def __init__(self, cause):
            super().__init__("ray::_train_task() (pid=1, ip=127.0.0.1)\n  traceback ...")
            self.cause = cause

    err = RayTaskError(RuntimeError("CUDA out of memory\nmore"))
    assert describe_error(err) == "RuntimeError: CUDA out of memory"
    assert describe_error(RuntimeError("plain")) == "RuntimeError: plain"
