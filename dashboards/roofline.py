"""The *Roofline* page: measure the session device's ceilings live and place SGEMM on them.

Measure runs each microbenchmark in a worker thread; between them the page (on the server's event
loop) updates the table, the progress bar and the roofs, so ceilings appear one by one. Edits of
the Bokeh figure's own data sources go through ``pn.io.unlocked()``: Panel widgets sync themselves,
but a raw Bokeh model changed outside a locked callback must be dispatched explicitly. Cached
ceilings and points of the device are drawn on load without measuring.
"""

from __future__ import annotations

import asyncio

import panel as pn

from workbench import config
from workbench.ops import matmul_profile, matmul_sizes
from workbench.roofline import (
    CEILING_FIELDS, cached_ceilings, check_plausible, load_profiles, new_ceilings, plan_ceilings,
    save_ceilings, save_profiles,
)
from workbench.viz import RooflineFigure, ceilings_html

from .session import Session


class RooflinePage(pn.viewable.Viewer):
    def __init__(self, session: Session, **params):
        super().__init__(**params)
        self.session = session
        self.fig = RooflineFigure(height=460, width=900)
        self.measure = pn.widgets.Button(label="Measure", color="primary", width=140)
        self.place = pn.widgets.Button(label="Place SGEMM", color="default", width=140)
        self.quick = pn.widgets.Checkbox(label="quick (fewer repeats, smaller buffers)",
                                         value=config.quick())
        self.progress = pn.indicators.Progress(value=0, max=1, width=300, visible=False)
        self.status = pn.pane.Markdown("", css_classes=["wb-status"])
        self.table = pn.pane.HTML("", width=460)
        self.plot = pn.pane.Bokeh(self.fig.figure)
        self.measure.on_click(self._on_measure)
        self.place.on_click(self._on_place)
        session.param.watch(lambda _: self._load_cached(), "rt")
        self._load_cached()

    # -- state --------------------------------------------------------------------------------
    def _load_cached(self) -> None:
        rt = self.session.rt
        ceilings = cached_ceilings(rt, self.session.store, quick=True)  # a full one, else a quick one
        with pn.io.unlocked():
            self.fig.set_ceilings(ceilings)
            self.fig.clear_points()
            if ceilings is not None:
                self.fig.add_points(load_profiles(rt, self.session.store))
        self.table.object = ceilings_html(ceilings)
        if ceilings is not None:
            self.status.object = (f"Cached ceilings of **{rt.name}** ({ceilings.mode} mode, {ceilings.measured_at}); "
                                  "press Measure to measure again.")
        else:
            self.status.object = f"No ceilings yet for **{rt.name}**: press Measure."
        self.place.disabled = ceilings is None

    def _busy(self, busy: bool) -> None:
        self.measure.disabled = busy
        self.place.disabled = busy or self.fig.ceilings is None
        self.progress.visible = busy

    # -- actions ------------------------------------------------------------------------------
    async def _on_measure(self, _event=None) -> None:
        rt, quick = self.session.rt, self.quick.value
        loop = asyncio.get_running_loop()
        self._busy(True)
        try:
            self.status.object = f"Building the microbenchmarks for **{rt.name}** ..."
            steps = await loop.run_in_executor(None, plan_ceilings, rt, quick)
            sizes = matmul_sizes(rt, quick)
            self.progress.max, self.progress.value = len(steps) + len(sizes), 0
            ceilings = new_ceilings(rt, quick)
            with pn.io.unlocked():
                self.fig.clear_points()
            for step in steps:
                self.status.object = f"Measuring **{step.name}** ..."
                self.table.object = ceilings_html(ceilings, pending=CEILING_FIELDS)
                reading = await loop.run_in_executor(None, step.run)
                ceilings.add(reading)
                with pn.io.unlocked():
                    self.fig.set_ceilings(ceilings)
                self.progress.value += 1
            ceilings.warnings = check_plausible(ceilings)
            self.table.object = ceilings_html(ceilings)
            save_ceilings(ceilings, self.session.store)
            await self._place_sgemm(rt, sizes)
            self.status.object = f"Measured **{rt.name}** and placed SGEMM of {len(sizes)} sizes."
        except Exception as exc:  # show it on the page rather than only in the server log
            self.status.object = f"**Measurement failed:** {type(exc).__name__}: {exc}"
            raise
        finally:
            self._busy(False)

    async def _on_place(self, _event=None) -> None:
        rt = self.session.rt
        self._busy(True)
        try:
            sizes = matmul_sizes(rt, self.quick.value)
            self.progress.max, self.progress.value = len(sizes), 0
            with pn.io.unlocked():
                self.fig.clear_points()
            await self._place_sgemm(rt, sizes)
            self.status.object = f"Placed SGEMM of {len(sizes)} sizes on **{rt.name}**."
        finally:
            self._busy(False)

    async def _place_sgemm(self, rt, sizes) -> None:
        loop = asyncio.get_running_loop()
        profiles = []
        for n in sizes:
            self.status.object = f"Timing **SGEMM {n}x{n}x{n}** ..."
            p = await loop.run_in_executor(None, matmul_profile, n, n, n, rt)
            profiles.append(p)
            with pn.io.unlocked():
                self.fig.add_points([p])
            self.progress.value += 1
        save_profiles(rt, profiles, self.session.store)

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(
                "## Roofline\nThe ceilings of the device in use, measured with our own "
                "microbenchmarks, and SGEMM of several sizes placed on them. Hover a point for "
                "its time, rate and the fraction of the attainable rate."),
            pn.Row(self.measure, self.place, self.quick, self.progress),
            self.status,
            pn.Row(self.plot, self.table),
            sizing_mode="stretch_width",
        )
