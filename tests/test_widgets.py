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


def test_quantization_panel_calibrates_and_streams_the_grid(runtime, tmp_path):
    from workbench import data, nn
    from workbench.quant.explore import load_grid
    from workbench.widgets import QuantizationPanel

    ds = data.digits()
    model = nn.MLP((64, 32, 10))
    nn.train(model, ds, epochs=5, rt="numpy")
    store = Store(tmp_path / "s.db")
    panel = QuantizationPanel(model, ds, device=runtime, store=store)
    assert len(panel.out.outputs) == 3  # histogram, per-layer error, grid
    assert set(panel.cal_fig.lines.data["method"]) == {"minmax", "percentile", "kl", "mse"}
    panel.layer.value = "2"
    assert panel.cal_fig.figure.title.text.startswith("Layer 2")
    panel.what.value = "inputs"
    assert "inputs" in panel.cal_fig.figure.title.text
    panel.bits.value = 4  # recalibrates: 4-bit thresholds differ from 8-bit ones
    points = panel.run_grid(methods=("minmax", "mse"), bits=(8, 4), per_channel=(True,))
    assert len(points) == 4 and panel.progress.value == 4
    assert list(panel.grid_fig.source.data["method"]) == ["minmax", "mse", "minmax", "mse"]
    assert {p.kernel for p in points} == {"int8_matmul", "int4_gemv"}
    assert all(p.nbytes < p.float_nbytes / 3 for p in points)
    assert len(load_grid(runtime, store)) == 4
