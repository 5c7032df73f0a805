"""Write an output file whole or not at all, with a one-line error when the disk refuses.

:func:`atomic_output` hands out a temporary path beside the target; the caller writes
it, and on success it is renamed over the target (``os.replace``). On any failure the
temporary file is removed (never a 0-byte or half-written file left behind, and the
previous target is untouched), and an ``OSError`` (full disk, read-only directory,
quota, file too large) becomes a :class:`~rankzc.errors.RankzcError` naming the target,
not the hidden temporary file. :func:`write_text` and :func:`save_figure` are the two
common uses (JSON and reports; plots).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rankzc.errors import RankzcError


@contextlib.contextmanager
def atomic_output(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds."""
    path = Path(path)
    # a random name opened exclusively with mode 0o666 (not mkstemp's 0o600): the file
    # gets the permissions the umask gives any new file
    tmp = str(path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}"))
    try:
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except OSError as err:
        raise RankzcError(f"{path}: cannot write ({err.strerror or err})") from None
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as err:
        _remove(tmp)
        raise RankzcError(f"{path}: cannot write ({err.strerror or err})") from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def check_writable(directory: str | Path, name: str) -> None:
    """Refuse, in one line starting with ``name``, a directory that a real write fails in.

    A real write, since ``os.access`` says yes to root even on a read-only mount.
    """
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".rankzc-", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise RankzcError(
            f"{name}: directory {directory} is not writable ({err.strerror})"
        ) from None


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (:func:`atomic_output`)."""
    with atomic_output(path, suffix=Path(path).suffix) as tmp:
        tmp.write_text(text, encoding="utf-8")
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # on the disk before it replaces a good file
        finally:
            os.close(fd)


def save_figure(fig: Any, path: str | Path, **kwargs: Any) -> None:
    """``fig.savefig(path, **kwargs)`` whole or not at all (:func:`atomic_output`); the
    format comes from ``path``'s suffix, as with ``savefig``."""
    path = Path(path)
    fmt = kwargs.pop("format", None) or (path.suffix[1:] or None)
    with atomic_output(path, suffix=path.suffix) as tmp:
        fig.savefig(tmp, format=fmt, **kwargs)
