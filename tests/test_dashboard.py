"""Dashboard pages without a browser: built per session, Measure driven directly."""

from __future__ import annotations

import asyncio

import panel as pn

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
    assert page.progress.value == page.progress.max and not page.measure.disabled
    assert len(page.fig.points.data["name"]) == 3 and "GB/s" in page.table.object
    fresh = RooflinePage(Session(runtime.info.id, store))  # a reload: from the store
    assert "Cached ceilings" in fresh.status.object and len(fresh.fig.points.data["name"]) == 3
    asyncio.run(fresh._on_place())
    assert len(fresh.fig.points.data["name"]) == 3


def test_quantization_page_trains_calibrates_and_runs_the_grid(tmp_path, monkeypatch):
    from workbench.dashboards import quantization
    from workbench.dashboards.quantization import QuantizationPage

    monkeypatch.setitem(quantization.EPOCHS, "MLP", 3)
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

    monkeypatch.setitem(sparsity.EPOCHS, "MLP", 3)
    monkeypatch.setattr(sparsity, "sweep_shape", lambda rt: (96, 64, 16))
    store = Store(tmp_path / "s.db")
    page = SparsityPage(Session(runtime.info.id, store))
    assert "No pruning runs yet" in page.status.object and page.resume_button.disabled
    page.steps.value, page.epochs.value, page.final.value = 3, 1, 0.8

    async def start_then_stop():  # Stop pressed while the second step runs
        task = asyncio.ensure_future(page._on_start())
        while page.pruner is None or page.pruner.step_ < 2:
            await asyncio.sleep(0.01)
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
