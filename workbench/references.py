"""Reference implementations that benchmarks compare against in the same run.

On an OpenCL GPU with a CUDA build of torch beside it (NVIDIA, as on an H100 machine) the reference
is torch on that same GPU: cuBLAS with TF32 *off* (``torch.backends.cuda.matmul.allow_tf32 =
False``, float32 precision "highest"), timed with CUDA events. Everywhere else it is NumPy on the
host (OpenBLAS for matrix products), timed with the host clock.

Each reference returns ``(Timing, result as a NumPy array or None)`` so that a benchmark can also
check its own answer against the reference's.
"""

from __future__ import annotations

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

    return repeat_timing(once, 0, repeat, budget_s, "cuda-events")


def matmul(backend: str, a: np.ndarray, b: np.ndarray, repeat: int = 10, budget_s: float = 2.0):
    """Time C = A B (float32) on the reference backend; returns (Timing, C)."""
    if backend == "torch-cuda":
        torch = _torch_cuda()
        ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
        t = _torch_timeit(lambda: torch.matmul(ta, tb), repeat=repeat, budget_s=budget_s)
        return t, torch.matmul(ta, tb).cpu().numpy()
    t = host_timeit(lambda: a @ b, repeat=repeat, budget_s=budget_s)
    return t, a @ b


def copy(backend: str, nbytes: int, repeat: int = 10, budget_s: float = 2.0) -> Timing:
    """Time a device-to-device (torch) or host (NumPy ``copyto``) copy of ``nbytes``."""
    n = nbytes // 4
    if backend == "torch-cuda":
        torch = _torch_cuda()
        src = torch.rand(n, device="cuda") + 1.0
        dst = torch.empty_like(src)
        return _torch_timeit(lambda: dst.copy_(src), repeat=repeat, budget_s=budget_s)
    src = np.random.default_rng(0).random(n, dtype=np.float32) + 1.0
    dst = np.empty_like(src)
    return host_timeit(lambda: np.copyto(dst, src), repeat=repeat, budget_s=budget_s)



def int8_matmul(backend: str, a: np.ndarray, b: np.ndarray, repeat: int = 10, budget_s: float = 2.0):
    """Time the integer product of int8 ``a`` (M, K) and ``b`` (K, N); returns
    (Timing, int32 result or None, description).

    torch-cuda: ``torch._int_mm`` (cuBLASLt int8 GEMM, int32 out) when this torch has it and the
    shape suits it (M > 16, K and N multiples of 8); otherwise, and on the host, the float32
    product of the same shape (cuBLAS / OpenBLAS SGEMM) stands in, with no result returned.
    """
    if backend == "torch-cuda":
        torch = _torch_cuda()
        ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
        mm = getattr(torch, "_int_mm", None)
        if mm is not None and a.shape[0] > 16 and a.shape[1] % 8 == 0 and b.shape[1] % 8 == 0:
            try:
                out = mm(ta, tb)
                t = _torch_timeit(lambda: mm(ta, tb), repeat=repeat, budget_s=budget_s)
                return t, out.cpu().numpy(), "torch._int_mm (cuBLASLt int8)"
            except RuntimeError:
                pass
        fa, fb = ta.float(), tb.float()
        t = _torch_timeit(lambda: torch.matmul(fa, fb), repeat=repeat, budget_s=budget_s)
        return t, None, "torch.matmul float32 (cuBLAS, TF32 off)"
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    t = host_timeit(lambda: fa @ fb, repeat=repeat, budget_s=budget_s)
    return t, None, "NumPy float32 matmul (no int8 GEMM in NumPy)"


def gemv(backend: str, w: np.ndarray, x: np.ndarray, repeat: int = 10, budget_s: float = 2.0):
    """Time ``w @ x`` for float32 ``w`` (N, K), ``x`` (K,); returns (Timing, result)."""
    if backend == "torch-cuda":
        torch = _torch_cuda()
        tw, tx = torch.from_numpy(w).cuda(), torch.from_numpy(x).cuda()
        t = _torch_timeit(lambda: torch.mv(tw, tx), repeat=repeat, budget_s=budget_s)
        return t, torch.mv(tw, tx).cpu().numpy()
    t = host_timeit(lambda: w @ x, repeat=repeat, budget_s=budget_s)
    return t, w @ x


def spmv(backend: str, csr, x: np.ndarray, repeat: int = 10, budget_s: float = 2.0,
         index_dtype=np.int64):
    """Time ``A x`` for a SciPy CSR matrix ``csr`` (float32) and ``x`` (K,): SciPy on the host,
    or ``torch.sparse_csr_tensor`` @ vector (cuSPARSE) on the GPU, with ``index_dtype`` indices
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
    t = host_timeit(lambda: csr @ x, repeat=repeat, budget_s=budget_s)
    return t, csr @ x
