"""The experiment store: round trips, bad input, concurrent readers, and no committed metric
lost when a writer is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from workbench.errors import InputError
from workbench.store import Store


def test_runs_and_metrics_round_trip(tmp_path):
    s = Store(tmp_path / "wb.db")
    run = s.start_run("prune", {"sparsity": 0.9, "layers": [1, 2]}, device="dev")
    s.log_metric(run, 0, accuracy=0.5, loss=2.0)
    s.log_metric(run, 1, accuracy=0.75, loss=float("nan"))
    s.log_metric(run, 1, accuracy=0.8)  # same step and name: replaced
    s.finish_run(run, "stopped")
    other = s.start_run("roofline")
    (rec,) = s.runs("prune")
    assert rec["params"] == {"sparsity": 0.9, "layers": [1, 2]} and rec["status"] == "stopped"
    assert rec["device"] == "dev" and rec["finished_at"] >= rec["started_at"]
    assert [r["id"] for r in s.runs()] == [other, run]  # newest first
    assert s.metrics(run) == [{"step": 0, "accuracy": 0.5, "loss": 2.0},
                              {"step": 1, "accuracy": 0.8, "loss": None}]


def test_default_path_is_under_workbench_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "h"))
    s = Store()
    assert s.path == str(tmp_path / "h" / "workbench.db")
    assert sqlite3.connect(s.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_bad_input(tmp_path):
    s = Store(tmp_path / "wb.db")
    run = s.start_run("x")
    with pytest.raises(InputError, match="kind"):
        s.start_run("")
    with pytest.raises(InputError, match="params"):
        s.start_run("x", {"f": object()})
    with pytest.raises(InputError, match="step"):
        s.log_metric(run, -1, a=1)
    with pytest.raises(InputError, match="acc"):
        s.log_metric(run, 0, acc=[1, 2])
    with pytest.raises(InputError, match="values"):
        s.log_metric(run, 0)
    with pytest.raises(InputError, match="status"):
        s.finish_run(run, "exploded")


def test_in_memory_store_is_shared_between_threads():
    s = Store(":memory:")
    run = s.start_run("x")
    t = threading.Thread(target=lambda: s.log_metric(run, 0, v=1.0))
    t.start()
    t.join()
    assert s.metrics(run) == [{"step": 0, "v": 1.0}]


def test_readers_see_a_consistent_store_while_one_writer_writes(tmp_path):
    path = tmp_path / "wb.db"
    writer = Store(path)
    run = writer.start_run("stream")
    stop = threading.Event()
    errors = []

    def read():
        reader = Store(path)
        last = 0
        while not stop.is_set():
            try:
                n = len(reader.metrics(run))
                assert n >= last  # never goes backwards
                last = n
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for r in readers:
        r.start()
    for step in range(200):
        writer.log_metric(run, step, value=step * 0.5)
    stop.set()
    for r in readers:
        r.join()
    assert not errors
    assert len(Store(path).metrics(run)) == 200


WRITER = """
import sys
from workbench.store import Store
s = Store(sys.argv[1])
run = s.start_run("killed", {"n": 100000})
print("run", run, flush=True)
for step in range(100000):
    s.log_metric(run, step, loss=1.0 / (step + 1), accuracy=step / 100000)
    print(step, flush=True)
"""


def test_sigkill_loses_no_committed_metric(tmp_path):
    path = tmp_path / "wb.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True)
    run = int(proc.stdout.readline().split()[1])
    last = -1
    deadline = time.time() + 60
    while last < 300 and time.time() < deadline:
        last = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream, no clean-up of any kind
    proc.wait(timeout=30)
    assert last >= 300
    s = Store(path)
    assert s._query("PRAGMA integrity_check")[0][0] == "ok"
    metrics = s.metrics(run)
    # Every step reported as committed is there, complete, and in order.
    assert len(metrics) >= last + 1
    assert [m["step"] for m in metrics] == list(range(len(metrics)))
    assert all(set(m) == {"step", "loss", "accuracy"} for m in metrics)
    assert s.runs("killed")[0]["status"] == "lost"  # its writer died: never "running" forever
    assert s.runs(status="lost")[0]["id"] == run
    s.finish_run(run, "failed")  # and still writable


def test_ceilings_are_a_history_per_mode(tmp_path):
    s = Store(tmp_path / "wb.db")
    assert s.load_ceilings("dev|x|1") is None
    s.save_ceilings("dev|x|1", "x", {"bandwidth_gbs": 1.0})
    s.save_ceilings("dev|x|1", "x", {"bandwidth_gbs": 2.0})
    s.save_ceilings("dev|x|1", "x", {"bandwidth_gbs": 9.0}, mode="quick")
    s.save_ceilings("dev|x|1", "x", {"bandwidth_gbs": 3.0}, noisy=True)
    assert s.load_ceilings("dev|x|1", mode="full") == {"bandwidth_gbs": 2.0}  # the noisy one is not accepted
    assert s.load_ceilings("dev|x|1", mode="full", accepted=False) == {"bandwidth_gbs": 3.0}
    assert s.load_ceilings("dev|x|1", mode="quick") == {"bandwidth_gbs": 9.0}
    assert [h["payload"]["bandwidth_gbs"] for h in s.ceilings_history("dev|x|1")] == [3.0, 9.0, 2.0, 1.0]


class _Dev:  # what store.run reads of a runtime
    class info:
        name, key = "Dev", "plat|Dev|1.0"


def test_run_lifecycle_follows_how_the_block_ends(tmp_path):
    s = Store(tmp_path / "wb.db")
    with s.run("a", {"x": 1}, device=_Dev) as run:
        run.log(0, loss=1.0, method="kl")
    assert run.status == "finished" and s.get_run(run.id)["device_key"] == "plat|Dev|1.0"
    assert s.metrics(run.id) == [{"step": 0, "loss": 1.0, "method": "kl"}]  # text metrics too
    with s.run("a") as run:
        run.stop()
    assert s.get_run(run.id)["status"] == "stopped"
    with pytest.raises(ZeroDivisionError):
        with s.run("a") as run:
            raise ZeroDivisionError("1 / 0")
    rec = s.get_run(run.id)
    assert rec["status"] == "failed" and "ZeroDivisionError" in rec["error"]
    from workbench.store import StopRun

    with s.run("a") as run:
        raise StopRun()  # swallowed: a stop, not an error
    assert s.get_run(run.id)["status"] == "stopped"

    def job():
        with s.run("gen") as run:
            for step in range(100):
                run.log(step, v=step)
                yield step

    gen = job()
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()  # a consumer that went away
    (rec,) = s.runs("gen")
    assert rec["status"] == "stopped" and len(s.metrics(rec["id"])) == 3
    with s.run("gen", resume=rec["id"]) as again:
        again.log(3, v=3)
    assert again.id == rec["id"] and s.get_run(rec["id"])["status"] == "finished"
    assert [m["step"] for m in s.metrics(rec["id"])] == [0, 1, 2, 3]
    assert [r["id"] for r in s.runs(device="plat|Dev|1.0")] == [s.runs("a")[-1]["id"]]


def test_a_run_without_heartbeat_is_lost(tmp_path, monkeypatch):
    import workbench.store as store_mod

    s = Store(tmp_path / "wb.db")
    run = s.start_run("x")
    other = Store(tmp_path / "wb.db")  # another reader of the file, e.g. the dashboard
    assert other.get_run(run)["status"] == "running"  # its heartbeat is fresh
    monkeypatch.setattr(store_mod, "LOST_AFTER_S", -1.0)
    assert other.get_run(run)["status"] == "lost"
    s.log_metric(run, 0, v=1.0)  # a writer that was only slow, not dead: its next step revives the run
    monkeypatch.setattr(store_mod, "LOST_AFTER_S", 60.0)
    assert other.get_run(run)["status"] == "running"


def test_heartbeat_keeps_a_long_step_alive(tmp_path, monkeypatch):
    import workbench.store as store_mod

    monkeypatch.setattr(store_mod, "HEARTBEAT_S", 0.05)
    s = Store(tmp_path / "wb.db")
    run = s.start_run("slow")
    first = s.get_run(run)["heartbeat_at"]
    deadline = time.time() + 10
    while s.get_run(run)["heartbeat_at"] == first and time.time() < deadline:
        time.sleep(0.05)
    assert s.get_run(run)["heartbeat_at"] > first  # beats with no metric logged
    s.finish_run(run)


def test_a_schema_1_file_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, params TEXT NOT NULL,
            status TEXT NOT NULL, device TEXT, started_at REAL NOT NULL, finished_at REAL);
        CREATE TABLE metrics (run_id INTEGER NOT NULL, step INTEGER NOT NULL, name TEXT NOT NULL,
            value REAL, time REAL NOT NULL, PRIMARY KEY (run_id, step, name));
        CREATE TABLE ceilings (device_key TEXT PRIMARY KEY, device TEXT NOT NULL, measured_at REAL NOT NULL,
            payload TEXT NOT NULL);
        INSERT INTO runs VALUES (1, 'prune', '{"device_key": "k|d|1"}', 'finished', 'd', 1.0, 2.0);
        INSERT INTO metrics VALUES (1, 0, 'accuracy', 0.9, 1.5);
        INSERT INTO ceilings VALUES ('k|d|1', 'd', 1.0, '{"quick": true, "bandwidth_gbs": 5.0}');
    """)
    conn.commit()
    conn.close()
    s = Store(path)
    (rec,) = s.runs(device="k|d|1")
    assert rec["status"] == "finished" and s.metrics(1) == [{"step": 0, "accuracy": 0.9}]
    assert s.load_ceilings("k|d|1", mode="quick") == {"quick": True, "bandwidth_gbs": 5.0}
    assert s.load_ceilings("k|d|1", mode="full") is None
