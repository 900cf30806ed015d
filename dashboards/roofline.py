"""The *Roofline* page: measure the session device's ceilings live and place SGEMM on them.

Measure runs :func:`workbench.roofline.iter_ceilings` through the page's job runner: each
microbenchmark's reading updates the table and the roofs as it arrives (redraws the browser has
acknowledged, so a slow tab never falls behind), then SGEMM of several sizes lands on the chart.
Cached ceilings and points of the device are drawn on load without measuring; a noisy measurement
is shown as such, with the accepted one kept as the device's ceilings.
"""

from __future__ import annotations

import panel as pn

from workbench import config
from workbench.jobs import Job
from workbench.ops import matmul_profile, matmul_sizes
from workbench.roofline import (
    CEILING_FIELDS,
    cached_ceilings,
    iter_ceilings,
    load_profiles,
    save_ceilings,
    save_profiles,
)
from workbench.viz import RooflineFigure, ceilings_html

from .jobs import PageJobs
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
        self.status = pn.pane.Markdown("", css_classes=["wb-status"])
        self.jobs = PageJobs(self.status)
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
            self.status.object = (f"Cached ceilings of **{rt.name}** ({ceilings.mode} mode, "
                                  f"{ceilings.measured_at}); "
                                  "press Measure to measure again.")
        else:
            self.status.object = f"No ceilings yet for **{rt.name}**: press Measure."
        self.place.disabled = ceilings is None

    def _busy(self, busy: bool) -> None:
        self.measure.disabled = busy
        self.place.disabled = busy or self.fig.ceilings is None

    # -- actions ------------------------------------------------------------------------------
    async def _on_measure(self, _event=None) -> None:
        if self.jobs.busy:
            return
        rt, quick = self.session.rt, self.quick.value
        self._busy(True)
        try:
            self.status.object = f"Measuring the ceilings of **{rt.name}** ..."
            with pn.io.unlocked():
                self.fig.clear_points()
            state = {}

            def draw(items: list) -> None:
                reading, ceilings, i, total = items[-1]
                state["ceilings"] = ceilings
                self.fig.set_ceilings(ceilings)
                self.table.object = ceilings_html(ceilings, pending=CEILING_FIELDS if i < total else ())
                self.status.object = f"Measured **{reading.name}** ({i}/{total}) ..."

            job = Job(lambda: iter_ceilings(rt, quick), total=lambda item: (item[2], item[3]),
                      label="ceilings")
            await self.jobs.run(job, draw, label="Measurement")
            ceilings = state.get("ceilings")
            if job.state != "finished" or ceilings is None:
                return
            self.table.object = ceilings_html(ceilings)
            save_ceilings(ceilings, self.session.store)
            if await self._place_sgemm(rt, matmul_sizes(rt, quick)):
                noisy = f" (noisy: {', '.join(ceilings.noisy)}; measure again)" if ceilings.noisy else ""
                self.status.object = (f"Measured **{rt.name}**{noisy} and placed SGEMM of "
                                      f"{len(matmul_sizes(rt, quick))} sizes.")
        finally:
            self._busy(False)

    async def _on_place(self, _event=None) -> None:
        if self.jobs.busy:
            return
        rt = self.session.rt
        self._busy(True)
        try:
            sizes = matmul_sizes(rt, self.quick.value)
            with pn.io.unlocked():
                self.fig.clear_points()
            if await self._place_sgemm(rt, sizes):
                self.status.object = f"Placed SGEMM of {len(sizes)} sizes on **{rt.name}**."
        finally:
            self._busy(False)

    async def _place_sgemm(self, rt, sizes) -> bool:
        def profiles():
            for n in sizes:
                yield matmul_profile(n, n, n, rt=rt)

        job = Job(profiles, total=len(sizes), label="SGEMM points")
        done = []

        def draw(points: list) -> None:
            done.extend(points)
            self.fig.add_points(points)
            self.status.object = f"Timed **{points[-1].name}** ({len(done)}/{len(sizes)}) ..."

        await self.jobs.run(job, draw, label="Placing SGEMM")
        if done:
            save_profiles(rt, done, store=self.session.store, source="roofline page")
        return job.state == "finished"

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(
                "## Roofline\nThe ceilings of the device in use, measured with our own "
                "microbenchmarks, and SGEMM of several sizes placed on them. Hover a point for "
                "its time, rate and the fraction of the attainable rate."),
            pn.Row(self.measure, self.place, self.quick),
            pn.Row(self.status, self.jobs.widgets()),
            pn.Row(self.plot, self.table),
            sizing_mode="stretch_width",
        )
