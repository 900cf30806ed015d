"""Pieces the notebook panels share: the default model, figure views, the job adapter."""

from __future__ import annotations

from typing import Callable

import ipywidgets as widgets

from ..data import digits
from ..jobs import Job, JobSlot
from ..nn import MLP, train
from ..recipes import recipe


def model_and_data(model=None, data=None):
    """``(model, data)``: the given ones, else the digits data and an MLP trained on it with its
    recipe's quick run on NumPy (about a second), which is what a panel opened with no arguments
    shows."""
    data = data or digits()
    if model is None:
        model = MLP()
        r = recipe("MLP")
        train(model, data, epochs=r.quick_epochs, lr=r.lr, rt="numpy")
    return model, data


def figure_widget(fig):
    """The Bokeh figure as a live widget (jupyter_bokeh), or None where it is not installed."""
    try:
        from jupyter_bokeh.widgets import BokehModel
    except ImportError:  # pragma: no cover - jupyter_bokeh is a dependency
        return None
    return BokehModel(fig)


class WidgetJob(JobSlot):
    """The notebook side of the job runner (:mod:`workbench.jobs`): an ipywidgets progress bar
    with percent and ETA, items drawn in batches, Stop, and the error raised once.

    :meth:`run` blocks the calling thread until the job ends (a panel method called from code
    returns its result); the panel's buttons call it from a background thread so Stop and the
    sliders stay usable.
    """

    def __init__(self, status: widgets.HTML | None = None):
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout={"width": "220px"})
        self.eta = widgets.Label("")
        self.status = status or widgets.HTML()
        self.job: Job | None = None

    def run(self, job: Job, draw: Callable[[list], None] | None = None, *, label: str | None = None,
            interval: float = 0.05) -> Job:
        """Run ``job`` to its end, drawing each batch of items; re-raises its error."""
        self.job = job
        job.start()
        while not job.ended or job.pending:
            job.wait(interval)
            items = job.take()
            if items and draw is not None:
                draw(items)
            p = job.progress
            if p.total:
                self.progress.max, self.progress.value = max(int(p.total), 1), min(int(p.done), int(p.total))
            self.eta.value = p.text()
        self.eta.value = ""
        if job.error is not None:
            self.status.value = f"<b>{label or job.label} failed:</b> {type(job.error).__name__}: {job.error}"
            raise job.error
        return job

    def widgets(self) -> widgets.HBox:
        return widgets.HBox([self.progress, self.eta])
