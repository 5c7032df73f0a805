"""One write lock for every writer of a store (bench build, search, features, import).

Every writer holds ``<store>.lock`` (flock) for its whole write; a refused writer is one
line, exit 1, and touches nothing: not the store, not the holder's lock file (before, a
refused second ``search`` deleted the running search's lock, so a third ran beside it).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from benchdata import write_thesis_dir
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.errors import RankzcError
from rankzc.space import SPACE, sample_architectures
from rankzc.store import Benchmark
from rankzc.writelock import lock_path, store_lock

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--preset", "tiny", "--data", "synthetic:n=60", "--epochs", "1"]

HOLD = """
import sys, time
from rankzc.writelock import store_lock
with store_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    sys.stdin.readline()
"""


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def writer_args(writer: str, store: Path) -> list[str]:
    if writer == "build":
        return ["bench", "build", "--out", str(store), "--sample", "1", *FAST, "--quiet"]
    if writer == "search":
        args = ["search", "--out", str(store), "-s", "random", "--train-budget", "1"]
        return [*args, "--sample", "2", *FAST, "--proxies", "params", "-q"]
    if writer == "import":
        src = store.with_name("thesis")
        if not src.exists():
            write_thesis_dir(src, n=3)
        return ["import", "thesis", str(src), "--out", str(store), "-q"]
    return ["features", "--benchmark", str(store), "--proxies", "params", "-q"]


def make_store(path: Path) -> str:
    Benchmark.create(path, space=SPACE, dataset="synthetic:n=60", source="test").close()
    (arch,) = sample_architectures(1, (4,), seed=0)
    with Benchmark.open(path) as b:
        b.add_architectures(
            [{"arch_id": arch.arch_id, "space": SPACE, "encoding": str(arch), "depth": 4}]
        )
    return digest(path)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hold(store: Path, writer: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store), writer],
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("holder", ["build", "search", "features", "import"])
@pytest.mark.parametrize("writer", ["build", "search", "features", "import"])
def test_refused_writer_touches_neither_store_nor_lock(tmp_path, holder, writer):
    store = tmp_path / "s.db"
    before = make_store(store)
    proc = hold(store, holder)
    try:
        lock = lock_path(store)
        ino = lock.stat().st_ino
        for _ in range(2):  # the second refusal proves the first removed nothing
            res = CliRunner().invoke(main, writer_args(writer, store))
            assert res.exit_code == 1, res.output
            (line,) = res.output.strip().splitlines()
            assert line.startswith("Error: ") and f"another {holder} is writing" in line, line
            assert str(store) in line
            assert lock.stat().st_ino == ino  # the holder's lock file, never removed
            assert digest(store) == before
        assert not store.with_name("s.db.ckpt").exists()
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert not lock_path(store).exists()  # only the holder removes it, when it ends


def test_lock_of_a_killed_writer_is_taken_over_and_cleaned(tmp_path):
    store = tmp_path / "k.db"
    make_store(store)
    proc = hold(store, "search")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert lock_path(store).exists()  # SIGKILL skips the clean-up; the kernel drops the lock
    res = CliRunner().invoke(main, writer_args("features", store))
    assert res.exit_code == 0, res.output
    assert not lock_path(store).exists()
    with Benchmark.open(store, readonly=True) as b:
        assert b.features(-1).shape == (1, 1)


def test_in_process_refusal_and_reentry(tmp_path):
    store = tmp_path / "r.db"
    with store_lock(store, "search") as held:
        ino = lock_path(store).stat().st_ino
        with pytest.raises(RankzcError, match="another search is writing"):
            with store_lock(store, "build"):
                pass
        assert lock_path(store).stat().st_ino == ino
        with store_lock(store, "build", held=held) as again:  # a search's nested build
            assert again is held
        assert lock_path(store).stat().st_ino == ino  # re-entry removes nothing either
        with pytest.raises(RankzcError, match="another search"):
            with store_lock(tmp_path / "r.db", "features", held=None):
                pass
    assert not lock_path(store).exists()
    assert not held.covers(store)


def test_refused_second_and_third_search_leave_the_running_search_alone(tmp_path):
    """The issue's reproduction with real processes: a search runs; a second and a third
    are refused while it runs; the first ends well and removes its lock."""
    store = tmp_path / "S.db"
    cmd = [sys.executable, "-m", "rankzc.cli", *writer_args("search", store)]
    cmd[cmd.index("--train-budget") + 1] = "2"
    cmd[cmd.index("--sample") + 1] = "4"
    first = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lock = lock_path(store)
    deadline = time.monotonic() + 120
    while first.poll() is None and time.monotonic() < deadline:
        if lock.exists() and lock.read_text().startswith("search"):
            break
        time.sleep(0.02)
    assert first.poll() is None, "the first search ended before the others could start"
    ino = lock.stat().st_ino
    results = [CliRunner().invoke(main, writer_args("search", store)) for _ in range(2)]
    still_running = first.poll() is None
    assert lock.stat().st_ino == ino
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert still_running, "the first search ended before the third was refused: proves nothing"
    for res in results:
        assert res.exit_code == 1 and "another search is writing" in res.output, res.output
    assert not lock.exists()
    with Benchmark.open(store, readonly=True) as b:
        assert len(b.labels()) == 2
