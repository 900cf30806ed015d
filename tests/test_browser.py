"""Smoke tests of the served dashboard in a real Chromium (Debian's, driven by Playwright).

Run by default; select with ``-m browser``. They skip where /usr/bin/chromium is missing (the
Makefile installs it when it can).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket in LISTEN state on ``port`` (from /proc/net/tcp)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                found.add(addr)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    home = tmp_path_factory.mktemp("home")
    env = dict(os.environ, WORKBENCH_HOME=str(home),
               WORKBENCH_QUICK="1", PYTHONUNBUFFERED="1")
    env.pop("WORKBENCH_DEVICE", None)
    log = tmp_path_factory.mktemp("log") / "server.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "dashboard", "--port",
                                 str(port)], env=env, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"dashboard exited: {log.read_text()}")
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"dashboard did not start: {log.read_text()}")
    yield {"url": f"http://127.0.0.1:{port}", "port": port, "log": log, "home": home}
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    pg = browser.new_page(viewport={"width": 1500, "height": 1000})
    pg.problems = []
    pg.on("console", lambda m: pg.problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    yield pg
    pg.close()


def test_binds_loopback_only(server):
    assert _listening_addresses(server["port"]) == {"0100007F"}  # 127.0.0.1, nothing else


def test_devices_page_loads_and_switches_device(server, page, tmp_path):
    page.goto(server["url"])
    page.get_by_text("Every OpenCL device on this machine").wait_for(timeout=30000)
    page.locator(".wb-devices").get_by_text("NumPy (host)").wait_for()
    page.locator("select").first.select_option(label="NumPy (host) (numpy, host)")
    page.get_by_text("In use: NumPy (host) (numpy)").wait_for(timeout=15000)
    page.screenshot(path=str(tmp_path / "devices.png"))
    assert not page.problems, page.problems


def test_roofline_page_measures_and_draws(server, page, tmp_path):
    page.goto(server["url"] + "/?page=Roofline")
    page.get_by_text("press Measure").first.wait_for(timeout=30000)
    page.get_by_role("button", name="Measure").click()
    page.get_by_text("placed SGEMM of").wait_for(timeout=120000)
    assert page.locator("canvas").count() > 0  # the Bokeh plot rendered
    page.get_by_text("memory bandwidth").first.wait_for()
    table = page.locator(".wb-ceilings").first.inner_text()
    assert "GB/s" in table and "GFLOP/s" in table and "measuring" not in table
    page.screenshot(path=str(tmp_path / "roofline.png"))
    # A reload redraws the cached ceilings without measuring.
    page.reload()
    page.get_by_text("Cached ceilings of").wait_for(timeout=30000)
    assert not page.problems, page.problems


def test_quantization_page_trains_and_fills_the_grid(server, page, tmp_path):
    page.goto(server["url"] + "/?page=Quantization")
    page.get_by_text("Press Train").first.wait_for(timeout=30000)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Pick a layer, or").wait_for(timeout=120000)
    page.get_by_role("button", name="Run grid").click()
    page.get_by_text("done and stored").wait_for(timeout=180000)
    assert page.locator("canvas").count() >= 3  # histogram, errors, accuracy-vs-size
    body = page.locator(".slick-viewport").first.inner_text()  # the grid's DataTable
    for word in ("minmax", "percentile", "kl", "mse", "int8_matmul", "int4_gemv"):
        assert word in body, word
    page.screenshot(path=os.environ.get("WB_SHOT", str(tmp_path / "quantization.png")), full_page=True)
    # The grid is in the store: a reload shows it without running again.
    page.reload()
    page.get_by_text("Press Train").first.wait_for(timeout=30000)
    page.locator(".slick-viewport").first.get_by_text("int4_gemv").first.wait_for(timeout=30000)
    assert not page.problems, page.problems


def test_sparsity_page_prunes_live_and_reloads(server, page, tmp_path):
    page.goto(server["url"] + "/?page=Sparsity")
    page.get_by_text("No pruning runs yet").first.wait_for(timeout=30000)
    steps = page.get_by_label("Pruning steps")
    steps.fill("4")
    steps.press("Enter")
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Step 1/4").wait_for(timeout=120000)
    page.get_by_text("finished and stored").wait_for(timeout=180000)
    assert page.locator("canvas").count() >= 4  # curve, latency, layer bars, sweep
    page.get_by_role("button", name="Crossover sweep").click()
    page.get_by_text("Crossover on").wait_for(timeout=180000)
    page.screenshot(path=os.environ.get("WB_SHOT_SPARSITY", str(tmp_path / "sparsity.png")), full_page=True)
    page.reload()  # the run is in the store
    page.get_by_text("Showing stored run").first.wait_for(timeout=30000)
    assert not page.problems, page.problems


def test_spikes_page_streams_takes_a_slider_stops_and_trains(server, page, tmp_path):
    from workbench.store import Store

    page.goto(server["url"] + "/?page=Spikes")
    page.get_by_text("No network runs yet").first.wait_for(timeout=30000)
    duration = page.get_by_label("Run for (s)")
    duration.fill("60")
    duration.press("Enter")
    page.get_by_role("button", name="Start").click()
    page.get_by_text(re.compile(r"t = \d+\.\d s ·")).wait_for(timeout=60000)  # the raster is streaming
    handle = page.locator(".noUi-handle").nth(3)  # Inhibition: down by 0.5 while it runs
    handle.focus()
    for _ in range(10):
        handle.press("ArrowLeft")
    store = Store(server["home"] / "workbench.db")

    def last_chunk() -> dict:
        runs = store.runs("snn")
        rows = store.metrics(runs[0]["id"]) if runs else []
        return rows[-1] if rows else {}

    deadline = time.time() + 60  # the slider reaches the running network within a chunk or two
    while last_chunk().get("inhibition", 1.0) > 0.51 and time.time() < deadline:
        time.sleep(0.2)
    assert last_chunk()["inhibition"] == pytest.approx(0.5), last_chunk()
    time.sleep(1.0)
    page.screenshot(path=os.environ.get("WB_SHOT_SPIKES", str(tmp_path / "spikes.png")), full_page=True)
    stop = page.get_by_role("button", name="Stop", exact=True)
    stop.click()
    # One clean-clone CI run (of about ten runs of this test) timed out waiting for "stopped"
    # after this click, with nothing in the server log; not understood yet. If the store shows the
    # run still going after 10 s, click again, as a user would.
    deadline = time.time() + 10
    while store.runs("snn")[0]["status"] == "running" and time.time() < deadline:
        time.sleep(0.2)
    if store.runs("snn")[0]["status"] == "running":
        stop.click()
    page.get_by_text("stopped; press Continue").wait_for(timeout=30000)
    run = store.runs("snn")[0]
    rows = store.metrics(run["id"])
    assert run["status"] == "stopped" and rows[0]["inhibition"] == 1.0 and rows[-1]["inhibition"] == pytest.approx(0.5)
    images = page.get_by_label("Training images")
    images.fill("60")
    images.press("Enter")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("finished and stored: test accuracy").wait_for(timeout=120000)
    assert page.locator("canvas").count() >= 6  # raster, rate, traces, histogram, history, fields
    page.screenshot(path=os.environ.get("WB_SHOT_SPIKES_TRAIN", str(tmp_path / "spikes-train.png")), full_page=True)
    page.reload()  # both runs are in the store
    page.get_by_text("Showing the rates of stored run").first.wait_for(timeout=30000)
    page.get_by_text("Stored training runs on this device").first.wait_for(timeout=30000)
    assert not page.problems, page.problems
