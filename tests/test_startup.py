"""Start-up: the CLI and the commands that only read a store never import torch or PyG.

Each check runs in a fresh interpreter (this test process has torch loaded already), with
the repository first on ``sys.path`` so that the code under test is the one imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from benchdata import write_gcn_store

from rankzc.space import sample_architectures

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torch_geometric")

# run the CLI with ARGS, then print which heavy modules it imported as the last line
PROGRAM = """
import json, sys
from rankzc.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print("MODULES " + json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _imported(args: list[str], code: str | None = None) -> tuple[list[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    program = code or PROGRAM.format(heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", program, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    last = [ln for ln in proc.stdout.splitlines() if ln.startswith("MODULES ")][-1]
    return json.loads(last[len("MODULES ") :]), proc.stdout


def test_import_cli_leaves_torch_out():
    code = (
        "import json, sys, rankzc, rankzc.cli\n"
        f"print('MODULES ' + json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    mods, _ = _imported([], code)
    assert mods == []


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["evaluate", "--help"]])
def test_help_and_version_leave_torch_out(args):
    mods, out = _imported(args)
    assert mods == []
    assert "rankzc" in out or "Usage" in out


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    def scores(a, rng):
        return {
            "params": (float(rng.uniform(1e4, 1e6)), 0.1, None),
            "zen": (rng.normal(), 0.1, None),
        }

    path = tmp_path_factory.mktemp("startup") / "s.db"
    archs = sample_architectures(20, seed=1)
    return write_gcn_store(path, archs, lambda a, rng: rng.uniform(0.5, 0.9), scores)


def test_store_commands_leave_torch_out(small_store, tmp_path):
    """evaluate, vote, export, fit and score (of rankers without a network) stay torch-free."""
    csv, rzc = tmp_path / "t.csv", tmp_path / "l.rzc"
    commands = [
        ["evaluate", "-b", str(small_store), "--bootstrap", "20", "--format", "json"],
        ["vote", "-b", str(small_store), "--max-size", "2"],
        ["export", "-b", str(small_store), "--out", str(csv)],
        ["fit", "-m", "lambdarank", "-b", str(small_store), "--param", "n_estimators=5",
         "--out", str(rzc)],
        ["score", "-r", str(rzc), "--features-csv", str(csv), "--allow-mismatch"],
    ]  # fmt: skip
    for args in commands:
        mods, out = _imported(args)
        assert mods == [], (args, out)
    assert rzc.is_file() and csv.is_file()


def test_preset_names_match_the_models():
    from rankzc.commands.space import PRESET_NAMES
    from rankzc.models import PRESETS

    assert sorted(PRESET_NAMES) == sorted(PRESETS)
