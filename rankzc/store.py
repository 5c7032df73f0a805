"""The benchmark store: one SQLite file per benchmark.

A store holds, for one search space and dataset:

* ``architectures``: search-space name, canonical encoding, stable id, depth;
* ``runs``: one training run of one architecture with one seed and one training
  configuration (``UNIQUE(arch_id, seed, config_hash)``), its status
  (``running``, ``done``, ``failed``), final label and training seconds;
* ``epochs``: validation accuracy and loss after every epoch of a run;
* ``proxies``: proxy scores with the epoch they were scored after (``-1`` is
  initialisation), seconds and error, tied to a run for scores taken during
  training (``run_id`` 0 means "not tied to a run", e.g. scored at initialisation
  by ``rankzc features``);
* ``proxy_settings``: the settings a set of scores was computed with;
* ``meta``: source, dataset, space, import time, rankzc version, schema version.

Accuracies are fractions in [0, 1] everywhere. The file is opened in WAL mode and
every write runs in one transaction, so a killed writer never leaves half a record.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import math
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from rankzc import __version__
from rankzc.errors import StoreError

FORMAT = "rankzc-benchmark"
SCHEMA_VERSION = 1
NO_RUN = 0
#: Proxy-settings fields that do not make another configuration: seeds repeat one,
#: and a store may get its proxies from several commands, devices, in several calls.
_NOT_SETTINGS = ("seed", "device", "proxies", "source", "rankzc_version")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS architectures (
    arch_id TEXT PRIMARY KEY,
    space TEXT NOT NULL,
    encoding TEXT NOT NULL,
    depth INTEGER,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    arch_id TEXT NOT NULL REFERENCES architectures(arch_id),
    seed INTEGER NOT NULL,
    config_hash TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    val_acc REAL,
    train_seconds REAL,
    error TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    UNIQUE (arch_id, seed, config_hash)
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    epoch INTEGER NOT NULL,
    val_acc REAL,
    val_loss REAL,
    train_loss REAL,
    seconds REAL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS proxy_settings (
    settings_id TEXT PRIMARY KEY,
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS proxies (
    arch_id TEXT NOT NULL REFERENCES architectures(arch_id),
    run_id INTEGER NOT NULL DEFAULT 0,
    epoch INTEGER NOT NULL,
    name TEXT NOT NULL,
    score REAL,
    seconds REAL,
    error TEXT,
    settings_id TEXT,
    PRIMARY KEY (arch_id, run_id, epoch, name)
);
CREATE INDEX IF NOT EXISTS proxies_by_epoch ON proxies (epoch, name);
"""


def default_benchmark_path() -> Path:
    """The benchmark shipped with the package (``rankzc/data/default.db``)."""
    return Path(str(resources.files("rankzc") / "data" / "default.db"))


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable 16-hex hash of a JSON-serialisable configuration."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_config(config: Mapping[str, Any]) -> str:
    """A short human description of a run configuration (for messages)."""
    parts = []
    for key in ("source", "preset", "dataset", "data", "epochs"):
        if config.get(key) is not None:
            parts.append(f"{key} {config[key]}")
    return ", ".join(parts) or "unnamed configuration"


def _settings_key(settings: Mapping[str, Any]) -> tuple[str, str]:
    """Hash and short description of proxy settings, without :data:`_NOT_SETTINGS`."""
    kept = {k: v for k, v in settings.items() if k not in _NOT_SETTINGS}
    text = ", ".join(
        f"{k} {kept[k]}" for k in ("preset", "data", "batch_size", "resample") if k in kept
    )
    return config_hash(kept), text or "settings " + config_hash(kept)


def finite_or_none(value: Any) -> float | None:
    """A float, or None for anything missing or non-finite ("Nan", inf, None)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond a float
        return None
    return out if math.isfinite(out) else None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _connect(target: str, *, uri: bool) -> tuple[sqlite3.Connection, dict[str, str]]:
    """Connect and read ``meta`` without writing anything; refuse what is not a store."""
    conn = None
    try:
        conn = sqlite3.connect(target, timeout=30, isolation_level=None, uri=uri)
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        raise
    return conn, meta


def _open_error(path: Path, err: sqlite3.Error) -> StoreError:
    """Not a store (no meta table, not a database) vs. cannot open it (I/O, locks, disk)."""
    text = str(err)
    if isinstance(err, sqlite3.OperationalError) and not text.startswith("no such table"):
        return StoreError(f"{path}: cannot open ({text})")
    return StoreError(f"{path}: not a rankzc benchmark ({text})")


def _connect_readonly(path: Path) -> tuple[sqlite3.Connection, dict[str, str]]:
    """Open read-only; in a read-only directory (no WAL index can be made) as immutable."""
    base = path.resolve().as_uri()
    try:
        return _connect(f"{base}?mode=ro", uri=True)
    except sqlite3.OperationalError as err:
        first = err
    except sqlite3.Error as err:
        raise _open_error(path, err) from None
    if os.access(path.parent, os.W_OK):  # not the read-only directory case
        raise _open_error(path, first)
    wal = Path(str(path) + "-wal")
    if wal.exists() and wal.stat().st_size:
        raise StoreError(
            f"{path}: cannot read ({first}); its write-ahead log {wal.name} holds changes "
            "and the directory cannot be written: open it once where it is writable"
        )
    try:
        # Nobody can be writing: a writer would need the directory. immutable=1 reads
        # the file as it is, without the WAL index SQLite cannot create here.
        return _connect(f"{base}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as err:
        raise _open_error(path, err) from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _sweep_dead_creations(path: Path, min_age: float = 60.0) -> None:
    """Remove the temporary files of a creation of ``path`` whose process was killed.

    ``.<name>.<pid>-<token>.creating`` (and its -wal/-shm/-journal) is removed only when no
    process ``pid`` runs here and the file is at least ``min_age`` seconds old (a pid from
    another host sharing the directory could otherwise look dead)."""
    now = _dt.datetime.now().timestamp()
    for tmp in path.parent.glob(f".{path.name}.*.creating"):
        pid_text = tmp.name[len(path.name) + 2 :].split("-", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        try:
            if now - tmp.stat().st_mtime < min_age:
                continue
        except OSError:
            continue
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                os.unlink(str(tmp) + suffix)


def _verify_created(tmp: Path) -> None:
    """Reopen a store just built and check it whole: every page readable, ``meta`` there,
    no write-ahead log left with data (a checkpoint that a full disk cut short)."""
    conn = sqlite3.connect(tmp, timeout=30, isolation_level=None)
    try:
        (check,) = conn.execute("PRAGMA integrity_check").fetchone()
        if check != "ok":
            raise sqlite3.DatabaseError(f"integrity check: {check}")
        if conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() != (FORMAT,):
            raise sqlite3.DatabaseError("meta.format missing after writing it")
    finally:
        conn.close()
    wal = Path(str(tmp) + "-wal")
    if wal.exists() and wal.stat().st_size:
        raise OSError(errno.EIO, "its write-ahead log could not be merged")


def _create_store_file(
    path: Path,
    values: Mapping[str, str],
    fill: Callable[[Benchmark], None] | None = None,
) -> bool:
    """Build a complete store beside ``path`` and link it there; False if another was first.

    The store is written in rollback-journal mode (every write reports a full disk, none
    is left to a checkpoint at close), ``fill`` (if given) adds its contents, the file is
    reopened and checked whole (:func:`_verify_created`), switched to WAL mode, synced,
    and only then linked to ``path``. On any error only this process's temporary files
    are removed and ``path`` is not created. Temporary files left by a creator that was
    killed (SIGKILL skips its clean-up) are removed first (:func:`_sweep_dead_creations`).
    """
    _sweep_dead_creations(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.creating")
    try:
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except OSError as err:
        raise StoreError(f"{path}: cannot create store ({err.strerror})") from None
    try:
        conn = sqlite3.connect(tmp, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript("BEGIN;" + _SCHEMA)
            conn.executemany("INSERT INTO meta VALUES (?, ?)", values.items())
            conn.execute("COMMIT")
            if fill is not None:
                conn.execute("PRAGMA foreign_keys=ON")
                fill(Benchmark(path, conn))  # errors name the store, not the temp file
        finally:
            conn.close()
        _verify_created(tmp)
        conn = sqlite3.connect(tmp, timeout=30, isolation_level=None)
        try:
            if conn.execute("PRAGMA journal_mode=WAL").fetchone() != ("wal",):
                raise sqlite3.OperationalError("cannot switch to WAL mode")
        finally:
            conn.close()
        _verify_created(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic, and never replaces an existing file
        except FileExistsError:
            return False  # another process created the store first: use that one
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # a file system without hard links: check, then rename (a narrow window)
            if path.exists():
                return False
            os.rename(tmp, path)
        return True
    except (sqlite3.Error, OSError) as err:
        detail = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise StoreError(f"{path}: cannot create store ({detail})") from None
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                os.unlink(str(tmp) + suffix)


def split_store_name(path: str | Path) -> tuple[Path, str | None]:
    """``STORE#HASH`` -> (``STORE``, ``HASH``); any other path -> (path, None).

    ``#`` in a store's name always selects a training configuration when ``STORE``
    exists (a store is never created with ``#`` in its name, :func:`check_store_name`);
    only a legacy file literally named so, with no ``STORE`` beside it, is read as is.
    """
    path = Path(path)
    if "#" in path.name:
        name, _, config = path.name.rpartition("#")
        base = path.with_name(name) if name else path
        if name and (base.exists() or not path.exists()):
            return base, config
    return path, None


def store_file(path: str | Path) -> Path:
    """The file a store argument names (``STORE#HASH`` -> ``STORE``)."""
    return split_store_name(path)[0]


def check_store_name(path: str | Path, option: str = "--out") -> None:
    """Refuse an output store whose name contains ``#`` (it means STORE#HASH on reading)."""
    path = Path(path)
    if "#" in path.name:
        raise StoreError(
            f"{option} {path}: a store's file name cannot contain '#' (STORE#HASH selects a "
            "training configuration when a store is read); choose another name"
        )


def _probe_meta(path: Path) -> dict[str, str] | None:
    """``meta`` read as immutable (no lock, no -wal/-shm made, no checkpoint): the file is
    not changed whatever it is. None when that read failed for another reason than
    missing tables (e.g. a page being rewritten): the caller opens it normally."""
    conn = None
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, isolation_level=None
        )
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.OperationalError as err:
        if str(err).startswith("no such table"):
            return {}
        return None
    except sqlite3.Error:
        return None
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


class Benchmark:
    """A benchmark store opened from one SQLite file.

    Use :meth:`create` to make (or reopen) a store and :meth:`open` to open an
    existing one; both can be used as context managers.
    """

    def __init__(self, path: str | Path, conn: sqlite3.Connection):
        self.path = Path(path)
        self._conn = conn
        self._depth = 0
        self._config: str | None = None  # training configuration readers use (hash)

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        space: str,
        dataset: str,
        source: str,
        fill: Callable[[Benchmark], None] | None = None,
        **meta: Any,
    ) -> Benchmark:
        """Create a store at ``path``, or open it if it is already a store of ``space``.

        Creation is atomic: the store is built complete in a temporary file beside
        ``path`` and then hard-linked to ``path``, which fails if another process got
        there first (its store is then used). A half-created store is never visible
        at ``path``, and a process removes the temporary file it made; one left by a
        creator that was killed is removed by the next creation of ``path`` once its
        process is gone and the file is a minute old. Before the link the file is
        reopened and checked whole, so a full disk never leaves a malformed store.

        ``fill(bench)`` writes the contents of a new store (an import) into the temporary
        file before it is linked, so the store appears complete or not at all; when
        ``path`` is already a store it is called on that store instead.
        """
        path = Path(path)
        check_store_name(path)
        created = False
        if not path.exists():
            if not path.parent.exists():
                raise StoreError(f"{path}: directory {path.parent} does not exist")
            values = {
                "format": FORMAT,
                "schema_version": str(SCHEMA_VERSION),
                "space": space,
                "dataset": dataset,
                "source": source,
                "created_at": _now(),
                "rankzc_version": __version__,
                **{k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()},
            }
            created = _create_store_file(path, values, fill)
        bench = cls.open(path)
        held = bench.meta.get("space")
        if held != space:
            bench.close()
            raise StoreError(f"{path}: store holds space {held!r}, not {space!r}")
        if fill is not None and not created:
            try:
                fill(bench)
            except BaseException:
                bench.close()
                raise
        return bench

    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = False) -> Benchmark:
        """Open an existing store; refuse files that are not rankzc benchmarks.

        Nothing is written before the file is known to be a rankzc store (a foreign
        SQLite file is not switched to WAL mode). ``readonly`` stores are readable in
        a read-only directory too: when SQLite cannot open its WAL index there, the
        file is opened as immutable (only when no write-ahead log is pending).

        ``STORE.db#HASH`` (when no file has that name) opens ``STORE.db`` reading only the
        training configuration ``HASH`` (:meth:`select_config`), e.g. ``--benchmark
        mixed.db#53d3c4d775b1b25f`` for a store that holds several.
        """
        path, config = split_store_name(path)
        if config == "":
            raise StoreError(f"{path}#: no training configuration after '#' (STORE#HASH)")
        if not path.exists():
            raise StoreError(f"{path}: no such benchmark file")
        if path.is_dir():
            raise StoreError(f"{path}: is a directory, not a benchmark file")
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as err:
            raise StoreError(f"{path}: cannot read ({err.strerror})") from None
        if not head:
            raise StoreError(f"{path}: not a rankzc benchmark (empty file)")
        if head != b"SQLite format 3\x00":
            raise StoreError(f"{path}: not a rankzc benchmark (not an SQLite file)")
        # A foreign SQLite file is identified without being changed: read as immutable,
        # so no checkpoint of its pending -wal, no -wal/-shm left beside it.
        probe = _probe_meta(path)
        if probe is not None and probe.get("format") != FORMAT:
            missing = "no meta table" if not probe else "meta.format missing"
            raise StoreError(f"{path}: not a rankzc benchmark ({missing})")
        if readonly:
            conn, meta = _connect_readonly(path)
        else:
            try:
                conn, meta = _connect(str(path), uri=False)
            except sqlite3.Error as err:
                raise _open_error(path, err) from None
        bench = cls(path, conn)
        if meta.get("format") != FORMAT:
            conn.close()
            raise StoreError(f"{path}: not a rankzc benchmark (meta.format missing)")
        if int(meta.get("schema_version", "0")) > SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"{path}: written by a newer rankzc (schema {meta['schema_version']}); upgrade rankzc"
            )
        if not readonly:
            try:
                bench._setup()
            except sqlite3.Error as err:
                conn.close()
                raise StoreError(f"{path}: cannot open for writing ({err})") from None
        if config:
            try:
                bench.select_config(config)
            except StoreError:
                conn.close()
                raise
        return bench

    def _setup(self) -> None:
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Benchmark:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Benchmark({str(self.path)!r}, space={self.meta.get('space')!r})"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one transaction (nested calls join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield self._conn
            finally:
                self._depth -= 1
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise StoreError(f"{self.path}: cannot write ({err})") from err
        self._depth = 1
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException as exc:
            # SQLite rolls back by itself on some errors (a full disk): roll back only
            # what is still open, and never let the rollback hide the real error.
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise StoreError(f"{self.path}: cannot write ({exc})") from exc
            raise
        finally:
            self._depth = 0

    # ------------------------------------------------------------------ metadata
    @property
    def meta(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, **values: Any) -> None:
        with self.transaction() as c:
            c.executemany(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()],
            )

    @property
    def space(self) -> str:
        return self.meta["space"]

    # ------------------------------------------------------------- architectures
    def add_architectures(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Insert architectures (dicts with arch_id, space, encoding, depth, extra); return how many were new."""
        rows = [
            (
                r["arch_id"],
                r["space"],
                r["encoding"],
                None if r.get("depth") is None else int(r["depth"]),
                json.dumps(r.get("extra") or {}, sort_keys=True),
            )
            for r in records
        ]
        with self.transaction() as c:
            before = c.total_changes
            c.executemany("INSERT OR IGNORE INTO architectures VALUES (?, ?, ?, ?, ?)", rows)
            return c.total_changes - before

    def architectures(self) -> pd.DataFrame:
        """All architectures: index ``arch_id``; columns space, encoding, depth, extra (dict)."""
        df = pd.read_sql_query(
            "SELECT arch_id, space, encoding, depth, extra FROM architectures ORDER BY arch_id",
            self._conn,
        )
        df["depth"] = df["depth"].astype("Int64")
        df["extra"] = df["extra"].map(json.loads)
        return df.set_index("arch_id")

    def encodings(self) -> pd.Series:
        """Canonical encoding of every architecture, indexed by ``arch_id``."""
        return self.architectures()["encoding"]

    def has_depth(self) -> bool:
        row = self._conn.execute(
            "SELECT COUNT(*) FROM architectures WHERE depth IS NOT NULL"
        ).fetchone()
        return bool(row[0])

    # ---------------------------------------------------------------------- runs
    def get_or_create_run(
        self, arch_id: str, seed: int, config: Mapping[str, Any]
    ) -> tuple[int, str, int]:
        """The run keyed on (arch_id, seed, config): ``(run_id, status, last_epoch)``.

        A new run starts as ``running`` with ``last_epoch`` -1. A failed run is
        returned as it is; call :meth:`restart_run` to try it again.
        """
        h = config_hash(config)
        with self.transaction() as c:
            row = c.execute(
                "SELECT run_id, status FROM runs WHERE arch_id=? AND seed=? AND config_hash=?",
                (arch_id, int(seed), h),
            ).fetchone()
            if row is None:
                cur = c.execute(
                    "INSERT INTO runs (arch_id, seed, config_hash, config, status, started_at) "
                    "VALUES (?, ?, ?, ?, 'running', ?)",
                    (
                        arch_id,
                        int(seed),
                        h,
                        json.dumps(dict(config), sort_keys=True, default=str),
                        _now(),
                    ),
                )
                return int(cur.lastrowid), "running", -1
            run_id, status = row
            last = c.execute(
                "SELECT COALESCE(MAX(epoch), -1) FROM epochs WHERE run_id=?", (run_id,)
            ).fetchone()[0]
            return int(run_id), status, int(last)

    def restart_run(self, run_id: int) -> None:
        """Mark a failed run as running again (its recorded epochs are kept)."""
        with self.transaction() as c:
            c.execute(
                "UPDATE runs SET status='running', error=NULL, finished_at=NULL WHERE run_id=?",
                (run_id,),
            )

    def record_epoch(
        self,
        run_id: int,
        epoch: int,
        *,
        val_acc: float | None,
        val_loss: float | None = None,
        train_loss: float | None = None,
        seconds: float | None = None,
        proxies: Mapping[str, tuple[float | None, float | None, str | None]] | None = None,
    ) -> None:
        """Record one epoch (and, optionally, proxies scored after it) in one transaction."""
        with self.transaction() as c:
            c.execute(
                "INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, epoch) DO UPDATE "
                "SET val_acc=excluded.val_acc, val_loss=excluded.val_loss, "
                "train_loss=excluded.train_loss, seconds=excluded.seconds",
                (
                    run_id,
                    int(epoch),
                    finite_or_none(val_acc),
                    finite_or_none(val_loss),
                    finite_or_none(train_loss),
                    finite_or_none(seconds),
                ),
            )
            if proxies:
                arch_id = c.execute(
                    "SELECT arch_id FROM runs WHERE run_id=?", (run_id,)
                ).fetchone()[0]
                self.record_proxies(arch_id, epoch, proxies, run_id=run_id)

    def finish_run(self, run_id: int, *, val_acc: float, train_seconds: float | None) -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE runs SET status='done', val_acc=?, train_seconds=?, error=NULL, finished_at=? "
                "WHERE run_id=?",
                (finite_or_none(val_acc), finite_or_none(train_seconds), _now(), run_id),
            )

    def fail_run(self, run_id: int, error: str) -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE runs SET status='failed', error=?, finished_at=? WHERE run_id=?",
                (str(error)[:2000], _now(), run_id),
            )

    def runs(self) -> pd.DataFrame:
        """All runs with their parsed configuration (column ``config`` holds dicts)."""
        df = pd.read_sql_query("SELECT * FROM runs ORDER BY run_id", self._conn)
        df["config"] = df["config"].map(json.loads)
        return df

    def epochs(self, run_id: int | None = None) -> pd.DataFrame:
        """Per-epoch validation accuracy and loss, with the run's arch_id."""
        sql = (
            "SELECT e.*, r.arch_id FROM epochs e JOIN runs r USING (run_id)"
            + (" WHERE e.run_id=?" if run_id is not None else "")
            + " ORDER BY e.run_id, e.epoch"
        )
        return pd.read_sql_query(sql, self._conn, params=(run_id,) if run_id is not None else ())

    def labels(self) -> pd.DataFrame:
        """One label per architecture with at least one finished run.

        Index ``arch_id``; columns depth, val_acc (mean over the architecture's finished
        runs, e.g. one per seed), train_seconds (mean), n_runs.
        """
        config = self.label_config()
        df = pd.read_sql_query(
            "SELECT r.arch_id, a.depth, AVG(r.val_acc) AS val_acc, "
            "AVG(r.train_seconds) AS train_seconds, COUNT(*) AS n_runs "
            "FROM runs r JOIN architectures a USING (arch_id) "
            "WHERE r.status='done' AND r.val_acc IS NOT NULL "
            "AND (? IS NULL OR r.config_hash = ?) "
            "GROUP BY r.arch_id ORDER BY r.arch_id",
            self._conn,
            params=(config, config),
        )
        df["depth"] = df["depth"].astype("Int64")
        return df.set_index("arch_id")

    def run_labels(self) -> pd.DataFrame:
        """One row per finished run with a label: arch_id, seed, config_hash, val_acc.

        :meth:`labels` averages these per architecture; repeated runs of one architecture
        (different seeds) measure how noisy a label is (:func:`rankzc.analysis.label_noise`).
        """
        config = self.label_config()
        return pd.read_sql_query(
            "SELECT arch_id, seed, config_hash, val_acc FROM runs "
            "WHERE status='done' AND val_acc IS NOT NULL AND (? IS NULL OR config_hash=?) "
            "ORDER BY arch_id, seed",
            self._conn,
            params=(config, config),
        )

    # ------------------------------------------------------------ configurations
    def configurations(self) -> pd.DataFrame:
        """The training configurations of the runs (the seed is not part of one).

        Index ``config_hash``; columns runs, done, seeds (number of distinct seeds)
        and ``describe`` (source or preset, epochs, data).
        """
        df = pd.read_sql_query(
            "SELECT config_hash, MIN(config) AS config, COUNT(*) AS runs, "
            "SUM(status='done') AS done, COUNT(DISTINCT seed) AS seeds "
            "FROM runs GROUP BY config_hash ORDER BY MIN(run_id)",
            self._conn,
        )
        df["describe"] = df["config"].map(lambda c: describe_config(json.loads(c)))
        return df.drop(columns="config").set_index("config_hash")

    def check_config(self, config: Mapping[str, Any], *, allow_mixed: bool = False) -> None:
        """Refuse adding runs of ``config`` to a store holding runs of another configuration.

        One store, one configuration: labels of different recipes (a tiny-preset run
        beside NTU-scale labels) must not be averaged or ranked together. Repeated
        seeds of the same configuration are fine. ``allow_mixed`` lets them in; readers
        then ask which configuration to use (:meth:`select_config`).
        """
        h = config_hash(config)
        held = self.configurations()
        others = held.drop(index=h, errors="ignore")
        if others.empty or allow_mixed:
            return
        first = others.index[0]
        raise StoreError(
            f"{self.path}: holds runs of another training configuration "
            f"({others.loc[first, 'describe']}, {others.loc[first, 'runs']} runs, hash {first}); "
            f"these are {describe_config(config)} (hash {h}): use another store, or "
            "--allow-mixed-config to add them anyway"
        )

    def select_config(self, config_hash: str | None) -> Benchmark:
        """Read labels and run proxies of one training configuration only (None: the only one)."""
        if config_hash is not None and config_hash not in self.configurations().index:
            raise StoreError(
                f"{self.path}: no training configuration {config_hash!r} "
                f"(has {list(self.configurations().index)})"
            )
        self._config = config_hash
        return self

    def _count(self, sql: str) -> int:
        return int(self._conn.execute(sql).fetchone()[0])

    def label_config(self) -> str | None:
        """The configuration labels are read from; refuse to mix several silently."""
        if self._config is not None:
            return self._config
        rows = self._conn.execute(
            "SELECT DISTINCT config_hash FROM runs WHERE status='done' AND val_acc IS NOT NULL"
        ).fetchall()
        if len(rows) > 1:
            held = self.configurations()
            parts = "; ".join(
                f"{h}: {held.loc[h, 'describe']}, {held.loc[h, 'done']} done"
                for h in held.index
                if held.loc[h, "done"]
            )
            raise StoreError(
                f"{self.path}: labels of {len(rows)} training configurations ({parts}); "
                "they are not mixed: read one with --benchmark STORE#HASH "
                "(Benchmark.select_config(HASH)), or keep one configuration per store"
            )
        return None

    def proxy_config(self, epoch: int) -> str | None:
        """Like :meth:`label_config` for proxy scores at ``epoch``; also refuses scores
        of different proxy settings side by side (seed, device, which proxies and who
        scored them aside: :data:`_NOT_SETTINGS`)."""
        config = self._config
        if config is None and self._count("SELECT COUNT(DISTINCT config_hash) FROM runs") > 1:
            rows = self._conn.execute(
                "SELECT DISTINCT r.config_hash FROM proxies p JOIN runs r USING (run_id) "
                "WHERE p.epoch=?",
                (int(epoch),),
            ).fetchall()
            if len(rows) > 1:
                self.label_config()  # the same message when the labels are mixed too
                raise StoreError(
                    f"{self.path}: proxy scores at epoch {epoch} from {len(rows)} training "
                    "configurations; read one with --benchmark STORE#HASH "
                    "(Benchmark.select_config(HASH))"
                )
        if not self._count("SELECT COUNT(*) FROM proxy_settings"):
            return config  # no settings recorded (imported scores): nothing to mix
        keys = self._settings_keys(epoch, config)
        if len(keys) > 1:
            raise StoreError(
                f"{self.path}: proxy scores at epoch {epoch} were computed under {len(keys)} "
                f"different settings ({'; '.join(sorted(keys.values()))}); they are not mixed: "
                "keep one configuration per store"
            )
        return config

    def _settings_keys(self, epoch: int, config: str | None) -> dict[str | None, str]:
        """Settings (seed etc. aside) of the proxy scores at ``epoch``: key -> description."""
        ids = self._conn.execute(
            "SELECT DISTINCT settings_id FROM proxies WHERE epoch=? AND (? IS NULL OR "
            "run_id=0 OR run_id IN (SELECT run_id FROM runs WHERE config_hash=?))",
            (int(epoch), config, config),
        ).fetchall()
        texts = dict(self._conn.execute("SELECT settings_id, settings FROM proxy_settings"))
        keys: dict[str | None, str] = {}
        for (sid,) in ids:
            if sid is None:
                keys[None] = "no settings recorded (imported)"
            else:
                key, text = _settings_key(json.loads(texts.get(sid, "{}")))
                keys[key] = text
        return keys

    def check_proxy_settings(self, settings: Mapping[str, Any], epoch: int = -1) -> None:
        """Refuse adding proxy scores at ``epoch`` computed under other settings than the
        store's (seed, device and which proxies aside), e.g. ``rankzc features --benchmark``
        with ``--preset cpu`` into a store scored with the tiny preset."""
        held = self._settings_keys(epoch, self._config)
        key, text = _settings_key(settings)
        others = [t for k, t in held.items() if k != key]
        if others:
            raise StoreError(
                f"{self.path}: its proxy scores at epoch {epoch} were computed under other "
                f"settings ({others[0]}) than these ({text}); they would be mixed: score "
                "with the store's settings or into another store"
            )

    # ------------------------------------------------------------------- proxies
    def record_proxies(
        self,
        arch_id: str,
        epoch: int,
        results: Mapping[str, Any],
        *,
        run_id: int | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Store proxy results for one architecture and epoch in one transaction.

        ``results`` maps a proxy name to ``(score, seconds, error)`` (or to an object
        with those attributes). A non-finite score is stored as missing, never as 0.
        """
        settings_id = None
        rows = []
        for name, res in results.items():
            if isinstance(res, tuple):
                score, seconds, error = (list(res) + [None, None, None])[:3]
            else:
                score = getattr(res, "score", res)
                seconds = getattr(res, "seconds", None)
                error = getattr(res, "error", None)
            value = finite_or_none(score)
            if value is None and error is None and score is not None:
                error = f"non-finite score {score!r}"
            rows.append((name, value, finite_or_none(seconds), error))
        with self.transaction() as c:
            if settings is not None:
                text = json.dumps(dict(settings), sort_keys=True, default=str)
                settings_id = hashlib.sha256(text.encode()).hexdigest()[:16]
                c.execute("INSERT OR IGNORE INTO proxy_settings VALUES (?, ?)", (settings_id, text))
            c.executemany(
                "INSERT INTO proxies VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(arch_id, run_id, epoch, name) DO UPDATE SET score=excluded.score, "
                "seconds=excluded.seconds, error=excluded.error, settings_id=excluded.settings_id",
                [
                    (
                        arch_id,
                        NO_RUN if run_id is None else int(run_id),
                        int(epoch),
                        n,
                        s,
                        t,
                        e,
                        settings_id,
                    )
                    for n, s, t, e in rows
                ],
            )

    def proxy_names(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT DISTINCT name FROM proxies ORDER BY name")]

    def proxy_epochs(self) -> list[int]:
        return [
            r[0] for r in self._conn.execute("SELECT DISTINCT epoch FROM proxies ORDER BY epoch")
        ]

    def proxy_settings(self) -> list[dict[str, Any]]:
        """Every distinct settings record that proxies in this store were scored with."""
        return [json.loads(r[0]) for r in self._conn.execute("SELECT settings FROM proxy_settings")]

    def features(
        self,
        epoch: int = -1,
        proxies: Iterable[str] | None = None,
        labelled_only: bool = False,
    ) -> pd.DataFrame:
        """Proxy scores after ``epoch`` as a wide frame: index ``arch_id``, one column per proxy.

        Missing scores are NaN. Where an architecture has scores from several runs,
        their mean is taken.
        """
        config = self.proxy_config(epoch)
        names = [
            r[0]
            for r in self._conn.execute(
                "SELECT DISTINCT name FROM proxies WHERE epoch=? ORDER BY name", (int(epoch),)
            )
        ]
        # one proxy at a time: memory stays O(architectures), not O(architectures x proxies)
        cols = {}
        for name in names:
            part = pd.read_sql_query(
                "SELECT arch_id, AVG(score) AS score FROM proxies WHERE epoch=? AND name=? "
                "AND (? IS NULL OR run_id=0 OR run_id IN (SELECT run_id FROM runs "
                "WHERE config_hash=?)) GROUP BY arch_id",
                self._conn,
                params=(int(epoch), name, config, config),
                index_col="arch_id",
            )
            if len(part):
                cols[name] = part["score"].astype(float)
        wide = pd.DataFrame(cols, dtype=float)
        wide.index.name = "arch_id"
        if proxies is not None:
            wide = wide.reindex(columns=list(proxies))
        if labelled_only:
            wide = wide.loc[wide.index.intersection(self.labels().index)]
        return wide.sort_index()

    def proxy_records(self, epoch: int | None = None) -> pd.DataFrame:
        """Long form of the proxies table (score, seconds, error per row)."""
        sql = "SELECT * FROM proxies" + (" WHERE epoch=?" if epoch is not None else "")
        return pd.read_sql_query(sql, self._conn, params=(epoch,) if epoch is not None else ())

    def missing_proxies(self, names: Iterable[str], epoch: int = -1) -> list[str]:
        """Architectures that lack at least one of ``names`` at ``epoch`` (scored or failed)."""
        names = list(names)
        marks = ",".join("?" * len(names))
        done = pd.read_sql_query(
            "SELECT arch_id, COUNT(DISTINCT name) AS n FROM proxies "
            f"WHERE epoch=? AND name IN ({marks}) GROUP BY arch_id",
            self._conn,
            params=(int(epoch), *names),
        )
        complete = set(done.loc[done["n"] == len(names), "arch_id"])
        return [a for a in self.architectures().index if a not in complete]

    def counts(self) -> dict[str, int]:
        q = self._conn.execute
        return {
            "architectures": q("SELECT COUNT(*) FROM architectures").fetchone()[0],
            "runs": q("SELECT COUNT(*) FROM runs").fetchone()[0],
            "done": q("SELECT COUNT(*) FROM runs WHERE status='done'").fetchone()[0],
            "failed": q("SELECT COUNT(*) FROM runs WHERE status='failed'").fetchone()[0],
            "epochs": q("SELECT COUNT(*) FROM epochs").fetchone()[0],
            "proxies": q("SELECT COUNT(*) FROM proxies").fetchone()[0],
        }

    def table(self, epoch: int = -1) -> pd.DataFrame:
        """One row per architecture: depth, val_acc, then one column per proxy at ``epoch``."""
        archs = self.architectures()[["depth"]]
        labels = self.labels()[["val_acc"]]
        feats = self.features(epoch)
        out = archs.join(labels, how="left").join(feats, how="left")
        if not self.has_depth():
            out = out.drop(columns="depth")
        out.index.name = "arch_id"
        return out
