"""Capability facts that need the device to answer: probed once per runtime, kept by it.

The facts a driver reports (denormals, vector widths, sub-devices, the host's x86 features, the
int8 dot paths it advertises) are read once into :class:`~workbench.runtime.DeviceInfo`. What an
advertised feature actually does on this driver is probed here, once per runtime
(:meth:`Runtime.memo`), so every kernel family asks the same question the same way.
"""

from __future__ import annotations

import numpy as np

from ..errors import KernelBuildError
from .base import Runtime

DOT4_MACROS = {"dp4a": "USE_DP4A", "khr": "USE_KHR_DOT", "plain": None}


def dot4_defines(path: str) -> dict:
    """The ``#define`` that selects ``path`` in ``kernels/dot4.h`` (empty for ``"plain"``)."""
    macro = DOT4_MACROS[path]
    return {macro: 1} if macro else {}


def _dot4_works(rt: Runtime, path: str) -> bool:
    try:
        prog = rt.program("dot4_probe", **dot4_defines(path))
    except KernelBuildError:
        return False
    rng = np.random.default_rng(0)
    n = 64
    a = rng.integers(-2**31, 2**31, n, dtype=np.int64).astype(np.int32)
    b = rng.integers(-2**31, 2**31, n, dtype=np.int64).astype(np.int32)
    c = rng.integers(-2**20, 2**20, n).astype(np.int32)
    bytes_a = a.view(np.int8).reshape(n, 4).astype(np.int64)
    bytes_b = b.view(np.int8).reshape(n, 4).astype(np.int64)
    expect = (c + (bytes_a * bytes_b).sum(axis=1)).astype(np.int32)
    da, db, dc = rt.to_device(a), rt.to_device(b), rt.to_device(c)
    out = rt.empty((n,), np.int32)
    prog.dot4_probe((n,), None, da.data, db.data, dc.data, out.data, np.int32(n))
    return bool(np.array_equal(out.get(), expect))


def dot4_paths(rt: Runtime) -> tuple[str, ...]:
    """The int8 dot-product paths that build and compute correctly on ``rt``, best first; always
    ends with ``"plain"`` (four multiply-adds). The NumPy backend has only ``"plain"``."""
    if rt.is_numpy:
        return ("plain",)

    def probe() -> tuple[str, ...]:
        return tuple(p for p in rt.info.dot4_candidates if p == "plain" or _dot4_works(rt, p))

    return rt.memo("capabilities.dot4_paths", probe)
