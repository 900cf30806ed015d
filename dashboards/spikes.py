"""The *Spikes* page: run a balanced spiking network live, tune it while it runs, and watch
STDP learn digit receptive fields.

**Network.** Start runs a :class:`~workbench.snn.live.LiveNetwork` (excitatory and inhibitory
LIF neurons driven by Poisson input) on the session's device in a worker thread, chunk by chunk
at the chosen pace. Each chunk scrolls the spike raster and the population rate (a rolling
window), the membrane traces and the firing-rate histogram, and adds a point to the run's rate
history. The sliders (membrane time constant, threshold, input rate, inhibition) reach the
running simulation before its next chunk, without a restart. Stop ends the run after the
current chunk, leaving it ``stopped`` in the store with every chunk logged; Continue goes on.

**STDP digits.** Train runs an :class:`~workbench.snn.SNNImageClassifier` on the digits; the
receptive fields (each excitatory neuron's input weights as an 8x8 image) are redrawn as they
learn. Stop ends training (stored as ``stopped``); a finished run assigns labels and reports the
test accuracy. The stored runs of this device are listed for both.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import numpy as np
import panel as pn

from workbench.data import digits
from workbench.jobs import Job
from workbench.snn import SNNImageClassifier
from workbench.snn.classifier import TRAIN_KIND
from workbench.snn.live import KNOB_RANGES, LiveNetwork, load_snn_runs
from workbench.viz import (
    MembraneTraceFigure,
    PopulationRateFigure,
    RateHistogramFigure,
    ReceptiveFieldFigure,
    RunHistoryFigure,
    SpikeRasterFigure,
)

from .jobs import PageJobs
from .session import Session

SIZES = {"1,000 neurons": (800, 200, 800), "10,000 neurons": (8000, 2000, 8000),
         "100,000 neurons": (80000, 20000, 80000)}
PACES = {"real time": 1.0, "slow motion (1/4)": 0.25, "10x real time": 10.0, "as fast as it goes": None}
WINDOW_MS, CHUNK_MS = 500.0, 100.0


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


class SpikesPage(pn.viewable.Viewer):
    def __init__(self, session: Session, **params):
        super().__init__(**params)
        self.session = session
        self.live: LiveNetwork | None = None
        self.clf: SNNImageClassifier | None = None
        # -- network controls
        lo, hi = KNOB_RANGES["tau_m"]
        self.tau = pn.widgets.FloatSlider(label="Membrane tau (ms)", start=lo, end=60.0, step=1.0, value=20.0,
                                          width=190)
        lo, hi = KNOB_RANGES["v_th"]
        self.v_th = pn.widgets.FloatSlider(label="Threshold (mV)", start=lo, end=hi, step=0.5, value=-50.0,
                                           width=190)
        lo, hi = KNOB_RANGES["input_rate"]
        self.rate = pn.widgets.FloatSlider(label="Input rate (Hz)", start=lo, end=60.0, step=1.0, value=20.0,
                                           width=190)
        lo, hi = KNOB_RANGES["inhibition"]
        self.inhibition = pn.widgets.FloatSlider(label="Inhibition (x g)", start=lo, end=hi, step=0.05,
                                                 value=1.0,
                                                 width=190)
        self.size = pn.widgets.Select(label="Network", options=list(SIZES), value="1,000 neurons", width=150)
        self.pace = pn.widgets.Select(label="Pace", options=list(PACES), value="real time", width=160)
        self.duration = pn.widgets.FloatInput(label="Run for (s)", value=10.0, start=0.1, end=600.0, step=1.0,
                                              width=100)
        self.start_button = pn.widgets.Button(label="Start", color="primary", width=90)
        self.stop_button = pn.widgets.Button(label="Stop", color="warning", width=90, disabled=True)
        self.continue_button = pn.widgets.Button(label="Continue", color="success", width=90, disabled=True)
        self.stored = pn.widgets.Select(label="Stored network runs on this device", options={}, width=520)
        self.status = pn.pane.Markdown("", css_classes=["wb-status"])
        self.jobs = PageJobs(self.status)
        # the groups are named up front: a served page cannot add renderers while it streams
        groups = ("excitatory", "inhibitory")
        self.raster = SpikeRasterFigure(window=WINDOW_MS, height=330, width=640, groups=groups)
        self.pop_rate = PopulationRateFigure(window=WINDOW_MS, height=170, width=640, groups=groups,
                                             x_range=self.raster.figure.x_range)
        self.traces = MembraneTraceFigure(window=WINDOW_MS, v_th=self.v_th.value, height=220, width=560)
        self.hist = RateHistogramFigure(height=260, width=560, groups=groups)
        self.history = RunHistoryFigure(height=240, width=560)
        # -- STDP controls
        self.n_neurons = pn.widgets.IntSlider(label="Excitatory neurons", start=16, end=400, step=4,
                                              value=100, width=190)
        self.images = pn.widgets.IntInput(label="Training images", value=400, start=20, end=1347, step=50,
                                          width=130)
        self.epochs = pn.widgets.IntInput(label="Epochs", value=1, start=1, end=5, width=90)
        self.train_button = pn.widgets.Button(label="Train", color="primary", width=90)
        self.train_stop = pn.widgets.Button(label="Stop training", color="warning", width=120, disabled=True)
        self.train_status = pn.pane.Markdown("", css_classes=["wb-status"])
        self.train_jobs = PageJobs(self.train_status)
        self.train_runs = pn.pane.Markdown("")
        self.fields = ReceptiveFieldFigure(height=440, width=440)
        # -- wiring
        for widget, knob in ((self.tau, "tau_m"), (self.v_th, "v_th"), (self.rate, "input_rate"),
                             (self.inhibition, "inhibition")):
            widget.param.watch(lambda e, k=knob: self._on_knob(k, e.new), "value")
        self.start_button.on_click(self._on_start)
        self.stop_button.on_click(self._on_stop)
        self.continue_button.on_click(self._on_continue)
        self.train_button.on_click(self._on_train)
        self.train_stop.on_click(self._on_train_stop)
        self.stored.param.watch(lambda e: self._show_stored(e.new), "value")
        session.param.watch(lambda _: self._load_stored(), "rt")
        self._load_stored()

    # -- stored runs ------------------------------------------------------------------------------
    def _knobs(self) -> dict:
        return {"tau_m": self.tau.value, "v_th": self.v_th.value, "input_rate": self.rate.value,
                "inhibition": self.inhibition.value}

    def _refresh_runs(self, select=None):
        self._runs = {run["id"]: (run, chunks) for run,
                      chunks in load_snn_runs(self.session.rt, self.session.store)}

        def label(run, chunks):
            p = run["params"]
            t = chunks[-1]["t_ms"] * 1e-3 if chunks else 0.0
            return (f"#{run['id']} {_when(run['started_at'])}: {p['n_exc'] + p['n_inh']:,} neurons, "
                    f"{t:.1f} s simulated ({run['status']})")

        self.stored.options = {label(run, chunks): rid for rid, (run, chunks) in self._runs.items()}
        if not self._runs:
            return None
        rid = select if select in self._runs else max(self._runs)
        if self.stored.value == rid:
            self._show_stored(rid)
        else:
            self.stored.value = rid
        return rid

    def _show_stored(self, rid) -> None:
        if rid in self._runs and (self.live is None or self.live.run_id_ != rid):
            with pn.io.unlocked():
                self.history.set_metrics(self._runs[rid][1])

    def _load_stored(self) -> None:
        rid = self._refresh_runs()
        name = self.session.rt.name
        self.status.object = (f"Showing the rates of stored run #{rid} on **{name}**. Press **Start** to "
                              f"run the network live." if rid is not None else
                              f"No network runs yet on **{name}**. Press **Start** to run the network live; "
                              f"move the sliders while it runs.")
        self._list_training()

    def _list_training(self) -> None:
        lines = []
        for run in self.session.store.runs(TRAIN_KIND, device=self.session.rt)[:5]:
            p = run["params"]
            m = {k: v for row in self.session.store.metrics(run["id"]) for k,
                 v in row.items() if v is not None}
            acc = f", test accuracy {m['test_accuracy']:.3f}" if "test_accuracy" in m else ""
            lines.append(f"- #{run['id']} {_when(run['started_at'])}: {p['n_neurons']} neurons, "
                         f"{p['images']} images x {p['epochs']} epochs, {run['status']}{acc}")
        heading = "**Stored training runs on this device**\n\n"
        self.train_runs.object = heading + "\n".join(lines) if lines else ""

    # -- the live network ---------------------------------------------------------------------------
    def _on_knob(self, knob: str, value: float) -> None:
        if knob == "v_th":
            self.traces.set_threshold(value)
        if self.live is not None:
            self.live.set(**{knob: value})  # reaches the running simulation before its next chunk

    def _busy(self, busy: bool) -> None:
        self.start_button.disabled = busy
        self.size.disabled = busy
        self.stop_button.disabled = not busy
        self.continue_button.disabled = busy or self.live is None

    async def _on_start(self, _event=None) -> None:
        if self.jobs.busy:
            return
        rt = self.session.rt
        n_exc, n_inh, n_input = SIZES[self.size.value]
        self._busy(True)
        self.status.object = f"Building a {n_exc + n_inh:,}-neuron network on {rt.name} ..."
        try:
            self.live = await asyncio.get_running_loop().run_in_executor(None, lambda: LiveNetwork(
                n_exc, n_inh, n_input=n_input, rt=rt, store=self.session.store, **self._knobs()))
            with pn.io.unlocked():
                for fig in (self.raster, self.pop_rate, self.traces):
                    fig.clear()
                self.history.set_metrics([])
            await self._run()
        except Exception as exc:  # the network could not be built: say so on the page
            self.status.object = f"**Run failed:** {type(exc).__name__}: {exc}"
            raise
        finally:
            self._busy(False)

    async def _on_continue(self, _event=None) -> None:
        if self.live is None or self.jobs.busy:
            return
        self._busy(True)
        try:
            await self._run()
        finally:
            self._busy(False)

    def _on_stop(self, _event=None) -> None:
        if self.jobs.busy:
            self.jobs.stop()  # the network's own stop cuts its pace wait short
            self.status.object = "Stopping after this chunk ..."

    def _draw_chunks(self, chunks: list) -> None:
        """Everything the job produced since the last redraw, in one redraw."""
        last = chunks[-1]
        self.raster.add_chunks([c.record for c in chunks], last.groups)
        self.pop_rate.add_chunks([c.record for c in chunks], last.groups)
        self.traces.add_chunks([c.record for c in chunks])
        self.hist.set_rates(self.raster.window_rates(), quantum=1e3 / WINDOW_MS)
        self.history.add_chunks(chunks)
        wall = sum(c.wall_s for c in chunks)
        speed = CHUNK_MS * 1e-3 * len(chunks) / wall if wall > 0 else float("inf")
        n = self.live.params["n_exc"] + self.live.params["n_inh"]
        self.status.object = (f"t = {last.t_ms * 1e-3:.1f} s · excitatory {last.rates['excitatory']:.1f} Hz, "
                              f"inhibitory {last.rates['inhibitory']:.1f} Hz · {n:,} neurons on "
                              f"{self.session.rt.name}, computing at {speed:.1f}x real time")

    async def _run(self) -> None:
        live = self.live
        live.set(**self._knobs())  # sliders moved while stopped
        duration = self.duration.value * 1e3
        chunks = max(1, int(round(duration / CHUNK_MS)))
        job = Job(lambda: live.run(duration, chunk=CHUNK_MS, pace=PACES[self.pace.value]), total=chunks,
                  stop=live.stop, label="network run")
        await self.jobs.run(job, self._draw_chunks, label="Run")
        if job.error is None:
            verdict = "stopped; press **Continue** to go on" if live.status_ == "stopped" else live.status_
            self.status.object = (f"Run #{live.run_id_} {verdict} at t = {live.t_ms * 1e-3:.1f} s: every "
                                  f"chunk is in the store (rates and the slider values in force).")
        self._refresh_runs(live.run_id_)

    # -- STDP digits ------------------------------------------------------------------------------
    async def _on_train(self, _event=None) -> None:
        if self.train_jobs.busy:
            return
        rt, store = self.session.rt, self.session.store
        data = digits(scale="unit")
        n_img = min(self.images.value, len(data.x_train))
        n_val = max(1, n_img // 5)  # a validation split carved from the training images, not the test split
        x, y = data.x_train[:n_img - n_val], data.y_train[:n_img - n_val]
        val = (data.x_train[n_img - n_val:n_img], data.y_train[n_img - n_val:n_img])
        self.clf = clf = SNNImageClassifier(n_neurons=self.n_neurons.value, epochs=self.epochs.value, rt=rt)
        self.train_button.disabled, self.train_stop.disabled = True, False
        self.train_status.object = f"Learning with STDP on {rt.name} ..."
        total = len(x) * clf.epochs

        def draw(reports: list) -> None:  # only the newest report: a field image replaces the last
            info = reports[-1]
            self.fields.set_weights(info["weights"], note=f"epoch {info['epoch'] + 1}, image {info['image']}")
            self.train_status.object = (f"Epoch {info['epoch'] + 1}/{clf.epochs}, image {info['image']}/"
                                        f"{info['images']}: {info['spikes']:.1f} excitatory spikes per "
                                        f"image, mean threshold +{float(np.mean(info['theta'])):.2f} mV")

        job = Job(lambda: clf.iter_fit(x, y, report_every=10, store=store, validation=val,
                                       test=(data.x_test, data.y_test)),
                  total=lambda info: (info["epoch"] * info["images"] + info["image"], total),
                  stop=clf.stop, label="training")
        try:
            await self.train_jobs.run(job, draw, label="Training")
            if job.error is None and hasattr(clf, "metrics_"):
                m = clf.metrics_
                with pn.io.unlocked():
                    self.fields.set_weights(clf.weights_, labels=clf.assignments_, note="labelled")
                self.train_status.object = (
                    f"Run #{clf.run_id_} finished and stored: test accuracy **{m['test_accuracy']:.3f}** "
                    f"({len(data.x_test)} images), validation {m['validation_accuracy']:.3f} "
                    f"({n_val} held-out training images), train {m['train_accuracy']:.3f}. "
                    f"The digit in each tile is the class its neuron was assigned.")
            elif job.error is None:
                self.train_status.object = (f"Run #{clf.run_id_} stopped and stored after "
                                            f"{len(clf.history_)} images.")
        finally:
            self.train_button.disabled, self.train_stop.disabled = False, True
            self._list_training()

    def _on_train_stop(self, _event=None) -> None:
        if self.train_jobs.busy:
            self.train_jobs.stop()
            self.train_status.object = "Stopping after this image ..."

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(
                "## Spikes\nA balanced network of excitatory and inhibitory LIF neurons driven by "
                "Poisson input, simulated on this device while you watch. Move the sliders while it "
                "runs: they reach the simulation at its next 100 ms chunk, without a restart. Less "
                "inhibition lets excitation win (fast, synchronous bursts); more input or a lower "
                "threshold raises the rates."),
            pn.Row(self.tau, self.v_th, self.rate, self.inhibition),
            pn.Row(self.size, self.pace, self.duration, self.start_button, self.stop_button,
                   self.continue_button),
            self.stored,
            pn.Row(self.status, self.jobs.widgets()),
            pn.Row(pn.Column(pn.pane.Bokeh(self.raster.figure), pn.pane.Bokeh(self.pop_rate.figure)),
                   pn.Column(pn.pane.Bokeh(self.traces.figure), pn.pane.Bokeh(self.hist.figure))),
            pn.pane.Bokeh(self.history.figure),
            pn.pane.Markdown(
                "### Learning digits with STDP\nDiehl & Cook's network: Poisson pixels into "
                "excitatory neurons with plastic synapses, lateral inhibition and adaptive thresholds; "
                "no labels, no backprop. Watch each neuron's receptive field (its input weights as an "
                "8x8 image) form."),
            pn.Row(self.n_neurons, self.images, self.epochs, self.train_button, self.train_stop),
            pn.Row(self.train_status, self.train_jobs.widgets()),
            pn.Row(pn.pane.Bokeh(self.fields.figure), self.train_runs),
            sizing_mode="stretch_width",
        )
