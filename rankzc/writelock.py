"""The one lock every writer of a store holds: ``bench build``, ``search``, ``features``,
``import``.

:func:`store_lock` holds an OS lock (``flock``) on ``<store>.lock`` for the whole write.
A writer that cannot take it is refused in one line naming the holder's command, and
touches nothing: in particular it never removes the lock file (only the holder does,
still holding the lock, when it ends). A process that opened the lock file just before
the holder removed it sees, after locking, that its file is no longer the one at the
path and starts over, so two writers never hold locks on two different files.

The lock is per store, not per command: a build and a search (or ``features``) of one
store exclude each other too. A live search trains its candidates through ``bench
build``'s code while holding the lock; it passes its :class:`StoreLock` on, and the
nested build re-enters it instead of refusing itself (:func:`store_lock` ``held=``).
A lock taken by a process that was killed (even by SIGKILL) is released by the kernel;
the lock file it leaves is reused by the next writer, which removes it when it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rankzc.errors import RankzcError

__all__ = ["StoreLock", "lock_path", "store_lock"]


def lock_path(store: str | Path) -> Path:
    """``<store>.lock``: the lock file of ``store``."""
    store = Path(store)
    return store.with_name(store.name + ".lock")


@dataclass
class StoreLock:
    """A held lock: the store it guards, the command holding it, the open descriptor."""

    store: Path
    writer: str
    fd: int

    def covers(self, store: str | Path) -> bool:
        """Whether this lock, still held, guards ``store``."""
        if self.fd < 0:
            return False
        try:
            return os.path.samestat(os.fstat(self.fd), os.stat(lock_path(store)))
        except OSError:
            return False


def _holder(lock: Path) -> str:
    """What the holder wrote into the lock file (``build pid 123``), best effort."""
    try:
        with open(lock, encoding="utf-8", errors="replace") as fh:
            text = fh.read(200).strip()
    except OSError:
        return ""
    return text.splitlines()[0] if text else ""


@contextlib.contextmanager
def store_lock(
    store: str | Path, writer: str, *, option: str = "--out", held: StoreLock | None = None
) -> Iterator[StoreLock]:
    """Hold the write lock of ``store`` for the block (``writer``: the command's name).

    Refused (:class:`~rankzc.errors.RankzcError`, nothing touched) while another process
    holds it. ``held``: a lock this process already holds on ``store`` (re-entered).
    """
    store = Path(store)
    if held is not None and held.covers(store):
        yield held
        return
    lock = lock_path(store)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:
            raise RankzcError(f"{option} {store}: directory {lock.parent} does not exist") from None
        except OSError as err:
            raise RankzcError(f"{option} {store}: cannot create {lock} ({err.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _holder(lock).split(" pid ", 1)[0] or "rankzc command"
            raise RankzcError(
                f"{option} {store}: another {holder} is writing this store ({lock.name} is "
                "locked); wait for it to end"
            ) from None
        except OSError as err:
            os.close(fd)
            raise RankzcError(f"{option} {store}: cannot lock {lock} ({err.strerror})") from None
        try:
            current = os.stat(lock)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            break
        os.close(fd)  # locked a lock file its holder has just removed: try again
    handle = StoreLock(store, writer, fd)
    try:
        with contextlib.suppress(OSError):  # a label for the refused; the lock is the flock
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{writer} pid {os.getpid()}\n".encode(), 0)
        yield handle
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()  # removed while still locked (see the module's docstring)
        handle.fd = -1
        os.close(fd)
