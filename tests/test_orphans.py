"""Local worker pools end with their driver (issue 24, item 7).

Before: kill -9 of ``search --out ... --workers 2`` during scoring left both spawn
workers (~630 MB each) and the multiprocessing resource tracker alive: an idle worker
blocks forever on a task queue whose write end it holds itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]

DRIVER = """
import sys
from rankzc.search.live import LiveSearch
from rankzc.search.pool import score_pool
from rankzc.space import sample_architectures
from rankzc.training import TrainConfig

cfg = TrainConfig.for_preset("tiny", data="synthetic:n=60", epochs=1, proxies="none")
settings = LiveSearch(sys.argv[1], cfg, pool_size=2, proxies=("synflow",)).settings(["synflow"])
archs = sample_architectures(40, depths=(10,), seed=5)
score_pool(archs, settings, workers=2,
           on_result=lambda a, r: print("result", a, flush=True))
print("done", flush=True)
"""


def _gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still running (zombies count as gone) after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def test_kill_9_of_the_driver_takes_its_workers_and_tracker_along(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(tmp_path / "s.db")],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its descendants are findable after it is gone
    )
    try:
        line = driver.stdout.readline()  # a worker has scored: the pool is at work
        assert line.startswith("result"), line
        family = [p.pid for p in psutil.Process(driver.pid).children(recursive=True)]
        assert len(family) >= 2, family  # two workers (and the resource tracker)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        # generous: the check is that they end at all (before: never)
        alive = _gone(family, timeout=60)
        assert not alive, [psutil.Process(p).cmdline()[-3:] for p in alive]
    finally:
        for p in psutil.process_iter(["pid"]):  # never leave any behind, even on failure
            try:
                if os.getsid(p.pid) == driver.pid and p.pid != os.getpid():
                    p.kill()
            except (OSError, psutil.Error):
                pass
        if driver.poll() is None:
            driver.kill()


def test_initializer_exits_a_worker_whose_driver_is_already_gone():
    """The driver died before the worker ran its initializer: the worker exits at once."""
    code = (
        "import os; from rankzc.orphans import die_with_parent; "
        "die_with_parent(os.getppid() + 10**6); print('survived')"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1 and "survived" not in res.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_linux_uses_the_parent_death_signal():
    code = (
        "import ctypes, signal; from rankzc.orphans import _pdeathsig; assert _pdeathsig(); "
        "libc = ctypes.CDLL(None); v = ctypes.c_int(); libc.prctl(2, ctypes.byref(v), 0, 0, 0); "
        "print(v.value == signal.SIGKILL)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert res.stdout.strip() == "True", res.stderr
