"""RooflinePanel without a browser: its actions are methods, its output is readable."""

from __future__ import annotations

from workbench.store import Store
from workbench.widgets import RooflinePanel


def test_roofline_panel_measures_places_and_switches(runtime, tmp_path):
    store = Store(tmp_path / "s.db")
    panel = RooflinePanel(device=runtime, quick=True, store=store, sizes=[16, 64])
    assert "press Measure" in panel.status.value and panel.ceilings is None
    assert len(panel.out.outputs) == 1  # the live figure widget
    c = panel.measure()
    assert panel.ceilings is c and panel.progress.value == panel.progress.max
    assert "GB/s" in panel.table.value and "measuring" not in panel.table.value
    assert len(panel.fig.roof_sources["fp32_gflops"].data["x"]) >= 2
    assert list(panel.fig.points.data["name"]) == ["sgemm 16", "sgemm 64"]
    # Another panel on the same store redraws from the cache, without measuring.
    again = RooflinePanel(device=runtime, quick=True, store=store)
    assert "cached" in again.status.value and len(again.fig.points.data["name"]) == 2
    again.select("numpy")
    if runtime.kind != "numpy":
        assert again.rt.kind == "numpy" and again.dropdown.value == "numpy"
        assert len(again.fig.points.data["name"]) == 0
    again.dropdown.value = runtime.info.id  # the dropdown drives the same switch
    assert again.rt is runtime
