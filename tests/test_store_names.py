"""``STORE#HASH`` read by every command that reads a store, refused as an output name;
foreign SQLite files never changed (issue 24, item 10).

Before: ``score --benchmark``, ``search --simulate``, ``features --benchmark``,
``evaluate --train/--test`` and ``fit --transfer-to`` said "not found" for STORE#HASH
although their errors recommend it; ``bench build --out "x.db#HASH"`` created a file
literally named so; a foreign WAL database with a pending -wal was checkpointed (4096
-> 8192 bytes, -wal/-shm deleted) before refusal.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.space import SPACE, sample_architectures
from rankzc.store import Benchmark

ROOT = Path(__file__).resolve().parents[1]
A = {"toy": "A"}
B = {"toy": "B"}


def mixed_store(path: Path, n: int = 24, proxies: bool = True) -> tuple[str, str]:
    """A gcn-nas store holding two training configurations of the same architectures,
    with two initialisation proxies; returns the two configuration hashes."""
    archs = sample_architectures(n, seed=3)
    with Benchmark.create(path, space=SPACE, dataset="toy", source="test") as b:
        b.add_architectures(
            {"arch_id": a.arch_id, "space": SPACE, "encoding": str(a), "depth": a.depth}
            for a in archs
        )
        for i, a in enumerate(archs):
            for cfg, acc in ((A, 0.5 + 0.01 * i), (B, 0.9 - 0.01 * i)):
                run, _, _ = b.get_or_create_run(a.arch_id, 0, cfg)
                b.finish_run(run, val_acc=acc, train_seconds=1.0)
            if proxies:
                scores = {"zen": (float(i), 0.1, None), "snip": (float(-i), 0.1, None)}
                b.record_proxies(a.arch_id, -1, scores)
        hashes = list(b.configurations().index)
    return hashes[0], hashes[1]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_every_reader_takes_store_hash(tmp_path):
    db = tmp_path / "mixed.db"
    h1, h2 = mixed_store(db)
    first, second = f"{db}#{h1}", f"{db}#{h2}"
    # without a hash the readers refuse to mix, naming STORE#HASH
    res = invoke("fit", "-m", "single", "-b", str(db), "-o", str(tmp_path / "x.rzc"), "-q")
    assert res.exit_code == 1 and "STORE#HASH" in res.output, res.output
    ranker = tmp_path / "r.rzc"
    res = invoke("fit", "-m", "single", "-b", first, "-o", str(ranker), "--transfer-to", second)
    assert res.exit_code == 0, res.output
    res = invoke("score", "-r", str(ranker), "-b", second, "--format", "json", "-q")
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["ranking"] if "ranking" in res.stdout else res.stdout)
    res = invoke("search", "-b", first, "-s", "random", "--train-budget", "3", "-q")
    assert res.exit_code == 0, res.output
    res = invoke("evaluate", "-b", first, "--transfer-to", second, "--models", "single", "-q")
    assert res.exit_code == 0, res.output
    bare = tmp_path / "bare.db"  # features: a store without scores of other settings
    h3, _ = mixed_store(bare, n=3, proxies=False)
    first = f"{bare}#{h3}"

    def listing():
        return sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm")))

    before = listing()
    res = invoke("features", "-b", first, "--proxies", "params", "-q")
    assert res.exit_code == 0, res.output
    with Benchmark.open(first, readonly=True) as b:
        assert "params" in b.proxy_names()
    assert listing() == before  # into bare.db: no file named bare.db#..., no lock left
    res = invoke("features", "-b", f"{bare}#nope", "--proxies", "params", "-q")
    assert res.exit_code == 1 and "no training configuration 'nope'" in res.output, res.output


@pytest.mark.parametrize(
    "command",
    [
        ["bench", "build", "--sample", "1", "--preset", "tiny", "--epochs", "1", "-q"],
        ["search", "-s", "random", "--train-budget", "1", "--sample", "2", "--preset", "tiny"],
        ["import", "thesis", "{src}"],
    ],
    ids=["build", "search", "import"],
)
def test_store_hash_is_refused_as_an_output_name(tmp_path, command):
    db = tmp_path / "mixed.db"
    h1, _ = mixed_store(db, n=4)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    listing = sorted(p.name for p in tmp_path.iterdir())
    src = tmp_path / "src"  # an import's input; refused before it is read
    args = [c.replace("{src}", str(src)) for c in command]
    for out in (f"{db}#{h1}", str(tmp_path / "new.db#abc")):
        res = invoke(*args, "--out", out)
        assert res.exit_code == 1, res.output
        (line,) = res.output.strip().splitlines()
        assert line.startswith("Error: ") and "cannot contain '#'" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == listing
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def _foreign_wal(path: Path) -> None:
    """A foreign WAL database whose last transaction is still in its -wal (a writer
    process killed before any checkpoint), as the issue's reproduction."""
    code = (
        "import sqlite3, os, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0'); "
        "c.execute('CREATE TABLE t (x)'); c.execute('INSERT INTO t VALUES (1)'); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)


def _files(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


READERS = [
    ["export", "--benchmark", "{db}", "--out", "{tmp}/e.csv"],
    ["evaluate", "--benchmark", "{db}", "-q"],
    ["fit", "-m", "single", "-b", "{db}", "-o", "{tmp}/r.rzc", "-q"],
    ["features", "--benchmark", "{db}", "--proxies", "params", "-q"],
    ["search", "-b", "{db}", "-s", "random", "--train-budget", "1", "-q"],
    ["bench", "build", "--out", "{db}", "--sample", "1", "--preset", "tiny", "-q"],
]


@pytest.mark.parametrize("pending", [True, False], ids=["pending-wal", "clean-wal"])
def test_foreign_sqlite_file_is_never_changed(tmp_path, pending):
    d = tmp_path / "d"
    d.mkdir()
    db = d / "foreign.db"
    _foreign_wal(db)
    if not pending:  # a clean WAL file: checkpointed, no -wal/-shm beside it
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    else:
        assert Path(f"{db}-wal").stat().st_size > 0
    before = _files(d)
    for command in READERS:
        args = [c.replace("{db}", str(db)).replace("{tmp}", str(tmp_path)) for c in command]
        res = invoke(*args)
        assert res.exit_code == 1, (command, res.output)
        (line,) = res.output.strip().splitlines()
        assert "not a rankzc benchmark" in line, line
        assert _files(d) == before, command  # byte-identical, nothing added beside it
    conn = sqlite3.connect(db)  # and its owner still finds its row
    assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    conn.close()


def test_legacy_file_named_with_a_hash_is_still_read(tmp_path):
    """A store literally named ``x.db#h`` (made by an older rankzc), with no ``x.db``."""
    real = tmp_path / "real.db"
    mixed_store(real, n=3)
    legacy = tmp_path / "x.db#h"
    os.link(real, legacy)
    with Benchmark.open(legacy, readonly=True) as b:
        assert len(b.architectures()) == 3
