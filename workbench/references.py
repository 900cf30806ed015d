"""Reference implementations that benchmarks compare against in the same run.

On an OpenCL GPU with a CUDA build of torch beside it (NVIDIA, as on an H100 machine) the reference
is torch on that same GPU: cuBLAS with TF32 *off* (``torch.backends.cuda.matmul.allow_tf32 =
False``, float32 precision "highest"), timed with CUDA events. Everywhere else it is NumPy on the
host (OpenBLAS for matrix products), timed with the host clock.

Each reference returns ``(Timing, result as a NumPy array or None)`` so that a benchmark can also
check its own answer against the reference's.

**Threads.** A ratio on a CPU is only fair at equal thread counts: PoCL runs a kernel on every
core, SciPy's sparse product and ``np.copyto`` on one. Host references take ``threads`` and run
on that many: BLAS through ``threadpoolctl``'s limit, SciPy's CSR product split by rows into
``threads`` blocks of equal non-zeros run in a thread pool (SciPy releases the GIL in its sparse
kernels), copies split into ``threads`` slices likewise. :func:`host_threads` says what a host
reference used.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from .runtime import Runtime, Timing
from .runtime.base import host_timeit, repeat_timing


@lru_cache(maxsize=1)
def _torch_cuda():
    """torch when it has a usable CUDA device, else None (imported lazily: it is large)."""
    try:
        import torch
    except Exception:
        return None
    try:
        if not torch.cuda.is_available():
            return None
    except Exception:
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    return torch


def backend_for(rt: Runtime) -> str:
    """``"torch-cuda"`` for an NVIDIA OpenCL GPU with CUDA torch present, else ``"numpy"``."""
    if rt.kind == "opencl-gpu" and "nvidia" in rt.info.vendor.lower() and _torch_cuda() is not None:
        return "torch-cuda"
    return "numpy"


def describe(backend: str) -> str:
    if backend == "torch-cuda":
        torch = _torch_cuda()
        return f"torch {torch.__version__} on {torch.cuda.get_device_name()} (cuBLAS, TF32 off)"
    import numpy

    blas = ""
    try:
        cfg = numpy.show_config(mode="dicts")
        blas = " / " + cfg["Build Dependencies"]["blas"]["name"]
    except Exception:
        pass
    return f"NumPy {numpy.__version__}{blas} on the host"


@lru_cache(maxsize=None)
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"reference-{threads}")


def host_threads(threads: int | None) -> int:
    """The thread count a host reference runs with: ``threads``, or every core when None."""
    return int(threads) if threads else (os.cpu_count() or 1)


@contextmanager
def blas_threads(threads: int | None):
    """Limit the BLAS behind NumPy to ``threads`` (None: leave it, which is every core)."""
    if not threads:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(threads), user_api="blas"):
        yield


def _split_rows(csr, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous row ranges of about equal non-zeros."""
    m = csr.shape[0]
    cuts = np.searchsorted(csr.indptr, np.linspace(0, csr.nnz, parts + 1)[1:-1])
    edges = [0, *np.clip(cuts, 0, m).tolist(), m]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def threaded_spmv(csr, threads: int):
    """``y = csr @ x`` as SciPy computes it, split by rows over ``threads`` threads; returns a
    callable ``f(x) -> y``."""
    if threads <= 1:
        return lambda x: csr @ x
    blocks = [(a, b, csr[a:b]) for a, b in _split_rows(csr, threads)]
    pool = _pool(threads)

    def run(x):
        y = np.empty(csr.shape[0], np.result_type(csr.dtype, x.dtype))

        def part(block):
            a, b, sub = block
            y[a:b] = sub @ x

        list(pool.map(part, blocks))
        return y

    return run


def threaded_copy(dst: np.ndarray, src: np.ndarray, threads: int):
    """``np.copyto(dst, src)`` split into ``threads`` slices run at once; returns a callable."""
    if threads <= 1:
        return lambda: np.copyto(dst, src)
    edges = np.linspace(0, src.size, threads + 1).astype(np.int64)
    pairs = [(dst[a:b], src[a:b]) for a, b in zip(edges[:-1], edges[1:])]
    pool = _pool(threads)
    return lambda: list(pool.map(lambda p: np.copyto(*p), pairs))


def _torch_timeit(fn, warmup: int = 3, repeat: int = 20, budget_s: float = 2.0) -> Timing:
    torch = _torch_cuda()
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def once() -> float:
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e-3

    return repeat_timing(once, 0, repeat=repeat, budget_s=budget_s, source="cuda-events")


def matmul(backend: str, a: np.ndarray, b: np.ndarray, *, repeat: int = 10, budget_s: float = 2.0,
           threads: int | None = None):
    """Time C = A B (float32) on the reference backend (host: BLAS on ``threads`` threads);
    returns (Timing, C)."""
    if backend == "torch-cuda":
        torch = _torch_cuda()
        ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
        t = _torch_timeit(lambda: torch.matmul(ta, tb), repeat=repeat, budget_s=budget_s)
        return t, torch.matmul(ta, tb).cpu().numpy()
    with blas_threads(threads):
        t = host_timeit(lambda: a @ b, repeat=repeat, budget_s=budget_s)
        return t, a @ b


def copy(backend: str, nbytes: int, *, repeat: int = 10, budget_s: float = 2.0,
         threads: int | None = None) -> Timing:
    """Time a device-to-device (torch) or host copy of ``nbytes`` (``np.copyto`` split over
    ``threads`` threads)."""
    n = nbytes // 4
    if backend == "torch-cuda":
        torch = _torch_cuda()
        src = torch.rand(n, device="cuda") + 1.0
        dst = torch.empty_like(src)
        return _torch_timeit(lambda: dst.copy_(src), repeat=repeat, budget_s=budget_s)
    src = np.random.default_rng(0).random(n, dtype=np.float32) + 1.0
    dst = np.empty_like(src)
    return host_timeit(threaded_copy(dst, src, host_threads(threads)), repeat=repeat, budget_s=budget_s)



def int8_matmul(backend: str, a: np.ndarray, b: np.ndarray, *, repeat: int = 10, budget_s: float = 2.0,
                threads: int | None = None):
    """Time the integer product of int8 ``a`` (M, K) and ``b`` (K, N); returns
    (Timing, int32 result or None, description, {layout: Timing}).

    torch-cuda: ``torch._int_mm`` (cuBLASLt int8 GEMM, int32 out) when this torch has it and the
    shape suits it (M > 16, K and N multiples of 8). It is timed with B in both layouts, as a
    row-major (K, N) tensor and as the transpose view of a row-major (N, K) one (column-major,
    the layout cuBLASLt's int8 tensor-core kernels take directly: 6-7x faster on an H200), and
    the faster is the reference; both timings are returned. Otherwise, and on the host, the
    float32 product of the same shape (cuBLAS / OpenBLAS SGEMM) stands in, with no result.
    """
    if backend == "torch-cuda":
        torch = _torch_cuda()
        ta = torch.from_numpy(a).cuda()
        layouts = {"B row-major": torch.from_numpy(b).cuda(),
                   "B column-major": torch.from_numpy(np.ascontiguousarray(b.T)).cuda().t()}
        mm = getattr(torch, "_int_mm", None)
        if mm is not None and a.shape[0] > 16 and a.shape[1] % 8 == 0 and b.shape[1] % 8 == 0:
            try:
                timed = {}
                out = None
                for name, tb in layouts.items():
                    res = mm(ta, tb)
                    out = res if out is None else out
                    if not torch.equal(res, out):
                        raise RuntimeError("the two layouts disagree")
                    timed[name] = _torch_timeit(lambda tb=tb: mm(ta, tb), repeat=repeat, budget_s=budget_s)
                best = min(timed, key=lambda k: timed[k].median)
                return timed[best], out.cpu().numpy(), f"torch._int_mm (cuBLASLt int8, {best})", timed
            except RuntimeError:
                pass
        fa, fb = ta.float(), layouts["B row-major"].float()
        t = _torch_timeit(lambda: torch.matmul(fa, fb), repeat=repeat, budget_s=budget_s)
        return t, None, "torch.matmul float32 (cuBLAS, TF32 off)", {}
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    with blas_threads(threads):
        t = host_timeit(lambda: fa @ fb, repeat=repeat, budget_s=budget_s)
    return t, None, "NumPy float32 matmul (no int8 GEMM in NumPy)", {}


def gemv(backend: str, w: np.ndarray, x: np.ndarray, *, repeat: int = 10, budget_s: float = 2.0,
         threads: int | None = None, end_to_end: bool = False):
    """Time ``w @ x`` for float32 ``w`` (N, K), ``x`` (K,); returns (Timing, result).

    ``end_to_end`` (torch): x starts on the host and y ends there, as in a call of our public
    ``int4_gemv``: upload, product, read-back, on the host clock; otherwise CUDA events around
    the product of resident tensors."""
    if backend == "torch-cuda":
        torch = _torch_cuda()
        tw, tx = torch.from_numpy(w).cuda(), torch.from_numpy(x).cuda()
        if end_to_end:
            xh = torch.from_numpy(x)
            t = host_timeit(lambda: torch.mv(tw, xh.cuda()).cpu(), repeat=repeat, budget_s=budget_s,
                            sync=torch.cuda.synchronize)
        else:
            t = _torch_timeit(lambda: torch.mv(tw, tx), repeat=repeat, budget_s=budget_s)
        return t, torch.mv(tw, tx).cpu().numpy()
    with blas_threads(threads):
        t = host_timeit(lambda: w @ x, repeat=repeat, budget_s=budget_s)
    return t, w @ x


def spmv(backend: str, csr, x: np.ndarray, *, repeat: int = 10, budget_s: float = 2.0,
         index_dtype=np.int64, threads: int | None = None):
    """Time ``A x`` for a SciPy CSR matrix ``csr`` (float32) and ``x`` (K,): SciPy on the host
    (split by rows over ``threads`` threads, see the module docstring), or
    ``torch.sparse_csr_tensor`` @ vector (cuSPARSE) on the GPU, with ``index_dtype`` indices
    (int64 is what torch builds by default, e.g. ``to_sparse_csr()``; cuSPARSE also takes
    int32, which moves 4 bytes less per non-zero); returns (Timing, result)."""
    if backend == "torch-cuda":
        torch = _torch_cuda()
        a = torch.sparse_csr_tensor(torch.from_numpy(csr.indptr.astype(index_dtype)),
                                    torch.from_numpy(csr.indices.astype(index_dtype)),
                                    torch.from_numpy(csr.data), size=csr.shape).cuda()
        tx = torch.from_numpy(x).cuda()
        t = _torch_timeit(lambda: torch.mv(a, tx), repeat=repeat, budget_s=budget_s)
        return t, torch.mv(a, tx).cpu().numpy()
    product = threaded_spmv(csr, host_threads(threads))
    t = host_timeit(lambda: product(x), repeat=repeat, budget_s=budget_s)
    return t, product(x)


def vendor_ceilings(backend: str, quick: bool = False) -> dict:
    """Roofs the vendor's own libraries reach on this device, measured now: on torch-cuda the
    FP32 rate of cuBLAS (TF32 off) and the INT8 tensor-core rate of cuBLASLt (``torch._int_mm``
    with B column-major), on large square products; nothing on the host backend. Returns
    ``{label: {"value", "unit", "field", "size"}}`` for ``Ceilings.vendor``."""
    if backend != "torch-cuda":
        return {}
    torch = _torch_cuda()
    n = 4096 if quick else 8192
    rng = np.random.default_rng(0)
    out = {}
    a = torch.from_numpy(rng.random((n, n), dtype=np.float32)).cuda()
    t = _torch_timeit(lambda: torch.matmul(a, a), repeat=5 if quick else 10, budget_s=2.0)
    out["FP32 (cuBLAS, TF32 off)"] = {"value": 2.0 * n ** 3 / t.median / 1e9, "unit": "GFLOP/s",
                                      "field": "fp32_gflops", "size": f"{n}^3"}
    mm = getattr(torch, "_int_mm", None)
    if mm is not None:
        q = rng.integers(-128, 128, (n, n)).astype(np.int8)
        qa = torch.from_numpy(q).cuda()
        qb = torch.from_numpy(np.ascontiguousarray(q.T)).cuda().t()  # column-major: the tensor-core path
        t = _torch_timeit(lambda: mm(qa, qb), repeat=5 if quick else 10, budget_s=2.0)
        out["INT8 tensor cores (cuBLASLt)"] = {"value": 2.0 * n ** 3 / t.median / 1e9, "unit": "GOP/s",
                                              "field": "int8_gops", "size": f"{n}^3"}
    return out
