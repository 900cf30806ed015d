"""Sparsity figures shared by the widget, the dashboard page and the tutorials.

* :class:`PruneCurveFigure`: test accuracy against measured sparsity, one point per pruning step
  (streamed), with the dense model's accuracy and the "within 1 point" band drawn.
* :class:`FormatLatencyFigure`: the measured latency of the same layer product in dense, CSR and
  block-sparse form at each step's sparsity, with each sparse format's crossover (the sparsity
  from which it beats dense, :func:`~workbench.sparse.choose.crossover_sparsity`) marked by a
  vertical line, or the title saying it never crosses.
* :class:`LayerSparsityFigure`: the sparsity of every prunable layer at the latest step, with the
  schedule's target as a horizontal line.

Each takes :class:`~workbench.sparse.gradual.PruneStep` points (``add_step`` / ``set_steps``) or,
for the latency figure, the dict rows of :func:`~workbench.sparse.choose.crossover_sweep`.
"""

from __future__ import annotations

from typing import Iterable

from bokeh.models import ColumnDataSource, FactorRange, FixedTicker, HoverTool, Label, Span
from bokeh.plotting import figure

from ..sparse.choose import crossover_sparsity

# 1-2-5 ticks from 0.1 us to 10 s: Bokeh's log ticker leaves spans under a decade unlabelled.
LATENCY_TICKS = [m * 10.0**e for e in range(-1, 8) for m in (1, 2, 5)]
FORMAT_STYLES = {"dense": ("#444444", "dense (SGEMM)"), "csr": ("#1f77b4", "CSR (spmm_csr)"),
                 "bsr": ("#d62728", "block-sparse (bsr_matmul)")}


def _legend_outside(fig) -> None:
    legend = fig.legend[0]
    legend.label_text_font_size = "8pt"
    legend.click_policy = "hide"
    fig.add_layout(legend, "right")


class PruneCurveFigure:
    """Accuracy vs sparsity of a gradual pruning run, point by point."""

    def __init__(self, height: int = 320, width: int = 560):
        self.source = ColumnDataSource({"sparsity": [], "accuracy": [], "step": [], "target": []})
        self.band = ColumnDataSource({"x": [], "lo": [], "hi": []})
        self.figure = figure(title="Accuracy vs sparsity", height=height, width=width,
                             x_axis_label="sparsity (fraction of zero weights)",
                             y_axis_label="test accuracy", tools="pan,wheel_zoom,box_zoom,reset,save")
        self.figure.varea(x="x", y1="lo", y2="hi", source=self.band, fill_color="#2ca02c", fill_alpha=0.12,
                          legend_label="within 1 point of dense")
        self.figure.line(x="sparsity", y="accuracy", source=self.source, color="#1f77b4", line_width=2)
        r = self.figure.scatter(x="sparsity", y="accuracy", source=self.source, size=9, color="#1f77b4",
                                legend_label="pruned + fine-tuned")
        self.figure.add_tools(HoverTool(renderers=[r], tooltips=[
            ("step", "@step"), ("sparsity", "@sparsity{0.000} (target @target{0.000})"),
            ("accuracy", "@accuracy{0.0000}")]))
        _legend_outside(self.figure)

    def clear(self) -> None:
        self.source.data = {"sparsity": [], "accuracy": [], "step": [], "target": []}
        self.band.data = {"x": [], "lo": [], "hi": []}

    def add_step(self, step) -> None:
        self.source.stream({"sparsity": [step.sparsity], "accuracy": [step.accuracy], "step": [step.step],
                            "target": [step.target]})
        if step.step == 0:  # the dense baseline fixes the band
            self.band.data = {"x": [0.0, 1.0], "lo": [step.accuracy - 0.01] * 2, "hi": [step.accuracy] * 2}

    def set_steps(self, steps: Iterable) -> None:
        # One assignment, not clear() + stream(): a server sends a changed .data as it is when the
        # message leaves, so streams queued behind it would be applied twice in the browser.
        steps = list(steps)
        self.source.data = {"sparsity": [s.sparsity for s in steps], "accuracy": [s.accuracy for s in steps],
                            "step": [s.step for s in steps], "target": [s.target for s in steps]}
        base = next((s.accuracy for s in steps if s.step == 0), None)
        self.band.data = ({"x": [0.0, 1.0], "lo": [base - 0.01] * 2, "hi": [base] * 2} if base is not None
                          else {"x": [], "lo": [], "hi": []})


class FormatLatencyFigure:
    """Latency of dense, CSR and block-sparse against sparsity, crossovers marked."""

    def __init__(self, height: int = 320, width: int = 560, title: str = "Layer latency by format"):
        self.title = title
        self.sources = {f: ColumnDataSource({"sparsity": [], "us": []}) for f in FORMAT_STYLES}
        self.figure = figure(title=title, height=height, width=width, y_axis_type="log",
                             x_axis_label="sparsity", y_axis_label="latency (µs, device time)",
                             tools="pan,wheel_zoom,box_zoom,reset,save")
        self.figure.yaxis.ticker = FixedTicker(ticks=LATENCY_TICKS)
        renderers = []
        for fmt, (color, label) in FORMAT_STYLES.items():
            self.figure.line(x="sparsity", y="us", source=self.sources[fmt], color=color, line_width=2,
                             legend_label=label)
            renderers.append(self.figure.scatter(x="sparsity", y="us", source=self.sources[fmt], size=7,
                                                 color=color, legend_label=label))
        self.figure.add_tools(HoverTool(renderers=renderers, tooltips=[
            ("sparsity", "@sparsity{0.000}"), ("latency", "@us{0.0} µs")]))
        self.spans, self.labels = {}, {}
        for fmt in ("csr", "bsr"):
            color = FORMAT_STYLES[fmt][0]
            self.spans[fmt] = Span(location=0.0, dimension="height", line_color=color, line_dash="dashed",
                                   line_width=2, visible=False)
            self.labels[fmt] = Label(x=0.0, y=6 if fmt == "csr" else 24, x_units="data", y_units="screen",
                                     text="", text_color=color, text_font_size="8pt", visible=False)
            self.figure.add_layout(self.spans[fmt])
            self.figure.add_layout(self.labels[fmt])
        self.rows: list[dict] = []
        _legend_outside(self.figure)

    def clear(self) -> None:
        self.rows = []
        for src in self.sources.values():
            src.data = {"sparsity": [], "us": []}
        self._mark()

    def add_row(self, sparsity: float, latency_s: dict) -> None:
        """One measured point: ``latency_s`` maps format -> seconds."""
        self.rows.append({"sparsity": float(sparsity), **latency_s})
        for fmt, t in latency_s.items():
            if fmt in self.sources and t is not None:
                self.sources[fmt].stream({"sparsity": [float(sparsity)], "us": [t * 1e6]})
        self._mark()

    def add_step(self, step) -> None:
        if step.latency_s:
            self.add_row(step.sparsity, step.latency_s)

    def set_steps(self, steps: Iterable) -> None:
        self.set_rows([{"sparsity": s.sparsity, **s.latency_s} for s in steps if s.latency_s])

    def set_rows(self, rows: Iterable[dict]) -> None:
        """Rows of :func:`~workbench.sparse.choose.crossover_sweep` (``sparsity`` plus seconds per
        format); each source is assigned once (see :meth:`PruneCurveFigure.set_steps`)."""
        self.rows = [dict(r) for r in rows]
        for fmt, src in self.sources.items():
            have = [r for r in self.rows if r.get(fmt) is not None]
            src.data = {"sparsity": [float(r["sparsity"]) for r in have], "us": [r[fmt] * 1e6 for r in have]}
        self._mark()

    def crossovers(self) -> dict:
        return {fmt: crossover_sparsity(self.rows, fmt) for fmt in ("csr", "bsr")}

    def _mark(self) -> None:
        notes = []
        for fmt, cross in self.crossovers().items():
            span, label = self.spans[fmt], self.labels[fmt]
            visible = cross is not None
            span.visible = label.visible = visible
            if visible:
                span.location = label.x = cross
                right = cross > 0.5  # write the label on the side with room
                label.text_align = "right" if right else "left"
                label.text = (f"{fmt.upper()} beats dense from {cross:.2f} " if right
                              else f" {fmt.upper()} beats dense from {cross:.2f}")
                notes.append(f"{fmt.upper()} crosses at {cross:.2f}")
            elif self.rows:
                top = max(r["sparsity"] for r in self.rows)
                notes.append(f"{fmt.upper()} never beats dense up to {top:.2f}")
        self.figure.title.text = self.title + (f": {'; '.join(notes)}" if notes else "")


class LayerSparsityFigure:
    """Bars: each prunable layer's sparsity at the latest step; the target as a line."""

    def __init__(self, height: int = 280, width: int = 560):
        self.source = ColumnDataSource({"layer": [], "sparsity": []})
        self.figure = figure(title="Sparsity per layer", height=height, width=width, x_range=FactorRange(),
                             y_range=(0, 1), x_axis_label="layer", y_axis_label="sparsity",
                             tools="hover,save",
                             tooltips=[("layer", "@layer"), ("sparsity", "@sparsity{0.000}")])
        self.figure.vbar(x="layer", top="sparsity", width=0.7, source=self.source, fill_color="#1f77b4",
                         line_color=None)
        self.target = Span(location=0.0, dimension="width", line_color="#d62728", line_dash="dashed",
                           line_width=2, visible=False)
        self.figure.add_layout(self.target)

    def set_step(self, step) -> None:
        layers = [k for k in step.layer_sparsity if k != "total"]
        self.figure.x_range.factors = layers
        self.source.data = {"layer": layers, "sparsity": [step.layer_sparsity[k] for k in layers]}
        self.target.location, self.target.visible = step.target, step.step > 0
        self.figure.title.text = (f"Sparsity per layer at step {step.step}: total {step.sparsity:.3f}"
                                  + (f", target {step.target:.3f} (dashed)" if step.step > 0 else ""))

    def clear(self) -> None:
        self.figure.x_range.factors = []
        self.source.data = {"layer": [], "sparsity": []}
        self.target.visible = False
        self.figure.title.text = "Sparsity per layer"
