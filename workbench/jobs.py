"""One job runner for every long job a UI starts: a library generator in a worker thread.

The library's long jobs (gradual pruning, live SNN runs, training, quantization grids, ceilings,
sweeps) are generators that log to the store and yield what a UI shows. A :class:`Job` runs one
in a worker thread and hands its items to whoever draws them, the way every front-end needs:

* **streaming without a backlog**: items wait in a queue that the UI takes *all at once*
  (:meth:`Job.take`), so one redraw covers everything produced since the last, however slowly
  the page draws; the producer never waits for the page;
* **progress**: ``done``/``total`` and an ETA from the rate so far (:attr:`Job.progress`);
* **Stop / Continue**: :meth:`Job.stop` asks the job to end after the current item (and calls the
  library's own ``stop`` hook, so a wait inside the generator ends at once); the worker then
  closes the generator, which ends its store run as ``stopped``. Continue is a new Job on the
  library object that goes on;
* **one error report**: an exception ends the job as ``failed`` with :attr:`Job.error` set; the
  UI shows it once.

Front-ends adapt it: :class:`workbench.dashboards.jobs.PageJobs` (a progress bar with percent and
ETA, redraws the browser has acknowledged), :func:`run_with_tqdm` (the CLI),
:class:`workbench.widgets.common.WidgetJob` (an ipywidgets progress bar).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

STATES = ("new", "running", "finished", "stopped", "failed")


@dataclass
class Progress:
    """How far a job is: ``done`` of ``total`` items (``total`` None when unknown), ``elapsed_s``
    and the ETA in seconds from the mean rate so far (None when unknown)."""

    done: int
    total: int | None
    elapsed_s: float

    @property
    def fraction(self) -> float | None:
        return None if not self.total else min(1.0, self.done / self.total)

    @property
    def eta_s(self) -> float | None:
        if not self.total or not self.done:
            return None
        return max(0.0, self.elapsed_s / self.done * (self.total - self.done))

    def text(self) -> str:
        """``"42% · ETA 12 s"`` (or ``"7 done · 3.1 s"`` without a total)."""
        if self.fraction is None:
            return f"{self.done} done · {self.elapsed_s:.1f} s"
        eta = self.eta_s
        return f"{100 * self.fraction:.0f}%" + ("" if eta is None else f" · ETA {_seconds(eta)}")


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


class Job:
    """A library generator run in a worker thread (see the module docstring).

    ``make()`` returns the generator (it is called in the worker, so building a large network
    does not block the caller). ``total``: items expected (for progress), or a callable of an
    item giving ``(done, total)``. ``stop``: the library's stop hook, called by :meth:`stop`.
    ``label``: what the job is, for messages.
    """

    def __init__(self, make: Callable[[], Iterable[Any]], *, total: int | Callable | None = None,
                 stop: Callable[[], None] | None = None, label: str = "job"):
        self.make, self.total, self._stop_hook, self.label = make, total, stop, label
        self.state = "new"
        self.error: BaseException | None = None
        self.result: Any = None  # the generator's return value, when it has one
        self._items: deque = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._count = 0
        self._progress = (0, total if isinstance(total, int) else None)
        self._t0 = 0.0
        self._t_end: float | None = None
        self._thread: threading.Thread | None = None
        self._callback: Callable | None = None

    @classmethod
    def from_callback(cls, run: Callable[[Callable[[Any], bool]], Any], **kwargs) -> "Job":
        """A job around a callback-style library function (``nn.train(..., on_step=...)``):
        ``run(emit)`` is called in the worker; each ``emit(item)`` queues an item and returns
        False once a stop was asked for (``on_step`` returning False stops ``train``)."""
        job = cls(lambda: iter(()), **kwargs)
        job._callback = run
        return job

    def _emit(self, item) -> bool:
        self._push(item)
        return not self._stop.is_set()

    def _push(self, item) -> None:
        self._count += 1
        if callable(self.total):
            self._progress = tuple(self.total(item))
        else:
            self._progress = (self._count, self._progress[1])
        with self._lock:
            self._items.append(item)

    # -- control ------------------------------------------------------------------------------
    def start(self) -> "Job":
        if self.state != "new":
            raise RuntimeError(f"{self.label}: a job runs once; make a new one to continue")
        self.state = "running"
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._work, name=f"workbench-job-{self.label}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End after the current item (from any thread); the job's state becomes ``stopped``."""
        self._stop.set()
        if self._stop_hook is not None:
            self._stop_hook()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended; True when it has."""
        return self._done.wait(timeout)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def ended(self) -> bool:
        return self._done.is_set()

    # -- items --------------------------------------------------------------------------------
    def take(self) -> list:
        """Every item produced since the last call (oldest first), removed from the queue."""
        with self._lock:
            out = list(self._items)
            self._items.clear()
        return out

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def progress(self) -> Progress:
        end = self._t_end if self._t_end is not None else time.perf_counter()
        done, total = self._progress
        return Progress(done, total, (end - self._t0) if self._t0 else 0.0)

    # -- the worker ---------------------------------------------------------------------------
    def _work(self) -> None:
        gen = None
        try:
            if self._callback is not None:
                self.result = self._callback(self._emit)
            else:
                gen = iter(self.make())
                while not self._stop.is_set():
                    try:
                        item = next(gen)
                    except StopIteration as end:
                        self.result = end.value
                        break
                    self._push(item)
            self.state = "stopped" if self._stop.is_set() else "finished"
        except BaseException as exc:  # reported once, through .error; the thread never dies loudly
            self.error = exc
            self.state = "failed"
        finally:
            if gen is not None and hasattr(gen, "close"):
                try:
                    gen.close()  # a stopped generator ends its store run as "stopped"
                except Exception as exc:  # a clean-up error is still an error to report
                    if self.error is None:
                        self.error, self.state = exc, "failed"
            self._t_end = time.perf_counter()
            self._done.set()


class JobSlot:
    """What every front-end of the runner holds: the one job it runs at a time (``job``), whether
    it is still running (``busy``) and Stop (``stop``). The page's and the widgets' runners add
    their own progress display on top."""

    job: Job | None = None

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.ended

    def stop(self) -> None:
        """Ask the running job to stop after its current item."""
        if self.job is not None:
            self.job.stop()


def run_with_tqdm(job: Job, on_item: Callable[[Any], None] | None = None, *, interval: float = 0.1,
                  desc: str | None = None) -> Job:
    """Run ``job`` to its end in a terminal with a tqdm progress bar, calling ``on_item`` for
    each item in order; Ctrl-C stops the job (its store run ends ``stopped``). Returns the job."""
    from tqdm import tqdm

    total = job.total if isinstance(job.total, int) else None
    bar = tqdm(total=total, desc=desc or job.label, unit="step", leave=False)
    job.start()
    try:
        while not job.ended or job.pending:
            job.wait(interval)
            for item in job.take():
                if on_item is not None:
                    on_item(item)
            done, tot = job.progress.done, job.progress.total
            if tot is not None and bar.total != tot:
                bar.total = tot
            bar.update(done - bar.n)
    except KeyboardInterrupt:
        job.stop()
        job.wait()
    finally:
        bar.close()
    return job


def iterate(job: Job, interval: float = 0.05) -> Iterator[Any]:
    """Run ``job`` and yield its items in order on the calling thread (for scripts and tests)."""
    job.start()
    while not job.ended or job.pending:
        job.wait(interval)
        yield from job.take()
