"""Dashboard pages without a browser: built per session, Measure driven directly."""

from __future__ import annotations

import pytest

pytest.importorskip("panel", reason="the UI packages are not installed (make test-gpu on a GPU machine)")

import asyncio
import dataclasses

import panel as pn

from workbench import recipes
from workbench.dashboards.app import PAGES, create_app
from workbench.dashboards.devices import devices_page
from workbench.dashboards.roofline import RooflinePage
from workbench.dashboards.session import Session
from workbench.store import Store


def test_app_has_the_pages_and_sessions_are_independent():
    assert [t for t, _ in PAGES][:2] == ["Devices", "Roofline"]
    a, b = create_app(), create_app()
    assert isinstance(a, pn.template.BaseTemplate) and a is not b


def test_devices_page_switches_the_session_device(runtime):
    session = Session("numpy")
    page = devices_page(session)
    select = page.objects[1]
    select.value = runtime.info.id
    assert session.rt is runtime
    assert runtime.name in page.objects[2].object


def test_roofline_page_measures_and_redraws_from_cache(runtime, tmp_path):
    store = Store(tmp_path / "s.db")
    page = RooflinePage(Session(runtime.info.id, store))
    assert "No ceilings yet" in page.status.object and page.place.disabled
    page.quick.value = True
    asyncio.run(page._on_measure())
    assert "placed SGEMM" in page.status.object, page.status.object
    assert page.jobs.progress.value == page.jobs.progress.max and not page.measure.disabled
    assert len(page.fig.points.data["name"]) == 3 and "GB/s" in page.table.object
    fresh = RooflinePage(Session(runtime.info.id, store))  # a reload: from the store
    assert "Cached ceilings" in fresh.status.object and len(fresh.fig.points.data["name"]) == 3
    asyncio.run(fresh._on_place())
    assert len(fresh.fig.points.data["name"]) == 3


def test_quantization_page_trains_calibrates_and_runs_the_grid(tmp_path, monkeypatch):
    from workbench.dashboards import quantization
    from workbench.dashboards.quantization import QuantizationPage

    monkeypatch.setitem(recipes.RECIPES, "MLP", dataclasses.replace(recipes.RECIPES["MLP"], quick_epochs=3))
    monkeypatch.setattr(quantization, "grid_cells", lambda: [(8, True, "minmax"), (4, True, "mse")])
    store = Store(tmp_path / "s.db")
    page = QuantizationPage(Session("numpy", store))
    assert page.grid_button.disabled and len(page.grid_fig.source.data["method"]) == 0
    asyncio.run(page._on_train())
    assert "trained on" in page.status.object, page.status.object
    assert page.layer.options == ["0", "2"] and len(page.cal_fig.hist.data["top"]) > 0
    assert not page.grid_button.disabled
    page.layer.value = "2"
    assert page.cal_fig.figure.title.text.startswith("Layer 2")
    asyncio.run(page._on_grid())
    assert "done and stored" in page.status.object, page.status.object
    assert list(page.grid_fig.source.data["method"]) == ["minmax", "mse"]
    assert list(page.grid_fig.source.data["kernel"]) == ["int8_matmul", "int4_gemv"]
    fresh = QuantizationPage(Session("numpy", store))  # a reload shows the stored grid
    assert len(fresh.grid_fig.source.data["method"]) == len(page.grid_fig.source.data["method"])


def test_sparsity_page_prunes_stops_resumes_and_reloads(runtime, tmp_path, monkeypatch):
    from workbench.dashboards import sparsity
    from workbench.dashboards.sparsity import SparsityPage

    monkeypatch.setitem(recipes.RECIPES, "MLP", dataclasses.replace(recipes.RECIPES["MLP"], quick_epochs=3))
    monkeypatch.setattr(sparsity, "sweep_shape", lambda rt: (96, 64, 16))
    store = Store(tmp_path / "s.db")
    page = SparsityPage(Session(runtime.info.id, store))
    assert "No pruning runs yet" in page.status.object and page.resume_button.disabled
    page.steps.value, page.epochs.value, page.final.value = 3, 1, 0.8

    async def start_then_stop():  # Stop pressed while the second step runs
        task = asyncio.ensure_future(page._on_start())
        while not task.done() and (page.pruner is None or page.pruner.step_ < 2):
            await asyncio.sleep(0.01)
        assert not task.done(), page.status.object  # a failed job ends the task: say why
        page._on_stop()
        await task

    asyncio.run(start_then_stop())
    assert "stopped" in page.status.object, page.status.object
    assert not page.resume_button.disabled and not page.pruner.done
    n = len(page.curve.source.data["sparsity"])
    assert 2 <= n < 4 and store.runs("prune")[0]["status"] == "stopped"
    asyncio.run(page._on_resume())
    assert "finished and stored" in page.status.object, page.status.object
    assert len(page.curve.source.data["sparsity"]) == 4 and page.resume_button.disabled
    assert abs(page.curve.source.data["sparsity"][-1] - 0.8) < 0.01
    assert set(page.layers.source.data["layer"]) == {"0", "2"}
    assert len(page.latency.sources["csr"].data["us"]) == 4
    assert store.runs("prune")[0]["status"] == "finished"
    fresh = SparsityPage(Session(runtime.info.id, store))  # a reload shows the stored run
    assert "Showing stored run" in fresh.status.object
    assert list(fresh.curve.source.data["sparsity"]) == list(page.curve.source.data["sparsity"])
    asyncio.run(fresh._on_sweep())
    assert "Crossover on" in fresh.status.object, fresh.status.object
    assert len(fresh.sweep.sources["dense"].data["us"]) == 7


def test_spikes_page_runs_live_takes_sliders_stops_continues_and_trains(runtime, tmp_path, monkeypatch):
    from workbench.dashboards import spikes
    from workbench.dashboards.spikes import SpikesPage
    from workbench.snn.classifier import TRAIN_KIND

    monkeypatch.setitem(spikes.SIZES, "1,000 neurons", (160, 40, 160))  # small and quick
    store = Store(tmp_path / "s.db")
    page = SpikesPage(Session(runtime.info.id, store))
    assert "No network runs yet" in page.status.object and page.continue_button.disabled
    page.duration.value, page.pace.value = 2.0, "as fast as it goes"

    async def start_move_stop():  # a slider moved, then Stop, while it runs
        task = asyncio.ensure_future(page._on_start())
        while not task.done() and (page.live is None or page.live.chunks_done_ < 3):
            await asyncio.sleep(0.005)
        assert not task.done(), page.status.object
        page.inhibition.value = 0.5
        while not task.done() and page.live.chunks_done_ < 6:
            await asyncio.sleep(0.005)
        assert not task.done(), page.status.object
        at_stop = page.live.chunks_done_
        page._on_stop()
        await task
        assert page.live.chunks_done_ <= at_stop + 1  # the chunk in progress, no more

    asyncio.run(start_move_stop())
    assert "stopped; press **Continue**" in page.status.object, page.status.object
    run = store.runs("snn")[0]
    assert run["status"] == "stopped"
    rows = store.metrics(run["id"])
    assert 6 <= len(rows) < 20 and rows[0]["inhibition"] == 1.0 and rows[-1]["inhibition"] == 0.5
    assert len(page.history.source.data["t"]) == len(rows)
    assert len(page.raster.sources["excitatory"].data["t"]) > 0
    assert page.raster.figure.x_range.end - page.raster.figure.x_range.start == spikes.WINDOW_MS
    assert len(page.traces.source.data["xs"]) == 3 and len(page.hist.sources["inhibitory"].data["count"]) > 0
    page.v_th.value = -52.0  # moved while stopped: the line moves now, the network on Continue
    assert page.traces.threshold.location == -52.0
    page.duration.value = 0.3
    asyncio.run(page._on_continue())
    assert "finished" in page.status.object and store.runs("snn")[0]["status"] == "finished"
    assert store.metrics(run["id"])[-1]["v_th"] == -52.0
    fresh = SpikesPage(Session(runtime.info.id, store))  # a reload shows the stored run
    assert "Showing the rates of stored run" in fresh.status.object
    assert len(fresh.history.source.data["t"]) == len(store.metrics(run["id"]))

    page.n_neurons.value, page.images.value = 16, 40
    asyncio.run(page._on_train())
    assert "finished and stored: test accuracy" in page.train_status.object, page.train_status.object
    assert len(page.fields.labels.data["text"]) == 16 and page.fields.source.data["image"]
    assert store.runs(TRAIN_KIND)[0]["status"] == "finished" and "test accuracy" in page.train_runs.object

    async def train_then_stop():
        task = asyncio.ensure_future(page._on_train())
        while not task.done() and (page.clf is None or len(getattr(page.clf, "history_", None) or []) < 5):
            await asyncio.sleep(0.005)
        assert not task.done(), page.train_status.object
        page._on_train_stop()
        await task

    page.images.value, page.clf = 400, None
    asyncio.run(train_then_stop())
    assert "stopped and stored" in page.train_status.object, page.train_status.object
    assert store.runs(TRAIN_KIND)[0]["status"] == "stopped"
