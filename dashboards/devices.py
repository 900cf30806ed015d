"""The *Devices* page: every OpenCL device, which one is in use, and a switch."""

from __future__ import annotations

from html import escape

import panel as pn

from workbench.runtime import get_runtime, list_devices

from .session import Session


def devices_table_html(rows: list[dict], in_use: str) -> str:
    head = ("", "id", "type", "name", "platform", "compute units", "clock", "memory",
            "max alloc", "OpenCL", "driver", "fp16", "fp64", "int8 dot", "SIMD")
    cells = []
    for r in rows:
        mark = "&#9679;" if r["id"] == in_use else ""
        mem = f"{r['global_mem_gib']:.1f} GiB" if r["global_mem_gib"] else "host RAM"
        alloc = f"{r['max_alloc_bytes'] / 2**30:.1f} GiB" if r["max_alloc_bytes"] else ""
        vals = (mark, r["id"], r["type"], r["name"], r["platform"], r["compute_units"],
                f"{r['clock_mhz']} MHz" if r["clock_mhz"] else "", mem, alloc,
                r["opencl_version"].split(" ")[1] if r["opencl_version"].startswith("OpenCL ") else "",
                r["driver_version"], "yes" if r["fp16"] else "", "yes" if r["fp64"] else "",
                "yes" if r["integer_dot"] else "", r["simd_width"])
        style = " style='background:#e8f1fb;font-weight:600'" if r["id"] == in_use else ""
        cells.append(f"<tr{style}>" + "".join(f"<td>{escape(str(v)) if v != mark else v}</td>"
                                              for v in vals) + "</tr>")
    return ("<table class='wb-devices'><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
            + "".join(cells) + "</table>")


def devices_page(session: Session) -> pn.viewable.Viewable:
    rows = [d.as_row() for d in list_devices()]
    options = {f"{r['name']} ({r['id']}, {r['type']})": r["id"] for r in rows}
    select = pn.widgets.Select(label="Run on", options=options, value=session.rt.info.id, width=420)
    table = pn.pane.HTML(devices_table_html(rows, session.rt.info.id), sizing_mode="stretch_width")
    status = pn.pane.Markdown(f"**In use:** {session.rt.name} ({session.rt.kind})")

    def switch(event):
        session.rt = get_runtime(event.new)

    def follow(event):
        table.object = devices_table_html(rows, event.new.info.id)
        status.object = f"**In use:** {event.new.name} ({event.new.kind})"
        select.value = event.new.info.id

    select.param.watch(switch, "value")
    session.param.watch(follow, "rt")
    return pn.Column(
        pn.pane.Markdown(
            "## Devices\nEvery OpenCL device on this machine, and the NumPy host backend. "
            "The one in use is highlighted; every page of this session runs on it."),
        select, status, table, sizing_mode="stretch_width",
    )
