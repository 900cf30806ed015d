"""Which format pays: measured latencies, a roofline cost model, the crossover sparsity.

For C = A B with A (M, K) at density d and B (K, N) dense, the cost model charges each format
its bytes over the device's measured bandwidth or its flops over its measured FP32 rate,
whichever is larger, plus a launch:

* dense:  t = max(2 M K N / F, 4 (M K + K N + M N) / W) + L
* CSR:    t = max(2 d M K N / (F e_csr), (8 d M K + 4 M + 4 K N c + 4 M N) / W) + L
* BSR:    t = max(2 d_b M K N / (F e_bsr), (4 d_b M K + 4 K N + 4 M N) / W) + L

with F, W, L from :func:`workbench.roofline.get_ceilings`, d_b the fraction of non-zero blocks,
c the times B is re-read from memory (1 when it fits the cache, else up to d M), and e the
fraction of the FP32 rate a sparse kernel reaches (irregular gathers: e_csr = 0.1 on GPUs and
0.25 on CPUs; e_bsr = 0.5). :func:`choose_format` then times the two cheapest candidates on
the device (a short micro-benchmark) and keeps the faster; the result says why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..runtime import Runtime, resolve_rt
from .formats import BlockSparseMatrix, CSRMatrix, default_block_shape

FORMAT_NAMES = ("dense", "csr", "bsr")


def format_latencies(w, n: int, *, rt: Runtime | str | None = None, formats=FORMAT_NAMES,
                     block_shape=None, repeat: int = 5, budget_s: float = 0.5, spread: bool = False) -> dict:
    """Median seconds of C = W B for B (K, n) random, with W dense (M, K) in each of ``formats``;
    with ``spread``, ``(median, min, max)`` over the repeats instead, so that a verdict can wait
    for the ranges to separate.

    OpenCL: device-event time of the kernels with operands resident (our SGEMM for dense,
    ``spmm_csr``, ``bsr_matmul``). NumPy: host time of NumPy's matmul and SciPy's CSR / BSR
    products.
    """
    from ..ops import sgemm_timing
    from .ops import SpmmProblem

    rt = resolve_rt(rt)
    w = np.ascontiguousarray(w, np.float32)
    if w.ndim != 2:
        raise InputError("w", f"expected a 2-D weight matrix, got shape {w.shape}")
    k = w.shape[1]
    b = np.random.default_rng(0).standard_normal((k, n)).astype(np.float32)
    bs = block_shape or default_block_shape(rt)
    out = {}
    for fmt in formats:
        if fmt not in FORMAT_NAMES:
            raise InputError("formats", f"unknown format {fmt!r}; known: {FORMAT_NAMES}")
        if fmt == "dense":
            out[fmt] = sgemm_timing(w, b, rt=rt, repeat=repeat, budget_s=budget_s)
            continue
        a = CSRMatrix.from_dense(w) if fmt == "csr" else BlockSparseMatrix.from_dense(w, bs)
        if rt.is_numpy:
            s = a.to_scipy()
            out[fmt] = rt.timeit(lambda: s @ b, warmup=1, repeat=repeat, budget_s=budget_s)
        else:
            with rt.measure_lock, rt.launch_lock:  # locks in this order everywhere
                out[fmt] = rt.timeit(SpmmProblem(a, b, rt).enqueue, warmup=1, repeat=repeat,
                                     budget_s=budget_s)
    if spread:
        return {f: (t.median, min(t.samples), max(t.samples)) for f, t in out.items()}
    return {f: t.median for f, t in out.items()}


@dataclass
class FormatChoice:
    """What :func:`choose_format` picked and why."""

    format: str
    reason: str
    predicted_s: dict[str, float]
    measured_s: dict[str, float] = field(default_factory=dict)
    density: float = 1.0
    block_density: float = 1.0

    def __str__(self) -> str:
        return f"{self.format}: {self.reason}"


def predict_latencies(m: int, k: int, n: int, density: float, block_density: float, rt) -> dict[str, float]:
    """The module docstring's cost model, in seconds per format."""
    from ..roofline import get_ceilings

    rt = resolve_rt(rt)
    c = get_ceilings(rt)
    f = max(c.fp32_gflops, 1e-3) * 1e9
    bw = max(c.bandwidth_gbs, 1e-3) * 1e9
    launch = max(c.launch_us, 0.0) * 1e-6
    gpu = rt.kind == "opencl-gpu"
    e_csr, e_bsr = (0.1 if gpu else 0.25), 0.5
    fits = 4 * k * n < 4 * 2**20  # B stays in cache between rows
    rereads = 1.0 if fits else max(1.0, min(density * m, 8.0))
    flops = 2.0 * m * k * n
    return {
        "dense": max(flops / f, 4.0 * (m * k + k * n + m * n) / bw) + launch,
        "csr": max(density * flops / (f * e_csr),
                   (8.0 * density * m * k + 4 * m + 4.0 * k * n * rereads + 4.0 * m * n) / bw) + launch,
        "bsr": max(block_density * flops / (f * e_bsr),
                   (4.0 * block_density * m * k + 4.0 * k * n + 4.0 * m * n) / bw) + launch,
    }


def choose_format(matrix, rt: Runtime | str | None = None, *, n: int = 1, block_shape=None,
                  measure: bool = True) -> FormatChoice:
    """Pick dense, CSR or block-sparse for multiplying ``matrix`` (dense (M, K) array or any of
    our sparse formats) by ``n`` dense columns on ``rt``; see the module docstring."""
    from .ops import SPARSE_TYPES

    rt = resolve_rt(rt)
    w = matrix.to_dense() if isinstance(matrix, SPARSE_TYPES) else np.asarray(matrix, np.float32)
    if w.ndim != 2 or w.size == 0:
        raise InputError("matrix", f"expected a non-empty 2-D matrix, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise InputError("matrix", "contains NaN or Inf")
    bs = block_shape or (matrix.block_shape if isinstance(matrix,
                                                          BlockSparseMatrix) else default_block_shape(rt))
    m, k = w.shape
    density = float(np.count_nonzero(w)) / w.size
    block_density = 1.0 - BlockSparseMatrix.from_dense(w, bs).block_sparsity
    pred = predict_latencies(m, k, n, density, block_density, rt)
    ranked = sorted(pred, key=pred.get)
    measured = {}
    if measure:
        measured = format_latencies(w, n, rt=rt, formats=tuple(ranked[:2]), block_shape=bs, repeat=5,
                                    budget_s=0.3)
        best = min(measured, key=measured.get)
        other = next(f for f in measured if f != best)
        reason = (f"measured {measured[best] * 1e6:,.1f} us against {other} {measured[other] * 1e6:,.1f} us "
                  f"(the model's two cheapest at density {density:.3f}, block density {block_density:.3f}; "
                  f"it predicted {pred[best] * 1e6:,.1f} and {pred[other] * 1e6:,.1f} us)")
    else:
        best = ranked[0]
        reason = (f"the cost model predicts {pred[best] * 1e6:,.1f} us against "
                  + ", ".join(f"{f} {pred[f] * 1e6:,.1f} us" for f in ranked[1:])
                  + f" at density {density:.3f}, block density {block_density:.3f}")
    return FormatChoice(best, reason, pred, measured, density, block_density)


def crossover_sweep(m: int, k: int, n: int, *, rt: Runtime | str | None = None,
                    sparsities=(0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98), block_shape=None,
                    structured_blocks: bool = True, seed: int = 0, repeat: int = 5) -> dict:
    """Measured latency of dense, CSR and block-sparse for C = A B (A (m, k), B (k, n)) at
    each sparsity, and the crossover sparsity of each sparse format (the lowest sparsity from
    which it beats dense, linearly interpolated between measured points; None if it never does).

    With ``structured_blocks`` the zeros come in whole blocks (what block pruning produces), so
    block sparsity equals sparsity; otherwise they are scattered (then BSR keeps most blocks).
    """
    rt = resolve_rt(rt)
    bs = block_shape or default_block_shape(rt)
    rng = np.random.default_rng(seed)
    from .prune import check_sparsity

    rows = []
    for s in sparsities:
        s = check_sparsity(s)
        w = rng.standard_normal((m, k)).astype(np.float32)
        if structured_blocks:
            mb, kb = -(-m // bs[0]), -(-k // bs[1])
            keep = rng.random((mb, kb)) >= s
            w *= np.kron(keep, np.ones(bs, bool))[:m, :k]
        else:
            w *= rng.random((m, k)) >= s
        t = format_latencies(w, n, rt=rt, block_shape=bs, repeat=repeat, budget_s=0.3, spread=True)
        row = {"sparsity": s}
        for fmt, (med, lo, hi) in t.items():
            row.update({fmt: med, f"{fmt}_lo": lo, f"{fmt}_hi": hi})
        rows.append(row)
    cross = {fmt: crossover_sparsity(rows, fmt) for fmt in ("csr", "bsr")}
    return {"shape": (m, k, n), "block_shape": bs, "points": rows, "crossover": cross}


def crossover_sparsity(points, fmt: str) -> float | None:
    """The lowest sparsity from which ``fmt`` is faster than dense.

    ``points``: dicts (or objects) with ``sparsity`` and seconds per format (keys ``"dense"`` and
    ``fmt``, or a ``latency_s`` dict as in :class:`~workbench.sparse.gradual.PruneStep`), in any
    order. Where the points carry their ranges (``<fmt>_lo`` / ``<fmt>_hi`` keys, or a
    ``latency_range_s`` dict of ``(lo, hi)``), a point counts as faster only when the ranges
    separate (``fmt``'s slowest repeat beats dense's fastest) and as slower only when they
    separate the other way; the crossover is then interpolated (on the median ratio) only
    between a separated slower point and a separated faster one. Between a tie and the first
    faster point it is that point's sparsity (the data say no more); None when no point is
    faster. Without ranges the median ratio t_fmt / t_dense is interpolated where it crosses 1.
    """
    rows = []
    for p in points:
        if isinstance(p, dict):
            s, t = p["sparsity"], p.get("latency_s", p)
            rng = p.get("latency_range_s") or {f: (p.get(f"{f}_lo"), p.get(f"{f}_hi")) for f in ("dense",
                                                                                                 fmt)}
        else:
            s, t = p.sparsity, p.latency_s
            rng = getattr(p, "latency_range_s", None) or {}
        if not (t.get("dense") and t.get(fmt) is not None):
            continue
        d_lo, d_hi = (rng.get("dense") or (None, None))
        f_lo, f_hi = (rng.get(fmt) or (None, None))
        if None in (d_lo, d_hi, f_lo, f_hi):
            verdict = "faster" if t[fmt] <= t["dense"] else "slower"  # medians only
        else:
            verdict = "faster" if f_hi < d_lo else "slower" if f_lo > d_hi else "tie"
        rows.append((float(s), t[fmt] / t["dense"], verdict))
    rows.sort()
    for i, (s, r, verdict) in enumerate(rows):
        if verdict == "faster":
            if i == 0:
                return s
            s0, r0, v0 = rows[i - 1]
            if v0 != "slower" or r0 <= r or r0 <= 1.0 or r > 1.0:
                return s  # a tie before it, or medians that do not bracket 1: no interpolation
            return s0 + (s - s0) * (r0 - 1.0) / (r0 - r)
    return None


class DynamicSparseActivations:
    """Runs ``y = x W`` for activations ``x`` (ReLU outputs, many zeros) on dense or sparse
    kernels, choosing per batch from the measured activation sparsity.

    The batch's zeros are counted on the host; when the sparsity reaches ``threshold_`` the
    product runs as CSR(x) times dense W (``spmm``), otherwise as a dense matmul. Times are host
    wall-clock of the whole call (the CSR conversion included: that is what the user pays).
    ``threshold_`` starts at the crossover that :meth:`calibrate` measures (or the given value);
    whenever the sparse path is slower than the last dense call, it rises above the current
    sparsity, so the layer falls back to dense. ``history_`` keeps (sparsity, path, seconds).
    """

    def __init__(self, weight, rt: Runtime | str | None = None, threshold: float | None = None):
        self.rt = resolve_rt(rt)
        self.weight = np.ascontiguousarray(weight, np.float32)
        if self.weight.ndim != 2:
            raise InputError("weight", f"expected (K, N), got shape {self.weight.shape}")
        self.threshold_ = 0.9 if threshold is None else float(threshold)
        self.history_: list[tuple[float, str, float]] = []
        self._dense_s: float | None = None

    def calibrate(self, x) -> "DynamicSparseActivations":
        """Find the crossover sparsity of this weight for batches shaped like ``x``."""
        x = np.asarray(x, np.float32)
        best = None
        for s in (0.5, 0.7, 0.8, 0.9, 0.95, 0.98):
            xs = x * (np.random.default_rng(0).random(x.shape) >= s)
            t_dense = self._time(lambda: self._dense(xs))
            t_sparse = self._time(lambda: self._sparse(xs))
            if t_sparse < t_dense:
                best = s
                break
        self.threshold_ = best if best is not None else 1.0  # 1.0: never sparse
        return self

    def _time(self, fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def _dense(self, x):
        from ..ops import matmul

        return matmul(x, self.weight, self.rt)

    def _sparse(self, x):
        from .ops import spmm

        return spmm(CSRMatrix.from_dense(x), self.weight, self.rt)

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if x.ndim != 2 or x.shape[1] != self.weight.shape[0]:
            raise InputError("x", f"expected (batch, {self.weight.shape[0]}), got shape {x.shape}")
        sparsity = 1.0 - np.count_nonzero(x) / max(1, x.size)
        path = "sparse" if sparsity >= self.threshold_ else "dense"
        t0 = time.perf_counter()
        y = self._sparse(x) if path == "sparse" else self._dense(x)
        dt = time.perf_counter() - t0
        if path == "dense":
            self._dense_s = dt
        elif self._dense_s is not None and dt > self._dense_s:
            self.threshold_ = min(1.0, max(self.threshold_, sparsity) + 0.01)  # did not pay: back off
        self.history_.append((sparsity, path, dt))
        return y
