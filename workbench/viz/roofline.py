"""The roofline chart, shared by the notebook widget, the dashboard and the tutorials.

:class:`RooflineFigure` owns a Bokeh figure and its data sources. ``set_ceilings`` redraws the roofs
from measured :class:`~workbench.roofline.Ceilings`; ``add_points`` *streams* measured operations
onto the chart (hover shows name, time, rate, intensity and the fraction of the attainable rate),
so a live UI never rebuilds the figure.
"""

from __future__ import annotations

from typing import Iterable

from bokeh.models import ColumnDataSource, HoverTool, LabelSet, Range1d
from bokeh.plotting import figure

from ..roofline import Ceilings, OpProfile, Roofline

AI_RANGE = (1 / 64, 1024.0)  # FLOP/byte shown on the x axis
ROOF_STYLES = {
    "fp32_gflops": ("FP32 peak", "#1f77b4", "solid"),
    "int32_gops": ("INT32 peak", "#9467bd", "dashed"),
    "int8_gops": ("INT8 peak", "#2ca02c", "dashed"),
}
POINT_COLUMNS = ("name", "ai", "gflops", "ms", "gbs", "efficiency", "bound", "color")
PALETTE = ("#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def roof_curve(ceilings: Ceilings, compute: str, bandwidth: float | None = None):
    """x, y of min(peak, ai * bandwidth) over AI_RANGE, with the ridge point as a vertex."""
    peak = getattr(ceilings, compute)
    bw = ceilings.bandwidth_gbs if bandwidth is None else bandwidth
    lo, hi = AI_RANGE
    ridge = peak / bw
    xs = [lo, ridge, hi] if lo < ridge < hi else [lo, hi]
    return xs, [min(peak, x * bw) for x in xs]


def point_row(profile: OpProfile, ceilings: Ceilings | None, color: str) -> dict:
    """One row of the points source for ``profile``."""
    eff, bound = float("nan"), ""
    if ceilings is not None and ceilings.fp32_gflops and ceilings.bandwidth_gbs:
        model = Roofline(ceilings)
        eff, bound = model.efficiency(profile), model.bound(profile)
    return {"name": profile.name, "ai": profile.ai, "gflops": profile.gflops,
            "ms": profile.seconds * 1e3, "gbs": profile.gbs, "efficiency": eff * 100,
            "bound": bound, "color": color}


class RooflineFigure:
    """A log-log roofline chart with live-updatable roofs and points."""

    def __init__(self, title: str = "Roofline", height: int = 430, *, width: int = 860,
                 sizing_mode: str | None = None):
        size = {"sizing_mode": sizing_mode} if sizing_mode else {"width": width}
        self.figure = figure(
            title=title, x_axis_type="log", y_axis_type="log", height=height,
            x_range=Range1d(*AI_RANGE), y_range=Range1d(0.1, 1e4),
            x_axis_label="arithmetic intensity (FLOP/byte)",
            y_axis_label="GFLOP/s (GOP/s for integer roofs)",
            tools="pan,wheel_zoom,box_zoom,reset,save", **size,
        )
        self.ceilings: Ceilings | None = None
        self.roof_sources: dict[str, ColumnDataSource] = {}
        for key, (label, color, dash) in ROOF_STYLES.items():
            src = ColumnDataSource({"x": [], "y": []})
            self.figure.line("x", "y", source=src, color=color, line_dash=dash, line_width=2.5,
                             legend_label=label)
            self.roof_sources[key] = src
        self.host_source = ColumnDataSource({"x": [], "y": []})
        self.figure.line("x", "y", source=self.host_source, color="#7f7f7f", line_dash="dotted",
                         line_width=2, legend_label="FP32, operands from the host")
        self.points = ColumnDataSource({c: [] for c in POINT_COLUMNS})
        dots = self.figure.scatter("ai", "gflops", source=self.points, size=11, color="color",
                                   line_color="black", legend_field="name")
        self.figure.add_tools(HoverTool(renderers=[dots], tooltips=[
            ("op", "@name"), ("time", "@ms{0.000} ms"), ("rate", "@gflops{0,0.0} GFLOP/s"),
            ("traffic", "@gbs{0,0.0} GB/s"), ("intensity", "@ai{0.00} FLOP/byte"),
            ("of attainable", "@efficiency{0.0}%"), ("bound", "@bound"),
        ]))
        self.notes = ColumnDataSource({"x": [], "y": [], "text": [], "angle": []})
        self.figure.add_layout(LabelSet(x="x", y="y", text="text", angle="angle", source=self.notes,
                                        text_font_size="9pt", text_color="#333", y_offset=4))
        legend = self.figure.legend[0]
        legend.click_policy = "hide"
        legend.label_text_font_size = "9pt"
        self.figure.add_layout(legend, "right")  # outside the plot: never covers a point

    def set_ceilings(self, ceilings: Ceilings | None) -> None:
        """Draw the roofs of ``ceilings`` (partial ceilings draw what is known; None clears)."""
        self.ceilings = ceilings
        for key, src in self.roof_sources.items():
            ok = ceilings is not None and getattr(ceilings, key) and ceilings.bandwidth_gbs
            src.data = dict(zip(("x", "y"), roof_curve(ceilings, key))) if ok else {"x": [], "y": []}
        ok = ceilings is not None and ceilings.fp32_gflops and ceilings.h2d_gbs
        self.host_source.data = (
            dict(zip(("x", "y"), roof_curve(ceilings, "fp32_gflops", ceilings.h2d_gbs)))
            if ok else {"x": [], "y": []}
        )
        notes = {"x": [], "y": [], "text": [], "angle": []}
        if ceilings is not None and ceilings.bandwidth_gbs:
            lo = AI_RANGE[0] * 2
            notes["x"].append(lo)
            notes["y"].append(lo * ceilings.bandwidth_gbs * 2.5)  # above the slope, not on it
            notes["text"].append(f"{ceilings.bandwidth_gbs:,.0f} GB/s")
            notes["angle"].append(0.0)
        if ceilings is not None and ceilings.fp32_gflops:
            notes["x"].append(AI_RANGE[1] / 40)
            notes["y"].append(ceilings.fp32_gflops)
            notes["text"].append(f"FP32 {ceilings.fp32_gflops:,.0f} GFLOP/s")
            notes["angle"].append(0.0)
        self.notes.data = notes
        self._fit_y()
        if ceilings is not None:
            self.figure.title.text = f"Measured roofline: {ceilings.device}"

    def add_points(self, profiles: Iterable[OpProfile]) -> None:
        """Stream measured operations onto the chart."""
        rows = [point_row(p, self.ceilings, PALETTE[(len(self.points.data["name"]) + i) % len(PALETTE)])
                for i, p in enumerate(profiles)]
        if rows:
            self.points.stream({c: [r[c] for r in rows] for c in POINT_COLUMNS})
            self._fit_y()

    def clear_points(self) -> None:
        self.points.data = {c: [] for c in POINT_COLUMNS}

    def _fit_y(self) -> None:
        """Explicit y limits: a log axis with no data would make Bokeh guess (and warn)."""
        ys = [y for src in (*self.roof_sources.values(), self.host_source) for y in src.data["y"]]
        ys += [y for y in self.points.data["gflops"] if y > 0]
        if ys:
            self.figure.y_range.start = min(ys) / 2
            self.figure.y_range.end = max(ys) * 3


def roofline_figure(ceilings: Ceilings, profiles: Iterable[OpProfile] = (), **kwargs):
    """A finished Bokeh figure of ``ceilings`` with ``profiles`` placed on it."""
    fig = RooflineFigure(**kwargs)
    fig.set_ceilings(ceilings)
    fig.add_points(profiles)
    return fig.figure


def ceilings_html(ceilings: Ceilings | None, pending: Iterable[str] = ()) -> str:
    """An HTML table of the ceilings; ``pending`` names fields still being measured."""
    from html import escape

    from ..roofline import CEILING_FIELDS, LABELS, UNITS

    if ceilings is None:
        return "<p><i>No ceilings measured yet for this device: press Measure.</i></p>"
    pending = set(pending)
    rows = []
    for f in CEILING_FIELDS:
        v = getattr(ceilings, f)
        theory = ceilings.theoretical.get(f)
        if v is None:
            shown = "measuring..." if f in pending else "n/a"
        else:
            shown = f"{v:,.1f} {UNITS[f]}"
        pct = f"{100 * v / theory:.0f}% of {theory:,.0f}" if v is not None and theory else ""
        rows.append(f"<tr><td>{LABELS[f]}</td><td style='text-align:right'><b>{shown}</b></td>"
                    f"<td style='color:#666'>{pct}</td></tr>")
    warn = "".join(f"<li>{escape(w)}</li>" for w in ceilings.warnings)
    when = escape(ceilings.measured_at[:16].replace("T",
                                                    " ")) + " UTC" + (" (quick)" if ceilings.quick else "")
    return (
        f"<table class='wb-ceilings'><tr><th>ceiling</th><th>measured</th><th>theoretical</th></tr>"
        f"{''.join(rows)}</table><p style='color:#666;font-size:90%'>{escape(ceilings.device)}, "
        f"measured {when}</p>" + (f"<ul style='color:#a15c00'>{warn}</ul>" if warn else "")
    )
