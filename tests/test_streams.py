"""Progress is never on stdout and never fatal (issue 24, item 6).

Before: ``RANKZC_PROGRESS_INTERVAL=1 rankzc bench build ... 2>&1 | head -1`` recorded a
good architecture as failed (BrokenPipeError from a progress line inside training) and
left runs ``running``; with stderr closed (``2>&-``) Python's ``sys.stderr`` is None and
``print(file=None)`` wrote progress to stdout, breaking ``--format json``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rankzc.progress import BuildProgress, Progress, SafeStream, progress_mode
from rankzc.store import Benchmark

ROOT = Path(__file__).resolve().parents[1]
BUILD = [sys.executable, "-m", "rankzc.cli", "bench", "build", "--sample", "2", "--preset", "tiny"]
BUILD += ["--data", "synthetic:n=60,frames=8", "--epochs", "1"]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **extra}


def _runs(out: Path):
    with Benchmark.open(out, readonly=True) as b:
        return b.runs()


@pytest.mark.slow  # 10-13 s: the default suite stays under 5 minutes
def test_build_piped_into_head_records_every_architecture_done(tmp_path):
    out = tmp_path / "b.db"
    cmd = " ".join(BUILD + ["--out", str(out)]) + " 2>&1 | head -1"
    res = subprocess.run(
        ["bash", "-c", cmd + "; echo rc=${PIPESTATUS[0]}"],
        env=_env(RANKZC_PROGRESS_INTERVAL="0"),  # a line at every batch: the pipe breaks
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.stdout.count("\n") == 2, res.stdout  # head's one line, then the exit code
    assert res.stdout.endswith("rc=1\n")  # stdout closed before the summary: exit 1, no trace
    assert "Traceback" not in res.stdout + res.stderr
    runs = _runs(out)
    assert len(runs) == 2 and set(runs["status"]) == {"done"}, runs[["status", "error"]]
    assert runs["error"].isna().all()
    rerun = subprocess.run(
        [*BUILD, "--out", str(out), "--format", "json", "-q"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["skipped_done"] == 2


def test_closed_stderr_keeps_json_on_stdout_valid(tmp_path):
    out = tmp_path / "c.db"
    res = subprocess.run(
        ["bash", "-c", " ".join([*BUILD, "--out", str(out), "--format", "json"]) + " 2>&-"],
        env=_env(RANKZC_PROGRESS_INTERVAL="0"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout
    result = json.loads(res.stdout)  # nothing but the JSON: no progress line fell to stdout
    assert result["done"] == 2 and result["failed"] == 0
    assert set(_runs(out)["status"]) == {"done"}


def test_closed_descriptor_two_is_never_reused_for_a_file(tmp_path):
    """With fd 2 closed, the next file opened (a store) would get number 2 and receive
    whatever a library writes to stderr; guard_streams puts /dev/null there first."""
    code = (
        "import os, sys; from rankzc.progress import guard_streams; guard_streams(); "
        f"fd = os.open({str(tmp_path / 'f')!r}, os.O_CREAT | os.O_WRONLY); "
        "sys.stderr.write('lost\\n'); print(fd, type(sys.stderr).__name__)"
    )
    res = subprocess.run(
        ["bash", "-c", f'{sys.executable} -c "{code}" 2>&-'],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout
    fd, kind = res.stdout.split()
    assert int(fd) > 2 and kind == "SafeStream"
    assert (tmp_path / "f").read_text() == ""


class Broken(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_progress_on_a_broken_stream_stops_without_raising():
    bar = Progress(mode="lines", interval=0, stream=Broken())
    with bar:
        task = bar.add("features", total=3)
        for _ in range(3):
            bar.advance(task)  # the first line breaks: progress off, no error
    assert bar.mode == "off"


def test_progress_with_stderr_closed_writes_nothing_to_stdout(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stderr", None)
    assert progress_mode() == "off"
    with BuildProgress(total=2, epochs=1) as bar:  # progress=None: automatic
        bar.start("a")
        bar.batch("a", 0, 1, 1)
        bar.end("a")
    bar2 = Progress(mode="lines", interval=0)
    with bar2:
        bar2.advance(bar2.add("x", total=1))
    assert capsys.readouterr().out == ""


def test_safe_stream_discards_after_a_failure():
    inner = io.StringIO()
    safe = SafeStream(inner)
    safe.write("one\n")
    inner.close()
    assert safe.write("two\n") == 4 and safe.broken
    safe.flush()
    assert not safe.isatty()
    assert SafeStream(None).broken
