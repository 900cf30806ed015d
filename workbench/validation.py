"""Checks that turn bad arguments into :class:`InputError` before any kernel runs.

Conversions are documented where they happen: a float64 or integer array handed to a float32 op is
converted once (a copy); a non-contiguous one is made contiguous (a copy). Complex, boolean-only
or object arrays are refused rather than silently cast.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError


def as_array(x, name: str, *, dtype=np.float32, ndim: int | None = None, finite: bool = False):
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


def number(value, name: str) -> float:
    """``value`` as a finite float; InputError naming ``name`` for a bool, a non-number, NaN or Inf."""
    if isinstance(value, bool):
        raise InputError(name, f"expected a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(name, f"expected a number, got {value!r}") from None
    if not np.isfinite(out):
        raise InputError(name, f"expected a finite number, got {value!r}")
    return out


def choice(value, name: str, options) -> str:
    """``value`` if it is one of ``options``, else InputError listing them."""
    options = tuple(options)
    if value not in options:
        raise InputError(name, f"expected one of {options}, got {value!r}")
    return value


def is_numpy(rt) -> bool:
    """Whether ``rt`` is the NumPy backend (the reference): the one way to ask, also for an ``rt``
    given as a name."""
    from .runtime import resolve_rt

    return resolve_rt(rt).is_numpy
