"""``workbench bench --suite quant``: the integer kernels against our SGEMM and the reference.

* ``int8_matmul MxNxK``: device time of the int8 GEMM (int32 out; on CPUs the A-panel widening
  is included), GOP/s (2 M N K), % of the measured INT8 ceiling. ``x ref`` against the same-run
  reference: on an NVIDIA GPU ``torch._int_mm`` (cuBLASLt int8) timed with B row-major *and*
  column-major, the faster kept (both are in ``params``; the column-major one is the layout
  cuBLASLt's tensor-core kernels take); elsewhere the float32 product of the same shape on as
  many threads as ours. The ratio to our own SGEMM on the same shape is in ``params.vs_sgemm``.
* ``int4_gemv NxK``: one vector through packed int4 weights, two rows each:

  - ``device``: what a call runs on the device, x already there (on GPUs preparing x, i.e. the
    subnormal unpack's scaling and row sums, then the GEMV), against ``torch.mv`` (float32,
    4x the weight bytes) on resident tensors;
  - ``call``: the whole public ``int4_gemv(x, w)`` on the host clock (upload x, the device work,
    read y back) against the reference doing the same (torch: ``mv(w, x.cuda()).cpu()``).

  GB/s counts the packed weight bytes plus x, y and the scales; % of the measured copy bandwidth.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .. import references
from ..bench import BenchContext, BenchResult
from .config import quant_config
from .int4 import Int4Problem, Int4Weights, int4_gemv
from .int8 import Int8Problem, int8_matmul
from .params import pack_int4


def int8_sizes(kind: str, quick: bool) -> list[int]:
    if kind == "opencl-gpu":
        return [1024, 2048] if quick else [2048, 4096, 8192]
    return [256, 512] if quick else [512, 1024, 2048]


def gemv_sizes(kind: str, quick: bool) -> list[int]:
    if kind == "opencl-gpu":
        return [4096] if quick else [4096, 8192, 16384]
    return [1024] if quick else [2048, 4096]


def _sgemm_time(rt, n: int, repeat: int, budget: float) -> float:
    from ..ops import sgemm_timing

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    return sgemm_timing(a, a, rt=rt, repeat=repeat, budget_s=budget).median


def bench_int8(ctx: BenchContext) -> Iterator[BenchResult]:
    rt = ctx.rt
    rng = np.random.default_rng(0)
    repeat, budget = (3, 1.0) if ctx.quick else (10, 3.0)
    for n in int8_sizes(rt.kind, ctx.quick):
        a = rng.integers(-128, 128, (n, n)).astype(np.int8)
        b = rng.integers(-128, 128, (n, n)).astype(np.int8)
        ops = 2.0 * n ** 3
        if rt.is_numpy:
            t = rt.timeit(lambda: int8_matmul(a, b, rt=rt), repeat=repeat, budget_s=budget)
            c_rows = int8_matmul(a[:8], b, rt=rt)
            note, sgemm_ratio = "numpy backend (float64 BLAS, exact)", None
        else:
            prob = Int8Problem(a, b, rt)
            t = rt.timeit(prob.enqueue, warmup=1, repeat=repeat, budget_s=budget)
            c_rows = prob.out.get()[:8]
            sg = _sgemm_time(rt, n, repeat, budget)
            sgemm_ratio = sg / t.median
            note = (f"{quant_config(rt).describe()}; {sgemm_ratio:.2f}x our SGEMM "
                    f"({ops / sg / 1e9:,.0f} GFLOP/s)")
        exact = np.array_equal(c_rows, a[:8].astype(np.int64) @ b.astype(np.int64))
        ref_t, ref_c, ref_name, layouts = references.int8_matmul(ctx.reference, a, b, repeat=repeat,
                                                                 budget_s=budget, threads=ctx.threads)
        if ref_c is not None and rt.is_opencl:
            exact = exact and np.array_equal(prob.out.get(), ref_c)
        # The CPU paths multiply on FP32 FMA lanes or with vpmaddwd, which the roofline's INT8
        # microbenchmark (uchar multiply-adds) does not use: compare with the higher ceiling.
        cname = "int8" if (ctx.ceilings.int8_gops or 0) >= (ctx.ceilings.fp32_gflops or 0) else "fp32"
        params = {"m": n, "n": n, "k": n, "vs_sgemm": sgemm_ratio,
                  "reference_layouts_gops": {k: ops / v.median / 1e9 for k, v in layouts.items()}}
        yield ctx.result(
            "quant", f"int8_matmul {n}x{n}x{n}", t, ref=ref_t, reference=ref_name, flops=ops,
            nbytes=2.0 * n * n + 4.0 * n * n, ceiling=cname, params=params, rel_error=0.0 if exact else 1.0,
            note=f"{note}; reference {ref_name} {ops / ref_t.median / 1e9:,.0f} GOP/s; "
                 f"{'exact' if exact else 'NOT EXACT'}",
        )


def bench_int4(ctx: BenchContext) -> Iterator[BenchResult]:
    rt = ctx.rt
    rng = np.random.default_rng(0)
    repeat, budget = (5, 1.0) if ctx.quick else (20, 3.0)
    for n in gemv_sizes(rt.kind, ctx.quick):
        k = n
        q = rng.integers(-8, 8, (n, k)).astype(np.int8)
        scales = rng.uniform(0.01, 0.02, n).astype(np.float32)
        x = rng.standard_normal(k).astype(np.float32)
        w = Int4Weights(pack_int4(q), scales, k=k)
        nbytes = w.packed.nbytes + 4.0 * (k + 2 * n)
        wf = w.dequantized()
        params = {"n": n, "k": k, "packed_bytes": w.packed.nbytes}
        how = "numpy backend" if rt.is_numpy else quant_config(rt).describe()
        call = rt.host_timeit(lambda: int4_gemv(x, w, rt=rt), warmup=2, repeat=repeat, budget_s=budget)
        y = int4_gemv(x, w, rt=rt)
        ref_t, ref_y = references.gemv(ctx.reference, wf, x, repeat=repeat, budget_s=budget,
                                       threads=ctx.threads)
        err = float(np.linalg.norm(y - ref_y) / np.linalg.norm(ref_y))
        ref_name = f"float32 GEMV ({references.describe(ctx.reference)})"
        if rt.is_opencl:
            prob = Int4Problem(x[None, :], w, rt)
            t = rt.timeit(prob.enqueue, warmup=2, repeat=repeat, budget_s=budget)
            yield ctx.result(
                "quant", f"int4_gemv {n}x{k}", t, ref=ref_t, reference=ref_name, flops=2.0 * n * k,
                nbytes=nbytes, ceiling="bandwidth", params=params, rel_error=err, scope="device",
                note=f"{how}; x on the device, prepared there; reference float32 GEMV "
                     f"({4 * n * k / ref_t.median / 1e9:,.0f} GB/s of weights)")
        ref_call = ref_t
        if ctx.reference == "torch-cuda":
            ref_call, _ = references.gemv(ctx.reference, wf, x, repeat=repeat, budget_s=budget,
                                          end_to_end=True)
        yield ctx.result(
            "quant", f"int4_gemv {n}x{k} call", call, ref=ref_call, reference=ref_name, flops=2.0 * n * k,
            nbytes=nbytes, ceiling="bandwidth", params=params, rel_error=err, scope="call",
            note=f"{how}; the whole public call: x from the host, y back to it")


def int8_matmul_profile(m: int, n: int, k: int, rt, *, repeat: int = 5):
    """:class:`~workbench.roofline.OpProfile` of one int8 GEMM on ``rt`` (device time, int8
    operands and int32 result as its bytes), for placing on the roofline."""
    from ..roofline import OpProfile
    from ..runtime import resolve_rt

    rt = resolve_rt(rt)
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    if rt.is_numpy:
        t = rt.timeit(lambda: int8_matmul(a, b, rt=rt), repeat=repeat, budget_s=1.0)
    else:
        t = rt.timeit(Int8Problem(a, b, rt).enqueue, warmup=1, repeat=repeat, budget_s=1.0)
    return OpProfile(f"int8_matmul {m}x{n}x{k}", 2.0 * m * n * k, float(m * k + k * n + 4 * m * n), t.median)


def int4_gemv_profile(n: int, k: int, rt, *, repeat: int = 10):
    """:class:`~workbench.roofline.OpProfile` of one ``int4_gemv`` (packed bytes counted; the
    device work of a call, x already on the device)."""
    from ..roofline import OpProfile
    from ..runtime import resolve_rt

    rt = resolve_rt(rt)
    rng = np.random.default_rng(0)
    w = Int4Weights(pack_int4(rng.integers(-8, 8, (n, k)).astype(np.int8)), np.ones(n, np.float32), k=k)
    x = rng.standard_normal(k).astype(np.float32)
    if rt.is_numpy:
        t = rt.timeit(lambda: int4_gemv(x, w, rt=rt), repeat=repeat, budget_s=1.0)
    else:
        t = rt.timeit(Int4Problem(x[None, :], w, rt).enqueue, warmup=2, repeat=repeat, budget_s=1.0)
    return OpProfile(f"int4_gemv {n}x{k}", 2.0 * n * k, w.packed.nbytes + 4.0 * (k + 2 * n), t.median)
