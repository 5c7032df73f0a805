"""Thread policy of the compute-heavy commands.

PyTorch, LightGBM and the BLAS under numpy each start one thread per core by default.
Inside a process that already runs one job per core (a Ray worker), or on a small
machine shared with other work, those threads fight for the same cores: on this
project's 2-core machine under load, ``rankzc features --sample 1`` took 196 s with
PyTorch's default against 27 s with one thread. The policy is therefore:

* one intra-op thread per worker process by default (``threads = 1``); parallelism
  comes from worker processes (``--workers``, up to the number of cores), not from
  threads inside one process;
* ``OMP_NUM_THREADS``, when the user set it, is honoured as the thread count;
* ``--threads N`` overrides both;
* the same count goes to PyTorch (``torch.set_num_threads``), to the BLAS and OpenMP
  pools already loaded (:mod:`threadpoolctl`), to LightGBM (``n_jobs``) and, through
  the environment, to libraries and worker processes started later.

:func:`apply` is called at the start of every compute-heavy command. It never imports
torch: when torch is already loaded its thread count is set directly, otherwise the
environment variables make torch start with that count when it is imported.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from rankzc.errors import RankzcError

__all__ = ["ThreadPolicy", "apply", "cpu_count", "current", "resolve", "ENV_VARS"]

#: Environment variables read by OpenMP, the BLAS libraries and numexpr at start-up.
ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


@dataclass(frozen=True)
class ThreadPolicy:
    """Threads per process, worker processes, and where the thread count came from."""

    threads: int
    workers: int = 1
    source: str = "default"  # "--threads", "OMP_NUM_THREADS" or "default"

    def describe(self) -> str:
        return f"{self.threads} thread(s) per process ({self.source}), {self.workers} worker(s)"


_current: ThreadPolicy | None = None
_limits = None  # threadpoolctl limiter, kept so that it is not collected


def cpu_count() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _env_threads() -> int | None:
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not text:
        return None
    try:
        value = int(text.split(",")[0])
    except ValueError:
        return None
    return value if value >= 1 else None


def resolve(threads: int | None = None, workers: int | None = None) -> ThreadPolicy:
    """The policy for ``--threads`` / ``--workers`` (None = default) without applying it.

    Raises:
        RankzcError: a thread or worker count below 1.
    """
    if threads is not None and int(threads) < 1:
        raise RankzcError(f"--threads: must be >= 1, got {threads}")
    if workers is not None and int(workers) < 1:
        raise RankzcError(f"--workers: must be >= 1, got {workers}")
    n_workers = int(workers) if workers is not None else 1
    if threads is not None:
        return ThreadPolicy(int(threads), n_workers, "--threads")
    env = _env_threads()
    if env is not None:
        return ThreadPolicy(env, n_workers, "OMP_NUM_THREADS")
    return ThreadPolicy(1, n_workers, "default")


def apply(threads: int | None = None, workers: int | None = None) -> ThreadPolicy:
    """Resolve the policy and apply it to this process and the processes it starts."""
    global _current, _limits
    policy = resolve(threads, workers)
    value = str(policy.threads)
    for var in ENV_VARS:  # a variable the user set to a valid count is kept
        if policy.source == "--threads" or not os.environ.get(var, "").strip().isdigit():
            os.environ[var] = value
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    else:
        _limits = threadpool_limits(limits=policy.threads)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(policy.threads)
    _current = policy
    return policy


def current() -> ThreadPolicy:
    """The policy last applied, or the one the environment gives (not applied)."""
    return _current if _current is not None else resolve()
