"""Local worker processes die with their driver (issue 24: no orphans after kill -9).

A ``ProcessPoolExecutor`` worker normally notices its driver's death only when it next
reads a task; one busy scoring an architecture (hundreds of MB) lives on, and keeps the
multiprocessing resource tracker alive with it. :func:`die_with_parent`, the initializer
of every local pool (:func:`rankzc.search.pool.score_pool`), makes each worker end when
its driver does, however the driver ends (SIGKILL included):

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker when the
  driver dies (checked once more after the call, in case the driver died before it);
* elsewhere (or if ``prctl`` is unavailable), a daemon thread that polls
  ``os.getppid()`` every second and exits the worker once its parent changed.

When the workers are gone the resource tracker's pipe closes and it exits too.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

__all__ = ["die_with_parent"]

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0


def _pdeathsig() -> bool:
    """Ask the kernel for SIGKILL when the parent dies (Linux); False if unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(1)  # the driver is gone: nobody will read this worker's results


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this process when process ``parent`` (the driver) ends.

    ``parent`` is the driver's pid, passed by the driver (``initargs=(os.getpid(),)``),
    so a driver that died before this runs is noticed too.
    """
    if os.getppid() != parent:
        os._exit(1)
    if not _pdeathsig():
        threading.Thread(target=_watch, args=(parent,), daemon=True, name="rankzc-orphan").start()
    elif os.getppid() != parent:  # died between the first check and prctl
        os._exit(1)
