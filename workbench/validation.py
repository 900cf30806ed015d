"""Checks that turn bad arguments into :class:`InputError` before any kernel runs.

Conversions are documented where they happen: a float64 or integer array handed to a float32 op is
converted once (a copy); a non-contiguous one is made contiguous (a copy). Complex, boolean-only
or object arrays are refused rather than silently cast.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError


def as_array(x, name: str, dtype=np.float32, ndim: int | None = None, finite: bool = False):
    """``x`` as a C-contiguous NumPy array of ``dtype``; raises InputError naming ``name``."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise InputError(name, f"expected an array, got {type(x).__name__} ({exc})") from None
    if arr.dtype == object or arr.dtype.kind in "cSUVMm":
        raise InputError(name, f"expected a real numeric array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise InputError(name, f"expected a {ndim}-D array, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if finite and arr.size and not np.isfinite(arr).all():
        raise InputError(name, "contains NaN or Inf")
    return arr


def positive_int(x, name: str, minimum: int = 1) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < minimum:
        raise InputError(name, f"expected an integer >= {minimum}, got {x!r}")
    return int(x)
