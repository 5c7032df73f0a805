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
* whatever the source, the count is capped at :data:`THREADS_PER_CORE` x the cores this
  process may use (:func:`max_threads`), with a one-line note on stderr: an absurd count
  (``--threads 100000``, ``OMP_NUM_THREADS=100000``) crashed LightGBM and made PyTorch
  start thousands of threads; a capped count is never passed raw to a native library;
* the same count goes to PyTorch (``torch.set_num_threads``), to the BLAS and OpenMP
  pools already loaded (:mod:`threadpoolctl`), to LightGBM (``n_jobs``) and, through
  the environment, to libraries and worker processes started later.

:func:`apply` is called at the start of every compute-heavy command. It never imports
torch: when torch is already loaded its thread count is set directly, otherwise the
environment variables make torch start with that count when it is imported.
"""

from __future__ import annotations

import numbers
import os
import re
import sys
from dataclasses import dataclass

from rankzc.errors import RankzcError

__all__ = [
    "ThreadPolicy",
    "apply",
    "cap",
    "native_threads",
    "cpu_count",
    "current",
    "env_threads",
    "max_threads",
    "resolve",
    "ENV_VARS",
    "THREADS_PER_CORE",
]

#: the most threads per process: this many per core the process may use
THREADS_PER_CORE = 4

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
    requested: int | None = None  # the count asked for, when it was capped

    def describe(self) -> str:
        return f"{self.threads} thread(s) per process ({self.source}), {self.workers} worker(s)"

    def note(self) -> str | None:
        """The one-line note for a capped count (None when nothing was capped)."""
        if self.requested is None:
            return None
        return (
            f"Note: {self.source} {self.requested} capped at {self.threads} thread(s) "
            f"({THREADS_PER_CORE} x {cpu_count()} core(s))"
        )


_current: ThreadPolicy | None = None
_limits = None  # threadpoolctl limiter, kept so that it is not collected


def cpu_count() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def max_threads() -> int:
    """The most threads per process: :data:`THREADS_PER_CORE` x :func:`cpu_count`."""
    return THREADS_PER_CORE * cpu_count()


def cap(threads: int) -> int:
    """``threads`` within ``1..max_threads()`` (what a native library may be given)."""
    return max(1, min(int(threads), max_threads()))


def native_threads(n_jobs, owner: str) -> int:
    """Threads for a native library's ``n_jobs`` (LightGBM): None or <= 0 = the policy's
    count (:func:`current`), a positive integer capped (:func:`cap`; an absurd count
    crashes LightGBM); anything else is refused naming ``owner``."""
    if n_jobs is None:
        return current().threads
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral):
        raise RankzcError(f"{owner}: n_jobs must be an integer, got {n_jobs!r}")
    return cap(int(n_jobs)) if n_jobs > 0 else current().threads


def _parse_count(text: str | None) -> int | None:
    text = (text or "").strip()
    if not re.fullmatch(r"[0-9]{1,18}(,[0-9,]*)?", text):  # OpenMP allows "4,2" (nested)
        return None
    value = int(text.split(",")[0])
    return value if value >= 1 else None


def _env_threads() -> int | None:
    return _parse_count(os.environ.get("OMP_NUM_THREADS"))


def env_threads(default: int = 1) -> int:
    """``OMP_NUM_THREADS`` as a capped count (``default`` when unset or not a count);
    for worker processes, which read the count the driver put in their environment."""
    value = _env_threads()
    return cap(value if value is not None else default)


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
        value, source = int(threads), "--threads"
    else:
        env = _env_threads()
        value, source = (env, "OMP_NUM_THREADS") if env is not None else (1, "default")
    capped = cap(value)
    return ThreadPolicy(capped, n_workers, source, value if capped != value else None)


def apply(threads: int | None = None, workers: int | None = None) -> ThreadPolicy:
    """Resolve the policy and apply it to this process and the processes it starts."""
    global _current, _limits
    policy = resolve(threads, workers)
    note = policy.note()
    if (
        note
        and sys.stderr is not None
        and (_current is None or _current.requested != policy.requested)
    ):
        try:
            print(note, file=sys.stderr)  # once per process and count
        except (OSError, ValueError):  # a closed stderr: the note is not worth failing for
            pass
    value = str(policy.threads)
    for var in ENV_VARS:  # a variable the user set to a valid count (within the cap) is kept
        raw = os.environ.get(var, "").strip()
        valid = raw.isdigit() and len(raw) <= 18 and int(raw) <= max_threads()
        if policy.source == "--threads" or not valid:
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


def ensure() -> ThreadPolicy:
    """Apply the default policy unless one was applied already (a command's ``--threads``).

    Called where the Python API starts compute-heavy work (proxy scoring), so that library
    use gets the same fast default as the commands instead of torch's own thread count.
    """
    return _current if _current is not None else apply()


def current() -> ThreadPolicy:
    """The policy last applied, or the one the environment gives (not applied)."""
    return _current if _current is not None else resolve()
