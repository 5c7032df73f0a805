"""Progress of long jobs, one helper for every command and API.

On a terminal (stderr is a TTY) progress is drawn with rich bars; otherwise (logs,
pipes, batch jobs) one line per task is written to stderr at most every ``interval``
seconds (default 10, environment variable ``RANKZC_PROGRESS_INTERVAL``), plus a last
line when a task that already reported finishes, so short jobs stay silent. ``quiet``
silences both. Progress never goes to stdout, so ``--format json|csv`` output stays
clean, and it is never fatal: a stderr that is closed (``2>&-``: Python's
``sys.stderr`` is None) or breaks (``2>&1 | head -1``: BrokenPipeError) stops the
progress, not the work. :func:`guard_streams` (called by the command line first) keeps
closed descriptors 0-2 on ``/dev/null`` (so no file the command opens takes their
number) and wraps ``sys.stderr`` in a :class:`SafeStream` that stops writing, instead of
raising, once it breaks.

>>> with Progress(quiet=True) as bar:
...     task = bar.add("features", total=3)
...     for _ in range(3):
...         bar.advance(task)
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = [
    "Progress",
    "BuildProgress",
    "SafeStream",
    "guard_streams",
    "progress_mode",
    "track",
    "DEFAULT_INTERVAL",
]

DEFAULT_INTERVAL = 10.0
INTERVAL_ENV = "RANKZC_PROGRESS_INTERVAL"


#: errors of writing to a stream that is gone: a closed pipe or file, a lost terminal
STREAM_ERRORS = (OSError, ValueError)


class SafeStream(io.TextIOBase):
    """A text stream that forwards to ``stream`` until a write fails, then discards.

    ``stream`` None (a descriptor closed at start-up) discards from the start. Never
    raises from :meth:`write` or :meth:`flush`, so progress or a warning can never turn
    into an error of the work.
    """

    def __init__(self, stream: TextIO | None):
        super().__init__()
        self._stream = stream
        self.broken = stream is None or isinstance(stream, SafeStream) and stream.broken

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self._stream.write(text)  # type: ignore[union-attr]
            except STREAM_ERRORS:
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()  # type: ignore[union-attr]
            except STREAM_ERRORS:
                self.broken = True

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        if self.broken:
            return False
        try:
            return bool(self._stream.isatty())  # type: ignore[union-attr]
        except STREAM_ERRORS + (AttributeError,):
            return False

    def fileno(self) -> int:
        if self._stream is None:
            raise io.UnsupportedOperation("stream closed at start-up")
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)


def guard_streams() -> None:
    """Make stderr safe for a command line run (see the module docstring).

    Descriptors 0, 1 and 2 that are closed get ``/dev/null`` (else the next file opened,
    e.g. a store, would get number 2 and receive whatever a library writes to stderr);
    ``sys.stderr`` becomes a :class:`SafeStream` (discarding when it was closed, never
    falling back to stdout).
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if not isinstance(sys.stderr, SafeStream):
        sys.stderr = SafeStream(sys.stderr)


def _usable(stream: TextIO | None) -> bool:
    return stream is not None and not (isinstance(stream, SafeStream) and stream.broken)


def progress_mode(quiet: bool | None = None, stream: TextIO | None = None) -> str:
    """``off`` when quiet or stderr is closed, ``bar`` on a terminal, ``lines`` otherwise."""
    if quiet:
        return "off"
    stream = stream if stream is not None else sys.stderr
    if not _usable(stream):
        return "off"
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    return "bar" if tty else "lines"


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0.0
    start: float = field(default_factory=time.monotonic)
    last_line: float | None = None  # when a line was last written (lines mode)
    rich_id: Any = None


class Progress:
    """Progress bars (terminal) or periodic one-line reports (logs) on stderr.

    Args:
        quiet: no output at all.
        mode: ``bar``, ``lines`` or ``off``; default from ``quiet`` and whether stderr
            is a terminal (:func:`progress_mode`).
        interval: seconds between two lines of one task in ``lines`` mode.
        stream: where lines go (default stderr).
    """

    def __init__(
        self,
        *,
        quiet: bool | None = None,
        mode: str | None = None,
        interval: float | None = None,
        stream: TextIO | None = None,
    ):
        self.stream = stream
        self.mode = mode or progress_mode(quiet, stream)
        if self.mode not in ("bar", "lines", "off"):
            raise ValueError(f"progress mode must be bar, lines or off, got {self.mode!r}")
        self.interval = _interval() if interval is None else float(interval)
        self._tasks: dict[int, _Task] = {}
        self._next = 0
        self._rich = None

    # ------------------------------------------------------------ context
    def __enter__(self) -> Progress:
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            console = Console(file=self.stream) if self.stream else Console(stderr=True)
            self._rich = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self._rich_call(self._rich.start)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich_call(self._rich.stop)
            self._rich = None
        for task_id in list(self._tasks):
            self.remove(task_id)

    # ------------------------------------------------------------ tasks
    def add(self, description: str, total: float | None = None) -> int:
        """Start a task; returns its id."""
        task = _Task(description, total)
        task_id = self._next
        self._next += 1
        self._tasks[task_id] = task
        if self._rich is not None:
            task.rich_id = self._rich_call(self._rich.add_task, description, total=total)
        return task_id

    def advance(self, task_id: int, n: float = 1) -> None:
        task = self._tasks.get(task_id)
        if task is not None:
            self.update(task_id, completed=task.completed + n)

    def update(
        self,
        task_id: int,
        *,
        completed: float | None = None,
        total: float | None = None,
        description: str | None = None,
    ) -> None:
        task = self._tasks.get(task_id)
        if task is None:
            return
        if completed is not None:
            task.completed = completed
        if total is not None:
            task.total = total
        if description is not None:
            task.description = description
        if self._rich is not None:
            self._rich_call(
                self._rich.update,
                task.rich_id,
                completed=completed,
                total=total,
                description=description,
            )
        elif self.mode == "lines":
            now = time.monotonic()
            since = now - (task.last_line if task.last_line is not None else task.start)
            done = task.total is not None and task.completed >= task.total
            if since >= self.interval or (done and task.last_line is not None):
                self._line(task, now)

    def remove(self, task_id: int) -> None:
        """End a task (a last line in ``lines`` mode when it reported before)."""
        task = self._tasks.pop(task_id, None)
        if task is None:
            return
        if self._rich is not None:
            self._rich_call(self._rich.remove_task, task.rich_id)
        elif self.mode == "lines" and task.last_line is not None:
            done = task.total is not None and task.completed >= task.total
            if not done:  # a finished task wrote its last line already
                self._line(task, time.monotonic())

    def _rich_call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A call into rich; a terminal that went away switches progress off."""
        try:
            return fn(*args, **kwargs)
        except STREAM_ERRORS:
            rich, self._rich, self.mode = self._rich, None, "off"
            if rich is not None:
                try:  # rich's refresh thread must not keep writing
                    rich.live.transient = True
                    rich.stop()
                except Exception:  # noqa: BLE001 - the stream is gone anyway
                    pass
            return None

    def _line(self, task: _Task, now: float) -> None:
        elapsed = now - task.start
        text = f"{task.description}: "
        if task.total:
            frac = min(1.0, task.completed / task.total)
            text += f"{task.completed:g}/{task.total:g} ({frac:.0%}), {_duration(elapsed)}"
            if 0 < frac < 1:
                text += f", about {_duration(elapsed * (1 - frac) / frac)} left"
        else:
            text += f"{task.completed:g} done, {_duration(elapsed)}"
        task.last_line = now
        stream = self.stream if self.stream is not None else sys.stderr
        if not _usable(stream):  # closed: never print(file=None), which means stdout
            self.mode = "off"
            return
        try:
            stream.write(text + "\n")
            stream.flush()
        except STREAM_ERRORS:
            self.mode = "off"  # a broken stderr stops the progress, not the work

    # ------------------------------------------------------------ helpers
    def callback(self, task_id: int) -> Callable[..., None]:
        """A function that advances ``task_id`` by one, whatever it is called with."""
        return lambda *args, **kwargs: self.advance(task_id)


def track(
    items: Iterable[Any],
    description: str,
    total: int | None = None,
    *,
    quiet: bool | None = None,
) -> Iterator[Any]:
    """Iterate over ``items`` while reporting progress."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(quiet=quiet) as bar:
        task = bar.add(description, total)
        for item in items:
            yield item
            bar.advance(task)


class BuildProgress:
    """Progress of ``rankzc bench build``: all architectures, and each one's epochs.

    ``enabled``: None = automatic (bars on a terminal, lines otherwise), False = silent,
    True = bars even when stderr is not a terminal.
    """

    def __init__(self, total: int, epochs: int, enabled: bool | None = None):
        mode = {None: None, False: "off", True: "bar"}[enabled]
        self.enabled = enabled is not False
        self.total = total
        self.epochs = epochs
        self._progress = Progress(mode=mode)
        self._overall = -1
        self._arch: dict[str, int] = {}

    def __enter__(self) -> BuildProgress:
        self._progress.__enter__()
        self._overall = self._progress.add("architectures", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def start(self, arch_id: str) -> None:
        self._arch[arch_id] = self._progress.add(f"  {arch_id} epoch 0", total=None)

    def batch(self, arch_id: str, epoch: int, i: int, n: int) -> None:
        if arch_id in self._arch:
            self._progress.update(
                self._arch[arch_id],
                description=f"  {arch_id} epoch {epoch + 1}/{self.epochs}",
                total=n * self.epochs,
                completed=epoch * n + i,
            )

    def end(self, arch_id: str) -> None:
        task = self._arch.pop(arch_id, None)
        if task is not None:
            self._progress.remove(task)
        self._progress.advance(self._overall)
