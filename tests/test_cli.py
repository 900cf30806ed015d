"""The command line: devices, roofline, bench, tune, and the dashboard's defaults."""

from __future__ import annotations

import json

import pytest

from workbench import cli


def test_devices_table_and_json(capsys):
    assert cli.main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "NumPy (host)" in out and "*" in out
    assert cli.main(["devices", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["devices"][-1]["id"] == "numpy" and data["in_use"]


def test_unknown_device_is_a_clear_error(capsys):
    assert cli.main(["devices", "--device", "bogus-device"]) == 2
    err = capsys.readouterr().err
    assert "no device matches 'bogus-device'" in err and "numpy" in err


def test_roofline_measures_then_uses_the_cache_of_its_mode(capsys, monkeypatch):
    assert cli.main(["roofline", "--device", "numpy", "--quick"]) == 0
    assert "measuring ceilings" in capsys.readouterr().out
    assert cli.main(["roofline", "--device", "numpy", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "cached ceilings" in out and "quick mode" in out and "ridge point" in out
    # a full run never takes a quick measurement: it measures (stopped here as it starts)
    import workbench.roofline as roofline

    class Measured(Exception):
        pass

    def measure(rt, quick=None, **kw):
        raise Measured(quick)

    monkeypatch.setenv("WORKBENCH_QUICK", "0")
    monkeypatch.setattr(roofline, "measure_ceilings", measure)
    with pytest.raises(Measured) as info:
        cli.main(["roofline", "--device", "numpy"])
    assert info.value.args == (False,) and "measuring ceilings" in capsys.readouterr().out


def test_bench_writes_json(tmp_path, capsys):
    path = tmp_path / "out" / "bench.json"
    assert cli.main(["bench", "--suite", "gemm", "--device", "numpy", "--quick", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gemm/sgemm" in out and "reference:" in out
    assert json.loads(path.read_text())["results"]


def test_dashboard_binds_loopback_by_default():
    args = cli.build_parser().parse_args(["dashboard"])
    assert args.address == "127.0.0.1" and args.port == 5006 and not args.show


def test_dashboard_off_loopback_needs_origins_and_a_password(capsys, monkeypatch):
    pn = pytest.importorskip("panel")  # make test installs it; the GPU machine's wheels do not

    assert cli.main(["dashboard", "--address", "0.0.0.0"]) == 2  # no origins: refused
    assert "allow-websocket-origin" in capsys.readouterr().err
    seen = {}
    monkeypatch.setattr(pn, "serve", lambda *a, **kw: seen.update(kw))
    assert cli.main(["dashboard", "--address", "0.0.0.0", "--allow-websocket-origin", "lab:5006"]) == 0
    out = capsys.readouterr().out
    assert seen["websocket_origin"] == ["lab:5006"] and seen["basic_auth"] and seen["basic_auth"] in out
    assert cli.main(["dashboard", "--address", "0.0.0.0", "--allow-websocket-origin", "lab:5006",
                     "--token", "s3cret"]) == 0
    assert seen["basic_auth"] == "s3cret"
    monkeypatch.setattr(pn, "serve", lambda *a, **kw: seen.update(kw) or seen.pop("basic_auth", None))
    assert cli.main(["dashboard"]) == 0 and "basic_auth" not in seen  # loopback: no password asked


def test_study_writes_each_seed_and_the_mean_and_sd(tmp_path):
    import numpy as np

    out = tmp_path / "study.json"
    assert cli.main(["study", "diehl-cook", "--device", "numpy", "--seeds", "2", "--neurons", "4",
                     "--epochs", "1", "--images", "20", "--json", str(out)]) == 0
    study = json.loads(out.read_text())
    acc = [r["test_accuracy"] for r in study["runs"]]
    assert [r["seed"] for r in study["runs"]] == [0, 1] and study["params"]["training_images"] == 20
    assert study["summary"]["test_accuracy"]["sd"] == pytest.approx(np.std(acc, ddof=1))
    assert study["summary"]["test_accuracy"]["mean"] == pytest.approx(np.mean(acc))
