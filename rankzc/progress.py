"""Progress of long jobs, one helper for every command and API.

On a terminal (stderr is a TTY) progress is drawn with rich bars; otherwise (logs,
pipes, batch jobs) one line per task is written to stderr at most every ``interval``
seconds (default 10, environment variable ``RANKZC_PROGRESS_INTERVAL``), plus a last
line when a task that already reported finishes, so short jobs stay silent. ``quiet``
silences both. Progress never goes to stdout, so ``--format json|csv`` output stays
clean.

>>> with Progress(quiet=True) as bar:
...     task = bar.add("features", total=3)
...     for _ in range(3):
...         bar.advance(task)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = ["Progress", "BuildProgress", "progress_mode", "track", "DEFAULT_INTERVAL"]

DEFAULT_INTERVAL = 10.0
INTERVAL_ENV = "RANKZC_PROGRESS_INTERVAL"


def progress_mode(quiet: bool | None = None, stream: TextIO | None = None) -> str:
    """``off`` when quiet, ``bar`` on a terminal, ``lines`` otherwise."""
    if quiet:
        return "off"
    stream = stream if stream is not None else sys.stderr
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
            self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()
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
            task.rich_id = self._rich.add_task(description, total=total)
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
            self._rich.update(
                task.rich_id, completed=completed, total=total, description=description
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
            self._rich.remove_task(task.rich_id)
        elif self.mode == "lines" and task.last_line is not None:
            done = task.total is not None and task.completed >= task.total
            if not done:  # a finished task wrote its last line already
                self._line(task, time.monotonic())

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
        stream = self.stream if self.stream is not None else sys.stderr
        print(text, file=stream, flush=True)
        task.last_line = now

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
