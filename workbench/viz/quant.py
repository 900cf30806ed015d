"""Quantization figures shared by the widget, the dashboard page and the tutorial.

* :class:`CalibrationFigure`: one layer's weight histogram with each calibrator's clipping
  threshold drawn as a pair of vertical lines at +-T (``set_layer`` swaps the layer in place).
* :class:`LayerErrorFigure`: per-layer weight MSE by method, per tensor and per channel.
* :class:`GridFigure`: accuracy vs stored size for every (method, bits, granularity) point, with
  a table of accuracy, size and INT-vs-FP32 latency; ``add_points`` streams rows in.
"""

from __future__ import annotations

from typing import Iterable

from bokeh.layouts import column
from bokeh.models import ColumnDataSource, DataTable, FactorRange, HoverTool, NumberFormatter, TableColumn
from bokeh.plotting import figure
from bokeh.transform import factor_cmap

from ..quant.calibrate import METHODS

METHOD_COLORS = {"minmax": "#1f77b4", "percentile": "#ff7f0e", "kl": "#2ca02c", "mse": "#d62728"}


def _legend_outside(fig) -> None:
    """Move the figure's legend to the right of the plot, where it hides no data."""
    legend = fig.legend[0]
    legend.label_text_font_size = "8pt"
    fig.add_layout(legend, "right")


class CalibrationFigure:
    """Histogram of a layer's weights (or inputs) with the four methods' clipping ranges."""

    def __init__(self, height: int = 300, width: int = 560):
        self.hist = ColumnDataSource({"left": [], "right": [], "top": []})
        self.lines = ColumnDataSource({"x": [], "y0": [], "y1": [], "method": [], "color": [], "t": []})
        self.figure = figure(title="Layer weights", height=height, width=width,
                             x_axis_label="value", y_axis_label="count",
                             tools="pan,wheel_zoom,box_zoom,reset,save")
        self.figure.quad(left="left", right="right", top="top", bottom=0, source=self.hist,
                         fill_color="#bbbbbb", line_color="#999999")
        renderer = self.figure.segment(x0="x", x1="x", y0="y0", y1="y1", color="color",
                                       line_width=2, source=self.lines, legend_field="method")
        self.figure.add_tools(HoverTool(renderers=[renderer],
                                        tooltips=[("method", "@method"), ("threshold", "@t{0.0000}")]))
        _legend_outside(self.figure)

    def set_layer(self, layer, activations: bool = False) -> None:
        """Show one :class:`~workbench.quant.explore.LayerCalibration`."""
        edges = layer.act_edges if activations else layer.edges
        counts = layer.act_counts if activations else layer.counts
        top = float(counts.max()) if len(counts) else 1.0
        self.hist.data = {"left": edges[:-1].tolist(), "right": edges[1:].tolist(),
                          "top": counts.tolist()}
        xs, methods, ts = [], [], []
        for m in METHODS:
            if activations:
                lo, hi = layer.act_ranges[m]
                pair = (lo, hi)
            else:
                t = layer.thresholds[m]
                pair = (-t, t)
            for x in pair:
                xs.append(x)
                methods.append(m)
                ts.append(x)
        self.lines.data = {"x": xs, "y0": [0.0] * len(xs), "y1": [top * 1.05] * len(xs),
                           "method": methods, "color": [METHOD_COLORS[m] for m in methods], "t": ts}
        what = "inputs" if activations else "weights"
        self.figure.title.text = f"Layer {layer.name} ({layer.kind} {layer.shape[0]}x{layer.shape[1]}) {what}"


class LayerErrorFigure:
    """Grouped bars: weight MSE per layer and method (per tensor and per channel)."""

    def __init__(self, height: int = 300, width: int = 560):
        self.source = ColumnDataSource({"x": [], "mse": [], "bottom": [], "method": [], "granularity": []})
        self.figure = figure(title="Weight quantization error (MSE, log)", height=height, width=width,
                             x_range=FactorRange(), y_axis_type="log",
                             tools="hover,save", tooltips=[("layer / method", "@x"), ("MSE", "@mse{0.000e}")])
        self.figure.vbar(x="x", top="mse", bottom="bottom", width=0.9, source=self.source,
                         fill_color=factor_cmap("method", list(METHOD_COLORS.values()), list(METHODS)),
                         line_color=None, legend_field="method")
        self.figure.xaxis.major_label_orientation = 1.0
        _legend_outside(self.figure)

    def set_layers(self, layers, per_channel: bool = True) -> None:
        xs, mses, ms = [], [], []
        for layer in layers:
            errs = layer.error_per_channel if per_channel else layer.error_per_tensor
            for m in METHODS:
                xs.append((layer.name, m))
                mses.append(max(errs[m], 1e-12))
                ms.append(m)
        floor = min(mses) / 4 if mses else 1e-8  # log axis: bars start a little below the lowest
        self.figure.x_range.factors = xs
        self.source.data = {"x": xs, "mse": mses, "bottom": [floor] * len(xs), "method": ms,
                            "granularity": ["per-channel" if per_channel else "per-tensor"] * len(xs)}


GRID_COLUMNS = ("method", "bits", "granularity", "accuracy", "delta", "kbytes", "ratio",
                "latency_ms", "float_latency_ms", "speedup", "kernel", "ran", "color", "marker")


class GridFigure:
    """Accuracy vs size scatter and the grid table, both fed by ``add_points``."""

    def __init__(self, height: int = 320, width: int = 560):
        self.source = ColumnDataSource({c: [] for c in GRID_COLUMNS})
        self.figure = figure(title="Accuracy vs size (circles: per-channel, squares: per-tensor)",
                             height=height, width=width,
                             x_axis_label="stored size (kB)", y_axis_label="test accuracy",
                             tools="pan,wheel_zoom,box_zoom,reset,save")
        r = self.figure.scatter(x="kbytes", y="accuracy", source=self.source, size=11, color="color",
                                marker="marker", fill_alpha=0.8,
                                legend_field="method")
        self.figure.add_tools(HoverTool(renderers=[r], tooltips=[
            ("point", "@method @bits-bit @granularity"), ("calibrator that ran", "@ran"),
            ("accuracy", "@accuracy{0.0000}"),
            ("size", "@kbytes{0.0} kB"), ("latency",
                                          "@latency_ms{0.000} ms (float @float_latency_ms{0.000} ms)"),
            ("speedup", "@speedup{0.00}x")]))
        fmt = NumberFormatter(format="0.0000")
        cols = [TableColumn(field="method", title="method"), TableColumn(field="bits", title="bits"),
                TableColumn(field="granularity", title="granularity"),
                TableColumn(field="accuracy", title="accuracy", formatter=fmt),
                TableColumn(field="delta", title="Δ points", formatter=NumberFormatter(format="+0.00")),
                TableColumn(field="kbytes", title="size kB", formatter=NumberFormatter(format="0.0")),
                TableColumn(field="ratio", title="x smaller", formatter=NumberFormatter(format="0.0")),
                TableColumn(field="latency_ms", title="INT ms", formatter=NumberFormatter(format="0.000")),
                TableColumn(field="float_latency_ms", title="FP32 ms",
                            formatter=NumberFormatter(format="0.000")),
                TableColumn(field="speedup", title="speed-up", formatter=NumberFormatter(format="0.00")),
                TableColumn(field="kernel", title="kernel"),
                TableColumn(field="ran", title="calibrator that ran")]
        self.table = DataTable(source=self.source, columns=cols, height=height, width=width + 160,
                               index_position=None)
        self.float_point = ColumnDataSource({"kbytes": [], "accuracy": []})
        self.figure.scatter(x="kbytes", y="accuracy", source=self.float_point, size=13, marker="star",
                            color="black", legend_label="float32")
        _legend_outside(self.figure)

    def clear(self) -> None:
        self.source.data = {c: [] for c in GRID_COLUMNS}
        self.float_point.data = {"kbytes": [], "accuracy": []}

    def add_points(self, points: Iterable) -> None:
        rows = {c: [] for c in GRID_COLUMNS}
        last = None
        for p in points:
            last = p
            rows["method"].append(p.method)
            rows["bits"].append(p.bits)
            rows["granularity"].append("per-channel" if p.per_channel else "per-tensor")
            rows["accuracy"].append(p.accuracy)
            rows["delta"].append(100 * (p.accuracy - p.float_accuracy))
            rows["kbytes"].append(p.nbytes / 1e3)
            rows["ratio"].append(p.float_nbytes / p.nbytes)
            rows["latency_ms"].append(p.latency_s * 1e3)
            rows["float_latency_ms"].append(p.float_latency_s * 1e3)
            rows["speedup"].append(p.speedup)
            rows["kernel"].append(p.kernel)
            rows["ran"].append(f"{p.method}: {p.calibrators}" if getattr(p, "calibrators", "") else p.method)
            rows["color"].append(METHOD_COLORS[p.method])
            rows["marker"].append("circle" if p.per_channel else "square")
        if last is None:
            return
        self.source.stream(rows)
        self.float_point.data = {"kbytes": [last.float_nbytes / 1e3], "accuracy": [last.float_accuracy]}

    def layout(self):
        return column(self.figure, self.table)
