"""A driver killed with SIGKILL while Ray starts leaves no Ray process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray")

from rankzc.training.ray_executor import (  # noqa: E402
    _holders,
    clean_stale_ray,
    driver_temp_dir,
    ray_temp_root,
)

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc (Linux)")

ARGS = ["--preset", "tiny", "--data", "synthetic:n=20,frames=8", "--sample", "1", "--epochs"]
ARGS += ["1", "--proxies", "none", "--device", "cpu", "--executor", "ray", "--quiet"]


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def _agents(folder) -> list[int]:
    out = []
    for pid in _holders(folder):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if fh.read().startswith((b"ray::DashboardAgent", b"ray::RuntimeEnvAgent")):
                    out.append(pid)
        except OSError:
            pass
    return out


@pytest.mark.slow
def test_sigkill_during_ray_start_up_leaves_no_orphan(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "rankzc.cli", "bench", "build", "--out", str(tmp_path / "r.db")]
    proc = subprocess.Popen(
        cmd + ARGS, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 45
    folder = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if folder is None and _start_known(proc.pid):
                folder = driver_temp_dir(proc.pid)
            if folder is not None and _agents(folder):
                break  # the raylet has started its agents: Ray is still starting
            time.sleep(0.05)
        assert proc.poll() is None, "the build ended before Ray started its agents"
        if folder is None or not _agents(folder):
            pytest.skip("Ray did not start its agents within 45 s on this (loaded) machine")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the head processes die with the driver (SIGKILL on parent death); the agents
        # the raylet started are re-parented to init and live on
        orphans: list[int] = []
        wait_until = time.monotonic() + 10
        while not orphans and time.monotonic() < wait_until:
            time.sleep(0.2)
            left = _holders(folder)
            orphans = [p for p in left if _ppid(p) == 1]
        # the situation of the issue: Ray processes of that session re-parented to init
        assert orphans, f"no orphan to clean (left: {left})"
        assert clean_stale_ray() >= len(orphans)  # what the next start does first
        deadline = time.monotonic() + 10
        while _holders(folder) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _holders(folder) == [] and not folder.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _start_known(pid: int) -> bool:
    return driver_temp_dir(pid).name.split("-")[1] != "None"


def test_running_driver_is_never_touched(tmp_path):
    """A folder whose driver (this process) runs is left alone, with its processes."""
    folder = driver_temp_dir()
    folder.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen(["sleep", "30"], cwd=folder)
    try:
        time.sleep(0.2)
        assert child.pid in _holders(folder)
        clean_stale_ray()
        assert child.poll() is None and folder.is_dir()
        # once its driver is gone (a dead pid's folder), it is cleaned
        dead = ray_temp_root() / "999999999-1"
        folder.rename(dead)
        assert clean_stale_ray() == 1
        assert child.wait(timeout=10) == -signal.SIGKILL and not dead.exists()
    finally:
        if child.poll() is None:
            child.kill()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
