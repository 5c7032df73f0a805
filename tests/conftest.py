"""Shared fixtures: paths to the real benchmark data in ../shared (skipped when absent)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RANKZC_SHARED", ROOT.parent / "shared"))
THESIS_DIR = SHARED / "data" / "thesis-gcn-nas" / "architectures"
NBSZ_FILE = SHARED / "data" / "nas-bench-suite-zero" / "zc_nasbench201_cifar10.json"

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def thesis_dir() -> Path:
    if not THESIS_DIR.is_dir():
        pytest.skip("../shared/data/thesis-gcn-nas is absent")
    return THESIS_DIR


@pytest.fixture(scope="session")
def nbsz_file() -> Path:
    if not NBSZ_FILE.is_file():
        pytest.skip("../shared/data/nas-bench-suite-zero is absent")
    return NBSZ_FILE


def benchmark_script(name: str) -> ModuleType:
    """``benchmarks/NAME.py`` imported as the module ``NAME`` (scripts, not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def restore_threads(monkeypatch):
    """Clear the thread variables; afterwards restore torch's count and rankzc's policy."""
    from rankzc import threads

    for var in threads.ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    before = torch.get_num_threads()
    yield monkeypatch
    torch.set_num_threads(before)
    threads._current = None
    if threads._limits is not None:
        threads._limits.restore_original_limits()
        threads._limits = None
