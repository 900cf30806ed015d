"""matmul on every backend against NumPy in float64; every gemm.cl variant; bad input;
chunking past the device's max allocation."""

from __future__ import annotations

import numpy as np
import pyopencl.array as cla
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import DeviceMemoryError, InputError
from workbench.ops import GemmConfig, GemmEngine, matmul, matmul_profile, reset_gemm_engine

from .conftest import OPENCL_IDS, rel_error

TOL = 1e-5  # float32 accumulation over K <= a few thousand: errors ~1e-7..1e-6

SHAPES = [(1, 1, 1), (1, 7, 3), (7, 1, 3), (5, 3, 1), (7, 3, 5), (16, 16, 16), (33, 65, 17),
          (128, 128, 128), (129, 127, 130), (300, 200, 100), (1, 1000, 50), (1000, 1, 999),
          (517, 1031, 263)]


def _pair(m, n, k, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((m, k)).astype(np.float32),
            rng.standard_normal((k, n)).astype(np.float32))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matmul_matches_numpy(runtime, shape):
    a, b = _pair(*shape)
    c = matmul(a, b, rt=runtime)
    assert c.dtype == np.float32 and c.shape == (shape[0], shape[1])
    assert rel_error(c, a.astype(np.float64) @ b) < TOL


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 80), n=st.integers(1, 80), k=st.integers(1, 80), seed=st.integers(0, 99))
def test_matmul_random_shapes_on_opencl(m, n, k, seed):
    if not OPENCL_IDS:
        pytest.skip("no OpenCL device")
    a, b = _pair(m, n, k, seed)
    assert rel_error(matmul(a, b, rt=OPENCL_IDS[0]), a.astype(np.float64) @ b) < TOL


VARIANTS = [
    GemmConfig("tiled", {"BM": 128, "BN": 128, "BK": 16, "TM": 8, "TN": 8}),
    GemmConfig("tiled", {"BM": 64, "BN": 64, "BK": 16, "TM": 4, "TN": 4}),
    GemmConfig("tiled", {"BM": 128, "BN": 64, "BK": 16, "TM": 8, "TN": 4}),
    GemmConfig("packed", {"MR": 8, "NV": 2}, lm=4),
    GemmConfig("packed", {"MR": 6, "NV": 1}, lm=1),
    GemmConfig("direct"),
]


@pytest.mark.parametrize("cfg", VARIANTS, ids=lambda c: c.describe())
@pytest.mark.parametrize("shape", [(256, 256, 256), (300, 257, 129), (64, 512, 32), (3, 5, 7)],
                         ids=lambda s: "x".join(map(str, s)))
def test_every_kernel_variant_on_every_device(cl_runtime, cfg, shape):
    """Each variant runs everywhere (slowly where it does not fit), so PoCL in CI also checks
    the GPU kernel's arithmetic and edge handling."""
    engine = GemmEngine(cl_runtime, cfg)
    m, n, k = shape
    a, b = _pair(m, n, k, seed=3)
    da, db = cl_runtime.to_device(a), cl_runtime.to_device(b)
    dc = cl_runtime.to_device(np.full((m, n), np.nan, np.float32))  # poison: every C is written
    events = engine.enqueue(da.data, db.data, dc.data, m, n, k, dispatch=False)
    assert events
    assert rel_error(dc.get(), a.astype(np.float64) @ b) < TOL


def test_conversions_are_documented_behaviour(runtime):
    rng = np.random.default_rng(1)
    a64 = rng.standard_normal((20, 30))                 # float64 -> float32, once
    bint = rng.integers(-3, 4, size=(30, 10))           # integers -> float32
    c = matmul(a64, bint, rt=runtime)
    assert c.dtype == np.float32 and rel_error(c, a64 @ bint) < TOL
    at = rng.standard_normal((30, 20)).astype(np.float32).T  # non-contiguous view
    assert rel_error(matmul(at, bint, rt=runtime), at.astype(np.float64) @ bint) < TOL
    assert rel_error(matmul([[1, 2]], [[3], [4]], rt=runtime), [[11]]) == 0  # lists


def test_bad_input_names_the_argument(runtime):
    a = np.ones((3, 4), np.float32)
    with pytest.raises(InputError) as err:
        matmul(a, np.ones((5, 2), np.float32), rt=runtime)
    assert err.value.argument == "b" and "(3, 4)" in str(err.value) and "(5, 2)" in str(err.value)
    with pytest.raises(InputError, match="a: expected a 2-D"):
        matmul(np.ones((2, 3, 4)), a, rt=runtime)
    with pytest.raises(InputError, match="b: expected a 2-D"):
        matmul(a, np.ones(4), rt=runtime)
    with pytest.raises(InputError, match="complex"):
        matmul(a.astype(np.complex64), np.ones((4, 2)), rt=runtime)
    with pytest.raises(InputError, match="a:"):
        matmul([[1, 2], [3]], a, rt=runtime)
    with pytest.raises(InputError):
        matmul(np.array([["x"]]), a, rt=runtime)


def test_empty_dimensions(runtime):
    assert matmul(np.ones((0, 5)), np.ones((5, 3)), rt=runtime).shape == (0, 3)
    c = matmul(np.ones((2, 0)), np.ones((0, 3)), rt=runtime)
    assert c.shape == (2, 3) and not c.any()


def test_device_arrays_chain_without_transfers(cl_runtime):
    a, b = _pair(40, 30, 20)
    da, db = cl_runtime.to_device(a), cl_runtime.to_device(b)
    dc = matmul(da, db, rt=cl_runtime)
    assert isinstance(dc, cla.Array)
    dd = matmul(dc, cl_runtime.to_device(np.eye(30, dtype=np.float32)), rt=cl_runtime)
    assert rel_error(dd.get(), a.astype(np.float64) @ b) < TOL
    with pytest.raises(InputError, match="float32"):
        matmul(cl_runtime.to_device(a.astype(np.float64)), db, rt=cl_runtime)


def test_chunks_when_a_matrix_exceeds_max_allocation(cl_runtime):
    a, b = _pair(300, 200, 100, seed=5)
    saved = cl_runtime.max_alloc
    try:
        cl_runtime.max_alloc = 64 * 1024  # a 64 KiB device: every operand needs chunking
        reset_gemm_engine(cl_runtime)
        assert rel_error(matmul(a, b, rt=cl_runtime), a.astype(np.float64) @ b) < TOL
        cl_runtime.max_alloc = 256  # not even one panel fits
        with pytest.raises(DeviceMemoryError, match="MiB"):
            matmul(a, b, rt=cl_runtime)
        with pytest.raises(DeviceMemoryError):
            cl_runtime.to_device(a)
    finally:
        cl_runtime.max_alloc = saved
        reset_gemm_engine(cl_runtime)


def test_matmul_profile_counts_flops_and_least_bytes(runtime):
    p = matmul_profile(64, 32, 16, rt=runtime, repeat=3)
    assert p.flops == 2 * 64 * 32 * 16
    assert p.bytes == 4 * (64 * 16 + 16 * 32 + 64 * 32)
    assert p.seconds > 0 and p.name == "sgemm 64x32x16"
    with pytest.raises(InputError, match="m:"):
        matmul_profile(0, 4, 4, rt=runtime)
