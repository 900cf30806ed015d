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
        s.log_metric(run, 0, acc="high")
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
    assert s.runs("killed")[0]["status"] == "running"  # never finished: visibly so
    s.finish_run(run, "failed")  # and still writable


def test_ceilings_table(tmp_path):
    s = Store(tmp_path / "wb.db")
    assert s.load_ceilings("dev|x|1") is None
    s.save_ceilings("dev|x|1", "x", {"bandwidth_gbs": 1.0})
    s.save_ceilings("dev|x|1", "x", {"bandwidth_gbs": 2.0})
    assert s.load_ceilings("dev|x|1") == {"bandwidth_gbs": 2.0}
