"""Device listing, selection order, the NumPy fallback, builds and their errors, timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import workbench as wb
from workbench.errors import InputError, KernelBuildError, WorkbenchError
from workbench.runtime import get_runtime, list_devices
from workbench.runtime import opencl as opencl_mod

from .conftest import OPENCL_IDS


def test_list_devices_ends_with_numpy_and_describes_each():
    devices = list_devices()
    assert devices[-1].id == "numpy"
    order = {"gpu": 0, "accelerator": 1, "cpu": 2, "host": 3}
    assert [order[d.type] for d in devices] == sorted(order[d.type] for d in devices)
    for d in devices[:-1]:
        assert d.id.startswith("cl:") and d.compute_units >= 1 and d.global_mem_bytes > 0
        assert d.max_alloc_bytes > 0 and d.opencl_version.startswith("OpenCL")
        assert d.key.count("|") == 2
        assert set(d.as_row()) >= {"id", "name", "fp16", "fp64", "integer_dot", "global_mem_gib"}


def test_runtimes_are_cached_per_device(runtime):
    assert get_runtime(runtime.info.id) is runtime
    assert get_runtime(runtime) is runtime
    assert runtime.kind in {"opencl-gpu", "opencl-cpu", "numpy"}


def test_selection_order_argument_env_pyopencl_ctx(monkeypatch):
    monkeypatch.setenv("WORKBENCH_DEVICE", "numpy")
    monkeypatch.setenv("PYOPENCL_CTX", "0:0")
    assert get_runtime().kind == "numpy"  # WORKBENCH_DEVICE before PYOPENCL_CTX
    if OPENCL_IDS:
        assert get_runtime(OPENCL_IDS[0]).kind != "numpy"  # the argument before both
        monkeypatch.delenv("WORKBENCH_DEVICE")
        assert get_runtime().info.id == "cl:0:0"  # then PYOPENCL_CTX
        monkeypatch.delenv("PYOPENCL_CTX")
        first = list_devices()[0]
        assert get_runtime().info.id == first.id  # then the first GPU, else CPU


@pytest.mark.skipif(not OPENCL_IDS, reason="no OpenCL device")
def test_selection_by_type_and_name_substring():
    info = get_runtime(OPENCL_IDS[0]).info
    assert get_runtime(info.type).info.type == info.type
    assert get_runtime(info.name[:6].lower()).info.name.lower().startswith(info.name[:6].lower())
    assert get_runtime(0).info.id == list_devices()[0].id


def test_unknown_device_lists_the_devices(monkeypatch):
    with pytest.raises(InputError) as err:
        get_runtime("no-such-device-xyz")
    assert err.value.argument == "device" and "numpy" in str(err.value)
    monkeypatch.setenv("WORKBENCH_DEVICE", "no-such-device-xyz")
    with pytest.raises(InputError, match="WORKBENCH_DEVICE"):
        get_runtime()
    with pytest.raises(InputError):
        get_runtime(99)
    with pytest.raises(InputError):
        get_runtime(3.5)


def test_numpy_fallback_without_any_opencl_driver(tmp_path):
    """With no ICD registered, everything still works on NumPy, with exactly one warning."""
    empty = tmp_path / "vendors"
    empty.mkdir()
    code = (
        "import warnings, json, numpy as np\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    import workbench as wb\n"
        "    from workbench.ops import matmul\n"
        "    rt = wb.get_runtime(); rt2 = wb.get_runtime(); wb.default()\n"
        "    c = matmul(np.eye(3), np.ones((3, 2)))\n"
        "print(json.dumps({'kind': rt.kind, 'same': rt is rt2, 'ok': bool((c == 1).all()),\n"
        "    'warnings': [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)],\n"
        "    'devices': [d.id for d in wb.list_devices()]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_DEVICE", "PYOPENCL_CTX")}
    env["OCL_ICD_VENDORS"] = str(empty)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["kind"] == "numpy" and res["same"] and res["ok"]
    assert res["devices"] == ["numpy"]
    assert len(res["warnings"]) == 1 and "pocl-opencl-icd" in res["warnings"][0]


def test_numpy_runtime_runs_no_programs():
    with pytest.raises(WorkbenchError, match="NumPy backend"):
        get_runtime("numpy").program("gemm")


def test_build_error_names_file_options_and_log(cl_runtime):
    # An invalid tile makes gemm.cl's own #error fire.
    with pytest.raises(KernelBuildError) as err:
        cl_runtime.program("gemm", BM=64, BN=64, BK=8, TM=4, TN=4)
    e = err.value
    assert e.path.endswith("gemm.cl") and "-DBK=8" in e.options
    assert "tile loads must divide" in e.log and "gemm.cl" in str(e)


def test_build_error_of_a_broken_kernel_file(cl_runtime, tmp_path, monkeypatch):
    broken = tmp_path / "broken.cl"
    broken.write_text("kernel void f(global float* x) { x[0] = undeclared_thing; }\n")
    monkeypatch.setattr(opencl_mod, "kernel_path", lambda name: broken)
    with pytest.raises(KernelBuildError) as err:
        cl_runtime.program("broken")
    assert "undeclared_thing" in err.value.log and str(broken) in str(err.value)


def test_unknown_kernel_family_and_bad_define_names(cl_runtime):
    with pytest.raises(InputError, match="no kernel file"):
        cl_runtime.program("does_not_exist")
    with pytest.raises(InputError, match="upper-case"):
        cl_runtime.program("gemm", bm=64)


def test_programs_are_built_once_per_defines(cl_runtime):
    a = cl_runtime.program("roofline", VW=4)
    assert cl_runtime.program("roofline", VW=4) is a
    assert cl_runtime.program("roofline", VW=8) is not a


def test_timeit_uses_events_and_falls_back_to_host(cl_runtime):
    prog = cl_runtime.program("roofline", VW=4)
    buf = cl_runtime.empty((1024,), np.float32)
    t = cl_runtime.timeit(lambda: prog.copy_1((1024,), None, buf.data, buf.data), repeat=5)
    assert t.source == "events" and len(t.samples) == 5 and t.median > 0
    h = cl_runtime.timeit(lambda: None, repeat=3)
    assert h.source == "host"
    assert wb.get_runtime("numpy").timeit(lambda: np.ones(10), repeat=4).source == "host"


def test_concurrent_launches_from_threads_are_correct(cl_runtime):
    from workbench.ops import matmul

    rng = np.random.default_rng(0)
    pairs = [(rng.random((70, 50), dtype=np.float32), rng.random((50, 90), dtype=np.float32))
             for _ in range(6)]
    results: dict[int, np.ndarray] = {}

    def work(i):
        a, b = pairs[i]
        for _ in range(3):
            results[i] = matmul(a, b, rt=cl_runtime)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(pairs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (a, b) in enumerate(pairs):
        np.testing.assert_allclose(results[i], a @ b, rtol=1e-4, atol=1e-4)
