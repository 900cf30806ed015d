"""SQLite experiment store: runs, step-indexed metrics, and measured device ceilings.

One file (``$WORKBENCH_HOME/workbench.db`` by default) in WAL mode, so one writer and many readers
(dashboard sessions, notebooks) work at once. Every :meth:`Store.log_metric` is its own
transaction: a job killed with SIGKILL keeps every point it finished logging, and the file stays
readable (WAL with ``synchronous=NORMAL`` is durable against process crashes; only a power loss can
drop the last commits).

Values are stored as JSON text or REAL columns, never pickled.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from pathlib import Path

from . import config
from .errors import InputError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    params      TEXT NOT NULL,
    status      TEXT NOT NULL,
    device      TEXT,
    started_at  REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS runs_kind ON runs (kind);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL,
    step   INTEGER NOT NULL,
    name   TEXT NOT NULL,
    value  REAL,
    time   REAL NOT NULL,
    PRIMARY KEY (run_id, step, name)
);
CREATE TABLE IF NOT EXISTS ceilings (
    device_key  TEXT PRIMARY KEY,
    device      TEXT NOT NULL,
    measured_at REAL NOT NULL,
    payload     TEXT NOT NULL
);
"""

RUN_STATUSES = ("running", "finished", "stopped", "failed")


class Store:
    """The experiment store. Safe to share between threads (one connection per thread).

    >>> s = Store(":memory:")
    >>> run = s.start_run("demo", {"lr": 0.1})
    >>> s.log_metric(run, 0, loss=1.0, accuracy=0.5)
    >>> s.metrics(run)
    [{'step': 0, 'accuracy': 0.5, 'loss': 1.0}]
    """

    def __init__(self, path: str | Path | None = None):
        if path is None:
            path = config.home() / "workbench.db"
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._memory_conn = None  # ":memory:" is private to one connection: share it
        self._memory_lock = threading.RLock()
        if self.path == ":memory:":
            with self._memory_lock:
                self._conn().executescript(_SCHEMA)
        else:
            self._conn().executescript(_SCHEMA)  # executescript commits on its own
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    # -- connections --------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self.path == ":memory:":
            if self._memory_conn is None:
                self._memory_conn = sqlite3.connect(":memory:", check_same_thread=False,
                                                    isolation_level=None)
            return self._memory_conn
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    class _Tx:
        def __init__(self, store: "Store"):
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            if self.store.path == ":memory:":
                self.store._memory_lock.acquire()
            self.conn = self.store._conn()
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type, exc, tb):
            try:
                self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                if self.store.path == ":memory:":
                    self.store._memory_lock.release()

    def _tx(self) -> "Store._Tx":
        return Store._Tx(self)

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        if self.path == ":memory:":
            with self._memory_lock:
                return self._conn().execute(sql, args).fetchall()
        return self._conn().execute(sql, args).fetchall()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- runs ---------------------------------------------------------------------------------
    def start_run(self, kind: str, params: dict | None = None, device: str | None = None) -> int:
        """Open a run of ``kind`` (e.g. ``"roofline"``, ``"prune"``); returns its id."""
        if not isinstance(kind, str) or not kind:
            raise InputError("kind", f"expected a non-empty string, got {kind!r}")
        try:
            text = json.dumps(params or {}, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError("params", f"must be JSON-serialisable: {exc}") from None
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO runs (kind, params, status, device, started_at) VALUES (?,?,?,?,?)",
                (kind, text, "running", device, time.time()),
            )
            return int(cur.lastrowid)

    def log_metric(self, run_id: int, step: int, **values) -> None:
        """Record ``values`` (numbers; None or NaN stored as NULL) at ``step``, in one
        transaction. Logging the same name at the same step again replaces it."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise InputError("step", f"expected an integer >= 0, got {step!r}")
        if not values:
            raise InputError("values", "log_metric needs at least one name=value")
        rows = []
        now = time.time()
        for name, value in values.items():
            if value is not None:
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise InputError(name, f"metric values must be numbers, got {value!r}") from None
                if math.isnan(value):
                    value = None
            rows.append((int(run_id), step, name, value, now))
        with self._tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO metrics (run_id, step, name, value, time) VALUES (?,?,?,?,?)",
                rows,
            )

    def finish_run(self, run_id: int, status: str = "finished") -> None:
        """Set the run's status; ``"running"`` reopens a stopped run (a resume)."""
        if status not in RUN_STATUSES:
            raise InputError("status", f"expected one of {RUN_STATUSES}, got {status!r}")
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                (status, None if status == "running" else time.time(), int(run_id)),
            )

    def runs(self, kind: str | None = None) -> list[dict]:
        """Runs, newest first, each a dict with ``params`` decoded."""
        sql = "SELECT id, kind, params, status, device, started_at, finished_at FROM runs"
        args: tuple = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            args = (kind,)
        rows = self._query(sql + " ORDER BY id DESC", args)
        keys = ("id", "kind", "params", "status", "device", "started_at", "finished_at")
        out = []
        for row in rows:
            rec = dict(zip(keys, row))
            rec["params"] = json.loads(rec["params"])
            out.append(rec)
        return out

    def metrics(self, run_id: int) -> list[dict]:
        """One dict per step, ``{"step": s, name: value, ...}``, in step order."""
        rows = self._query(
            "SELECT step, name, value FROM metrics WHERE run_id = ? ORDER BY step, name",
            (int(run_id),),
        )
        by_step: dict[int, dict] = {}
        for step, name, value in rows:
            by_step.setdefault(step, {"step": step})[name] = value
        return list(by_step.values())

    # -- ceilings -----------------------------------------------------------------------------
    def save_ceilings(self, device_key: str, device: str, payload: dict) -> None:
        """Keep the latest measured ceilings of a device (keyed by platform, name and driver)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO ceilings (device_key, device, measured_at, payload) "
                "VALUES (?,?,?,?)",
                (device_key, device, time.time(), json.dumps(payload)),
            )

    def load_ceilings(self, device_key: str) -> dict | None:
        rows = self._query("SELECT payload FROM ceilings WHERE device_key = ?", (device_key,))
        return json.loads(rows[0][0]) if rows else None
