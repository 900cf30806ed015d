"""The workbench dashboard: ``workbench dashboard`` serves this (``panel serve`` can too).

Pages are listed in ``PAGES`` as (title, builder); a builder takes the browser session's
:class:`Session` and returns a Panel object. Later capabilities add their pages here. Everything is
built per session in :func:`create_app`; nothing here is shared between visitors.
"""

from __future__ import annotations

import panel as pn

from .devices import devices_page
from .quantization import QuantizationPage
from .roofline import RooflinePage
from .session import Session
from .sparsity import SparsityPage
from .spikes import SpikesPage

PAGES = [
    ("Devices", devices_page),
    ("Roofline", RooflinePage),
    ("Quantization", QuantizationPage),
    ("Sparsity", SparsityPage),
    ("Spikes", SpikesPage),
]


def create_app(device: str | None = None) -> pn.template.BaseTemplate:
    """Build the dashboard for one browser session. ``?page=Roofline`` opens that page."""
    pn.extension(notifications=False)
    session = Session(device)
    titles = [title for title, _ in PAGES]
    nav = pn.widgets.RadioButtonGroup(options=titles, value=titles[0], orientation="vertical",
                                      color="primary", variant="outline", width=200)
    if pn.state.location is not None:
        pn.state.location.sync(nav, {"value": "page"})
    built: dict[str, object] = {}
    main = pn.Column(sizing_mode="stretch_width")

    def show(title: str) -> None:
        if title not in built:  # pages are built when first opened, once per session
            built[title] = dict(PAGES)[title](session)
        main.objects = [built[title]]

    nav.param.watch(lambda e: show(e.new), "value")
    show(nav.value)
    device = pn.pane.Markdown(sizing_mode="stretch_width")

    def label(_=None) -> None:
        device.object = f"**Device**<br>{session.rt.name}<br><small>{session.rt.kind}</small>"

    session.param.watch(label, "rt")
    label()
    return pn.template.BootstrapTemplate(
        title="workbench", sidebar=[nav, device], main=[main], sidebar_width=240,
    )


if __name__.startswith("bokeh"):  # `panel serve dashboards/app.py`
    create_app().servable()
