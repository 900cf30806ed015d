"""Spiking-network figures shared by the widget, the dashboard page and the tutorial.

* :class:`SpikeRasterFigure`: a dot per spike, time (ms) against neuron, one colour per group
  (excitatory, inhibitory, ...). Fed chunk by chunk (``add_chunk``) it keeps a rolling window
  of the last ``window`` ms; ``set_spikes`` / ``set_record`` draw a whole run.
* :class:`PopulationRateFigure`: each group's population rate (Hz) in bins of ``bin_ms``, on the
  raster's time axis (pass ``x_range=raster.figure.x_range``), rolling the same way.
* :class:`MembraneTraceFigure`: membrane potentials (mV) of a few recorded neurons, rolling,
  with the firing threshold as a dashed line.
* :class:`RateHistogramFigure`: how many neurons fire at which rate (Hz), one histogram per group.
* :class:`RunHistoryFigure`: the rates of a whole :class:`~workbench.snn.LiveNetwork` run, chunk
  by chunk, the knobs in force in the hover (stored runs redraw from the store's metrics).
* :class:`ReceptiveFieldFigure`: the in-coming weights of every neuron of an STDP layer drawn as
  tiles of the input image (a mosaic), optionally with each neuron's assigned class.

Groups are ``{name: (first global id, size)}``, the form of ``SpikeRecord.offsets``. Every
update assigns each source's ``.data`` once (never clear + stream: a served page would apply a
stream queued behind a replaced ``.data`` twice).
"""

from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource, HoverTool, LabelSet, LinearColorMapper, Range1d, Span
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

GROUP_COLORS = {"excitatory": "#1f77b4", "inhibitory": "#d62728", "input": "#7f7f7f"}
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def group_color(name: str, i: int) -> str:
    return GROUP_COLORS.get(name, Category10_10[(i + 2) % 10])


def _legend(fig, outside: bool = False) -> None:
    if fig.legend:
        legend = fig.legend[0]
        legend.label_text_font_size = "8pt"
        legend.click_policy = "hide"
        if outside:  # beside the plot, where it hides no spikes
            if legend not in fig.right:
                fig.add_layout(legend, "right")
        else:
            legend.location = "top_left"
            legend.background_fill_alpha = 0.6


class _Rolling:
    """Spike times and global ids of the last ``window`` ms (or of everything, window None)."""

    def __init__(self, window: float | None):
        self.window = window
        self.times = np.zeros(0)
        self.ids = np.zeros(0, np.int64)
        self.t_end = 0.0
        self.whole = False  # set(): a whole run, shown from t0 to its end

    def add(self, times, ids, t_end: float) -> None:
        self.whole = False
        self.times = np.concatenate([self.times, np.asarray(times, float)])
        self.ids = np.concatenate([self.ids, np.asarray(ids, np.int64)])
        self.t_end = max(self.t_end, float(t_end))
        if self.window is not None:
            keep = self.times > self.t_end - self.window
            self.times, self.ids = self.times[keep], self.ids[keep]

    def set(self, times, ids, t_end: float) -> None:
        self.times, self.ids = np.asarray(times, float), np.asarray(ids, np.int64)
        self.t_end, self.whole = float(t_end), True

    def x_span(self, t0: float = 0.0) -> tuple[float, float]:
        if self.window is None or self.whole:
            return t0, max(self.t_end, t0 + 1e-3)
        return max(t0, self.t_end - self.window), max(t0 + self.window, self.t_end)


class _SpikeWindow:
    """What the raster and the population rate share: a :class:`_Rolling` buffer of spikes,
    fed chunk by chunk or set to a whole run; subclasses draw it (``_set_groups``, ``_draw``)."""

    buffer: _Rolling
    groups: dict
    _t0: float = 0.0

    def add_chunk(self, record, groups: dict | None = None) -> None:
        """Append a chunk's :class:`~workbench.snn.SpikeRecord` (and drop what left the window)."""
        self.add_chunks([record], groups)

    def add_chunks(self, records, groups: dict | None = None) -> None:
        """Append several chunks and redraw once (a page that fell behind catches up in one go)."""
        if not records:
            return
        self._set_groups(groups or records[-1].offsets)
        for record in records:
            self.buffer.add(record.times, record.ids, record.t0 + record.duration)
        self._draw()

    def set_spikes(self, times, ids, groups: dict, t_end: float | None = None, t0: float = 0.0) -> None:
        """Draw these spikes (ms, global ids) alone, from ``t0`` to ``t_end`` ms."""
        times = np.asarray(times, float)
        self._set_groups(groups)
        self._t0 = float(t0)
        end = float(t_end) if t_end is not None else (float(times.max()) if times.size else 1.0)
        self.buffer.set(times, ids, end)
        self._draw()

    def set_record(self, record, groups: dict | None = None) -> None:
        """Draw a whole run's :class:`~workbench.snn.SpikeRecord`."""
        self.set_spikes(record.times, record.ids, groups or record.offsets, record.t0 + record.duration,
                        t0=record.t0)

    def clear(self) -> None:
        self.buffer.set([], [], 0.0)
        self._t0 = 0.0
        if self.groups:
            self._draw()


class SpikeRasterFigure(_SpikeWindow):
    """Spike raster, rolling over the last ``window`` ms (None: keep everything).

    At most ``max_neurons`` rows are drawn, shared between the groups in proportion to their
    sizes (each group's lowest ids), which bounds what a busy network sends to the browser; the
    y axis label says how many of each group are shown.
    """

    def __init__(self, window: float | None = 500.0, max_neurons: int = 250, *, height: int = 320,
                 width: int = 620, title: str = "Spike raster", groups=()):
        self.max_neurons = int(max_neurons)
        self.buffer = _Rolling(window)
        self.groups: dict = {}
        self.sources: dict[str, ColumnDataSource] = {}
        self.figure = figure(title=title, height=height, width=width, x_axis_label="time (ms)",
                             y_axis_label="neuron", tools=TOOLS, x_range=Range1d(0, window or 1.0),
                             y_range=Range1d(-0.5, 1.5))
        self.figure.grid.visible = False
        self.hover = HoverTool(renderers=[], tooltips=[("t", "@t{0.0} ms"), ("neuron", "@id")])
        self.figure.add_tools(self.hover)
        self._t0 = 0.0
        self._ensure(groups, outside=True)

    def _ensure(self, names, outside: bool = False) -> None:
        """Renderers for groups not seen yet. A served page should name its groups up front
        (``groups=``): models added to a live document from an update are not sent."""
        new = []
        for name in names:
            if name not in self.sources:
                self.sources[name] = ColumnDataSource({"t": [], "row": [], "id": []})
                new.append(self.figure.scatter(x="t", y="row", source=self.sources[name], marker="square",
                                               size=2.5,
                                               color=group_color(name, len(self.sources) - 1),
                                               legend_label=name))
        if new:
            self.hover.renderers = list(self.hover.renderers) + new
            _legend(self.figure, outside)

    def _set_groups(self, groups: dict) -> None:
        groups = {name: (int(a), int(n)) for name, (a, n) in groups.items()}
        if groups == self.groups:
            return
        self.groups = groups
        total = sum(n for _, n in groups.values()) or 1
        self.rows, row = {}, 0  # name -> (first row, rows shown)
        for name, (_, n) in groups.items():
            shown = n if total <= self.max_neurons else max(1, int(round(self.max_neurons * n / total)))
            shown = min(shown, n)
            self.rows[name] = (row, shown)
            row += shown
        self._ensure(groups)
        self.figure.y_range.start, self.figure.y_range.end = -0.5, row - 0.5
        shown = ", ".join(f"{s} of {groups[name][1]} {name}" for name, (_, s) in self.rows.items())
        self.figure.yaxis.axis_label = f"neuron ({shown})" if len(shown) < 60 else "neuron"

    def _draw(self) -> None:
        times, ids = self.buffer.times, self.buffer.ids
        for name, (first, _n) in self.groups.items():
            row0, shown = self.rows[name]
            local = ids - first
            sel = (local >= 0) & (local < shown)
            self.sources[name].data = {"t": times[sel], "row": (local[sel] + row0).astype(np.int64),
                                       "id": local[sel]}
        self.figure.x_range.start, self.figure.x_range.end = self.buffer.x_span(self._t0)

    def window_rates(self) -> dict:
        """``{group: per-neuron rate (Hz)}`` over the spikes kept (the window, or everything),
        for every neuron of each group, drawn or not."""
        lo, hi = self.buffer.x_span(self._t0)
        span_s = max(min(hi, self.buffer.t_end) - lo, 1e-9) * 1e-3
        out = {}
        for name, (first, n) in self.groups.items():
            local = self.buffer.ids - first
            local = local[(local >= 0) & (local < n)]
            out[name] = np.bincount(local, minlength=n) / span_s
        return out


class PopulationRateFigure(_SpikeWindow):
    """Population rate (spikes per neuron per second) of each group in ``bin_ms`` bins."""

    def __init__(self, window: float | None = 500.0, bin_ms: float = 2.0, *, height: int = 180,
                 width: int = 620,
                 x_range=None, title: str = "Population rate", groups=()):
        self.window, self.bin_ms = window, float(bin_ms)
        self.buffer = _Rolling(window)
        self.groups: dict = {}
        self.sources: dict[str, ColumnDataSource] = {}
        self.figure = figure(title=title, height=height, width=width, x_axis_label="time (ms)",
                             y_axis_label="rate (Hz)", tools=TOOLS,
                             x_range=x_range if x_range is not None else Range1d(0, window or 1.0))
        self._own_range = x_range is None
        self._t0 = 0.0
        self._ensure(groups, outside=True)

    def _ensure(self, names, outside: bool = False) -> None:
        for name in names:
            if name not in self.sources:
                self.sources[name] = ColumnDataSource({"t": [], "hz": []})
                self.figure.step(x="t", y="hz", source=self.sources[name], mode="after",
                                 color=group_color(name, len(self.sources) - 1), line_width=1.5,
                                 legend_label=name)
                _legend(self.figure, outside)

    def _set_groups(self, groups: dict) -> None:
        self._ensure(groups)
        self.groups = {name: (int(a), int(n)) for name, (a, n) in groups.items()}

    def _draw(self) -> None:
        lo, hi = self.buffer.x_span(self._t0)
        edges = np.arange(np.floor(lo / self.bin_ms) * self.bin_ms, hi + self.bin_ms, self.bin_ms)
        for name, (first, n) in self.groups.items():
            local = self.buffer.ids - first
            t = self.buffer.times[(local >= 0) & (local < n)]
            counts, _ = np.histogram(t, edges) if edges.size > 1 else (np.zeros(0), None)
            self.sources[name].data = {"t": edges[:-1], "hz": counts / max(n, 1) / (self.bin_ms * 1e-3)}
        if self._own_range:
            self.figure.x_range.start, self.figure.x_range.end = lo, hi


class MembraneTraceFigure:
    """Membrane potential of recorded neurons (``SpikeRecord.v``), rolling over ``window`` ms,
    with the threshold ``v_th`` as a dashed line (:meth:`set_threshold` moves it)."""

    def __init__(self, window: float | None = 500.0, v_th: float | None = None, *, height: int = 220,
                 width: int = 620, title: str = "Membrane potential"):
        self.window = window
        self.source = ColumnDataSource({"xs": [], "ys": [], "neuron": [], "color": []})
        self.figure = figure(title=title, height=height, width=width, x_axis_label="time (ms)",
                             y_axis_label="v (mV)", tools=TOOLS, x_range=Range1d(0, window or 1.0))
        self.figure.multi_line(xs="xs", ys="ys", line_color="color", source=self.source, line_width=1.2)
        self.figure.add_tools(HoverTool(tooltips=[("neuron", "@neuron")]))
        self.threshold = Span(location=v_th if v_th is not None else 0.0, dimension="width",
                              line_color="#d62728", line_dash="dashed", line_width=1.5,
                              visible=v_th is not None)
        self.figure.add_layout(self.threshold)
        self.t = np.zeros(0)
        self.v = np.zeros((0, 0), np.float32)
        self.names: list[str] = []

    def set_threshold(self, v_th: float) -> None:
        self.threshold.location = float(v_th)
        self.threshold.visible = True

    def _traces(self, record):
        names, cols = [], []
        for pop, (ids, v) in record.v.items():
            names += [f"{pop} {i}" for i in ids]
            cols.append(np.asarray(v))
        t = record.t0 + (np.arange(record.steps) + 1) * record.dt
        return t, (np.concatenate(cols, 1) if cols else np.zeros((record.steps, 0), np.float32)), names

    def add_chunk(self, record) -> None:
        self.add_chunks([record])

    def add_chunks(self, records) -> None:
        """Append several chunks' traces and redraw once."""
        for record in records:
            t, v, names = self._traces(record)
            if names != self.names or self.v.shape[1] != v.shape[1]:
                self.t, self.v, self.names = t, v, names
            else:
                self.t, self.v = np.concatenate([self.t, t]), np.concatenate([self.v, v])
            if self.window is not None and self.t.size:
                keep = self.t > self.t[-1] - self.window
                self.t, self.v = self.t[keep], self.v[keep]
        if records:
            self._draw()

    def set_record(self, record) -> None:
        self.t, self.v, self.names = self._traces(record)
        self._draw(whole=True)

    def _draw(self, whole: bool = False) -> None:
        colors = [Category10_10[i % 10] for i in range(len(self.names))]
        self.source.data = {"xs": [self.t] * len(self.names),
                            "ys": [self.v[:, i] for i in range(len(self.names))],
                            "neuron": self.names, "color": colors}
        if self.t.size:
            end = float(self.t[-1])
            lo = float(self.t[0]) - (self.t[1] - self.t[0] if self.t.size > 1 else 0.0)
            start = lo if whole or self.window is None else max(lo, end - self.window)
            self.figure.x_range.start = start
            self.figure.x_range.end = end if whole or self.window is None else max(end, start + self.window)

    def clear(self) -> None:
        self.t, self.v, self.names = np.zeros(0), np.zeros((0, 0), np.float32), []
        self.source.data = {"xs": [], "ys": [], "neuron": [], "color": []}


class RateHistogramFigure:
    """How many neurons of each group fire at which rate: histograms over ``bins`` edges (Hz),
    or edges spread over the data when None."""

    def __init__(self, bins=None, height: int = 260, *, width: int = 420,
                 title: str = "Firing-rate histogram",
                 groups=()):
        self.bins = bins
        self.sources: dict[str, ColumnDataSource] = {}
        self.figure = figure(title=title, height=height, width=width, x_axis_label="rate (Hz)",
                             y_axis_label="neurons", tools=TOOLS)
        self._ensure(groups)

    def _ensure(self, names) -> None:
        for name in names:
            if name not in self.sources:
                color = group_color(name, len(self.sources))
                self.sources[name] = ColumnDataSource({"left": [], "right": [], "count": []})
                self.figure.quad(left="left", right="right", bottom=0, top="count", source=self.sources[name],
                                 fill_color=color, fill_alpha=0.45, line_color=color, legend_label=name)
                _legend(self.figure)
                self.figure.legend[0].location = "top_right"

    def set_rates(self, rates: dict, quantum: float | None = None) -> None:
        """``{group: per-neuron rates (Hz)}``. ``quantum``: the rate one spike makes (1 / the
        counting window, Hz); bins are then whole multiples of it, so none falls between two
        possible rates and stays empty."""
        rates = {name: np.asarray(r, float) for name, r in rates.items()}
        top = max([float(r.max()) for r in rates.values() if r.size] + [1.0])
        if self.bins is not None:
            edges = np.asarray(self.bins, float)
        elif quantum:
            width = quantum * max(1, int(np.ceil(top / 30 / quantum)))
            edges = np.arange(-0.5 * width, top + width, width)
        else:
            edges = np.linspace(0, top * 1.05, 31)
        self._ensure(rates)
        for name, r in rates.items():
            counts, _ = np.histogram(np.clip(r, edges[0], edges[-1]), edges)
            self.sources[name].data = {"left": edges[:-1], "right": edges[1:], "count": counts}
        means = ", ".join(f"{name} {r.mean():.1f} Hz" for name, r in rates.items() if r.size)
        self.figure.title.text = f"Firing-rate histogram (mean {means})" if means else "Firing-rate histogram"

    def set_record(self, record, groups: dict | None = None) -> None:
        groups = groups or record.offsets
        seconds = record.duration * 1e-3
        self.set_rates({name: record.counts[a:a + n] / seconds for name, (a, n) in groups.items()})


def mosaic(weights: np.ndarray, shape: tuple[int, int], *, columns: int | None = None,
           gap: int = 1) -> np.ndarray:
    """Tile the columns of ``weights`` (pixels, n) as ``shape`` images in a grid with ``gap``
    pixels of NaN between tiles; returns the (rows * (h + gap), columns * (w + gap)) array,
    row 0 at the top."""
    w = np.asarray(weights, np.float32)
    h, wd = shape
    n = w.shape[1]
    cols = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    out = np.full((rows * (h + gap), cols * (wd + gap)), np.nan, np.float32)
    for j in range(n):
        r, c = divmod(j, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (wd + gap):c * (wd + gap) + wd] = w[:, j].reshape(h, wd)
    return out


class ReceptiveFieldFigure:
    """Each neuron's in-coming weights as an image tile (``shape`` pixels), bright = strong;
    with ``labels`` each tile shows its neuron's assigned class in a corner."""

    def __init__(self, shape: tuple[int, int] = (8, 8), height: int = 420, *, width: int = 420,
                 title: str = "Receptive fields"):
        self.shape, self.title = tuple(shape), title
        self.mapper = LinearColorMapper(palette="Greys256", low=0.0, high=1.0, nan_color="white")
        self.source = ColumnDataSource({"image": [], "dw": [], "dh": []})
        self.labels = ColumnDataSource({"x": [], "y": [], "text": []})
        self.figure = figure(title=title, height=height, width=width, tools="save", toolbar_location=None,
                             x_range=Range1d(0, 1), y_range=Range1d(0, 1), match_aspect=True)
        self.figure.axis.visible = False
        self.figure.grid.visible = False
        self.figure.image(image="image", x=0, y=0, dw="dw", dh="dh", source=self.source,
                          color_mapper=self.mapper)
        self.figure.add_layout(LabelSet(x="x", y="y", text="text", source=self.labels, text_font_size="8pt",
                                        text_color="#d62728"))

    def set_weights(self, weights: np.ndarray, labels=None, note: str = "") -> None:
        """``weights`` (pixels, n_neurons); ``labels`` (n_neurons,) classes or None."""
        w = np.asarray(weights, np.float32)
        # Greys256 runs dark to light: draw -w so strong weights are dark on white
        top = float(np.nanmax(w)) if w.size else 1.0
        img = mosaic(w / (top or 1.0), self.shape)
        self.mapper.low, self.mapper.high = -1.0, 0.0
        h, wd = img.shape
        self.source.data = {"image": [-img[::-1]], "dw": [wd], "dh": [h]}  # Bokeh's row 0 is the bottom
        self.figure.x_range.start, self.figure.x_range.end = 0, wd
        self.figure.y_range.start, self.figure.y_range.end = 0, h
        if labels is not None:
            th, tw = self.shape
            cols = int(np.ceil(np.sqrt(w.shape[1])))
            xs, ys = [], []
            for j in range(w.shape[1]):
                r, c = divmod(j, cols)
                xs.append(c * (tw + 1) + 0.1)
                ys.append(h - r * (th + 1) - th + 0.1)
            self.labels.data = {"x": xs, "y": ys, "text": [str(v) for v in np.asarray(labels)]}
        else:
            self.labels.data = {"x": [], "y": [], "text": []}
        n = w.shape[1]
        self.figure.title.text = f"{self.title}: {n} neurons" + (f" · {note}" if note else "")


class RunHistoryFigure:
    """The excitatory and inhibitory rates of a whole live run, chunk by chunk, with the knobs
    in force in the hover (so the effect of a slider shows as a step in the curve)."""

    COLUMNS = ("t", "exc", "inh", "tau_m", "v_th", "input_rate", "inhibition")

    def __init__(self, height: int = 220, width: int = 620):
        self.source = ColumnDataSource({c: [] for c in self.COLUMNS})
        self.figure = figure(title="Rates over the run", height=height, width=width, x_axis_label="time (s)",
                             y_axis_label="rate (Hz)", tools="pan,wheel_zoom,box_zoom,reset,save")
        e = self.figure.line("t", "exc", source=self.source, color="#1f77b4", line_width=2,
                             legend_label="excitatory")
        self.figure.line("t", "inh", source=self.source, color="#d62728", line_width=2,
                         legend_label="inhibitory")
        self.figure.add_tools(HoverTool(renderers=[e], mode="vline", tooltips=[
            ("t", "@t{0.0} s"), ("rates", "@exc{0.0} / @inh{0.0} Hz"), ("tau_m", "@tau_m{0.0} ms"),
            ("v_th", "@v_th{0.0} mV"), ("input", "@input_rate{0.0} Hz"),
            ("inhibition", "@inhibition{0.00}")]))
        self.figure.legend[0].label_text_font_size = "8pt"
        self.figure.add_layout(self.figure.legend[0], "right")

    @staticmethod
    def _row(m: dict) -> dict:
        return {"t": m["t_ms"] * 1e-3, "exc": m["rate_excitatory"], "inh": m["rate_inhibitory"],
                **{k: m[k] for k in ("tau_m", "v_th", "input_rate", "inhibition")}}

    def set_metrics(self, metrics: list[dict]) -> None:
        rows = [self._row(m) for m in metrics if m.get("t_ms") is not None]
        self.source.data = {c: [r[c] for r in rows] for c in self.COLUMNS}

    def add_chunk(self, c) -> None:
        self.add_chunks([c])

    def add_chunks(self, chunks) -> None:
        """Stream the rows of several :class:`~workbench.snn.live.LiveChunk` at once."""
        rows = [self._row({"t_ms": c.t_ms, "rate_excitatory": c.rates["excitatory"],
                           "rate_inhibitory": c.rates["inhibitory"], **c.knobs}) for c in chunks]
        if rows:
            self.source.stream({k: [r[k] for r in rows] for k in self.COLUMNS})
