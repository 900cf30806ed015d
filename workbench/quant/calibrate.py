"""Calibration: choose a clipping range for a tensor, then the quantizer for it.

Methods (``method=``):

* ``"minmax"``: the full range, ``T = max |x|`` (symmetric) or ``[min x, max x]``.
* ``"percentile"``: ``T = P_p(|x|)`` (symmetric) or ``[P_{100-p}(x), P_p(x)]``; ``p`` in (0, 100].
* ``"kl"``: entropy calibration (TensorRT's): a 2048-bin histogram of ``|x|`` over [0, max|x|];
  for every candidate threshold bin ``i`` from ``L`` (the number of quantization levels of the
  magnitude, ``qmax + 1``) to 2048 (fewer bins for a channel of fewer values: one per value,
  at least ``4 L``), the reference distribution ``P`` is the first ``i`` bins with
  all outliers folded into bin ``i - 1``; ``Q`` merges ``P``'s bins into ``L`` levels and spreads
  each level evenly over the bins where ``P`` is nonzero; the threshold is
  ``(i + 0.5) * bin_width`` of the ``i`` that minimizes ``KL(P || Q)``. Asymmetric: for data of one
  sign the search runs over that side with all ``2^b - 1`` levels; otherwise the symmetric
  threshold is used, intersected with ``[min x, max x]``. With fewer than 16 values per level
  (``16 (qmax + 1)``, e.g. a per-channel slice of a small layer) the histogram says nothing and
  the min-max range is kept, and the result says so (``QuantParams.calibrator``: ``"kl->minmax"``).
* ``"mse"``: a grid of 100 clipping fractions ``alpha`` in (0, 1] of the min-max range (both ends
  shrunk together when asymmetric); the one minimizing ``mean((x - fake_quantize(x))^2)`` wins.

Per-channel (``axis``): each channel is calibrated on its own slice. The result is a
:class:`~workbench.quant.params.QuantParams` (conventions in :mod:`workbench.quant.params`).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..validation import as_array, choice
from .params import QuantParams, check_axis, check_bits, params_from_range, qrange

METHODS = ("minmax", "percentile", "kl", "mse")
KL_BINS = 2048
# Entropy calibration estimates a distribution; below this many values per quantization level
# (a per-channel slice of a small layer) it falls back to the min-max range.
KL_MIN_PER_LEVEL = 16
MSE_GRID = 100
# The kl and mse searches run on at most this many values per channel: a seeded random subset (an
# evenly spaced one aliased with the columns of im2col inputs: 1 to 9,363 samples per column),
# enough for stable thresholds, and cheap on large activation tensors.
MAX_SAMPLES = 1 << 16


def _kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def kl_threshold(values: np.ndarray, levels: int, *, bins: int = KL_BINS, amax: float | None = None) -> float:
    """Entropy-calibrated threshold for nonnegative ``values`` quantized to ``levels`` levels
    (histogram over [0, amax], default the largest value)."""
    amax = float(values.max(initial=0.0)) if amax is None else float(amax)
    # A channel of a few hundred weights cannot fill 2048 bins: use about one bin per value,
    # never fewer than 4 per quantization level.
    bins = int(min(bins, max(4 * levels, 2 ** int(np.ceil(np.log2(max(values.size, 2)))))))
    if amax == 0.0:
        return 0.0
    hist, edges = np.histogram(values, bins=bins, range=(0.0, amax))
    hist = hist.astype(np.float64)
    width = edges[1] - edges[0]
    best_i, best_kl = bins, np.inf
    for i in range(levels, bins + 1):
        p = hist[:i].copy()
        p[i - 1] += hist[i:].sum()  # outliers folded into the last bin
        if p.sum() == 0:
            continue
        # Merge the i reference bins into `levels` quantization bins, then expand back.
        groups = np.minimum((np.arange(i) * levels) // i, levels - 1)
        nonzero = (hist[:i] > 0).astype(np.float64)
        q_sum = np.bincount(groups, weights=hist[:i], minlength=levels)
        q_cnt = np.bincount(groups, weights=nonzero, minlength=levels)
        q = np.where(nonzero > 0, (q_sum / np.maximum(q_cnt, 1))[groups], 0.0)
        # Q must be nonzero wherever P is (the folded last bin may be empty in hist[:i]).
        q = np.where((p > 0) & (q == 0), 1e-12, q)
        kl = _kl_divergence(p / p.sum(), q / q.sum())
        if kl < best_kl:
            best_kl, best_i = kl, i
    return (best_i + 0.5) * width if best_i < bins else amax


def _fq_error(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int, symmetric: bool) -> np.ndarray:
    """Mean squared fake-quantization error of ``x`` (n,) for each candidate range (G,)."""
    qmin, qmax = qrange(bits, symmetric)
    if symmetric:
        scale = np.maximum(np.abs(lo), np.abs(hi)) / qmax
        zp = np.zeros_like(scale)
    else:
        scale = (hi - lo) / (qmax - qmin)
        zp = np.clip(qmin - np.rint(lo / np.where(scale > 0, scale, 1)), qmin, qmax)
    scale = np.where(scale > 0, scale, 1.0)[:, None]
    zp = zp[:, None]
    q = np.clip(np.rint(x[None, :] / scale) + zp, qmin, qmax)
    return np.mean(((q - zp) * scale - x[None, :]) ** 2, axis=1)


def subsample(x: np.ndarray, n: int = MAX_SAMPLES) -> np.ndarray:
    """At most ``n`` values of flat ``x``: a random subset, seeded by the size (so calibration is
    deterministic), in the original order."""
    if x.size <= n:
        return x
    return x[np.sort(np.random.default_rng(x.size).choice(x.size, n, replace=False))]


def _range_one(x: np.ndarray, method: str, bits: int, symmetric: bool, percentile: float):
    """(lo, hi, method that ran) for one flat channel ``x`` (float64)."""
    lo, hi, ran = *_range_of(x, method, bits, symmetric, percentile), method
    if method == "kl" and x.size < KL_MIN_PER_LEVEL * (qrange(bits, symmetric)[1] + 1):
        ran = "minmax"
    return lo, hi, ran


def _range_of(x: np.ndarray, method: str, bits: int, symmetric: bool, percentile: float):
    lo, hi = float(x.min()), float(x.max())
    if method == "minmax":
        return lo, hi
    if method == "percentile":
        if symmetric:
            t = float(np.percentile(np.abs(x), percentile))
            return -t, t
        return float(np.percentile(x, 100.0 - percentile)), float(np.percentile(x, percentile))
    x = subsample(x)  # the searches below see the extremes through lo and hi
    qmin, qmax = qrange(bits, symmetric)
    if method == "kl" and x.size < KL_MIN_PER_LEVEL * (qmax + 1):
        return lo, hi  # too few values to estimate a distribution: keep the full range
    if method == "kl":
        if not symmetric and lo >= 0:
            return 0.0, kl_threshold(x, qmax - qmin, amax=hi)
        if not symmetric and hi <= 0:
            return -kl_threshold(-x, qmax - qmin, amax=-lo), 0.0
        t = kl_threshold(np.abs(x), qmax + 1 if symmetric else (qmax - qmin + 1) // 2,
                         amax=max(-lo, hi))
        return max(-t, lo), min(t, hi)
    # mse
    alphas = np.linspace(1.0 / MSE_GRID, 1.0, MSE_GRID)
    if symmetric:
        t = max(abs(lo), abs(hi))
        err = _fq_error(x, -alphas * t, alphas * t, bits, True)
        a = alphas[int(np.argmin(err))]
        return -a * t, a * t
    lo0, hi0 = min(lo, 0.0), max(hi, 0.0)
    err = _fq_error(x, alphas * lo0, alphas * hi0, bits, False)
    a = alphas[int(np.argmin(err))]
    return a * lo0, a * hi0


def calibrate(x, method: str = "minmax", *, bits: int = 8, symmetric: bool = True, axis: int | None = None,
              percentile: float = 99.99) -> QuantParams:
    """Quantization parameters for ``x`` by ``method`` (``"minmax"``, ``"percentile"``, ``"kl"``,
    ``"mse"``), ``bits`` in 2..8, per tensor (``axis=None``) or per channel along ``axis``.

    Example::

        w = model.layers[0].weight                      # (in, out)
        p = calibrate(w, "mse", bits=4, axis=1)          # one scale per output channel
        w_hat = fake_quantize(w, p)

    Raises :class:`InputError` for NaN/Inf or empty ``x``, ``bits`` outside 2..8, an ``axis`` out
    of range, an unknown ``method`` or a ``percentile`` outside (0, 100].
    """
    choice(method, "method", METHODS)
    bits = check_bits(bits)
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float, np.floating)) \
            or not 0.0 < float(percentile) <= 100.0:
        raise InputError("percentile", f"expected a value in (0, 100], got {percentile!r}")
    x = as_array(x, "x", finite=True)
    if x.size == 0:
        raise InputError("x", "cannot calibrate on an empty array")
    axis = check_axis(axis, max(x.ndim, 1))
    xd = x.astype(np.float64)
    if axis is None:
        lo, hi, ran = _range_one(xd.reshape(-1), method, bits, symmetric, float(percentile))
        calibrator = method if ran == method else f"{method}->{ran}"
    else:
        chans = np.moveaxis(xd, axis, 0).reshape(x.shape[axis], -1)
        ranges = [_range_one(c, method, bits, symmetric, float(percentile)) for c in chans]
        lo, hi = np.array([r[0] for r in ranges]), np.array([r[1] for r in ranges])
        fell = sum(r[2] != method for r in ranges)
        calibrator = method if not fell else (f"{method}->minmax" if fell == len(ranges) else
                                              f"{method}->minmax ({fell} of {len(ranges)} channels)")
    return params_from_range(lo, hi, bits=bits, symmetric=symmetric, axis=axis, method=method,
                             calibrator=calibrator)


def quantization_error(x, params: QuantParams) -> float:
    """Mean squared error ``mean((x - fake_quantize(x, params))^2)`` (NumPy)."""
    from .params import fake_quantize

    x = as_array(x, "x", finite=True)
    return float(np.mean((fake_quantize(x, params, rt="numpy").astype(np.float64) - x) ** 2))
