"""``QuantizationPanel``: calibrators, per-layer error and the quantization grid in a notebook.

A thin adapter over :mod:`workbench.quant.explore` and :mod:`workbench.viz.quant`: a layer
dropdown and a weights/inputs toggle redraw the histogram with the four calibrators' thresholds;
``run_grid()`` (the Run grid button) quantizes the model for every method x bits x granularity,
streaming each point into the chart and table as it finishes and into the store.
"""

from __future__ import annotations

import ipywidgets as widgets

from ..jobs import Job
from ..quant.explore import calibration_report, iter_grid
from ..runtime import get_runtime
from ..store import Store
from ..viz import CalibrationFigure, GridFigure, LayerErrorFigure
from .common import WidgetJob, figure_widget, model_and_data


class QuantizationPanel:
    """Quantization explorer for a trained model (default: an MLP trained on digits).

    >>> panel = QuantizationPanel(device="cpu")     # doctest: +SKIP
    >>> panel                                       # shows it
    >>> points = panel.run_grid(bits=(8, 4))        # same as pressing "Run grid"
    """

    def __init__(self, model=None, data=None, *, device=None, store=None, bits: int = 8,
                 calib_size: int = 512):
        self.rt = get_runtime(device)
        model, self.data = model_and_data(model, data)
        self.model, self.store = model, store if store is not None else Store()
        self.calib = self.data.x_train[:calib_size]
        self.points = []
        self.cal_fig = CalibrationFigure(height=280, width=520)
        self.err_fig = LayerErrorFigure(height=280, width=520)
        self.grid_fig = GridFigure(height=300, width=520)
        names = [n for n, _ in model.linear_layers()]
        self.layer = widgets.Dropdown(options=names, value=names[0], description="Layer")
        self.what = widgets.ToggleButtons(options=["weights", "inputs"], value="weights")
        self.bits = widgets.Dropdown(options=[8, 6, 4, 3, 2], value=bits, description="Bits")
        self.button = widgets.Button(description="Run grid", button_style="primary", icon="play")
        self.status = widgets.HTML()
        self.jobs = WidgetJob(self.status)
        self.progress = self.jobs.progress
        self.out = widgets.Output()
        for w in (self.layer, self.what):
            w.observe(lambda _: self._show_layer(), names="value")
        self.bits.observe(lambda _: self.recalibrate(), names="value")
        self.button.on_click(lambda _: self.run_grid())
        self.widget = widgets.VBox([
            widgets.HBox([self.layer, self.what, self.bits]),
            widgets.HBox([self.button, self.jobs.widgets(), self.status]),
            self.out,
        ])
        for fig in (self.cal_fig.figure, self.err_fig.figure, self.grid_fig.layout()):
            view = figure_widget(fig)
            if view is not None:
                self.out.append_display_data(view)
        self.recalibrate()

    def recalibrate(self) -> list:
        """Recompute the per-layer calibration view at the selected bit width."""
        self.report = calibration_report(self.model, self.calib, bits=self.bits.value)
        self.err_fig.set_layers(self.report, per_channel=True)
        self._show_layer()
        return self.report

    def _show_layer(self) -> None:
        layer = next(r for r in self.report if r.name == self.layer.value)
        self.cal_fig.set_layer(layer, activations=self.what.value == "inputs")
        t = ", ".join(f"{m} {v:.3g}" for m, v in layer.thresholds.items())
        self.status.value = f"layer <b>{layer.name}</b> thresholds at {self.bits.value} bits: {t}"

    def run_grid(self, methods=None, bits=(8, 4), per_channel=(True, False)) -> list:
        """Quantize for every cell, streaming points into the chart and table."""
        from ..quant.calibrate import METHODS

        methods = methods or METHODS
        total = len(methods) * len(bits) * len(per_channel)
        self.button.disabled = True
        self.grid_fig.clear()
        self.points = []

        def draw(points: list) -> None:
            self.points.extend(points)
            self.grid_fig.add_points(points)
            p = points[-1]
            self.status.value = (f"{p.method} {p.bits}-bit "
                                 f"{'per-channel' if p.per_channel else 'per-tensor'}: "
                                 f"accuracy {p.accuracy:.4f}, {p.nbytes:,} bytes")

        try:
            self.jobs.run(Job(lambda: iter_grid(self.model, self.data, methods=methods, bits=bits,
                                                per_channel=per_channel, rt=self.rt, store=self.store),
                              total=total, label="grid"), draw, label="Grid")
        finally:
            self.button.disabled = False
        return self.points

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
