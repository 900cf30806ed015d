"""``RooflinePanel``: the measured roofline in a notebook (ipywidgets).

A thin adapter: the device dropdown picks a runtime, Measure runs :func:`iter_ceilings` and
:func:`matmul_profile` and feeds the shared :class:`~workbench.viz.RooflineFigure`. Every action is
also a method (``measure()``, ``place_sgemm()``, ``select(device)``), so tests and scripts drive it
without a browser, and its output lands in ``out.outputs``.
"""

from __future__ import annotations

import ipywidgets as widgets

from .. import config
from ..jobs import Job
from ..ops import matmul_profile, matmul_sizes
from ..roofline import (
    CEILING_FIELDS,
    Ceilings,
    OpProfile,
    cached_ceilings,
    iter_ceilings,
    load_profiles,
    save_ceilings,
    save_profiles,
)
from ..runtime import get_runtime, list_devices
from ..viz import RooflineFigure, ceilings_html
from .common import WidgetJob, figure_widget


class RooflinePanel:
    """Device dropdown, Measure button, progress bar, ceilings table and the roofline chart.

    >>> panel = RooflinePanel(device="cpu", quick=True)   # doctest: +SKIP
    >>> panel                                             # shows it in a notebook
    >>> ceilings = panel.measure()                        # same as pressing Measure
    """

    def __init__(self, device=None, quick: bool | None = None, *, store=None,
                 sizes: list[int] | None = None):
        self.rt = get_runtime(device)
        self.quick = config.quick() if quick is None else quick
        self.store = store
        self.sizes = sizes
        self.ceilings: Ceilings | None = None
        self.profiles: list[OpProfile] = []
        options = [(f"{d.name} ({d.id})", d.id) for d in list_devices()]
        self.dropdown = widgets.Dropdown(options=options, value=self.rt.info.id,
                                         description="Device", layout=widgets.Layout(width="460px"))
        self.button = widgets.Button(description="Measure", button_style="primary", icon="play")
        self.status = widgets.HTML()
        self.jobs = WidgetJob(self.status)
        self.progress = self.jobs.progress
        self.table = widgets.HTML()
        self.out = widgets.Output()
        self.fig = RooflineFigure(height=400, width=760)
        self.dropdown.observe(lambda change: self.select(change["new"]), names="value")
        self.button.on_click(lambda _: self.measure())
        self.widget = widgets.VBox([
            widgets.HBox([self.dropdown, self.button, self.jobs.widgets()]),
            self.status, widgets.HBox([self.out, self.table]),
        ])
        view = figure_widget(self.fig.figure)
        if view is not None:
            self.out.append_display_data(view)
        self._load_cached()

    # -- actions ------------------------------------------------------------------------------
    def select(self, device) -> None:
        """Switch to ``device`` (anything ``get_runtime`` accepts) and show its cached ceilings."""
        self.rt = get_runtime(device)
        if self.dropdown.value != self.rt.info.id:
            self.dropdown.value = self.rt.info.id  # re-enters select() once, harmlessly
        self._load_cached()

    def measure(self) -> Ceilings:
        """Measure the ceilings (shown one by one), then place SGEMM points on them."""
        self.button.disabled = True
        try:
            self.fig.clear_points()
            seen = []

            def draw(items: list) -> None:
                reading, ceilings, i, total = items[-1]
                seen.append(ceilings)
                self.status.value = f"measured <b>{reading.name}</b>: {reading.value:,.1f} {reading.unit}"
                self.table.value = ceilings_html(ceilings, pending=CEILING_FIELDS)
                self.fig.set_ceilings(ceilings)

            rt, quick = self.rt, self.quick
            self.jobs.run(Job(lambda: iter_ceilings(rt, quick), total=lambda item: (item[2], item[3]),
                              label="ceilings"), draw, label="Measurement")
            ceilings = seen[-1]
            self.ceilings = ceilings
            self.table.value = ceilings_html(ceilings)
            save_ceilings(ceilings, self.store)
            self.place_sgemm()
            return ceilings
        finally:
            self.button.disabled = False

    def place_sgemm(self, sizes: list[int] | None = None) -> list[OpProfile]:
        """Time square SGEMM of ``sizes`` and put each on the chart."""
        sizes = sizes or self.sizes or matmul_sizes(self.rt, self.quick)
        self.fig.clear_points()
        self.profiles = []
        for n in sizes:
            self.status.value = f"timing SGEMM {n}x{n}x{n} ..."
            p = matmul_profile(n, n, n, rt=self.rt)
            self.profiles.append(p)
            self.fig.add_points([p])
        save_profiles(self.rt, self.profiles, store=self.store)
        self.status.value = f"{self.rt.name}: ceilings and SGEMM of {len(sizes)} sizes"
        return self.profiles

    # -- state --------------------------------------------------------------------------------
    def _load_cached(self) -> None:
        self.ceilings = cached_ceilings(self.rt, self.store, quick=True)
        self.profiles = load_profiles(self.rt, self.store) if self.ceilings else []
        self.fig.set_ceilings(self.ceilings)
        self.fig.clear_points()
        self.fig.add_points(self.profiles)
        self.table.value = ceilings_html(self.ceilings)
        self.status.value = (f"cached ceilings of <b>{self.rt.name}</b>" if self.ceilings
                             else f"no ceilings yet for <b>{self.rt.name}</b>: press Measure")

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
