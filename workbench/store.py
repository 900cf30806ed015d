"""SQLite experiment store: runs with one lifecycle, step-indexed metrics, measured ceilings.

One file (``$WORKBENCH_HOME/workbench.db`` by default) in WAL mode, so one writer and many readers
(dashboard sessions, notebooks) work at once. Every logged step is its own transaction: a job
killed with SIGKILL keeps every point it finished logging, and the file stays readable (WAL with
``synchronous=NORMAL`` is durable against process crashes; only a power loss can drop the last
commits). Values are stored as numbers, JSON or text, never pickled.

**A run's life.** ``with store.run(kind, params, device=rt) as run:`` opens a run (status
``running``), ``run.log(step, **values)`` records a step, and the way the block ends sets the
status: ``finished`` when it ends normally, ``stopped`` after :meth:`Run.stop` (a stop request)
or when a generator around it is closed (``GeneratorExit``) or interrupted, ``failed`` with the
error's text when an exception leaves it. ``store.run(..., resume=run_id)`` continues a stopped
run (its steps go on where they were). While a run is open the store writes a heartbeat every
few seconds; a ``running`` run whose writer died (a process no longer alive on this host, or no
heartbeat for :data:`LOST_AFTER_S`) is reported as ``lost``, never ``running`` forever.

**Devices.** Each run records the device it ran on (``device``, its name) and ``device_key``
(platform | name | driver, :attr:`DeviceInfo.key`); ``runs(device=rt)`` filters on the key.

**``store=`` arguments** across the library mean one thing: ``None`` is the user's default
store (this class with no path), ``False`` is no store at all (nothing logged), a
:class:`Store` is that store. :func:`resolve_store` turns the argument into a store or None.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import threading
import time
import weakref
from pathlib import Path

from . import config
from .errors import InputError

SCHEMA_VERSION = 2
HEARTBEAT_S = 5.0
LOST_AFTER_S = 60.0

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
CREATE TABLE IF NOT EXISTS ceilings_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device_key  TEXT NOT NULL,
    device      TEXT NOT NULL,
    mode        TEXT NOT NULL,
    measured_at REAL NOT NULL,
    noisy       INTEGER NOT NULL DEFAULT 0,
    payload     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ceilings_device ON ceilings_history (device_key, mode);
"""
# Columns added in schema 2, with their SQL types (added to an older file on open).
_RUN_COLUMNS = {"device_key": "TEXT", "heartbeat_at": "REAL", "pid": "INTEGER", "host": "TEXT",
                "error": "TEXT", "name": "TEXT", "tags": "TEXT", "note": "TEXT"}
_METRIC_COLUMNS = {"text": "TEXT"}

RUN_STATUSES = ("running", "finished", "stopped", "failed", "lost")
_RUN_KEYS = ("id", "kind", "params", "status", "device", "device_key", "started_at", "finished_at",
             "heartbeat_at", "pid", "host", "error", "name", "tags", "note")


def _device_fields(device) -> tuple[str | None, str | None]:
    """(name, key) of a Runtime, a DeviceInfo, a plain device name, or None."""
    if device is None:
        return None, None
    info = getattr(device, "info", device)
    if hasattr(info, "key") and hasattr(info, "name"):
        return info.name, info.key
    if isinstance(device, str):
        return device, None
    raise InputError("device", f"expected a Runtime, a DeviceInfo or a name, got {device!r}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StopRun(Exception):
    """Raised inside a ``store.run`` block to end it as ``stopped`` (the block swallows it)."""


class Run:
    """An open run: ``id``, ``kind``; :meth:`log` records a step; :meth:`stop` asks the block
    to end as ``stopped``; ``status`` is the final status once the block has ended."""

    def __init__(self, store: "Store", run_id: int, kind: str):
        self.store, self.id, self.kind = store, run_id, kind
        self.status = "running"
        self._stop = False

    def log(self, step: int, **values) -> None:
        """Record ``values`` (numbers, or text for names like ``method``) at ``step``."""
        self.store.log_metric(self.id, step, **values)

    def stop(self) -> None:
        """End the run as ``stopped`` when its block ends (a stop request, not an error)."""
        self._stop = True

    @property
    def stop_requested(self) -> bool:
        return self._stop

    def __repr__(self) -> str:
        return f"<Run #{self.id} {self.kind} {self.status}>"


class _RunContext:
    def __init__(self, store: "Store", kind: str, params: dict | None, device, resume: int | None):
        self.store, self.kind, self.params, self.device, self.resume = store, kind, params, device, resume
        self.run: Run | None = None

    def __enter__(self) -> Run:
        if self.resume is None:
            run_id = self.store.start_run(self.kind, self.params, device=self.device)
        else:
            run_id = int(self.resume)
            self.store.reopen_run(run_id)
        self.run = Run(self.store, run_id, self.kind)
        return self.run

    def __exit__(self, exc_type, exc, tb) -> bool:
        run = self.run
        if exc_type is None:
            status, error = ("stopped" if run.stop_requested else "finished"), None
        elif issubclass(exc_type, (StopRun, GeneratorExit, KeyboardInterrupt)):
            status, error = "stopped", None
        else:
            status, error = "failed", f"{exc_type.__name__}: {exc}"
        self.store.finish_run(run.id, status, error=error)
        run.status = status
        return exc_type is not None and issubclass(exc_type, StopRun)


class Store:
    """The experiment store. Safe to share between threads (one connection per thread).

    >>> s = Store(":memory:")
    >>> with s.run("demo", {"lr": 0.1}) as run:
    ...     run.log(0, loss=1.0, accuracy=0.5)
    >>> s.metrics(run.id), s.runs()[0]["status"]
    ([{'step': 0, 'accuracy': 0.5, 'loss': 1.0}], 'finished')
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
        self._open_runs: set[int] = set()  # runs this store started and has not finished
        self._open_lock = threading.Lock()
        self._beat: threading.Thread | None = None
        with self._memory_lock:
            self._conn().executescript(_SCHEMA)  # executescript commits on its own
        self._migrate()

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

    def _migrate(self) -> None:
        """Bring a file written by an older version to this schema (columns are only added)."""
        with self._tx() as conn:
            have = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
            for name, sqltype in _RUN_COLUMNS.items():
                if name not in have:
                    conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {sqltype}")
            have_m = {row[1] for row in conn.execute("PRAGMA table_info(metrics)")}
            for name, sqltype in _METRIC_COLUMNS.items():
                if name not in have_m:
                    conn.execute(f"ALTER TABLE metrics ADD COLUMN {name} {sqltype}")
            if "device_key" not in have:  # runs of schema 1 kept the key in their params
                for run_id, params in conn.execute("SELECT id, params FROM runs").fetchall():
                    key = json.loads(params).get("device_key")
                    if key:
                        conn.execute("UPDATE runs SET device_key = ? WHERE id = ?", (key, run_id))
            old = conn.execute("SELECT name FROM sqlite_master "
                               "WHERE type='table' AND name='ceilings'").fetchall()
            if old:  # schema 1 kept one row of ceilings per device: it becomes the first of a history
                for key, device, at, payload in conn.execute(
                        "SELECT device_key, device, measured_at, payload FROM ceilings").fetchall():
                    mode = "quick" if json.loads(payload).get("quick") else "full"
                    conn.execute("INSERT INTO ceilings_history (device_key, device, mode, measured_at, "
                                 "payload) VALUES (?,?,?,?,?)", (key, device, mode, at, payload))
                conn.execute("DROP TABLE ceilings")
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))

    # -- heartbeat ----------------------------------------------------------------------------
    def _track(self, run_id: int) -> None:
        with self._open_lock:
            self._open_runs.add(run_id)
            if self._beat is None or not self._beat.is_alive():
                self._beat = threading.Thread(target=_heartbeat, args=(weakref.ref(self),),
                                              name="workbench-store-heartbeat", daemon=True)
                self._beat.start()

    def _untrack(self, run_id: int) -> None:
        with self._open_lock:
            self._open_runs.discard(run_id)

    def beat(self) -> None:
        """Write the heartbeat of every run this store has open (the heartbeat thread calls it
        every :data:`HEARTBEAT_S` seconds)."""
        with self._open_lock:
            ids = list(self._open_runs)
        if ids:
            with self._tx() as conn:
                conn.executemany("UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                                 [(time.time(), i) for i in ids])

    # -- runs ---------------------------------------------------------------------------------
    def run(self, kind: str, params: dict | None = None, *, device=None, resume: int | None = None):
        """A context manager for one run's life (see the module docstring); yields a :class:`Run`.
        ``device``: the Runtime (or DeviceInfo, or a name) it runs on. ``resume``: the id of a
        stopped run to continue instead of starting one."""
        return _RunContext(self, kind, params, device, resume)

    def start_run(self, kind: str, params: dict | None = None, device=None) -> int:
        """Open a run of ``kind`` (e.g. ``"roofline"``, ``"prune"``); returns its id. Prefer
        :meth:`run`, which also closes it; a run opened here is ``running`` (with a heartbeat)
        until :meth:`finish_run`."""
        if not isinstance(kind, str) or not kind:
            raise InputError("kind", f"expected a non-empty string, got {kind!r}")
        try:
            text = json.dumps(params or {}, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError("params", f"must be JSON-serialisable: {exc}") from None
        name, key = _device_fields(device)
        now = time.time()
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO runs (kind, params, status, device, device_key, started_at, heartbeat_at, pid, "
                "host) VALUES (?,?,?,?,?,?,?,?,?)",
                (kind, text, "running", name, key, now, now, os.getpid(), socket.gethostname()),
            )
            run_id = int(cur.lastrowid)
        self._track(run_id)
        return run_id

    def reopen_run(self, run_id: int) -> None:
        """Mark a stopped (or lost) run ``running`` again, written by this process (a resume)."""
        rows = self._query("SELECT status FROM runs WHERE id = ?", (int(run_id),))
        if not rows:
            raise InputError("run_id", f"no run #{run_id}")
        with self._tx() as conn:
            conn.execute("UPDATE runs SET status = 'running', finished_at = NULL, error = NULL, "
                         "heartbeat_at = ?, pid = ?, host = ? WHERE id = ?",
                         (time.time(), os.getpid(), socket.gethostname(), int(run_id)))
        self._track(int(run_id))

    def log_metric(self, run_id: int, step: int, **values) -> None:
        """Record ``values`` at ``step``, in one transaction: numbers (None or NaN stored as
        NULL) or strings (kept as text). Logging the same name at the same step again replaces it."""
        if isinstance(step, bool) or not isinstance(step, (int,)) or step < 0:
            raise InputError("step", f"expected an integer >= 0, got {step!r}")
        if not values:
            raise InputError("values", "log_metric needs at least one name=value")
        rows = []
        now = time.time()
        for name, value in values.items():
            text = None
            if isinstance(value, str):
                text, value = value, None
            elif value is not None:
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise InputError(name, f"metric values must be numbers or text, got {value!r}") from None
                if math.isnan(value):
                    value = None
            rows.append((int(run_id), step, name, value, text, now))
        with self._tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO metrics (run_id, step, name, value, text, time) VALUES (?,?,?,?,?,?)",
                rows,
            )
            # a writer judged lost by a reader (no heartbeat for a while) was only slow: alive again
            conn.execute("UPDATE runs SET heartbeat_at = ?, status = 'running', finished_at = NULL "
                         "WHERE id = ? AND status IN ('running', 'lost')", (now, int(run_id)))

    def finish_run(self, run_id: int, status: str = "finished", *, error: str | None = None) -> None:
        """Set the run's final status (``finished``, ``stopped`` or ``failed``, with ``error``).
        ``"running"`` reopens it, as :meth:`reopen_run` does."""
        if status not in RUN_STATUSES or status == "lost":
            raise InputError("status", f"expected one of {RUN_STATUSES[:4]}, got {status!r}")
        if status == "running":
            self.reopen_run(run_id)
            return
        with self._tx() as conn:
            conn.execute("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                         (status, time.time(), error, int(run_id)))
        self._untrack(int(run_id))

    def _mark_lost(self, rows: list[dict]) -> None:
        """``running`` runs whose writer is gone become ``lost`` (in the rows and the file)."""
        now, here = time.time(), socket.gethostname()
        lost = []
        for rec in rows:
            if rec["status"] != "running" or rec["id"] in self._open_runs:
                continue
            dead = rec["host"] == here and rec["pid"] is not None and not _pid_alive(int(rec["pid"]))
            stale = (now - (rec["heartbeat_at"] or rec["started_at"])) > LOST_AFTER_S
            if dead or stale:
                rec["status"] = "lost"
                lost.append(rec["id"])
        if lost:
            with self._tx() as conn:
                conn.executemany("UPDATE runs SET status = 'lost', finished_at = COALESCE(heartbeat_at, "
                                 "started_at) WHERE id = ? AND status = 'running'", [(i,) for i in lost])

    def runs(self, kind: str | None = None, device=None, status: str | None = None) -> list[dict]:
        """Runs, newest first, each a dict (``params`` and ``tags`` decoded). ``device``: a
        Runtime, DeviceInfo or device key string; ``status`` one of :data:`RUN_STATUSES`."""
        sql = f"SELECT {', '.join(_RUN_KEYS)} FROM runs"
        where, args = [], []
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if device is not None:
            key = device if isinstance(device, str) else _device_fields(device)[1]
            where.append("device_key = ?")
            args.append(key)
        if where:
            sql += " WHERE " + " AND ".join(where)
        out = []
        for row in self._query(sql + " ORDER BY id DESC", tuple(args)):
            rec = dict(zip(_RUN_KEYS, row))
            rec["params"] = json.loads(rec["params"])
            rec["tags"] = json.loads(rec["tags"]) if rec["tags"] else []
            out.append(rec)
        self._mark_lost(out)
        if status is not None:
            if status not in RUN_STATUSES:
                raise InputError("status", f"expected one of {RUN_STATUSES}, got {status!r}")
            out = [r for r in out if r["status"] == status]
        return out

    def get_run(self, run_id: int) -> dict:
        """One run's record (as :meth:`runs` gives it); InputError for an unknown id."""
        rows = self._query(f"SELECT {', '.join(_RUN_KEYS)} FROM runs WHERE id = ?", (int(run_id),))
        if not rows:
            raise InputError("run_id", f"no run #{run_id}")
        rec = dict(zip(_RUN_KEYS, rows[0]))
        rec["params"] = json.loads(rec["params"])
        rec["tags"] = json.loads(rec["tags"]) if rec["tags"] else []
        self._mark_lost([rec])
        return rec

    def metrics(self, run_id: int) -> list[dict]:
        """One dict per step, ``{"step": s, name: value, ...}``, in step order."""
        rows = self._query(
            "SELECT step, name, value, text FROM metrics WHERE run_id = ? ORDER BY step, name",
            (int(run_id),),
        )
        by_step: dict[int, dict] = {}
        for step, name, value, text in rows:
            by_step.setdefault(step, {"step": step})[name] = text if text is not None else value
        return list(by_step.values())

    def annotate(self, run_id: int, *, name: str | None = None, tags: list[str] | None = None,
                 note: str | None = None) -> None:
        """Rename a run, set its tags or its note (each left as it is when None)."""
        self.get_run(run_id)
        if tags is not None and (not isinstance(tags, (list, tuple))
                                 or not all(isinstance(t, str) for t in tags)):
            raise InputError("tags", f"expected a list of strings, got {tags!r}")
        sets, args = [], []
        for col, value in (("name", name), ("tags", None if tags is None else json.dumps(list(tags))),
                           ("note", note)):
            if value is not None:
                sets.append(f"{col} = ?")
                args.append(value)
        if sets:
            with self._tx() as conn:
                conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*args, int(run_id)))

    def delete_run(self, run_id: int) -> None:
        """Delete a run and its metrics."""
        self.get_run(run_id)
        with self._tx() as conn:
            conn.execute("DELETE FROM metrics WHERE run_id = ?", (int(run_id),))
            conn.execute("DELETE FROM runs WHERE id = ?", (int(run_id),))
        self._untrack(int(run_id))

    # -- ceilings -----------------------------------------------------------------------------
    def save_ceilings(self, device_key: str, device: str, payload: dict, *, mode: str = "full",
                      noisy: bool = False) -> None:
        """Add one measurement of a device's ceilings to its history (never overwritten)."""
        if mode not in ("quick", "full"):
            raise InputError("mode", f"expected 'quick' or 'full', got {mode!r}")
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO ceilings_history (device_key, device, mode, measured_at, noisy, payload) "
                "VALUES (?,?,?,?,?,?)",
                (device_key, device, mode, time.time(), int(bool(noisy)), json.dumps(payload)),
            )

    def load_ceilings(self, device_key: str, *, mode: str | None = None,
                      accepted: bool = True) -> dict | None:
        """The newest ceilings of a device (in ``mode``, when given): by default the newest
        *accepted* one (not noisy), else the newest of any; None when none was measured."""
        rows = self.ceilings_history(device_key, mode=mode)
        for row in rows:
            if not accepted or not row["noisy"]:
                return row["payload"]
        return rows[0]["payload"] if rows else None

    def ceilings_history(self, device_key: str, *, mode: str | None = None) -> list[dict]:
        """Every measurement of a device's ceilings, newest first: ``{id, mode, measured_at,
        noisy, payload}``."""
        sql = "SELECT id, mode, measured_at, noisy, payload FROM ceilings_history WHERE device_key = ?"
        args: tuple = (device_key,)
        if mode is not None:
            sql += " AND mode = ?"
            args = (device_key, mode)
        return [{"id": i, "mode": m, "measured_at": at, "noisy": bool(nz), "payload": json.loads(p)}
                for i, m, at, nz, p in self._query(sql + " ORDER BY id DESC", args)]


def _heartbeat(ref: "weakref.ref[Store]") -> None:
    """The heartbeat thread of one store: beats while the store lives and has open runs."""
    while True:
        time.sleep(HEARTBEAT_S)
        store = ref()
        if store is None:
            return
        try:
            store.beat()
            if not store._open_runs:
                with store._open_lock:
                    if not store._open_runs:
                        store._beat = None
                        return
        except sqlite3.Error:
            pass  # a busy or closed file: the next beat tries again
        finally:
            del store


def resolve_store(store) -> Store | None:
    """The ``store=`` convention: None -> the default store, False -> None (no store), a Store
    -> itself."""
    if store is False:
        return None
    if store is None:
        return Store()
    if isinstance(store, Store):
        return store
    raise InputError("store", f"expected a Store, None (the default store) or False (none), got {store!r}")
