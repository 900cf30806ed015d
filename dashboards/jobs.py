"""The dashboard's side of the job runner (:mod:`workbench.jobs`): every long job of every page.

:class:`PageJobs` belongs to one page. ``await jobs.run(job, draw, label=...)`` starts a
:class:`~workbench.jobs.Job`, shows its progress (a bar, percent and ETA), and hands the items the
job produced to ``draw(items)`` on the server's event loop, *only once the browser has drawn the
previous batch*: the page holds a tiny :class:`DrawAck` element whose script echoes a counter
back to the server after the browser applied the updates sent before it. So when the browser is
slower than the job (a 2-core laptop, a throttled tab) at most one redraw is in flight, newer
items are merged into the next one, and a click (Stop, a slider) is never queued behind a
backlog of figure updates. After each acknowledged redraw the browser is left idle for as long
as that redraw took (its round trip, at most a second), so a slow browser keeps time free for
the user's input. An error is reported once, on the page's status line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

import panel as pn
import param

from workbench.jobs import Job, JobSlot

log = logging.getLogger(__name__)


class DrawAck(pn.reactive.ReactiveHTML):
    """An invisible element: each time the server bumps ``sent``, the browser sets ``acked`` to
    it, after applying every update that came before (messages are applied in order)."""

    sent = param.Integer(default=0)
    acked = param.Integer(default=0)

    _template = '<div id="ack" style="display: none"></div>'
    _scripts = {"sent": "data.acked = data.sent"}


class PageJobs(JobSlot):
    """Runs a page's jobs: one at a time, with progress, acknowledged redraws and Stop.

    ``progress`` and ``status`` are the page's widgets; ``interval`` the fastest redraw pace (s);
    ``ack_timeout`` how long a redraw waits for the browser before the next one goes anyway
    (a tab in the background may not run scripts at all)."""

    def __init__(self, status: pn.pane.Markdown, progress: pn.indicators.Progress | None = None,
                 *, interval: float = 0.1, ack_timeout: float = 5.0):
        self.status = status
        self.progress = progress or pn.indicators.Progress(value=0, max=1, width=240, visible=False)
        self.eta = pn.pane.Markdown("", css_classes=["wb-eta"], margin=(8, 5))
        self.ack = DrawAck(width=0, height=0, margin=0)
        self.interval, self.ack_timeout = interval, ack_timeout
        self.max_idle = 1.0  # s: the longest pause left to the browser between redraws
        self.job: Job | None = None
        self._sent_at = 0.0
        self._acked_at = 0.0
        self._rtt = 0.0  # the last redraw's round trip: sent to acknowledged
        self.ack.param.watch(self._on_ack, "acked")

    def _on_ack(self, event) -> None:
        now = time.monotonic()
        if event.new >= self.ack.sent:
            self._rtt, self._acked_at = now - self._sent_at, now

    def _browser_ready(self) -> bool:
        if not self.ack._models:  # not shown in any browser (a test, a notebook): nobody to wait for
            return True
        now = time.monotonic()
        if self.ack.acked >= self.ack.sent:  # drawn; now leave it as long idle as drawing took
            return now - self._acked_at >= min(self._rtt, self.max_idle)
        return now - self._sent_at > self.ack_timeout

    def _show_progress(self, job: Job) -> None:
        p = job.progress
        if p.total:
            self.progress.max = max(int(p.total), 1)
            self.progress.value = min(int(p.done), self.progress.max)
        else:
            self.progress.value = None  # an indeterminate bar
        self.eta.object = p.text()

    async def run(self, job: Job, draw: Callable[[list], None] | None = None, *, label: str | None = None,
                  on_end: Callable[[Job], None] | None = None) -> Job:
        """Run ``job`` to its end (see the module docstring); ``on_end(job)`` runs on the event
        loop once it has ended, before the error (if any) is shown. Returns the job."""
        if self.busy:
            raise RuntimeError("a job is already running on this page")
        label = label or job.label
        self.job = job
        self.progress.visible = True
        self.progress.value, self.progress.max = 0, 1
        job.start()
        try:
            while True:
                ended = job.ended
                if draw is None:
                    job.take()  # nothing to draw: progress only
                elif job.pending and self._browser_ready():
                    items = job.take()
                    with pn.io.unlocked():
                        draw(items)
                    self.ack.sent += 1
                    self._sent_at = time.monotonic()
                self._show_progress(job)
                if ended and not job.pending:
                    break
                await asyncio.sleep(self.interval)
        finally:
            self.progress.visible = False
            self.eta.object = ""
        if on_end is not None:
            on_end(job)
        if job.error is not None:
            err = job.error
            self.status.object = f"**{label} failed:** {type(err).__name__}: {err}"
            log.error("%s failed", label, exc_info=(type(err), err, err.__traceback__))
        return job

    def widgets(self) -> pn.Row:
        """The progress bar, its percent and ETA, and the acknowledgement element, in a row."""
        return pn.Row(self.progress, self.eta, self.ack, margin=0)
