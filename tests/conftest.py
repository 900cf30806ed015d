"""Shared fixtures: every test gets its own WORKBENCH_HOME; ``runtime`` runs a test on every
available backend (each OpenCL device, and NumPy always)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.runtime import get_runtime, list_devices

DEVICE_IDS = [d.id for d in list_devices()]
OPENCL_IDS = [d for d in DEVICE_IDS if d != "numpy"]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WORKBENCH_QUICK", "1")


@pytest.fixture(params=DEVICE_IDS)
def runtime(request):
    return get_runtime(request.param)


@pytest.fixture(params=OPENCL_IDS or [pytest.param(None, marks=pytest.mark.skip("no OpenCL device"))])
def cl_runtime(request):
    return get_runtime(request.param)


def rel_error(x, ref) -> float:
    """pyopencl's test habit: |x - ref| / |ref| in the 2-norm (0 for an all-zero reference)."""
    ref = np.asarray(ref, dtype=np.float64)
    denom = np.linalg.norm(ref)
    diff = np.linalg.norm(np.asarray(x, dtype=np.float64) - ref)
    return float(diff / denom) if denom else float(diff)
