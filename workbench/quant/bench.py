"""``workbench bench --suite quant``: the integer kernels against our SGEMM and the reference.

* ``int8_matmul MxNxK``: device time of the int8 GEMM (int32 out; on CPUs the A-panel widening
  is included), GOP/s (2 M N K), % of the measured INT8 ceiling; ``x ref`` against the same-run
  reference (``torch._int_mm`` on an NVIDIA GPU, else the float32 product of the same shape),
  and in the note the ratio to our own SGEMM on the same shape (the issue's target metric).
* ``int4_gemv NxK``: one vector through packed int4 weights; GB/s counts the packed weight bytes
  plus x, y and the scales; % of the measured copy bandwidth; ``x ref`` against a float32 GEMV
  (4x the weight bytes) on the reference.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .. import references
from ..bench import BenchContext, BenchResult, register
from .kernels import Int4Problem, Int4Weights, Int8Problem, int8_matmul, quant_config
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
    return sgemm_timing(a, a, rt, repeat=repeat, budget_s=budget).median


@register("quant", "int8_matmul")
def bench_int8(ctx: BenchContext) -> Iterator[BenchResult]:
    rt = ctx.rt
    rng = np.random.default_rng(0)
    repeat, budget = (3, 1.0) if ctx.quick else (10, 3.0)
    for n in int8_sizes(rt.kind, ctx.quick):
        a = rng.integers(-128, 128, (n, n)).astype(np.int8)
        b = rng.integers(-128, 128, (n, n)).astype(np.int8)
        ops = 2.0 * n ** 3
        if rt.kind == "numpy":
            t = rt.timeit(lambda: int8_matmul(a, b, rt), repeat=repeat, budget_s=budget)
            c_rows = int8_matmul(a[:8], b, rt)
            note, sgemm_ratio = "numpy backend (float64 BLAS, exact)", None
        else:
            prob = Int8Problem(a, b, rt)
            t = rt.timeit(prob.enqueue, warmup=1, repeat=repeat, budget_s=budget)
            c_rows = prob.out.get()[:8]
            sg = _sgemm_time(rt, n, repeat, budget)
            sgemm_ratio = sg / t.median
            note = f"{quant_config(rt).describe()}; {sgemm_ratio:.2f}x our SGEMM ({ops / sg / 1e9:,.0f} GFLOP/s)"
        exact = np.array_equal(c_rows, a[:8].astype(np.int64) @ b.astype(np.int64))
        ref_t, ref_c, ref_name = references.int8_matmul(ctx.reference, a, b, repeat, budget)
        if ref_c is not None and rt.kind != "numpy":
            exact = exact and np.array_equal(prob.out.get(), ref_c)
        # The CPU paths multiply on FP32 FMA lanes or with vpmaddwd, which the roofline's INT8
        # microbenchmark (uchar multiply-adds) does not use: compare with the higher ceiling, and
        # leave the percentage out when the kernel beats both measured ceilings.
        ceiling, cname = max((ctx.ceilings.int8_gops or 0, "int8"), (ctx.ceilings.fp32_gflops or 0, "fp32"))
        if ceiling and ops / t.median / 1e9 > ceiling:
            ceiling = None
        yield BenchResult(
            "quant", f"int8_matmul {n}x{n}x{n}", {"m": n, "n": n, "k": n, "vs_sgemm": sgemm_ratio},
            median_s=t.median, spread=t.spread, gflops=ops / t.median / 1e9,
            gbs=3.0 * n * n / t.median / 1e9 + 4.0 * n * n / t.median / 1e9,
            pct_of_ceiling=100 * ops / t.median / 1e9 / ceiling if ceiling else None, ceiling=cname,
            reference_s=ref_t.median, ratio=ref_t.median / t.median, rel_error=0.0 if exact else 1.0,
            note=f"{note}; reference {ref_name} {ops / ref_t.median / 1e9:,.0f} GOP/s; "
                 f"{'exact' if exact else 'NOT EXACT'}",
        )


@register("quant", "int4_gemv")
def bench_int4(ctx: BenchContext) -> Iterator[BenchResult]:
    rt = ctx.rt
    rng = np.random.default_rng(0)
    repeat, budget = (5, 1.0) if ctx.quick else (20, 3.0)
    for n in gemv_sizes(rt.kind, ctx.quick):
        k = n
        q = rng.integers(-8, 8, (n, k)).astype(np.int8)
        scales = rng.uniform(0.01, 0.02, n).astype(np.float32)
        x = rng.standard_normal(k).astype(np.float32)
        w = Int4Weights(pack_int4(q), scales, k)
        nbytes = w.packed.nbytes + 4.0 * (k + 2 * n)
        if rt.kind == "numpy":
            from .kernels import int4_gemv

            t = rt.timeit(lambda: int4_gemv(x, w, rt=rt), repeat=repeat, budget_s=budget)
            y = int4_gemv(x, w, rt=rt)
        else:
            prob = Int4Problem(x[None, :], w, rt)
            t = rt.timeit(prob.enqueue, warmup=2, repeat=repeat, budget_s=budget)
            y = prob.y.get()[0]
        wf = w.dequantized()
        ref_t, ref_y = references.gemv(ctx.reference, wf, x, repeat, budget)
        err = float(np.linalg.norm(y - ref_y) / np.linalg.norm(ref_y))
        gbs = nbytes / t.median / 1e9
        yield BenchResult(
            "quant", f"int4_gemv {n}x{k}", {"n": n, "k": k, "packed_bytes": w.packed.nbytes},
            median_s=t.median, spread=t.spread, gflops=2.0 * n * k / t.median / 1e9, gbs=gbs,
            pct_of_ceiling=100 * gbs / ctx.ceilings.bandwidth_gbs, ceiling="bandwidth",
            reference_s=ref_t.median, ratio=ref_t.median / t.median, rel_error=err,
            note=(f"{'' if rt.kind == 'numpy' else quant_config(rt).describe() + '; x padded (and scaled) on the host, as for the reference, not timed; '}"
                  f"reference float32 GEMV ({4 * n * k / ref_t.median / 1e9:,.0f} GB/s of weights)"),
        )


def int8_matmul_profile(m: int, n: int, k: int, rt, repeat: int = 5):
    """:class:`~workbench.roofline.OpProfile` of one int8 GEMM on ``rt`` (device time, int8
    operands and int32 result as its bytes), for placing on the roofline."""
    from ..roofline import OpProfile
    from ..runtime import resolve_rt

    rt = resolve_rt(rt)
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    if rt.kind == "numpy":
        t = rt.timeit(lambda: int8_matmul(a, b, rt), repeat=repeat, budget_s=1.0)
    else:
        t = rt.timeit(Int8Problem(a, b, rt).enqueue, warmup=1, repeat=repeat, budget_s=1.0)
    return OpProfile(f"int8_matmul {m}x{n}x{k}", 2.0 * m * n * k, float(m * k + k * n + 4 * m * n), t.median)


def int4_gemv_profile(n: int, k: int, rt, repeat: int = 10):
    """:class:`~workbench.roofline.OpProfile` of one ``int4_gemv`` (packed bytes counted)."""
    from ..roofline import OpProfile
    from ..runtime import resolve_rt
    from .kernels import int4_gemv

    rt = resolve_rt(rt)
    rng = np.random.default_rng(0)
    w = Int4Weights(pack_int4(rng.integers(-8, 8, (n, k)).astype(np.int8)), np.ones(n, np.float32), k)
    x = rng.standard_normal(k).astype(np.float32)
    if rt.kind == "numpy":
        t = rt.timeit(lambda: int4_gemv(x, w, rt=rt), repeat=repeat, budget_s=1.0)
    else:
        t = rt.timeit(Int4Problem(x[None, :], w, rt).enqueue, warmup=2, repeat=repeat, budget_s=1.0)
    return OpProfile(f"int4_gemv {n}x{k}", 2.0 * n * k, w.packed.nbytes + 4.0 * (k + 2 * n), t.median)
