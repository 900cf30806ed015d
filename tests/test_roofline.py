"""Roofline arithmetic, ceilings measured on every backend, plausibility flags, caching."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import roofline
from workbench.errors import InputError
from workbench.roofline import Ceilings, OpProfile, Roofline
from workbench.runtime.devices import DeviceInfo
from workbench.store import Store


def _ceil(**kw) -> Ceilings:
    base = dict(device="test", device_key="k", kind="numpy", bandwidth_gbs=100.0, fp32_gflops=1000.0)
    base.update(kw)
    return Ceilings(**base)


def test_attainable_is_min_of_roof_and_slope():
    model = Roofline(_ceil())
    assert model.ridge_point == 10.0
    assert model.attainable(1.0) == 100.0
    assert model.attainable(10.0) == 1000.0
    assert model.attainable(1e6) == 1000.0
    np.testing.assert_allclose(model.attainable([0.5, 2, 50]), [50, 200, 1000])
    with pytest.raises(InputError, match="ai"):
        model.attainable(-1)
    with pytest.raises(InputError, match="ai"):
        model.attainable(float("nan"))


def test_profile_intensity_bound_and_efficiency():
    model = Roofline(_ceil())
    p = OpProfile("x", flops=2e9, bytes=1e9, seconds=0.1)  # AI 2, 20 GFLOP/s, 10 GB/s
    assert p.ai == 2.0 and p.gflops == pytest.approx(20.0) and p.gbs == pytest.approx(10.0)
    assert model.bound(p) == "memory" and model.efficiency(p) == pytest.approx(0.1)
    big = OpProfile("y", flops=1e12, bytes=1e9, seconds=2.0)
    assert model.bound(big) == "compute" and model.efficiency(big) == pytest.approx(0.5)


def test_bad_profiles_and_models():
    with pytest.raises(InputError, match="bytes"):
        OpProfile("x", 1.0, 0.0, 1.0)
    with pytest.raises(InputError, match="seconds"):
        OpProfile("x", 1.0, 1.0, 0.0)
    with pytest.raises(InputError, match="flops"):
        OpProfile("x", float("inf"), 1.0, 1.0)
    with pytest.raises(InputError, match="compute"):
        Roofline(_ceil(), compute="fp64")
    with pytest.raises(InputError, match="ceilings"):
        Roofline(_ceil(int8_gops=None), compute="int8_gops")


def test_measure_ceilings_on_every_backend(runtime):
    seen = []
    c = roofline.measure_ceilings(runtime, quick=True, store=False,
                                  on_result=lambda r, i, n: seen.append((i, n, r.field)))
    assert [i for i, _, _ in seen] == list(range(1, len(seen) + 1))
    for f in ("bandwidth_gbs", "fp32_gflops", "int32_gops", "int8_gops", "launch_us"):
        assert getattr(c, f) > 0, f
    if runtime.kind == "numpy":
        assert c.h2d_gbs is None and c.d2h_gbs is None
    else:
        assert c.h2d_gbs > 0 and c.d2h_gbs > 0
        names = [r["name"] for r in c.readings]
        assert {"copy float", "copy float4", "copy float16", "triad float4"} <= set(names)
        # The ceiling is the best of its readings.
        bw = [r["value"] for r in c.readings if r["field"] == "bandwidth_gbs"]
        assert c.bandwidth_gbs == max(bw)
    assert c.device == runtime.name and c.quick
    assert Ceilings.from_dict(c.as_dict()) == c


def test_ceilings_are_cached_per_device_and_not_remeasured(runtime, tmp_path, monkeypatch):
    store = Store(tmp_path / "s.db")
    assert roofline.cached_ceilings(runtime, store) is None
    c = roofline.measure_ceilings(runtime, quick=True, store=store)
    monkeypatch.setattr(roofline, "measure_ceilings", lambda *a, **k: pytest.fail("re-measured"))
    again = roofline.get_ceilings(runtime, store=store)
    assert again.as_dict() == c.as_dict()


def test_a_reading_above_the_datasheet_stops_and_noise_is_flagged():
    c = _ceil(theoretical={"bandwidth_gbs": 50.0, "fp32_gflops": 2000.0})
    with pytest.raises(roofline.ImplausibleMeasurement, match="memory bandwidth"):
        roofline.check_reading(c, roofline.Reading("bandwidth_gbs", "copy", 60.0, "GB/s"))
    roofline.check_reading(c, roofline.Reading("bandwidth_gbs", "copy", 54.0, "GB/s"))  # within 1.1x
    c.readings = [{"field": "fp32_gflops", "name": "fp32 fma", "value": 1000.0,
                   "timing": {"spread": 0.8, "repeats": 15}},
                  {"field": "bandwidth_gbs", "name": "copy", "value": 40.0,
                   "timing": {"spread": 0.05, "repeats": 15}}]
    assert roofline.noisy_ceilings(c) == ["fp32_gflops"]
    assert any("noisy" in w and "FP32" in w for w in roofline.check_plausible(c))
    c.quick = True  # quick measurements are short by design and not judged
    assert roofline.noisy_ceilings(c) == []


def test_a_noisy_measurement_is_kept_but_not_made_the_ceilings(runtime, tmp_path):
    store = Store(tmp_path / "s.db")
    good = _ceil(device=runtime.name, device_key=runtime.info.key, bandwidth_gbs=100.0)
    roofline.save_ceilings(good, store)
    noisy = _ceil(device=runtime.name, device_key=runtime.info.key, bandwidth_gbs=40.0,
                  noisy=["bandwidth_gbs"])
    roofline.save_ceilings(noisy, store)
    assert roofline.cached_ceilings(runtime, store).bandwidth_gbs == 100.0
    assert roofline.cached_ceilings(runtime, store, accepted=False).bandwidth_gbs == 40.0
    history = roofline.ceilings_history(runtime, store)
    assert [h["noisy"] for h in history] == [True,
                                             False] and history[0]["ceilings"].noisy == ["bandwidth_gbs"]


def test_quick_ceilings_are_never_used_by_a_full_run(runtime, tmp_path):
    store = Store(tmp_path / "s.db")
    quick = _ceil(device=runtime.name, device_key=runtime.info.key, quick=True)
    roofline.save_ceilings(quick, store)
    assert roofline.cached_ceilings(runtime, store) is None  # a full run measures
    assert roofline.cached_ceilings(runtime, store, quick=True).quick  # a quick run may take it


def test_four_verdicts_and_an_explanation():
    model = Roofline(_ceil(launch_us=20.0, h2d_gbs=10.0, d2h_gbs=10.0))
    tiny = OpProfile("sgemm 32", flops=65536.0, bytes=12288.0, seconds=13e-6)
    assert model.bound(tiny) == "launch"  # 13 us against a 20 us launch: not compute-bound
    fed = OpProfile("gemv from the host", flops=2e6, bytes=4e6, seconds=1e-3, host_bytes=8e6)
    assert model.bound(fed) == "transfer"  # 0.8 ms of its 1 ms moving 8 MB at 10 GB/s
    mem = OpProfile("copy-like", flops=1e6, bytes=1e8, seconds=2e-3)
    why = model.explain(mem)
    assert why["bound"] == "memory" and why["roof"]["name"] == "memory bandwidth"
    assert why["efficiency"] == pytest.approx(0.5) and why["headroom"] == pytest.approx(2.0)
    assert any("narrower format" in a for a in why["advice"])
    above = model.explain(OpProfile("too fast", flops=1e12, bytes=1e9, seconds=0.5))  # 2000 of 1000
    assert above["efficiency"] > 1 and "above it" in above["why"]
    int8 = OpProfile("int8", flops=1e12, bytes=1e9, seconds=1.0, compute="int8_gops")
    assert Roofline(_ceil(int8_gops=4000.0)).explain(int8)["roof"]["name"] == "INT8 peak"


def test_theoretical_peaks_of_an_h100():
    h100 = DeviceInfo(id="cl:0:0", name="NVIDIA H100 80GB HBM3", platform="NVIDIA CUDA",
                      vendor="NVIDIA Corporation", type="gpu", compute_units=132, clock_mhz=1980,
                      compute_capability=(9, 0))
    peaks = roofline.theoretical_peaks(h100)
    assert peaks["bandwidth_gbs"] == 3350.0
    assert peaks["fp32_gflops"] == pytest.approx(132 * 128 * 2 * 1.98, rel=1e-9)
    # A benchmark the compiler deleted (seen once: 1.5e9 GOP/s of int8) is far above this.
    assert 1e5 < peaks["int8_gops"] < 1e7


def test_profiles_kept_beside_ceilings(runtime, tmp_path):
    store = Store(tmp_path / "s.db")
    ps = [OpProfile("sgemm 8", 1024.0, 768.0, 1e-5), OpProfile("sgemm 16", 8192.0, 3072.0, 2e-5)]
    roofline.save_profiles(runtime, ps, store=store)
    assert roofline.load_profiles(runtime, store) == ps
