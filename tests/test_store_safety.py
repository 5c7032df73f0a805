"""The store under races, foreign files, read-only directories and full disks."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from benchdata import write_thesis_dir
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.errors import StoreError
from rankzc.store import Benchmark

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ create race
def _create_at_barrier(path: str, barrier, results) -> None:
    barrier.wait()
    try:
        Benchmark.create(path, space="s", dataset="d", source="race").close()
        results.put("ok")
    except Exception as err:  # noqa: BLE001 - reported to the parent
        results.put(f"{type(err).__name__}: {err}")


def test_two_processes_creating_one_store_both_get_it(tmp_path):
    """Through a barrier, both creators succeed and the file survives (25 trials)."""
    ctx = mp.get_context("fork")
    for trial in range(25):
        path = tmp_path / f"race{trial}.db"
        barrier = ctx.Barrier(2)
        results = ctx.Queue()
        procs = [
            ctx.Process(target=_create_at_barrier, args=(str(path), barrier, results))
            for _ in range(2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        got = sorted(results.get(timeout=5) for _ in procs)
        assert got == ["ok", "ok"], f"trial {trial}: {got}"
        with Benchmark.open(path, readonly=True) as b:
            assert b.meta["source"] == "race"
        assert not list(tmp_path.glob(".*.creating"))  # no temporary file left beside it


def test_a_killed_creators_temporary_file_is_swept(tmp_path):
    """SIGKILL skips a creator's clean-up: the next creation removes its temporary file
    (dead pid, a minute old) but never one of a running process or a fresh one."""
    path = tmp_path / "s.db"
    ctx = mp.get_context("fork")
    dead = ctx.Process(target=lambda: None)
    dead.start()
    dead.join()
    old = os.path.getmtime(tmp_path) - 3600
    stale = tmp_path / f".s.db.{dead.pid}-0a1b2c3d.creating"
    fresh = tmp_path / f".s.db.{dead.pid}-ffffffff.creating"
    alive = tmp_path / f".s.db.{os.getpid()}-12345678.creating"
    other = tmp_path / f".t.db.{dead.pid}-0a1b2c3d.creating"
    for f in (stale, Path(str(stale) + "-wal"), fresh, alive, other):
        f.write_bytes(b"x")
    for f in (stale, Path(str(stale) + "-wal"), alive, other):
        os.utime(f, (old, old))
    Benchmark.create(path, space="gcn-nas", dataset="synthetic", source="sweep").close()
    left = sorted(f.name for f in tmp_path.glob(".*"))
    assert left == sorted([fresh.name, alive.name, other.name]), left


# --------------------------------------------------------------- foreign files
def _foreign(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (a)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    return path.read_bytes()


def test_foreign_sqlite_refused_before_switched_to_wal(tmp_path):
    path = tmp_path / "other.db"
    before = _foreign(path)
    assert before[18:20] == b"\x01\x01"  # rollback-journal mode
    with pytest.raises(StoreError, match="not a rankzc benchmark"):
        Benchmark.open(path)
    with pytest.raises(StoreError, match="not a rankzc benchmark"):
        Benchmark.create(path, space="s", dataset="d", source="t")
    archs = tmp_path / "archs"
    write_thesis_dir(archs, n=2)
    res = CliRunner().invoke(main, ["import", "thesis", str(archs), "--out", str(path)])
    assert res.exit_code == 1 and "not a rankzc benchmark" in res.output
    assert path.read_bytes() == before  # header bytes 18/19 and everything else unchanged
    assert not Path(str(path) + "-wal").exists()


def test_empty_file_is_refused_not_replaced(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with pytest.raises(StoreError, match="empty file"):
        Benchmark.create(path, space="s", dataset="d", source="t")
    archs = tmp_path / "archs"
    write_thesis_dir(archs, n=2)
    res = CliRunner().invoke(main, ["import", "thesis", str(archs), "--out", str(path)])
    assert res.exit_code == 1 and "empty file" in res.output
    assert path.read_bytes() == b""


# ------------------------------------------------------------ read-only places
def _make_wal_store(directory: Path) -> Path:
    path = directory / "w.db"
    with Benchmark.create(path, space="s", dataset="d", source="t") as b:
        b.add_architectures([{"arch_id": "a1", "space": "s", "encoding": "x", "depth": 4}])
        run_id, _, _ = b.get_or_create_run("a1", 0, {"lr": 0.1})
        b.finish_run(run_id, val_acc=0.5, train_seconds=1.0)
    assert path.read_bytes()[18:20] == b"\x02\x02"  # WAL mode
    return path


READER = textwrap.dedent(
    """
    import sys
    from rankzc.store import Benchmark
    with Benchmark.open(sys.argv[1], readonly=True) as b:
        print(b.labels()["val_acc"].to_dict())
    """
)


def test_wal_store_in_read_only_directory_is_readable(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    path = _make_wal_store(ro)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if os.geteuid() != 0:
        ro.chmod(0o555)
        cmd = [sys.executable, "-c", READER, str(path)]
    else:  # root writes anywhere: read inside a private read-only bind mount
        if shutil.which("unshare") is None:
            pytest.skip("needs unshare to make a read-only directory as root")
        probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("unshare -rm is not permitted here")
        script = (
            f"mount --bind -o ro {ro} {ro} && "
            f"! touch {ro}/probe 2>/dev/null && "
            f'exec {sys.executable} -c "$READER" {path}'
        )
        cmd = ["unshare", "-rm", "sh", "-c", script]
        env["READER"] = READER
    try:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    finally:
        ro.chmod(0o755)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "{'a1': 0.5}", res.stdout
    assert sorted(p.name for p in ro.iterdir()) == ["w.db"]


# ------------------------------------------------------------------- full disk
def test_full_disk_during_import_names_the_cause(tmp_path, monkeypatch):
    """SQLite rolls back by itself on SQLITE_FULL: the message must say so, not hide it."""
    out = tmp_path / "t.db"
    Benchmark.create(out, space="gcn-nas", dataset="ntu60-xview", source="thesis-gcn-nas").close()
    with Benchmark.open(out, readonly=True) as b:
        before = b.counts()
    setup = Benchmark._setup

    def tiny_disk(self):
        setup(self)
        pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
        self._conn.execute(f"PRAGMA max_page_count={pages + 2}")

    monkeypatch.setattr(Benchmark, "_setup", tiny_disk)
    archs = tmp_path / "archs"
    write_thesis_dir(archs, n=40)
    res = CliRunner().invoke(main, ["import", "thesis", str(archs), "--out", str(out)])
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "database or disk is full" in lines[0], res.output
    monkeypatch.undo()
    with Benchmark.open(out, readonly=True) as b:
        assert b.counts() == before
