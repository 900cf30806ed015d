"""A counter-based random number: the same uniform draw for (seed, step, index) on every backend.

The Poisson inputs are drawn inside the OpenCL kernels and by the NumPy reference from this one
hash (two rounds of the MurmurHash3 32-bit finalizer), so both produce the same spikes without
moving random numbers between host and device. ``kernels/lif.cl`` holds the C twin of
:func:`uniform`; tests check that they agree bit for bit.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint32(0x85EBCA6B)
_M2 = np.uint32(0xC2B2AE35)
_GOLD = np.uint32(0x9E3779B1)
_K2 = np.uint32(0x27D4EB2F)


def _fmix(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * _M1
    h = h ^ (h >> np.uint32(13))
    h = h * _M2
    return h ^ (h >> np.uint32(16))


def hash32(seed, step, index) -> np.ndarray:
    """uint32 hash of the three counters (broadcast): fmix(fmix(seed ^ step*G) ^ index*K2)."""
    with np.errstate(over="ignore"):
        s = np.asarray(seed, np.uint64).astype(np.uint32)
        t = np.asarray(step, np.uint64).astype(np.uint32)
        i = np.asarray(index, np.uint64).astype(np.uint32)
        h = _fmix(s ^ (t * _GOLD))
        return _fmix(h ^ (i * _K2))


def uniform(seed, step, index) -> np.ndarray:
    """float32 uniform on [0, 1) with 24 random bits: (hash32 >> 8) / 2**24."""
    return (hash32(seed, step, index) >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)
