"""``int4_gemv``: float activations times packed int4 weights with per-channel scales.

GPUs run ``kernels/quant.cl``'s ``int4_gemv`` (a work-group of WG work-items over ROWS output
rows, reduced in local memory); CPUs ``int4_gemv_rows`` (a work-item per ROWS outputs). Where
the device has subnormal floats the GPU kernel uses the subnormal unpack (one AND per nibble),
which needs x scaled per element and two numbers per row: ``int4_prepare_x`` computes them on
the device from the raw x in the same call (see :func:`subnormal_prescale` for the maths and the
NumPy reference of that step). The NumPy backend is the reference.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..runtime import Runtime, resolve_rt
from ..validation import as_array
from .config import quant_config, quant_program
from .params import unpack_int4


class Int4Weights:
    """Packed int4 weights for ``int4_gemv``: ``packed`` (N, ceil(K/2)) uint8 rows (one per
    output channel, :func:`~workbench.quant.pack_int4` layout), ``scales`` (N,) float32, and an
    optional ``bias`` (N,) float32 that every product adds (a layer's)."""

    def __init__(self, packed, scales, *, k: int | None = None, bias=None):
        p = np.asarray(packed)
        if p.dtype != np.uint8 or p.ndim != 2:
            raise InputError("w_packed", f"expected (N, ceil(K/2)) uint8 from pack_int4, got "
                                         f"{p.dtype} {p.shape}")
        self.packed = np.ascontiguousarray(p)
        self.n, nb = p.shape
        self.k = 2 * nb if k is None else int(k)
        if not 2 * nb - 1 <= self.k <= 2 * nb:
            raise InputError("k", f"{nb} bytes per row hold {2 * nb - 1} or {2 * nb} values, not {k}")
        s = as_array(scales, "scales", finite=True).reshape(-1)
        if s.shape != (self.n,):
            raise InputError("scales", f"expected {self.n} per-channel scales, got shape {s.shape}")
        self.scales = s
        self.bias = None if bias is None else _check_bias(bias, self.n)
        self.kq = max(-(-self.k // 32), 1)  # uint4 words (32 nibbles) per row

    @property
    def nbytes(self) -> int:
        """Packed weight bytes plus float32 scales."""
        return self.packed.nbytes + self.scales.nbytes

    @property
    def ldx(self) -> int:
        """Row length of the kernel's x operand: K padded to whole 32-nibble words."""
        return 32 * self.kq

    def dequantized(self) -> np.ndarray:
        """(N, K) float32 weights ``q * scale``."""
        return unpack_int4(self.packed, self.k, rt="numpy").astype(np.float32) * self.scales[:, None]

    def device(self, rt: Runtime):
        """(packed rows padded to Kq words, scales, bias or None) on ``rt``'s device, uploaded
        once and kept by the runtime as long as these weights live."""
        def upload():
            rows = np.zeros((self.n, self.kq * 16), np.uint8)
            rows[:, :self.packed.shape[1]] = self.packed
            bias = None if self.bias is None else rt.to_device(self.bias, "bias").data
            return rt.to_device(rows, "w_packed").data, rt.to_device(self.scales, "scales").data, bias

        return rt.memo("int4.weights", upload, owner=self)


def _check_bias(bias, n: int) -> np.ndarray:
    bias = as_array(bias, "bias", ndim=1, finite=True)
    if bias.shape != (n,):
        raise InputError("bias", f"expected shape ({n},), got {bias.shape}")
    return bias


def prepare_int4(w_packed, scales, *, k: int | None = None, bias=None) -> Int4Weights:
    """Prepare packed int4 weights once for repeated ``int4_gemv`` calls."""
    return w_packed if isinstance(w_packed, Int4Weights) else Int4Weights(w_packed, scales, k=k, bias=bias)


def int4_gemv(x, w_packed, *, scales=None, rt: Runtime | str | None = None, k: int | None = None,
              bias=None):
    """``y = x W^T * scales (+ bias)`` with int4 weights ``W`` (N, K) packed two per byte.

    Args:
        x: (K,) or (M, K) float32 activations.
        w_packed: (N, ceil(K/2)) uint8 from :func:`~workbench.quant.pack_int4` of the weight rows
            (one row per output channel), or an :class:`Int4Weights` (then ``scales`` is unused).
        scales: (N,) float32 per-output-channel scales. k: K when it is odd.
        bias: optional (N,) (added to the weights' own bias, if they carry one).

    Returns (N,) or (M, N) float32. Bytes moved: N ceil(K/2) (weights) + 4 (M K + M N + N).
    One call on an OpenCL device is: upload x, prepare it on the device (pad; for the subnormal
    unpack also scale it and sum each row), the GEMV, read y back; benchmarks time all of it.
    """
    rt = resolve_rt(rt)
    w = prepare_int4(w_packed, scales, k=k)
    x = as_array(x, "x", finite=True)
    vector = x.ndim == 1
    x2 = x[None, :] if vector else x
    if x2.ndim != 2 or x2.shape[1] != w.k:
        raise InputError("x", f"expected (K,) or (M, K) with K = {w.k}, got shape {x.shape}")
    if bias is not None:
        bias = _check_bias(bias, w.n)
    m = x2.shape[0]
    if rt.is_numpy or m == 0 or w.n == 0:
        y = x2 @ w.dequantized().T
        for b in (w.bias, bias):
            if b is not None:
                y = y + b
        y = y.astype(np.float32)
    else:
        y = _gemv_call(rt, x2, w, bias)
    return y[0] if vector else y


def subnormal_prescale(x: np.ndarray, kq: int) -> tuple[np.ndarray, np.ndarray]:
    """The NumPy reference of ``int4_prepare_x`` with ``UNPACK_DENORMAL``: x (M, K) padded to
    32 ``kq`` columns and scaled for ``int4_gemv``'s subnormal unpack.

    Element k of a row, at nibble position j (k mod 8, less 5 from 5 up) of its 32-bit word, is
    multiplied by 2^(149 - 4j - S) with S = ilogb(max |x_m|) + 24 per row, so no value exceeds
    2^126; returns that (M, 32 kq) float32 array and the (M, 2) float32 rows (sum_k x_mk, S)
    that the kernel's epilogue needs (y = 2^S acc - 8 sum x). Powers of two scale exactly; the
    sums are taken in float64.
    """
    m, k = x.shape
    x64 = np.zeros((m, kq * 32), np.float64)
    x64[:, :k] = x
    peak = np.abs(x64).max(axis=1) if k else np.zeros(m)
    s = np.where(peak > 0, np.frexp(peak)[1] - 1 + 24, 0)  # frexp: peak = f 2^e, f in [0.5, 1)
    j = np.arange(kq * 32) % 8
    shift = 4 * np.where(j < 5, j, j - 5)
    scaled = np.ldexp(x64, (149 - shift)[None, :] - s[:, None]).astype(np.float32)
    info = np.stack([x64.sum(axis=1), s.astype(np.float64)], axis=1).astype(np.float32)
    return scaled, info


PREP_WG = 256  # work-items per row of int4_prepare_x


def _prepares_on_device(cfg) -> bool:
    """Whether x is prepared by ``int4_prepare_x`` (GPUs' ``int4_gemv``) rather than padded on
    the host (CPUs' ``int4_gemv_rows``: the host *is* the device, and a launch costs more than
    the copy)."""
    return not cfg.params.get("GEMV_ROWS", 0)


def _enqueue(rt: Runtime, cfg, w: Int4Weights, m: int, x_raw, xp, info, y, bias_buf, wait_for=None) -> list:
    """Launch one product on device buffers: ``x_raw`` (M, K) raw x (GPU path; None when ``xp``
    already holds the padded x), ``xp`` (M, 32 Kq), ``info`` (M, 2), ``y`` (M, N); returns the
    events (prepare, GEMV)."""
    p = cfg.params
    prog = quant_program(rt)
    wbuf, sbuf, wbias = w.device(rt)
    events = []
    if x_raw is not None:
        events.append(prog.int4_prepare_x((PREP_WG, m), (PREP_WG, 1), x_raw, xp, info, np.int32(w.k),
                                          np.int32(w.ldx), wait_for=wait_for))
        wait_for = None
    has_bias = bias_buf is not None
    args = (wbuf, sbuf, bias_buf if has_bias else sbuf, xp, info, y, np.int32(w.n), np.int32(w.kq),
            np.int32(w.ldx), np.int32(w.n), np.int32(has_bias))
    rows = p.get("ROWS", 4)
    groups = -(-w.n // rows)
    if p.get("GEMV_ROWS", 0):  # CPU: a work-item per ROWS outputs, no reduction
        events.append(prog.int4_gemv_rows((groups, m), None, *args, wait_for=wait_for))
    else:
        wg = p.get("WG", 128)
        events.append(prog.int4_gemv((wg * groups, m), (wg, 1), *args, wait_for=wait_for))
    return events


def _bias_total(w: Int4Weights, bias) -> np.ndarray | None:
    if bias is None:
        return w.bias
    return bias if w.bias is None else (w.bias + bias).astype(np.float32)


def _gemv_call(rt: Runtime, x: np.ndarray, w: Int4Weights, bias) -> np.ndarray:
    """One public ``int4_gemv`` call on an OpenCL device (see its docstring)."""
    import pyopencl as cl

    cfg = quant_config(rt)
    m = x.shape[0]
    y = np.empty((m, w.n), np.float32)
    total_bias = _bias_total(w, bias)
    # Everything that may upload or build does so now, before the launches are queued.
    quant_program(rt)
    w.device(rt)
    with rt.launch_lock:  # the scratch buffers are shared by every call on this device
        if total_bias is None:
            bias_buf = None
        elif bias is None:
            bias_buf = w.device(rt)[2]  # the weights' own bias, already on the device
        else:
            bias_buf = rt.scratch("int4.bias", 4 * w.n)
            cl.enqueue_copy(rt.queue, bias_buf, total_bias, is_blocking=False)
        xp = rt.scratch("int4.xp", 4 * m * w.ldx)
        info = rt.scratch("int4.info", 8 * m)
        out = rt.scratch("int4.y", 4 * m * w.n)
        # No user-event gate here (Int4Problem's device timing has one): on NVIDIA's driver a
        # command waiting on a user event costs about 125 us more per call (H200, 2026-12-03:
        # docs/results/h200-2026-12-03/int4-call-probe.jsonl), far more than the gap between two
        # launches queued in a row.
        if _prepares_on_device(cfg):
            x_raw = rt.scratch("int4.x", 4 * m * w.k)
            up = cl.enqueue_copy(rt.queue, x_raw, x, is_blocking=False)
        else:
            padded = np.zeros((m, w.ldx), np.float32)
            padded[:, :w.k] = x
            x_raw = None
            up = cl.enqueue_copy(rt.queue, xp, padded, is_blocking=False)
        events = _enqueue(rt, cfg, w, m, x_raw, xp, info, out, bias_buf, wait_for=[up])
        cl.enqueue_copy(rt.queue, y, out, wait_for=events[-1:], is_blocking=True)
    return y


class Int4Problem:
    """Device-resident operands of one ``int4_gemv``, for timing the device work of a call
    without its transfers: x (M, K) float32 is uploaded once, as given; :meth:`enqueue`
    launches what a call runs on the device (on GPUs: preparing x, then the GEMV; on CPUs,
    where the host pads x, the GEMV on the padded copy made here)."""

    def __init__(self, x: np.ndarray, w: Int4Weights, rt: Runtime, *, bias=None):
        x = as_array(x, "x", ndim=2, finite=True)
        if x.shape[1] != w.k:
            raise InputError("x", f"expected {w.k} columns, got shape {x.shape}")
        self.rt, self.w = rt, w
        self.m = x.shape[0]
        self.cfg = quant_config(rt)
        if _prepares_on_device(self.cfg):
            self.x_raw = rt.to_device(x, "x")
            self.xp = rt.empty((self.m, w.ldx), np.float32, "x prepared")
        else:
            padded = np.zeros((self.m, w.ldx), np.float32)
            padded[:, :w.k] = x
            self.x_raw, self.xp = None, rt.to_device(padded, "x")
        self.info = rt.empty((self.m, 2), np.float32, "x row info")
        self.y = rt.empty((self.m, w.n), np.float32, "y")
        total = _bias_total(w, None if bias is None else _check_bias(bias, w.n))
        self.bias = None if total is None else rt.to_device(total, "bias")

    def enqueue(self) -> list:
        import pyopencl as cl

        quant_program(self.rt)
        self.w.device(self.rt)
        with self.rt.launch_lock:
            # the launches wait on a gate opened once both are queued, so the device runs them
            # back to back instead of idling for the host's per-launch overhead in between
            gate = cl.UserEvent(self.rt.ctx)
            try:
                return _enqueue(self.rt, self.cfg, self.w, self.m,
                                None if self.x_raw is None else self.x_raw.data,
                                self.xp.data, self.info.data, self.y.data,
                                None if self.bias is None else self.bias.data, wait_for=[gate])
            finally:
                gate.set_status(cl.command_execution_status.COMPLETE)

    def run(self):
        events = self.enqueue()
        self.y.add_event(events[-1])
        return self.y
