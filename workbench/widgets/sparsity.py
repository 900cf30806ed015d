"""``SparsityPanel``: gradual pruning, per-layer sparsity and format latency in a notebook.

A thin adapter over :class:`~workbench.sparse.GradualPruner` and :mod:`workbench.viz.sparse`.
``prune()`` (the Start button) prunes the model step by step, streaming each step into the
accuracy-vs-sparsity curve, the per-layer bars and the dense / CSR / block-sparse latency chart
(crossover marked) and into the store. The buttons run in a background thread so Stop can be
pressed while it runs; ``stop()`` and ``resume()`` do the same from code. ``sweep()`` measures the
crossover on a larger matrix.
"""

from __future__ import annotations

import threading

import ipywidgets as widgets

from ..jobs import Job
from ..runtime import get_runtime
from ..sparse import GradualPruner, crossover_sweep
from ..store import Store
from ..viz import FormatLatencyFigure, LayerSparsityFigure, PruneCurveFigure
from .common import WidgetJob, figure_widget, model_and_data


class SparsityPanel:
    """Gradual pruning explorer for a trained model (default: an MLP trained on digits).

    >>> panel = SparsityPanel(device="cpu")                 # doctest: +SKIP
    >>> panel                                               # shows it
    >>> steps = panel.prune(final_sparsity=0.9, n_steps=8)  # same as pressing Start
    """

    def __init__(self, model=None, data=None, *, device=None, store=None):
        self.rt = get_runtime(device)
        model, self.data = model_and_data(model, data)
        self.model, self.store = model, store if store is not None else Store()
        self.pruner: GradualPruner | None = None
        self.curve = PruneCurveFigure(height=300, width=520)
        self.latency = FormatLatencyFigure(height=300, width=600, title="Largest layer")
        self.layers = LayerSparsityFigure(height=260, width=520)
        self.sweep_fig = FormatLatencyFigure(height=260, width=600, title="Sweep")
        self.final = widgets.FloatSlider(value=0.9, min=0.5, max=0.98, step=0.01,
                                         description="Final sparsity")
        self.steps = widgets.IntText(value=8, description="Steps")
        self.epochs = widgets.IntText(value=3, description="Fine-tune ep.")
        self.start = widgets.Button(description="Start", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="warning", icon="stop",
                                          disabled=True)
        self.resume_button = widgets.Button(description="Resume", button_style="success", disabled=True)
        self.status = widgets.HTML()
        self.jobs = WidgetJob(self.status)
        self.progress = self.jobs.progress
        self.out = widgets.Output()
        self.start.on_click(lambda _: self._background(lambda: self.prune(
            self.final.value, self.steps.value, finetune_epochs=self.epochs.value)))
        self.stop_button.on_click(lambda _: self.stop())
        self.resume_button.on_click(lambda _: self._background(self.resume))
        self.widget = widgets.VBox([
            widgets.HBox([self.final, self.steps, self.epochs]),
            widgets.HBox([self.start, self.stop_button, self.resume_button, self.jobs.widgets()]),
            self.status, self.out,
        ])
        for fig in (self.curve.figure, self.latency.figure, self.layers.figure, self.sweep_fig.figure):
            view = figure_widget(fig)
            if view is not None:
                self.out.append_display_data(view)

    def _background(self, fn) -> None:
        threading.Thread(target=fn, daemon=True).start()

    def prune(self, final_sparsity: float = 0.9, n_steps: int = 8, *, finetune_epochs: int = 3,
              scope: str = "global", **kwargs) -> list:
        """Prune a copy of the model gradually (a new :class:`GradualPruner`); returns its steps."""
        model = self.model.copy()  # the panel's model stays dense: each run starts from it
        self.pruner = GradualPruner(model, self.data, final_sparsity=final_sparsity, n_steps=n_steps,
                                    finetune_epochs=finetune_epochs, scope=scope, rt=self.rt,
                                    store=self.store, **kwargs)
        self.curve.clear()
        self.latency.clear()
        self.layers.clear()
        return self.resume()

    def resume(self) -> list:
        """Go on with the current run (after :meth:`stop`); returns all its steps so far."""
        pruner = self.pruner
        if pruner is None:
            raise RuntimeError("nothing to resume: call prune() first")
        self.start.disabled, self.resume_button.disabled, self.stop_button.disabled = True, True, False

        def draw(steps: list) -> None:
            for step in steps:
                self.curve.add_step(step)
                self.latency.add_step(step)
            step = steps[-1]
            self.layers.set_step(step)
            self.status.value = (f"step {step.step}/{pruner.n_steps}: sparsity {step.sparsity:.3f}, "
                                 f"accuracy {step.accuracy:.4f}")

        try:
            self.jobs.run(Job(pruner.run, total=lambda s: (s.step + 1, pruner.n_steps + 1), stop=pruner.stop,
                              label="pruning"), draw, label="Pruning")
        finally:
            self.start.disabled, self.stop_button.disabled = False, True
            self.resume_button.disabled = pruner.done
        base, last = pruner.history_[0], pruner.history_[-1]
        self.status.value = (f"{'finished' if pruner.done else 'stopped'}: sparsity {last.sparsity:.3f}, "
                             f"accuracy {last.accuracy:.4f} ({100 * (last.accuracy - base.accuracy):+.2f} "
                             f"points from dense)")
        return list(pruner.history_)

    def stop(self) -> None:
        """End the run soon (from any thread): between steps, or inside a step's fine-tuning."""
        self.jobs.stop()

    def sweep(self, m: int = 512, k: int = 512, n: int = 64, **kwargs) -> dict:
        """:func:`~workbench.sparse.crossover_sweep` on an (m, k) x (k, n) product, drawn."""
        result = crossover_sweep(m, k, n, rt=self.rt, **kwargs)
        self.sweep_fig.title = f"Sweep {m}x{k} · {k}x{n}"
        self.sweep_fig.set_rows(result["points"])
        return result

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
