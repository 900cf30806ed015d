"""Shared fixtures: every test gets its own WORKBENCH_HOME; ``runtime`` runs a test on every
available backend (each OpenCL device, and NumPy always)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from workbench.runtime import get_runtime, list_devices

DEVICE_IDS = [d.id for d in list_devices()]
OPENCL_IDS = [d for d in DEVICE_IDS if d != "numpy"]


def pytest_sessionstart(session):
    # On CI every OpenCL test would skip without a driver and the run would be green with no
    # kernel tested: refuse instead (the Makefile installs PoCL; this catches it not working).
    if os.environ.get("CI") and not OPENCL_IDS:
        pytest.exit("CI is set but no OpenCL device was found, so no kernel would be tested. "
                    "Install an OpenCL driver (Debian: apt-get install pocl-opencl-icd) or unset CI.",
                    returncode=3)
    if os.environ.get("WORKBENCH_REQUIRE_GPU") and not any(d.type == "gpu" for d in list_devices()):
        pytest.exit("WORKBENCH_REQUIRE_GPU is set (make test-gpu) but no OpenCL GPU was found.", returncode=3)


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
