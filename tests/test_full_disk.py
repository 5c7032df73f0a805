"""Stores and output files on a (nearly) full disk: complete or not at all.

A real small file system (a tmpfs, when this process may mount one: root) for the
stores, whose writes happen inside SQLite; a writer that raises ENOSPC half-way for the
output files rankzc writes itself. Before: with 100-150 KiB free a malformed SQLite file
was linked at ``--out`` (its checkpoint at close failed silently), and ``space sample
--out`` truncated an existing file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from benchdata import write_nbsz_file

from rankzc.errors import RankzcError, StoreError
from rankzc.space import SPACE
from rankzc.store import Benchmark

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_fs(tmp_path):
    """A 448 KiB tmpfs at ``tmp_path/fs`` (skipped where mounting is not allowed)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=448k", "tmpfs", str(mnt)], capture_output=True
    )
    if res.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def leave_free(mnt: Path, kib: int) -> Path:
    """Fill ``mnt`` so that about ``kib`` KiB stay free; returns the filler file."""
    for p in mnt.iterdir():
        p.unlink()
    st = os.statvfs(mnt)
    avail = st.f_bavail * st.f_frsize
    filler = mnt / "filler"
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, avail - kib * 1024))
    return filler


def whole(path: Path) -> bool:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()


FREE = [16, 48, 80, 100, 120, 150, 200, 300]


@pytest.mark.parametrize("free", FREE)
def test_store_creation_on_a_nearly_full_disk(small_fs, free):
    out = small_fs / "s.db"
    filler = leave_free(small_fs, free)
    try:
        Benchmark.create(out, space=SPACE, dataset="d", source="t").close()
    except StoreError as err:
        assert str(out) in str(err) and "\n" not in str(err)
    left = sorted(p.name for p in small_fs.iterdir())
    assert left in (["filler"], ["filler", "s.db"]), left  # no temp file, no -wal/-shm
    filler.unlink()  # space freed: whatever is at --out is a whole store
    if out.exists():
        assert whole(out)
        with Benchmark.open(out) as b:
            assert b.meta["format"] == "rankzc-benchmark"


@pytest.mark.parametrize("free", FREE)
def test_import_on_a_nearly_full_disk_is_whole_or_nothing(small_fs, tmp_path, free):
    """The CLI, in a subprocess: exit 0 with every record, or one line, exit 1, no file."""
    src = tmp_path / "zc_nasbench201_cifar10.json"
    table = write_nbsz_file(src, n=300)
    for rec in table.values():
        rec["val_accuracy"] = min(rec["val_accuracy"], 99.0)
    src.write_text(json.dumps({"cifar10": table}))
    out = small_fs / "n.db"
    filler = leave_free(small_fs, free)
    res = subprocess.run(
        [sys.executable, "-m", "rankzc.cli", "import", "nbsz", str(src), "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert res.returncode in (0, 1), res.stderr
    if free <= 48:
        assert res.returncode == 1  # the disk does refuse here: the test proves something
    left = sorted(p.name for p in small_fs.iterdir())
    if res.returncode == 1:
        (line,) = res.stderr.strip().splitlines()
        assert line.startswith("Error: ") and str(out) in line, res.stderr
        assert left == ["filler"], left
    else:
        assert left == ["filler", "n.db"], left
    filler.unlink()
    if out.exists():
        assert whole(out)
        with Benchmark.open(out, readonly=True) as b:
            assert len(b.architectures()) == len(table)  # never a part of the import


def test_failed_import_into_a_new_store_creates_nothing(tmp_path, monkeypatch):
    """An error while a new store is filled (here: the disk, raised from inside the
    import's write) leaves no store and no temporary file beside it."""
    from rankzc.importers import import_nbsz

    src = tmp_path / "zc_nasbench201_cifar10.json"
    write_nbsz_file(src, n=20)
    original = Benchmark.record_proxies
    calls = []

    def full(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 5:
            raise sqlite3.OperationalError("database or disk is full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Benchmark, "record_proxies", full)
    out = tmp_path / "new.db"
    with pytest.raises((RankzcError, sqlite3.Error)):
        import_nbsz(src, out)
    assert len(calls) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]
    monkeypatch.undo()
    import_nbsz(src, out)  # space back: the import runs whole
    with Benchmark.open(out, readonly=True) as b:
        assert len(b.architectures()) == 20


def test_a_store_that_fails_its_check_is_never_linked(tmp_path, monkeypatch):
    from rankzc import store

    def broken(tmp):
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(store, "_verify_created", broken)
    out = tmp_path / "v.db"
    with pytest.raises(StoreError, match="cannot create store .*malformed"):
        Benchmark.create(out, space=SPACE, dataset="d", source="t")
    assert list(tmp_path.iterdir()) == []


def test_valid_json_file_is_kept_when_the_disk_fills(tmp_path, monkeypatch):
    """``space sample --out``: a valid file is never replaced by a part of the new one."""
    from click.testing import CliRunner

    from rankzc.cli import main

    out = tmp_path / "archs.json"
    res = CliRunner().invoke(main, ["space", "sample", "--sample", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    before = out.read_bytes()
    json.loads(before)
    monkeypatch.setattr(Path, "write_text", enospc_write_text)
    res = CliRunner().invoke(main, ["space", "sample", "--sample", "2000", "--out", str(out)])
    assert res.exit_code == 1, res.output
    (line,) = res.output.strip().splitlines()
    assert line.startswith("Error: ") and str(out) in line and "No space left" in line, line
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archs.json"]


def enospc_write_text(self, data, *args, **kwargs):
    """Path.write_text on a disk that fills after 100 bytes: half a file, then ENOSPC."""
    import errno

    with open(self, "w") as fh:
        fh.write(data[:100])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_report_and_plots_are_whole_or_absent_when_the_disk_fills(tmp_path, monkeypatch):
    """``save_figure``/``write_text`` (plots, reports, search --plot): a failure half-way
    keeps the previous file and leaves no temporary one; the error is one line."""
    import errno

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rankzc.atomicfile import save_figure, write_text

    plot = tmp_path / "p.png"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, plot, dpi=50)
    good = plot.read_bytes()
    assert good.startswith(b"\x89PNG")
    real = type(fig).savefig

    def half_then_full(self, fname, **kwargs):
        real(self, fname, **kwargs)
        with open(fname, "r+b") as fh:
            fh.truncate(100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(type(fig), "savefig", half_then_full)
    with pytest.raises(RankzcError, match=f"{plot}: cannot write .No space left"):
        save_figure(fig, plot, dpi=50)
    assert plot.read_bytes() == good
    report = tmp_path / "report.md"
    write_text(report, "# old\n")
    monkeypatch.setattr(Path, "write_text", enospc_write_text)
    with pytest.raises(RankzcError, match="No space left"):
        write_text(report, "# new\n" * 1000)
    assert report.read_text() == "# old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "report.md"]
