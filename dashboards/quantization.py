"""The *Quantization* page: train a digits model, compare the four calibrators on each layer, and
fill the method x bits x granularity grid of accuracy, size and measured INT-vs-FP32 latency on
the session's device, point by point.

Training, calibration and every grid cell run in a worker thread; the page updates between them.
Grid points go to the store as they finish, so the last grid of this device is shown on load.
"""

from __future__ import annotations

import panel as pn

from workbench.data import digits
from workbench.jobs import Job
from workbench.nn import MODELS, train
from workbench.quant.explore import calibration_report, grid_cells, iter_grid, load_grid
from workbench.recipes import RECIPES, recipe
from workbench.viz import CalibrationFigure, GridFigure, LayerErrorFigure

from .jobs import PageJobs
from .session import Session


class QuantizationPage(pn.viewable.Viewer):
    def __init__(self, session: Session, **params):
        super().__init__(**params)
        self.session = session
        self.data = digits()
        self.model = None
        self.report = []
        self.model_select = pn.widgets.Select(label="Model", options=list(RECIPES), value="MLP", width=160)
        self.train_button = pn.widgets.Button(label="Train", color="primary", width=110)
        self.bits = pn.widgets.Select(label="Calibration bits", options=[8, 6, 4, 3, 2], value=8, width=130)
        self.layer = pn.widgets.Select(label="Layer", options=[], width=140)
        self.what = pn.widgets.RadioButtonGroup(options=["weights", "inputs"], value="weights")
        self.grid_button = pn.widgets.Button(label="Run grid", color="primary", width=110, disabled=True)
        self.status = pn.pane.Markdown("", css_classes=["wb-status"])
        self.jobs = PageJobs(self.status)
        self.cal_fig = CalibrationFigure(height=300, width=560)
        self.err_fig = LayerErrorFigure(height=300, width=560)
        self.grid_fig = GridFigure(height=320, width=560)
        self.train_button.on_click(self._on_train)
        self.grid_button.on_click(self._on_grid)
        self.layer.param.watch(lambda _: self._show_layer(), "value")
        self.what.param.watch(lambda _: self._show_layer(), "value")
        self.bits.param.watch(self._on_bits, "value")
        session.param.watch(lambda _: self._load_grid(), "rt")
        self._load_grid()
        self.status.object = "Press **Train** to train the model on digits, then **Run grid**."

    def _load_grid(self) -> None:
        points = load_grid(self.session.rt, self.session.store)
        with pn.io.unlocked():
            self.grid_fig.clear()
            self.grid_fig.add_points(points)

    def _show_layer(self) -> None:
        layer = next((r for r in self.report if r.name == self.layer.value), None)
        if layer is None:
            return
        with pn.io.unlocked():
            self.cal_fig.set_layer(layer, activations=self.what.value == "inputs")

    def _busy(self, busy: bool) -> None:
        self.train_button.disabled = busy
        self.grid_button.disabled = busy or self.model is None

    async def _calibrate(self) -> bool:
        """Calibrate every layer on the page's job runner (progress, one error report); returns
        whether it finished."""
        model, bits = self.model, self.bits.value
        self.status.object = f"Calibrating every layer at {bits} bits with the four methods ..."
        job = Job.from_callback(lambda emit: calibration_report(model, self.data.x_train[:512], bits=bits),
                                total=1, label="calibration")
        await self.jobs.run(job, label="Calibration")
        if job.state != "finished":
            return False
        self.report = job.result
        with pn.io.unlocked():
            self.err_fig.set_layers(self.report, per_channel=True)
        names = [r.name for r in self.report]
        if list(self.layer.options) != names:
            self.layer.options = names
            self.layer.value = names[0]
        self._show_layer()
        return True

    async def _on_train(self, _event=None) -> None:
        if self.jobs.busy:
            return
        rt, kind = self.session.rt, self.model_select.value
        epochs, lr = recipe(kind).quick_epochs, recipe(kind).lr
        self._busy(True)
        try:
            model = MODELS[kind]()
            epoch_records = []

            def draw(records: list) -> None:
                epoch_records.extend(r for r in records if r.get("end_of_epoch"))
                if epoch_records:
                    self.status.object = (f"Training **{kind}** on {rt.name}: epoch "
                                          f"{len(epoch_records)}/{epochs}, "
                                          f"test accuracy {epoch_records[-1].get('test_accuracy', 0):.4f}")

            job = Job.from_callback(lambda emit: train(model, self.data, epochs=epochs, lr=lr, rt=rt,
                                                       on_step=emit),
                                    total=lambda rec: (rec["epoch"] + (1 if rec.get("end_of_epoch") else 0),
                                                       epochs),
                                    label="training")
            await self.jobs.run(job, draw, label="Training")
            if job.state != "finished":
                return
            self.model = model
            if not await self._calibrate():
                return
            self.status.object = (f"**{kind}** trained on {rt.name}: test accuracy "
                                  f"{epoch_records[-1]['test_accuracy']:.4f}. Pick a layer, or **Run grid**.")
        finally:
            self._busy(False)

    async def _on_bits(self, _event=None) -> None:
        if self.model is None or self.jobs.busy:  # a running job's thresholds follow its own bits
            return
        self._busy(True)
        try:
            if await self._calibrate():
                self.status.object = f"Thresholds for {self.bits.value}-bit grids."
        finally:
            self._busy(False)

    async def _on_grid(self, _event=None) -> None:
        if self.jobs.busy or self.model is None:
            return
        rt = self.session.rt
        self._busy(True)
        try:
            cells = grid_cells()
            with pn.io.unlocked():
                self.grid_fig.clear()

            def draw(points: list) -> None:
                self.grid_fig.add_points(points)
                p = points[-1]
                self.status.object = (f"{p.method} {p.bits}-bit "
                                      f"{'per-channel' if p.per_channel else 'per-tensor'}: "
                                      f"accuracy {p.accuracy:.4f}, {p.nbytes:,} bytes, "
                                      f"{p.speedup:.2f}x the FP32 forward pass")

            job = Job(lambda: iter_grid(self.model, self.data, rt=rt, store=self.session.store,
                                        model_name=self.model_select.value, cells=cells),
                      total=len(cells), label="grid")
            await self.jobs.run(job, draw, label="Grid")
            if job.state == "finished":
                self.status.object = f"Grid of {len(cells)} points on **{rt.name}** done and stored."
        finally:
            self._busy(False)

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(
                "## Quantization\nTrain a model on digits, compare the **minmax**, **percentile**, "
                "**kl** and **mse** calibrators on each layer, then quantize every layer on real "
                "integer kernels (INT8 `int8_matmul`, INT4 `int4_gemv`) and see accuracy, size and "
                "latency against FP32 on this device."),
            pn.Row(self.model_select, self.train_button, self.bits, self.layer, self.what),
            pn.Row(self.grid_button),
            pn.Row(self.status, self.jobs.widgets()),
            pn.Row(pn.pane.Bokeh(self.cal_fig.figure), pn.pane.Bokeh(self.err_fig.figure)),
            pn.Row(pn.pane.Bokeh(self.grid_fig.layout())),
            sizing_mode="stretch_width",
        )
