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
import hashlib
import json
import math
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from rankzc import __version__
from rankzc.errors import StoreError

FORMAT = "rankzc-benchmark"
SCHEMA_VERSION = 1
NO_RUN = 0

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


def finite_or_none(value: Any) -> float | None:
    """A float, or None for anything missing or non-finite ("Nan", inf, None)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Benchmark:
    """A benchmark store opened from one SQLite file.

    Use :meth:`create` to make (or reopen) a store and :meth:`open` to open an
    existing one; both can be used as context managers.
    """

    def __init__(self, path: str | Path, conn: sqlite3.Connection):
        self.path = Path(path)
        self._conn = conn
        self._depth = 0

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        space: str,
        dataset: str,
        source: str,
        **meta: Any,
    ) -> Benchmark:
        """Create a store at ``path``, or open it if it is already a store of ``space``."""
        path = Path(path)
        if path.exists():
            bench = cls.open(path)
            held = bench.meta.get("space")
            if held != space:
                bench.close()
                raise StoreError(f"{path}: store holds space {held!r}, not {space!r}")
            return bench
        if not path.parent.exists():
            raise StoreError(f"{path}: directory {path.parent} does not exist")
        try:
            conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        except sqlite3.Error as err:
            raise StoreError(f"{path}: cannot create store ({err})") from None
        bench = cls(path, conn)
        try:
            bench._setup()
            conn.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            with bench.transaction():
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
                conn.executemany("INSERT INTO meta VALUES (?, ?)", values.items())
        except (sqlite3.Error, OSError) as err:
            conn.close()
            path.unlink(missing_ok=True)
            raise StoreError(f"{path}: cannot create store ({err})") from None
        return bench

    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = False) -> Benchmark:
        """Open an existing store; refuse files that are not rankzc benchmarks."""
        path = Path(path)
        if not path.exists():
            raise StoreError(f"{path}: no such benchmark file")
        if path.is_dir():
            raise StoreError(f"{path}: is a directory, not a benchmark file")
        with open(path, "rb") as fh:
            head = fh.read(16)
        if head != b"SQLite format 3\x00":
            raise StoreError(f"{path}: not a rankzc benchmark (not an SQLite file)")
        uri = f"file:{path.resolve()}?mode=ro" if readonly else str(path)
        try:
            conn = sqlite3.connect(uri, timeout=30, isolation_level=None, uri=readonly)
            bench = cls(path, conn)
            if not readonly:
                bench._setup()
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as err:
            with contextlib.suppress(Exception):
                conn.close()
            raise StoreError(f"{path}: not a rankzc benchmark ({err})") from None
        if meta.get("format") != FORMAT:
            conn.close()
            raise StoreError(f"{path}: not a rankzc benchmark (meta.format missing)")
        if int(meta.get("schema_version", "0")) > SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"{path}: written by a newer rankzc (schema {meta['schema_version']}); upgrade rankzc"
            )
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
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
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
        df = pd.read_sql_query(
            "SELECT r.arch_id, a.depth, AVG(r.val_acc) AS val_acc, "
            "AVG(r.train_seconds) AS train_seconds, COUNT(*) AS n_runs "
            "FROM runs r JOIN architectures a USING (arch_id) "
            "WHERE r.status='done' AND r.val_acc IS NOT NULL "
            "GROUP BY r.arch_id ORDER BY r.arch_id",
            self._conn,
        )
        df["depth"] = df["depth"].astype("Int64")
        return df.set_index("arch_id")

    def run_labels(self) -> pd.DataFrame:
        """One row per finished run with a label: arch_id, seed, config_hash, val_acc.

        :meth:`labels` averages these per architecture; repeated runs of one architecture
        (different seeds) measure how noisy a label is (:func:`rankzc.analysis.label_noise`).
        """
        return pd.read_sql_query(
            "SELECT arch_id, seed, config_hash, val_acc FROM runs "
            "WHERE status='done' AND val_acc IS NOT NULL ORDER BY arch_id, seed",
            self._conn,
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
        df = pd.read_sql_query(
            "SELECT arch_id, name, AVG(score) AS score FROM proxies WHERE epoch=? "
            "GROUP BY arch_id, name",
            self._conn,
            params=(int(epoch),),
        )
        wide = df.pivot(index="arch_id", columns="name", values="score").astype(float)
        wide.columns.name = None
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
