"""``SpikeRasterPanel``: a spiking network's raster, rates and membranes, live in a notebook.

A thin adapter over :class:`~workbench.snn.live.LiveNetwork` and :mod:`workbench.viz.snn`.
``run()`` (the Start button) simulates chunk by chunk, scrolling the raster and the population
rate (a rolling window), the membrane traces and the firing-rate histogram; the four sliders
(membrane tau, threshold, input rate, inhibition) reach the running network before its next
chunk. The buttons run in a background thread so Stop (and the sliders) can be used while it
runs; ``stop()`` and ``set()`` do the same from code. ``show(record)`` draws any
:class:`~workbench.snn.SpikeRecord`, e.g. one that :func:`~workbench.snn.simulate` returned.
"""

from __future__ import annotations

import threading

import ipywidgets as widgets
from bokeh.layouts import column

from ..jobs import Job
from ..snn.live import KNOB_RANGES, LiveNetwork
from ..store import Store
from ..viz import MembraneTraceFigure, PopulationRateFigure, RateHistogramFigure, SpikeRasterFigure
from .common import WidgetJob, figure_widget

SLIDERS = {"tau_m": ("tau_m (ms)", 1.0), "v_th": ("v_th (mV)", 0.5), "input_rate": ("input (Hz)", 1.0),
           "inhibition": ("inhibition", 0.05)}


class SpikeRasterPanel:
    """Live raster of a :class:`LiveNetwork` (default: 800 excitatory + 200 inhibitory LIF
    neurons on ``device``), with sliders for its knobs.

    >>> panel = SpikeRasterPanel(device="cpu")          # doctest: +SKIP
    >>> panel                                           # shows it
    >>> chunks = panel.run(2000.0)                      # 2 s simulated, as Start does
    >>> panel.set(inhibition=0.5)                       # as moving the slider does
    >>> panel.show(snn.simulate(net, duration=500.0))   # any SpikeRecord
    """

    def __init__(self, network: LiveNetwork | None = None, device=None, *, store=None, window: float = 500.0,
                 **network_kwargs):
        self.store = store if store is not None else Store()
        if network is None:
            network = LiveNetwork(rt=device, store=self.store, **network_kwargs)
        self.network = network
        self.window = float(window)
        groups = tuple(self.network.groups)
        self.raster = SpikeRasterFigure(window=self.window, height=300, width=600, groups=groups)
        self.pop_rate = PopulationRateFigure(window=self.window, height=160, width=600, groups=groups,
                                             x_range=self.raster.figure.x_range)
        self.traces = MembraneTraceFigure(window=self.window, v_th=self.network.knobs["v_th"], height=200,
                                          width=560)
        self.hist = RateHistogramFigure(height=240, width=560, groups=groups)
        self.sliders = {}
        for knob, (label, step) in SLIDERS.items():
            lo, hi = KNOB_RANGES[knob]
            s = widgets.FloatSlider(value=self.network.knobs[knob], min=lo, max=hi, step=step,
                                    description=label,
                                    continuous_update=False)
            s.observe(lambda change, k=knob: self.set(**{k: change["new"]}), names="value")
            self.sliders[knob] = s
        self.duration = widgets.FloatText(value=5.0, description="Run for (s)")
        self.start = widgets.Button(description="Start", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="warning", icon="stop",
                                          disabled=True)
        self.status = widgets.HTML()
        self.jobs = WidgetJob(self.status)
        self.out = widgets.Output()
        self.start.on_click(lambda _: threading.Thread(target=self.run, args=(self.duration.value * 1e3,),
                                                       daemon=True).start())
        self.stop_button.on_click(lambda _: self.stop())
        self.widget = widgets.VBox([
            widgets.HBox(list(self.sliders.values())[:2]), widgets.HBox(list(self.sliders.values())[2:]),
            widgets.HBox([self.duration, self.start, self.stop_button, self.jobs.widgets()]), self.status,
            self.out,
        ])
        # the raster and the rate share their time axis, so they go out as one document
        for fig in (column(self.raster.figure, self.pop_rate.figure), self.traces.figure, self.hist.figure):
            view = figure_widget(fig)
            if view is not None:
                self.out.append_display_data(view)

    def set(self, **knobs) -> None:
        """Change knobs (``tau_m``, ``v_th``, ``input_rate``, ``inhibition``); a running network
        takes them before its next chunk."""
        self.network.set(**knobs)
        if "v_th" in knobs:
            self.traces.set_threshold(knobs["v_th"])
        for knob, value in knobs.items():
            if self.sliders[knob].value != value:
                self.sliders[knob].value = value  # observe calls set() again with the same value

    def run(self, duration: float = 1000.0, chunk: float = 100.0, pace: float | None = 1.0) -> list:
        """Simulate ``duration`` more ms (continuing any earlier run), drawing every chunk;
        returns the :class:`~workbench.snn.live.LiveChunk` list."""
        net = self.network
        self.start.disabled, self.stop_button.disabled = True, False
        chunks = []

        def draw(batch: list) -> None:
            chunks.extend(batch)
            self.raster.add_chunks([c.record for c in batch], batch[-1].groups)
            self.pop_rate.add_chunks([c.record for c in batch], batch[-1].groups)
            self.traces.add_chunks([c.record for c in batch])
            self.hist.set_rates(self.raster.window_rates(), quantum=1e3 / self.window)
            c = batch[-1]
            self.status.value = (f"t = {c.t_ms * 1e-3:.1f} s: excitatory {c.rates['excitatory']:.1f} Hz, "
                                 f"inhibitory {c.rates['inhibitory']:.1f} Hz")

        try:
            self.jobs.run(Job(lambda: net.run(duration, chunk=chunk, pace=pace),
                              total=max(1, int(round(duration / chunk))), stop=net.stop, label="network run"),
                          draw, label="Run")
        finally:
            self.start.disabled, self.stop_button.disabled = False, True
        last = chunks[-1] if chunks else None
        said = (f"excitatory {last.rates['excitatory']:.1f} Hz, inhibitory {last.rates['inhibitory']:.1f} Hz"
                if last else "no chunk run")
        self.status.value = f"{net.status_} at t = {net.t_ms * 1e-3:.1f} s ({said})"
        return chunks

    def stop(self) -> None:
        """End :meth:`run` after the current chunk (from any thread)."""
        self.jobs.stop()

    def show(self, record, groups: dict | None = None) -> None:
        """Draw a whole :class:`~workbench.snn.SpikeRecord` (all of its time, not a window)."""
        self.raster.set_record(record, groups)
        self.pop_rate.set_record(record, groups)
        self.traces.set_record(record)
        self.hist.set_record(record, groups)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
