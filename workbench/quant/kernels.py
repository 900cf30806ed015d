"""Integer matrix kernels: ``int8_matmul`` (int8 x int8 -> int32, fused requantization) and
``int4_gemv`` (packed int4 weights, per-channel scales, float activations).

``int8_matmul`` runs ``kernels/quant.cl``'s ``i8gemm_tiled`` on GPUs, with a 4-way int8 dot
product where the device has one (``cl_khr_integer_dot_product``, or NVIDIA's ``dp4a`` through
inline PTX at compute capability >= 6.1) and four multiply-adds otherwise. On a PoCL CPU device of
an x86 host with AVX2 it runs ``i8gemm_pmadd`` (``vpmaddwd`` through inline assembly: 16 exact
int16 multiply-adds per instruction); on other CPUs ``i8gemm_packed`` (exact FP32 FMA blocks). The NumPy backend is
the reference (exact: a float64 product of int8 values is exact up to K = 131,071).

Weights used more than once (a model's layers) are prepared once with :func:`prepare_int8` /
:func:`prepare_int4`, which transpose, pad and upload them in the kernel's layout.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, KernelBuildError
from ..runtime import Runtime, resolve_rt
from ..runtime.kernels import tuning
from ..validation import as_array

BUILD_OPTIONS = ("-cl-fp32-correctly-rounded-divide-sqrt",)
# Largest K for which an int8 x int8 sum cannot overflow int32: K * 128 * 128 <= 2^31 - 1.
MAX_K = (2 ** 31 - 1) // (128 * 128)
GEMV_TUNABLES = ("WG", "ROWS", "GEMV_ROWS", "UNPACK_DENORMAL")  # int4_gemv's; the rest are the GEMM's
DOT_MACROS = {"dp4a": "USE_DP4A", "khr": "USE_KHR_DOT", "plain": None}


def _ceil_to(x: int, m: int) -> int:
    return -(-x // m) * m


# -- configuration and programs ---------------------------------------------------------------
@dataclass
class QuantConfig:
    """The int8 GEMM variant (``"tiled"`` or ``"packed"``), its macros, and the dot-product path."""

    variant: str
    params: dict = field(default_factory=dict)
    dot: str = "plain"
    source: str = ""

    def describe(self) -> str:
        items = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.variant}({items}), dot={self.dot}"


_configs: "weakref.WeakKeyDictionary[Runtime, QuantConfig]" = weakref.WeakKeyDictionary()


def dot_candidates(rt: Runtime) -> list[str]:
    info = rt.info
    out = []
    if info.compute_capability is not None and tuple(info.compute_capability) >= (6, 1):
        out.append("dp4a")
    if "cl_khr_integer_dot_product" in info.extensions:
        out.append("khr")
    return out + ["plain"]


def _build(rt: Runtime, dot: str, params: dict):
    macro = DOT_MACROS[dot]
    defines = dict(params)
    if macro:
        defines[macro] = 1
    return rt.program("quant", options=BUILD_OPTIONS, **defines)


def x86_features() -> set[str]:
    """The host CPU's x86 feature flags (Linux), empty elsewhere. A PoCL CPU device is the host."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _pmadd_params(rt: Runtime, params: dict) -> dict | None:
    """Macros of the inline-assembly x86 kernel, or None where it cannot run (not a PoCL CPU
    device on an x86 host with AVX2)."""
    flags = x86_features()
    platform_name = rt.info.platform.lower()
    pocl = "pocl" in platform_name or "portable computing language" in platform_name
    if rt.kind != "opencl-cpu" or not pocl or "avx2" not in flags:
        return None
    return {**params, "USE_X86_PMADDWD": 1}


_PROBE = r"""
import json, sys
import numpy as np
from workbench.quant.kernels import QuantConfig, int8_matmul, set_quant_config
from workbench.runtime import get_runtime
rt = get_runtime(sys.argv[1])
set_quant_config(rt, QuantConfig("pmadd", json.loads(sys.argv[2]), "plain"))
rng = np.random.default_rng(0)
a = rng.integers(-128, 128, (9, 70)).astype(np.int8)
b = rng.integers(-128, 128, (70, 20)).astype(np.int8)
print("exact" if np.array_equal(int8_matmul(a, b, rt), a.astype(np.int64) @ b.astype(np.int64)) else "wrong")
"""


def pmadd_works(rt: Runtime, params: dict) -> bool:
    """Whether ``i8gemm_pmadd`` with the macros ``params`` runs correctly on ``rt``, probed once
    per device, driver and macros in a child process and remembered in ``$WORKBENCH_HOME/tuning/quant-probe.json``: inline
    assembly is outside what OpenCL promises, and one PoCL build (5.0 with LLVM assertions) aborts
    the whole process when it compiles the kernel at launch, which no ``try`` could catch."""
    import json
    import subprocess
    import sys

    from .. import config

    path = config.home() / "tuning" / "quant-probe.json"
    key = f"{rt.info.key}|pmadd|{json.dumps(params, sort_keys=True)}"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        try:
            out = subprocess.run([sys.executable, "-c", _PROBE, rt.info.id, json.dumps(params)],
                                 capture_output=True, text=True, timeout=180)
            known[key] = out.returncode == 0 and out.stdout.strip().endswith("exact")
        except (OSError, subprocess.SubprocessError):
            known[key] = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
            tmp.replace(path)
        except OSError:
            pass  # a read-only home: probe again next time
    return bool(known[key])


def quant_config(rt: Runtime) -> QuantConfig:
    """The runtime's configuration: tuning table entry plus the first dot path that builds."""
    cfg = _configs.get(rt)
    if cfg is None:
        p = dict(tuning("quant", rt.info))
        source = p.pop("_source", "")
        variant = p.pop("variant", "packed" if rt.kind == "opencl-cpu" else "tiled")
        params = {k: int(v) for k, v in p.items()}
        if variant == "pmadd":
            pm = _pmadd_params(rt, params)
            if pm is not None and not pmadd_works(rt, pm):
                pm = None
            if pm is not None:
                try:
                    _build(rt, "plain", pm)
                    params = pm
                except KernelBuildError:
                    pm = None
            if pm is None:
                variant = "packed"  # the portable CPU kernel
        if params.get("UNPACK_DENORMAL") and not _has_subnormals(rt):
            params.pop("UNPACK_DENORMAL")  # int4_gemv's subnormal unpack needs CL_FP_DENORM
        forced = params.pop("DOT", None)  # a tuning entry may pin the plain path (0)
        cands = dot_candidates(rt) if forced != 0 else ["plain"]
        for dot in cands:
            try:
                _build(rt, dot, params)
            except KernelBuildError:
                if dot == "plain":
                    raise
                continue  # advertised but not buildable: try the next path
            cfg = QuantConfig(variant, params, dot, source)
            break
        _configs[rt] = cfg
    return cfg


def _has_subnormals(rt: Runtime) -> bool:
    import pyopencl as cl

    try:
        return bool(rt.device.single_fp_config & cl.device_fp_config.DENORM)
    except (AttributeError, cl.Error):
        return False


def set_quant_config(rt: Runtime, cfg: QuantConfig | None) -> None:
    """Override (or with None, forget) the configuration, e.g. while tuning."""
    if cfg is None:
        _configs.pop(rt, None)
    else:
        _configs[rt] = cfg


def quant_program(rt: Runtime):
    cfg = quant_config(rt)
    return _build(rt, cfg.dot, cfg.params)


# -- int8 ------------------------------------------------------------------------------------------
def _int8(x, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise InputError(name, f"expected an int8 array (quantize first), got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise InputError(name, f"expected a {ndim}-D array, got shape {arr.shape}")
    if arr.dtype != np.int8 and arr.size and (arr.min() < -128 or arr.max() > 127):
        raise InputError(name, "values outside the int8 range [-128, 127]")
    return np.ascontiguousarray(arr, np.int8)


def _check_k(k: int) -> None:
    if k > MAX_K:
        raise InputError("a", f"K = {k} would overflow int32 accumulation of int8 products "
                              f"(at most {MAX_K:,})")


class Int8Weights:
    """An int8 (K, N) right-hand matrix prepared for ``int8_matmul``: its column sums (for an
    asymmetric left operand) and, per OpenCL runtime, a device copy in the kernel's layout
    (tiled: B^T padded to (Np, Kp); packed: k-pair interleaved 16-column panels)."""

    def __init__(self, b):
        self.host = _int8(b, "b", 2)
        self.k, self.n = self.host.shape
        _check_k(self.k)
        self.colsum = self.host.astype(np.int32).sum(axis=0).astype(np.int32)
        self._device: dict[int, tuple] = {}

    @property
    def nbytes(self) -> int:
        return self.host.nbytes

    def device(self, rt: Runtime):
        """(layout key, device buffer of B, device column sums) for ``rt`` (built once)."""
        cfg = quant_config(rt)
        geom = _geometry(cfg, 1, self.n, self.k)
        key = (id(rt), cfg.variant, geom["Np"], geom["Kp"])
        hit = self._device.get(id(rt))
        if hit is None or hit[0] != key:
            bt = np.zeros((geom["Np"], geom["Kp"]), np.int8)
            bt[:self.n, :self.k] = self.host.T
            if cfg.variant == "pmadd":
                # Bp[jp][k2][c][h] = B[2 k2 + h][jp*NC + c]: k-pairs of NC = 8 NB columns.
                nc = 8 * cfg.params.get("NB", 3)
                bt = bt.reshape(geom["Np"] // nc, nc, geom["Kp"] // 2, 2).transpose(0, 2, 1, 3)
            elif cfg.variant == "packed":
                # Bp[jp][k][c] = B[k][jp*NR + c]: panels of NR = 16 NV columns, k-major.
                nr = 16 * cfg.params.get("NV", 2)
                bt = bt.reshape(geom["Np"] // nr, nr, geom["Kp"]).transpose(0, 2, 1)
            buf = rt.to_device(np.ascontiguousarray(bt), "b").data
            cs = rt.to_device(self.colsum, "colsum").data
            hit = self._device[id(rt)] = (key, buf, cs)
        return hit[1], hit[2]


def prepare_int8(b) -> Int8Weights:
    """Prepare an int8 (K, N) matrix once for repeated ``int8_matmul(a, w)`` calls."""
    return b if isinstance(b, Int8Weights) else Int8Weights(b)


def _geometry(cfg: QuantConfig, m: int, n: int, k: int) -> dict:
    p = cfg.params
    if cfg.variant == "pmadd":
        mr, nc, lm = p.get("MR", 4), 8 * p.get("NB", 3), p.get("LM", 4)
        return {"Mp": _ceil_to(max(m, 1), mr * lm), "Np": _ceil_to(max(n, 1), nc), "Kp": _ceil_to(max(k, 1), 4)}
    if cfg.variant == "packed":
        mr, nr, lm = p.get("MR", 8), 16 * p.get("NV", 2), p.get("LM", 4)
        return {"Mp": _ceil_to(max(m, 1), mr * lm), "Np": _ceil_to(max(n, 1), nr), "Kp": _ceil_to(max(k, 1), 4)}
    bm, bn, bkw = p.get("BM", 128), p.get("BN", 128), p.get("BKW", 8)  # quant.cl's defaults
    return {"Mp": _ceil_to(max(m, 1), bm), "Np": _ceil_to(max(n, 1), bn), "Kp": _ceil_to(max(k, 1), 4 * bkw)}


def _epilogue_values(n: int, zero_point_a, scale_a, scale_b, bias, relu, out_scale, out_zero_point):
    """Checked epilogue arguments: (mode, za, sa, sb (N,), bias (N,), relu, so, zo)."""
    za = int(zero_point_a)
    if not -128 <= za <= 127:
        raise InputError("zero_point_a", f"expected an int8 zero point, got {zero_point_a!r}")
    if scale_a is None:
        if scale_b is not None or bias is not None or out_scale is not None or relu:
            raise InputError("scale_a", "scale_b, bias, relu and out_scale need scale_a")
        return 0, za, 1.0, np.ones(n, np.float32), np.zeros(n, np.float32), False, 1.0, 0
    sa = np.float32(scale_a)
    if not (np.isfinite(sa) and sa > 0):
        raise InputError("scale_a", f"expected a positive scale, got {scale_a!r}")
    if scale_b is None:
        raise InputError("scale_b", "scale_a needs scale_b (scalar or one per output column)")
    sb = np.broadcast_to(as_array(scale_b, "scale_b", finite=True), (n,)).astype(np.float32) \
        if np.ndim(scale_b) == 0 else as_array(scale_b, "scale_b", ndim=1, finite=True)
    if sb.shape != (n,) or (sb <= 0).any():
        raise InputError("scale_b", f"expected {n} positive scales, got shape {sb.shape}")
    bias = np.zeros(n, np.float32) if bias is None else as_array(bias, "bias", ndim=1, finite=True)
    if bias.shape != (n,):
        raise InputError("bias", f"expected shape ({n},), got {bias.shape}")
    if out_scale is None:
        return 1, za, float(sa), np.ascontiguousarray(sb), bias, bool(relu), 1.0, 0
    so = np.float32(out_scale)
    if not (np.isfinite(so) and so > 0):
        raise InputError("out_scale", f"expected a positive scale, got {out_scale!r}")
    zo = int(out_zero_point)
    if not -128 <= zo <= 127:
        raise InputError("out_zero_point", f"expected an int8 zero point, got {out_zero_point!r}")
    return 2, za, float(sa), np.ascontiguousarray(sb), bias, bool(relu), float(so), zo


def epilogue_reference(acc: np.ndarray, colsum: np.ndarray, ep) -> np.ndarray:
    """The kernels' epilogue in NumPy float32 arithmetic (same operation order)."""
    mode, za, sa, sb, bias, relu, so, zo = ep
    if mode == 0:
        return acc
    acc = (acc - np.int32(za) * colsum[None, :]).astype(np.int32)
    y = acc.astype(np.float32) * (np.float32(sa) * sb)[None, :] + bias[None, :]
    if relu:
        y = np.maximum(y, np.float32(0))
    if mode == 1:
        return y.astype(np.float32)
    return np.clip(np.rint(y / np.float32(so)) + np.float32(zo), -128, 127).astype(np.int8)


def int8_matmul(a, b, rt: Runtime | str | None = None, *, zero_point_a: int = 0, scale_a=None,
                scale_b=None, bias=None, relu: bool = False, out_scale=None, out_zero_point: int = 0):
    """Integer matrix product of int8 ``a`` (M, K) and int8 ``b`` (K, N), int32 accumulation.

    Without scales it returns the exact int32 product ``A B`` (M, N). With ``scale_a`` and
    ``scale_b`` (scalar or (N,)) it applies the fused requantization epilogue::

        acc' = A B - za * colsum(B)                       (za = zero_point_a, int32)
        y    = float(acc') * (scale_a * scale_b[n]) + bias[n],   then ReLU if relu
        q    = clamp(rint(y / out_scale) + out_zero_point, -128, 127)   if out_scale is given

    returning float32 ``y`` or int8 ``q``. ``b`` may be an :class:`Int8Weights` from
    :func:`prepare_int8`. Flops: 2 M N K integer operations. Raises :class:`InputError` for
    non-integer inputs, shapes that do not chain, or K > 131,071 (int32 overflow).
    """
    rt = resolve_rt(rt)
    w = prepare_int8(b)
    a = _int8(a, "a", 2)
    if a.shape[1] != w.k:
        raise InputError("b", f"shapes {a.shape} (a) and {(w.k, w.n)} (b) do not chain")
    _check_k(w.k)
    m, n, k = a.shape[0], w.n, w.k
    ep = _epilogue_values(n, zero_point_a, scale_a, scale_b, bias, relu, out_scale, out_zero_point)
    if rt.kind == "numpy" or m == 0 or n == 0:
        acc = (a.astype(np.float64) @ w.host.astype(np.float64)).astype(np.int32) if k else \
            np.zeros((m, n), np.int32)
        return epilogue_reference(acc, w.colsum, ep)
    cfg = quant_config(rt)
    g = _geometry(cfg, m, n, k)
    return _launch(rt, cfg, g, _padded_a(rt, a, g).data, w, m, ep).get()


_OUT_DTYPE = {0: np.int32, 1: np.float32, 2: np.int8}
# CPU variants: (A-packing kernel, GEMM kernel, bytes per packed A element, k per packing
# work-item, default MR, columns per GEMM work-item from the macros).
_CPU_VARIANTS = {
    "pmadd": ("pack_a_pairs", "i8gemm_pmadd", 2, 2, 4, lambda p: 8 * p.get("NB", 3)),
    "packed": ("pack_a_i8", "i8gemm_packed", 4, 1, 8, lambda p: 16 * p.get("NV", 2)),
}


def _padded_a(rt: Runtime, a: np.ndarray, g: dict):
    """int8 A zero-padded to the kernel's (Mp, Kp), on the device."""
    ap = np.zeros((g["Mp"], g["Kp"]), np.int8)
    ap[:a.shape[0], :a.shape[1]] = a
    return rt.to_device(ap, "a")
_scratch: "weakref.WeakKeyDictionary[Runtime, dict]" = weakref.WeakKeyDictionary()


def scratch(rt: Runtime, name: str, nbytes: int):
    """A device buffer of at least ``nbytes`` kept per runtime (launches on one queue are
    ordered, so reuse between calls is safe)."""
    import pyopencl as cl

    bufs = _scratch.setdefault(rt, {})
    buf = bufs.get(name)
    if buf is None or buf.size < nbytes:
        rt.check_alloc(nbytes, name)
        buf = bufs[name] = cl.Buffer(rt.ctx, cl.mem_flags.READ_WRITE, max(nbytes, 4))
    return buf


def _launch(rt: Runtime, cfg: QuantConfig, g: dict, a_buf, w: Int8Weights, m: int, ep, wait_for=None,
            out=None, ep_device=None):
    """Enqueue the int8 GEMM on padded device A (Mp, Kp); returns the (M, N) device array
    ``out``. ``ep_device``: the epilogue's (scale_b, bias) already on the device."""
    mode, za, sa, sb, bias, relu, so, zo = ep
    n = w.n
    b_buf, cs_buf = w.device(rt)
    if out is None:
        out = rt.empty((m, n), _OUT_DTYPE[mode], "c")
    if ep_device is None:
        ep_device = (rt.to_device(sb, "scale_b").data, rt.to_device(bias, "bias").data)
    prog = quant_program(rt)
    tail = (np.int32(mode), np.int32(za), np.float32(sa), ep_device[0], cs_buf, ep_device[1],
            np.int32(relu), np.float32(so), np.int32(zo))
    if cfg.variant in _CPU_VARIANTS:
        pack_name, gemm_name, elem_bytes, k_per_item, mr_default, cols = _CPU_VARIANTS[cfg.variant]
        p = cfg.params
        mr, nc, lm = p.get("MR", mr_default), cols(p), p.get("LM", 4)
        with rt.launch_lock:  # the packed-A scratch is shared (see int8_linear)
            # Repack the padded int8 A for the micro-kernel: O(M K), next to the O(M N K) product.
            packed = scratch(rt, f"a_{cfg.variant}", elem_bytes * g["Mp"] * g["Kp"])
            pack = getattr(prog, pack_name)(
                (g["Kp"] // k_per_item, g["Mp"] // mr), None, a_buf, packed, np.int32(g["Mp"]),
                np.int32(g["Kp"]), np.int32(g["Kp"]), wait_for=wait_for)
            evt = getattr(prog, gemm_name)(
                (g["Np"] // nc, g["Mp"] // mr), (1, lm), packed, b_buf, out.data, np.int32(m),
                np.int32(n), np.int32(g["Kp"]), np.int32(n), *tail, wait_for=[pack])
            events = [pack, evt]
    else:
        p = cfg.params
        bm, bn, tm, tn = p.get("BM", 128), p.get("BN", 128), p.get("TM", 8), p.get("TN", 8)
        evt = prog.i8gemm_tiled((g["Np"] // tn, g["Mp"] // tm), (bn // tn, bm // tm), a_buf, b_buf,
                                out.data, np.int32(m), np.int32(n), np.int32(g["Kp"] // 4),
                                np.int32(n), *tail, wait_for=wait_for)
        events = [evt]
    out.add_event(evt)
    out.launch_events = events  # for timing: first start to last end
    return out


def int8_linear(x, act, w, scale_w, bias=None, rt: Runtime | str | None = None, relu: bool = False,
                _cache: dict | None = None) -> np.ndarray:
    """A quantized linear layer: ``y = dequant(quantize(x, act) @ W_q) + bias`` in integers.

    ``x`` (M, K) float32 is quantized per tensor with ``act`` (a
    :class:`~workbench.quant.QuantParams` for 8 bits, any zero point), multiplied with the
    prepared int8 weights ``w`` (K, N) (:func:`prepare_int8`) with int32 accumulation, and
    requantized to float32 by the fused epilogue with per-output-channel ``scale_w`` (N,).
    On OpenCL the activation quantization runs on the device too (``quantize_pad``), so the
    only float traffic is x in and y out. Same result as the NumPy reference, bit for bit.
    """
    from .params import quantize

    rt = resolve_rt(rt)
    w = prepare_int8(w)
    x = as_array(x, "x", ndim=2, finite=True)
    if x.shape[1] != w.k:
        raise InputError("x", f"expected {w.k} columns, got shape {x.shape}")
    if act.axis is not None or act.bits != 8:
        raise InputError("act", "activations need 8-bit per-tensor parameters")
    sb = np.broadcast_to(np.asarray(scale_w, np.float32), (w.n,))
    ep = _epilogue_values(w.n, int(act.zero_point), float(act.scale), sb, bias, relu, None, 0)
    m = x.shape[0]
    if rt.kind == "numpy" or m == 0:
        return epilogue_reference(int8_matmul(quantize(x, act, rt="numpy"), w, "numpy"), w.colsum, ep)
    cfg = quant_config(rt)
    g = _geometry(cfg, m, w.n, w.k)
    cache = {} if _cache is None else _cache
    key = ("ep", id(rt))
    if key not in cache:
        cache[key] = (rt.to_device(ep[3], "scale_w").data, rt.to_device(ep[4], "bias").data)
    dx = rt.to_device(x, "x")
    # The lock makes quantize -> (pack) -> GEMM on the shared scratch one uninterrupted sequence
    # on the in-order queue; reading the result back can happen outside it.
    with rt.launch_lock:
        qa = scratch(rt, "qa", g["Mp"] * g["Kp"])
        evt = quant_program(rt).quantize_pad(
            (g["Kp"], g["Mp"]), None, dx.data, qa, np.float32(act.scale), np.int32(act.zero_point),
            np.int32(act.qmin), np.int32(act.qmax), np.int32(m), np.int32(w.k), np.int32(g["Kp"]))
        out = _launch(rt, cfg, g, qa, w, m, ep, wait_for=[evt], ep_device=cache[key])
    return out.get()


class Int8Problem:
    """Device-resident operands of one int8 GEMM, for timing the kernel alone (benchmarks)."""

    def __init__(self, a, b, rt: Runtime):
        self.rt = rt
        self.w = prepare_int8(b)
        a = _int8(a, "a", 2)
        self.m = a.shape[0]
        self.cfg = quant_config(rt)
        self.g = _geometry(self.cfg, self.m, self.w.n, self.w.k)
        self.a = _padded_a(rt, a, self.g)
        self.ep = _epilogue_values(self.w.n, 0, None, None, None, False, None, 0)
        self.out = rt.empty((self.m, self.w.n), np.int32, "c")
        self.w.device(rt)

    def enqueue(self) -> list:
        out = _launch(self.rt, self.cfg, self.g, self.a.data, self.w, self.m, self.ep, out=self.out)
        return list(out.launch_events)


# -- int4 ------------------------------------------------------------------------------------------
class Int4Weights:
    """Packed int4 weights for ``int4_gemv``: ``packed`` (N, ceil(K/2)) uint8 rows (one per
    output channel, :func:`~workbench.quant.pack_int4` layout), ``scales`` (N,) float32."""

    def __init__(self, packed, scales, k: int | None = None):
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
        self.kq = max(-(-self.k // 32), 1)  # uint4 words (32 nibbles) per row
        self._device: dict[int, object] = {}

    @property
    def nbytes(self) -> int:
        """Packed weight bytes plus float32 scales."""
        return self.packed.nbytes + self.scales.nbytes

    def dequantized(self) -> np.ndarray:
        """(N, K) float32 weights ``q * scale``."""
        from .params import unpack_int4

        return unpack_int4(self.packed, self.k, rt="numpy").astype(np.float32) * self.scales[:, None]

    def device(self, rt: Runtime):
        hit = self._device.get(id(rt))
        if hit is None:
            rows = np.zeros((self.n, self.kq * 16), np.uint8)
            rows[:, :self.packed.shape[1]] = self.packed
            hit = self._device[id(rt)] = (rt.to_device(rows, "w_packed").data,
                                          rt.to_device(self.scales, "scales").data)
        return hit


def prepare_int4(w_packed, scales, k: int | None = None) -> Int4Weights:
    return w_packed if isinstance(w_packed, Int4Weights) else Int4Weights(w_packed, scales, k)


def int4_gemv(x, w_packed, scales=None, rt: Runtime | str | None = None, *, k: int | None = None,
              bias=None):
    """``y = x W^T * scales (+ bias)`` with int4 weights ``W`` (N, K) packed two per byte.

    Args:
        x: (K,) or (M, K) float32 activations.
        w_packed: (N, ceil(K/2)) uint8 from :func:`~workbench.quant.pack_int4` of the weight rows
            (one row per output channel), or an :class:`Int4Weights` (then ``scales`` is unused).
        scales: (N,) float32 per-output-channel scales. k: K when it is odd.
        bias: optional (N,).

    Returns (N,) or (M, N) float32. Bytes moved: N ceil(K/2) (weights) + 4 (M K + M N + N).
    """
    rt = resolve_rt(rt)
    w = prepare_int4(w_packed, scales, k)
    x = as_array(x, "x", finite=True)
    vector = x.ndim == 1
    x2 = x[None, :] if vector else x
    if x2.ndim != 2 or x2.shape[1] != w.k:
        raise InputError("x", f"expected (K,) or (M, K) with K = {w.k}, got shape {x.shape}")
    if bias is not None:
        bias = as_array(bias, "bias", ndim=1, finite=True)
        if bias.shape != (w.n,):
            raise InputError("bias", f"expected shape ({w.n},), got {bias.shape}")
    m = x2.shape[0]
    if rt.kind == "numpy" or m == 0 or w.n == 0:
        y = x2 @ w.dequantized().T
        if bias is not None:
            y = y + bias
    else:
        y = Int4Problem(x2, w, rt, bias).run().get()
    y = y.astype(np.float32)
    return y[0] if vector else y


def subnormal_prescale(x: np.ndarray, kq: int) -> tuple[np.ndarray, np.ndarray]:
    """x (M, K) padded to 32 ``kq`` columns and scaled for ``int4_gemv``'s subnormal unpack.

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


class Int4Problem:
    """Device-resident operands of one ``int4_gemv``: ``x`` (M, K) or already zero-padded to
    (M, 32 Kq), float32. The host pads x (and, for the ``UNPACK_DENORMAL`` configuration, scales
    it with :func:`subnormal_prescale`), so a launch is the one GEMV kernel."""

    def __init__(self, x: np.ndarray, w: Int4Weights, rt: Runtime, bias=None):
        import pyopencl.array as cla

        self.rt, self.w = rt, w
        self.m = x.shape[0]
        self.cfg = quant_config(rt)
        ldx = w.kq * 32
        if x.shape[1] not in (w.k, ldx):
            raise InputError("x", f"expected {w.k} or {ldx} columns, got shape {x.shape}")
        if self.cfg.params.get("UNPACK_DENORMAL") and not self.cfg.params.get("GEMV_ROWS"):
            xs, info = subnormal_prescale(x[:, :w.k], w.kq)
        else:
            xs = np.zeros((self.m, ldx), np.float32)
            xs[:, :x.shape[1]] = x
            info = np.zeros((self.m, 2), np.float32)
        self.x = rt.to_device(xs, "x")
        self.info = rt.to_device(info, "x row info")
        self.y = rt.empty((self.m, w.n), np.float32, "y")
        self.bias = cla.to_device(rt.queue, np.zeros(w.n, np.float32) if bias is None else bias)
        self.has_bias = bias is not None

    def enqueue(self) -> list:
        p = self.cfg.params
        wg, rows = p.get("WG", 128), p.get("ROWS", 4)
        wbuf, sbuf = self.w.device(self.rt)
        groups = -(-self.w.n // rows)
        args = (wbuf, sbuf, self.bias.data, self.x.data, self.info.data, self.y.data, np.int32(self.w.n),
                np.int32(self.w.kq), np.int32(self.w.kq * 32), np.int32(self.w.n), np.int32(self.has_bias))
        prog = quant_program(self.rt)
        if p.get("GEMV_ROWS", 0):  # CPU: a work-item per ROWS outputs, no reduction
            evt = prog.int4_gemv_rows((groups, self.m), None, *args)
        else:
            evt = prog.int4_gemv((wg * groups, self.m), (wg, 1), *args)
        self.y.add_event(evt)
        return [evt]

    def run(self):
        self.enqueue()
        return self.y
