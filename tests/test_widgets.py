"""RooflinePanel without a browser: its actions are methods, its output is readable."""

from __future__ import annotations

import pytest

pytest.importorskip("panel", reason="the UI packages are not installed (make test-gpu on a GPU machine)")

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


def test_sparsity_panel_prunes_stops_resumes_and_sweeps(runtime, tmp_path, monkeypatch):
    from workbench.data import digits
    from workbench.nn import MLP, train
    from workbench.widgets import SparsityPanel

    data = digits()
    model = MLP()
    train(model, data, epochs=3, rt="numpy")
    store = Store(tmp_path / "s.db")
    panel = SparsityPanel(model, data, device=runtime, store=store)
    assert len(panel.out.outputs) == 4  # curve, latency, layer bars, sweep
    steps = panel.prune(final_sparsity=0.8, n_steps=2, finetune_epochs=1)
    assert [s.step for s in steps] == [0, 1, 2] and abs(steps[-1].sparsity - 0.8) < 0.01
    assert "finished" in panel.status.value and panel.resume_button.disabled
    assert len(panel.curve.source.data["accuracy"]) == 3 and len(panel.latency.sources["bsr"].data["us"]) == 3
    # the panel's model stays dense
    assert float(abs(model.linear_layers()[0][1].effective_weight()).min()) > 0
    # Stop during a run (as the Stop button does, from another thread); resume finishes it.
    from workbench.sparse.gradual import GradualPruner

    measure = GradualPruner._measure

    def measure_then_stop(self, step, target):
        point = measure(self, step, target)
        if step == 1:
            panel.stop()  # arrives while the run is going on, after its first pruning step
        return point

    monkeypatch.setattr(GradualPruner, "_measure", measure_then_stop)
    steps = panel.prune(final_sparsity=0.8, n_steps=3, finetune_epochs=1)
    assert len(steps) < 4 and not panel.pruner.done and not panel.resume_button.disabled
    steps = panel.resume()
    assert len(steps) == 4 and panel.pruner.done
    result = panel.sweep(64, 64, 8, sparsities=(0.0, 0.9))
    assert len(panel.sweep_fig.sources["csr"].data["us"]) == 2 and set(result["crossover"]) == {"csr", "bsr"}


def test_spike_raster_panel_runs_takes_sliders_stops_and_shows_a_record(runtime, tmp_path):
    import threading
    import time

    import numpy as np

    from workbench import snn
    from workbench.widgets import SpikeRasterPanel

    store = Store(tmp_path / "s.db")
    panel = SpikeRasterPanel(device=runtime, store=store, n_exc=160, n_inh=40, n_input=160)
    assert len(panel.out.outputs) == 3  # raster over population rate, traces, histogram
    chunks = panel.run(300.0, chunk=100.0, pace=None)
    assert len(chunks) == 3 and "done" not in panel.status.value
    assert "finished at t = 0.3 s" in panel.status.value
    assert panel.raster.figure.x_range.end == 500.0 and len(panel.raster.sources["excitatory"].data["t"]) > 0
    panel.sliders["inhibition"].value = 0.4  # the slider drives the network
    assert panel.network._pending == {"inhibition": 0.4}
    panel.set(v_th=-52.0)
    assert panel.sliders["v_th"].value == -52.0 and panel.traces.threshold.location == -52.0

    def stop_soon():
        deadline = time.monotonic() + 120  # a run that fails early must not leave this spinning
        while panel.network.chunks_done_ < 5 and time.monotonic() < deadline:
            time.sleep(0.001)
        panel.stop()

    threading.Thread(target=stop_soon).start()
    more = panel.run(5000.0, chunk=100.0, pace=None)
    assert 1 <= len(more) < 50 and "stopped" in panel.status.value
    assert more[0].knobs["inhibition"] == 0.4 and more[0].knobs["v_th"] == -52.0
    assert store.runs("snn")[0]["status"] == "stopped"
    net = snn.SNNNetwork()
    src = net.add(snn.PoissonGroup(50, rates=40.0, seed=1, name="input"))
    lif = net.add(snn.LIFLayer(20, snn.LIFParams(dt=0.1), name="lif"))
    net.connect(src, lif, np.full((50, 20), 2.0, np.float32))
    rec = snn.simulate(net, duration=1000.0, rt=runtime, record_v={"lif": [0, 1]})
    panel.show(rec)  # a whole run: all of it, not a window
    assert panel.raster.figure.x_range.start == 0.0 and panel.raster.figure.x_range.end == 1000.0
    assert len(panel.raster.sources["input"].data["t"]) == int(rec.counts[:50].sum())
    assert len(panel.traces.source.data["xs"]) == 2 and len(panel.traces.source.data["xs"][0]) == 10000
