"""Quantization parameters and the elementwise maps between floats and integers.

Conventions (every function and kernel in :mod:`workbench.quant` follows them):

* Bits ``b`` in 2..8; integers are stored in int8 (or packed in nibbles for ``b <= 4``).
* **Symmetric**: ``qmax = 2^(b-1) - 1``, ``qmin = -qmax`` (a restricted range: int8 is
  [-127, 127], so the grid is symmetric about zero and -128 x -128 never occurs);
  ``zero_point = 0``; ``scale = T / qmax`` for a clipping threshold ``T``.
* **Asymmetric**: ``qmin = -2^(b-1)``, ``qmax = 2^(b-1) - 1``; the range ``[lo, hi]`` is first
  widened to contain 0 so that zero is exact; ``scale = (hi - lo) / (qmax - qmin)``,
  ``zero_point = clamp(qmin - round(lo / scale), qmin, qmax)`` (an integer in [qmin, qmax]).
* ``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` with round half to even (NumPy's
  ``rint``, OpenCL's ``rint``); ``x_hat = (q - zero_point) * scale``. All in float32.
* A zero range (an all-zero channel) gets ``scale = 1``, so it quantizes to ``zero_point``.
* Per-channel (``axis = a``): ``scale`` and ``zero_point`` have shape ``(x.shape[a],)``;
  per-tensor: shape ``()``.

Shapes: ``x`` any shape; ``q`` the same shape, int8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..runtime import Runtime, resolve_rt
from ..validation import as_array
from .config import quant_program

FLOAT = np.float32


def check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 8:
        raise InputError("bits", f"expected an integer from 2 to 8, got {bits!r}")
    return int(bits)


def qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    """(qmin, qmax) of the integer grid."""
    bits = check_bits(bits)
    if symmetric:
        return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def check_axis(axis, ndim: int) -> int | None:
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise InputError("axis", f"expected None or an axis in [{-ndim}, {ndim}), got {axis!r}")
    return int(axis) % ndim


@dataclass(frozen=True)
class QuantParams:
    """Scale and zero point of a quantizer (see the module docstring for the conventions).

    ``scale``: float32, shape () per tensor or (C,) per channel along ``axis``;
    ``zero_point``: int32, same shape; ``bits``; ``axis`` (None per tensor); ``qmin``, ``qmax``.
    ``threshold`` records the clipping range the calibrator chose as (lo, hi) arrays.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    bits: int
    axis: int | None
    qmin: int
    qmax: int
    symmetric: bool = True
    method: str = ""
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    calibrator: str = ""  # what actually ran: "kl", or "kl->minmax (7 of 10 channels)" after a fallback

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    def broadcast(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        """scale and zero_point shaped to broadcast against an ``ndim``-D tensor."""
        if self.axis is None:
            return self.scale, self.zero_point
        shape = [1] * ndim
        shape[self.axis] = -1
        return self.scale.reshape(shape), self.zero_point.reshape(shape)

    def __repr__(self) -> str:
        where = "per-tensor" if self.axis is None else f"per-channel(axis={self.axis}, C={self.scale.size})"
        kind = "symmetric" if self.symmetric else "asymmetric"
        s = float(self.scale) if self.scale.ndim == 0 else f"[{self.scale.min():.3g}..{self.scale.max():.3g}]"
        return f"QuantParams({self.method or 'manual'}, {self.bits}-bit {kind}, {where}, scale={s})"


def params_from_range(lo, hi, *, bits: int = 8, symmetric: bool = True, axis: int | None = None,
                      method: str = "", calibrator: str = "") -> QuantParams:
    """Quantizer for the clipping range [lo, hi] (arrays of the channel shape, or scalars)."""
    bits = check_bits(bits)
    qmin, qmax = qrange(bits, symmetric)
    lo = np.minimum(np.asarray(lo, np.float64), 0.0)
    hi = np.maximum(np.asarray(hi, np.float64), 0.0)
    if symmetric:
        t = np.maximum(np.abs(lo), np.abs(hi))
        scale = t / qmax
        zp = np.zeros(scale.shape, np.int32)
        lo, hi = -t, t
    else:
        scale = (hi - lo) / (qmax - qmin)
        safe = np.where(scale > 0, scale, 1.0)
        zp = np.clip(qmin - np.rint(lo / safe), qmin, qmax).astype(np.int32)
    scale = np.where(scale > 0, scale, 1.0).astype(FLOAT)
    return QuantParams(scale, np.asarray(zp, np.int32), bits, axis, qmin, qmax, bool(symmetric),
                       method, np.asarray(lo, FLOAT), np.asarray(hi, FLOAT), calibrator or method)


def _check_params(params, x: np.ndarray) -> QuantParams:
    if not isinstance(params, QuantParams):
        raise InputError("params", f"expected QuantParams (from calibrate), got {type(params).__name__}")
    if params.axis is not None:
        if params.axis >= x.ndim or x.shape[params.axis] != params.scale.size:
            raise InputError("params", f"per-channel params for {params.scale.size} channels on axis "
                                       f"{params.axis} do not fit shape {x.shape}")
    return params


def _channel_geometry(params: QuantParams, shape) -> tuple[int, int]:
    """(channels, inner) such that element i belongs to channel (i // inner) % channels."""
    if params.axis is None:
        return 1, 1
    inner = int(np.prod(shape[params.axis + 1:], dtype=np.int64))
    return int(shape[params.axis]), max(inner, 1)


def _elementwise(rt, kernel: str, x: np.ndarray, out_dtype, params: QuantParams, with_range: bool):
    import pyopencl.array as cla

    prog = quant_program(rt)
    channels, inner = _channel_geometry(params, x.shape)
    n = x.size
    out = rt.empty(x.shape, out_dtype, "result")
    if n:
        dx = rt.to_device(np.ascontiguousarray(x), "x")
        scale = cla.to_device(rt.queue, np.ascontiguousarray(params.scale.reshape(-1), FLOAT))
        zp = cla.to_device(rt.queue, np.ascontiguousarray(params.zero_point.reshape(-1), np.int32))
        args = [dx.data, out.data, scale.data, zp.data, np.int32(n), np.int32(channels), np.int32(inner)]
        if with_range:
            args += [np.int32(params.qmin), np.int32(params.qmax)]
        getattr(prog, kernel)(((n + 255) // 256 * 256,), (256,), *args)
    return out.get()


def quantize(x, params: QuantParams, rt: Runtime | str | None = None) -> np.ndarray:
    """Float -> int8: ``clamp(rint(x / scale) + zero_point, qmin, qmax)`` (float32 arithmetic).

    Shapes: x any shape -> int8 of the same shape. Exact on every backend.
    """
    rt = resolve_rt(rt)
    x = as_array(x, "x", finite=True)
    params = _check_params(params, x)
    if rt.is_opencl:
        return _elementwise(rt, "quantize", x, np.int8, params, True)
    scale, zp = params.broadcast(x.ndim)
    q = np.rint(x / scale) + zp.astype(FLOAT)
    return np.clip(q, params.qmin, params.qmax).astype(np.int8)


def dequantize(q, params: QuantParams, rt: Runtime | str | None = None) -> np.ndarray:
    """Int -> float32: ``(q - zero_point) * scale``."""
    rt = resolve_rt(rt)
    qa = np.asarray(q)
    if qa.dtype.kind not in "iu":
        raise InputError("q", f"expected an integer array, got dtype {qa.dtype}")
    if qa.size and (qa.min() < -128 or qa.max() > 127):
        raise InputError("q", "values outside the int8 range")
    qa = np.ascontiguousarray(qa, np.int8)
    params = _check_params(params, qa)
    if rt.is_opencl:
        return _elementwise(rt, "dequantize", qa, FLOAT, params, False)
    scale, zp = params.broadcast(qa.ndim)
    return ((qa.astype(np.int32) - zp).astype(FLOAT) * scale).astype(FLOAT)


def fake_quantize(x, params: QuantParams, *, rt: Runtime | str | None = None,
                  return_mask: bool = False):
    """``dequantize(quantize(x))`` in one pass: float32 values on the integer grid.

    With ``return_mask=True`` also returns the straight-through estimator's mask: 1 where
    ``x / scale + zero_point`` lies inside [qmin, qmax] (gradient passes), else 0.
    """
    rt = resolve_rt(rt)
    x = as_array(x, "x", finite=True)
    params = _check_params(params, x)
    if rt.is_opencl:
        y = _elementwise(rt, "fake_quantize", x, FLOAT, params, True)
    else:
        scale, zp = params.broadcast(x.ndim)
        q = np.clip(np.rint(x / scale) + zp.astype(FLOAT), params.qmin, params.qmax)
        y = ((q - zp.astype(FLOAT)) * scale).astype(FLOAT)
    if not return_mask:
        return y
    scale, zp = params.broadcast(x.ndim)
    v = x / scale + zp
    return y, ((v >= params.qmin - 0.5) & (v <= params.qmax + 0.5)).astype(FLOAT)


def pack_int4(q, rt: Runtime | str | None = None) -> np.ndarray:
    """Pack int values in [-8, 7] two per byte along the last axis.

    Element ``2j`` goes to the low nibble of byte ``j``, element ``2j + 1`` to the high nibble,
    each as a 4-bit two's complement; an odd length is padded with a zero nibble. Shapes:
    (..., K) -> (..., ceil(K / 2)) uint8.
    """
    rt = resolve_rt(rt)
    qa = np.asarray(q)
    if qa.dtype.kind not in "iu":
        raise InputError("q", f"expected an integer array, got dtype {qa.dtype}")
    if qa.ndim == 0:
        raise InputError("q", "expected at least one dimension")
    if qa.size and (qa.min() < -8 or qa.max() > 7):
        raise InputError("q", f"int4 values must lie in [-8, 7], got [{qa.min()}, {qa.max()}]")
    qa = np.ascontiguousarray(qa, np.int8)
    k = qa.shape[-1]
    kb = (k + 1) // 2
    rows = int(np.prod(qa.shape[:-1], dtype=np.int64))
    if rt.is_opencl and qa.size:
        out = rt.empty((rows, kb), np.uint8, "packed")
        quant_program(rt).pack_int4((kb, rows), None, rt.to_device(qa.reshape(rows, k), "q").data,
                                    out.data, np.int32(k))
        return out.get().reshape(*qa.shape[:-1], kb)
    if k % 2:
        qa = np.concatenate([qa, np.zeros((*qa.shape[:-1], 1), np.int8)], axis=-1)
    u = qa.view(np.uint8) & 0x0F
    return (u[..., 0::2] | (u[..., 1::2] << 4)).astype(np.uint8)


def unpack_int4(packed, k: int | None = None, rt: Runtime | str | None = None) -> np.ndarray:
    """Inverse of :func:`pack_int4`: (..., B) uint8 -> (..., k) int8 (default k = 2B)."""
    rt = resolve_rt(rt)
    p = np.asarray(packed)
    if p.dtype != np.uint8:
        raise InputError("packed", f"expected uint8 bytes, got dtype {p.dtype}")
    if p.ndim == 0:
        raise InputError("packed", "expected at least one dimension")
    b = p.shape[-1]
    k = 2 * b if k is None else int(k)
    if not 2 * b - 1 <= k <= 2 * b or k < 0:
        raise InputError("k", f"{b} bytes hold {2 * b - 1} or {2 * b} values, not {k}")
    p = np.ascontiguousarray(p)
    rows = int(np.prod(p.shape[:-1], dtype=np.int64))
    if rt.is_opencl and p.size and k:
        out = rt.empty((rows, k), np.int8, "unpacked")
        quant_program(rt).unpack_int4((k, rows), None, rt.to_device(p.reshape(rows, b), "packed").data,
                                      out.data, np.int32(k))
        return out.get().reshape(*p.shape[:-1], k)
    lo = (p & 0x0F).astype(np.int8)
    hi = (p >> 4).astype(np.int8)
    out = np.empty((*p.shape[:-1], 2 * b), np.int8)
    out[..., 0::2] = np.where(lo >= 8, lo - 16, lo)
    out[..., 1::2] = np.where(hi >= 8, hi - 16, hi)
    return out[..., :k]
