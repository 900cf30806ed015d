"""Turning real values into spike trains. Every encoder returns a boolean array of shape
``(n_steps, *x.shape)`` (``population_encode``: ``(n_steps, *x.shape, n_fields)``) in which row
k holds the spikes of step k, the interval (k dt, (k + 1) dt] ms.

* :func:`rate_encode`: Poisson spikes at ``x * max_rate`` Hz (x in [0, 1]); the draw is
  ``uniform(seed, k, i) < rate dt`` (:mod:`.rng`), the same as a :class:`PoissonGroup` with that
  seed, so a host-encoded input and a device-drawn one are the same spikes.
* :func:`latency_encode`: one spike per input, earlier for larger x: ``t = tau ln(x / (x -
  threshold))`` (an RC neuron charged by x, as snnTorch's latency code) or ``t = (1 - x) t_max``
  (``linear``); x at or below ``threshold`` never fires.
* :func:`phase_encode`: Kim et al.'s phase code: x quantized to ``bits`` bits; in each period of
  ``bits`` steps, step j carries bit j (most significant first, weight 2^-(j+1)).
* :func:`population_encode`: ``n_fields`` neurons per value with Gaussian receptive fields whose
  centres tile [lo, hi]; each fires Poisson spikes at ``max_rate exp(-(x - c)^2 / (2 sigma^2))``.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..validation import as_array, number, positive_int
from .rng import uniform


def _values(x, name: str = "x", unit_range: bool = True) -> np.ndarray:
    arr = as_array(x, name, dtype=np.float64, finite=True)
    if unit_range and arr.size and (arr.min() < 0 or arr.max() > 1):
        raise InputError(name,
                         f"expected values in [0, 1] (scale them first), got [{arr.min():g}, {arr.max():g}]")
    return arr


def _dt(dt) -> float:
    dt = number(dt, "dt")
    if dt <= 0:
        raise InputError("dt", f"expected a positive step (ms), got {dt}")
    return dt


def _poisson(rates_hz: np.ndarray, n_steps: int, dt: float, seed: int, name: str) -> np.ndarray:
    p = rates_hz * dt * 1e-3
    if p.size and p.max() > 1:
        raise InputError(name, f"a rate of {rates_hz.max():g} Hz is above 1/dt = {1e3 / dt:g} Hz: "
                               "more than one spike per step")
    flat = p.reshape(-1).astype(np.float32)
    idx = np.arange(flat.size, dtype=np.uint32)
    out = np.empty((n_steps, flat.size), dtype=bool)
    for k in range(n_steps):
        out[k] = uniform(seed, k, idx) < flat
    return out.reshape((n_steps, *p.shape))


def rate_encode(x, n_steps: int, *, dt: float = 1.0, max_rate: float = 100.0, seed: int = 0) -> np.ndarray:
    """Poisson spike trains at ``x * max_rate`` Hz for x in [0, 1]: (n_steps, *x.shape) bool."""
    n_steps = positive_int(n_steps, "n_steps")
    dt = _dt(dt)
    max_rate = number(max_rate, "max_rate")
    if max_rate < 0:
        raise InputError("max_rate", f"expected a non-negative rate (Hz), got {max_rate}")
    if max_rate * dt * 1e-3 > 1:
        raise InputError("max_rate",
                         f"{max_rate:g} Hz is above 1/dt = {1e3 / dt:g} Hz: more than one spike per step")
    return _poisson(_values(x) * max_rate, n_steps, dt, int(seed), "max_rate")


def latency_encode(x, n_steps: int, *, dt: float = 1.0, tau: float = 5.0, threshold: float = 0.01,
                   method: str = "log", jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    """One spike per input, at ``tau ln(x / (x - threshold))`` ms (``"log"``) or
    ``(1 - x) (n_steps - 1) dt`` (``"linear"``); inputs at or below ``threshold`` stay silent, as
    do spikes that fall after the window. ``jitter`` (ms) adds seeded Gaussian noise to the times."""
    n_steps = positive_int(n_steps, "n_steps")
    dt = _dt(dt)
    x = _values(x)
    tau = number(tau, "tau")
    if tau <= 0:
        raise InputError("tau", f"expected a positive time constant (ms), got {tau}")
    threshold = number(threshold, "threshold")
    if not 0 <= threshold < 1:
        raise InputError("threshold", f"expected a value in [0, 1), got {threshold}")
    if method not in ("log", "linear"):
        raise InputError("method", f"expected 'log' or 'linear', got {method!r}")
    fires = x > threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "log":
            t = np.where(fires, tau * np.log(x / np.where(fires, x - threshold, 1.0)), np.inf)
        else:
            t = np.where(fires, (1.0 - x) * (n_steps - 1) * dt, np.inf)
    if jitter:
        jitter = number(jitter, "jitter")
        t = np.maximum(0.0, t + np.random.default_rng(seed).normal(0.0, jitter, x.shape))
    step = np.floor(t / dt)
    out = np.zeros((n_steps, *x.shape), dtype=bool)
    ok = np.isfinite(step) & (step < n_steps)
    idx = np.nonzero(ok)
    out[(step[ok].astype(np.int64), *idx)] = True
    return out


def phase_encode(x, n_steps: int, bits: int = 8) -> np.ndarray:
    """Phase code: step k carries bit ``k mod bits`` (MSB first) of round(x (2^bits - 1))."""
    n_steps = positive_int(n_steps, "n_steps")
    bits = positive_int(bits, "bits")
    if bits > 24:
        raise InputError("bits", f"expected at most 24 bits, got {bits}")
    x = _values(x)
    q = np.rint(x * (2 ** bits - 1)).astype(np.int64)
    phase = np.arange(n_steps) % bits
    shift = (bits - 1 - phase).reshape((n_steps,) + (1,) * x.ndim)
    return ((q[None] >> shift) & 1).astype(bool)


def population_encode(x, n_steps: int, *, n_fields: int = 10, lo: float = 0.0, hi: float = 1.0,
                      sigma: float | None = None, dt: float = 1.0, max_rate: float = 100.0,
                      seed: int = 0) -> np.ndarray:
    """Gaussian receptive fields: (n_steps, *x.shape, n_fields) Poisson spikes; the centres are
    ``linspace(lo, hi, n_fields)`` and ``sigma`` defaults to their spacing / 1.5."""
    n_steps = positive_int(n_steps, "n_steps")
    n_fields = positive_int(n_fields, "n_fields")
    dt = _dt(dt)
    lo, hi = number(lo, "lo"), number(hi, "hi")
    if not hi > lo:
        raise InputError("hi", f"expected hi > lo, got lo={lo}, hi={hi}")
    x = _values(x, unit_range=False)
    centres = np.linspace(lo, hi, n_fields)
    if sigma is None:
        sigma = (hi - lo) / max(n_fields - 1, 1) / 1.5
    sigma = number(sigma, "sigma")
    if sigma <= 0:
        raise InputError("sigma", f"expected a positive width, got {sigma}")
    max_rate = number(max_rate, "max_rate")
    if max_rate < 0 or max_rate * dt * 1e-3 > 1:
        raise InputError("max_rate", f"expected a rate in [0, 1/dt = {1e3 / dt:g}] Hz, got {max_rate:g}")
    rates = max_rate * np.exp(-((x[..., None] - centres) ** 2) / (2 * sigma ** 2))
    return _poisson(rates, n_steps, dt, int(seed), "max_rate")
