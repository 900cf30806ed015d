"""``workbench bench --suite sparse``.

* ``spmv <family> <rows>``: y = A x for a random (uniform columns) and a power-law (Zipf row
  lengths, a few rows of 10^4+) matrix with 32 non-zeros per row on average: about 2M rows on a
  GPU, 200k on a CPU (``quick``: 200k / 50k). Reference in the same run: SciPy's CSR product on
  a CPU, split by rows over as many threads as ours (SciPy alone uses one), ``torch`` CSR
  (cuSPARSE) on a CUDA machine, built as torch builds it by default (int64 indices), and
  cuSPARSE with int32 indices (the faster of the two is the reference; both are in ``params``).
  GB/s counts A's bytes as stored (4 nnz
  values, 2 nnz (uint16, up to 65,536 columns: the quick CPU size) or 4 nnz column indices,
  4 (M + 1) pointers) + 4 K + 4 M (x once, y).
* ``bsr 4096x4096x512 @90%``: block-sparse (90% of 32 x 32 blocks zero; 16 x 16 on CPUs) times
  dense, against our own dense SGEMM on the same shape (the issue's metric) and the reference's
  dense product; CPUs use 1024 x 1024 x 256.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .. import references
from ..bench import BenchContext, BenchResult
from .formats import BlockSparseMatrix, CSRMatrix, default_block_shape


def random_csr(m: int, k: int, mean: float, family: str, *, seed: int = 0) -> CSRMatrix:
    """A CSR matrix with ``mean`` non-zeros per row: ``"random"`` (lengths Poisson-like around
    the mean) or ``"power-law"`` (Zipf(1.8) lengths scaled to the mean, capped at K)."""
    rng = np.random.default_rng(seed)
    if family == "random":
        lengths = rng.poisson(mean, m)
    else:
        # Zipf(1.8) lengths shifted to start at the mean's fraction, so most rows are short and
        # a few are very long; rescaled after the cap at K so the mean is what was asked for.
        raw = np.minimum(rng.zipf(1.8, m).astype(np.float64), k)
        lengths = np.maximum(1, np.rint(raw * mean / raw.mean()))
        long = lengths > 1  # one correction for the rows raised to 1
        lengths[long] = np.rint(lengths[long] * (mean * m - (~long).sum()) / lengths[long].sum())
        lengths = np.maximum(1, lengths).astype(np.int64)
    lengths = np.clip(lengths, 0, k)
    nnz = int(lengths.sum())
    rows = np.repeat(np.arange(m, dtype=np.int64), lengths)
    cols = rng.integers(0, k, nnz, dtype=np.int64)
    key = np.unique(rows * k + cols)  # sorted, no duplicates (a few collisions dropped)
    rows, cols = key // k, key % k
    indptr = np.zeros(m + 1, np.int64)
    np.add.at(indptr, rows + 1, 1)
    data = rng.standard_normal(key.size).astype(np.float32)
    return CSRMatrix(data, cols, np.cumsum(indptr), (m, k))


def spmv_rows(kind: str, quick: bool) -> int:
    if kind == "opencl-gpu":
        return 200_000 if quick else 2_000_000
    return 50_000 if quick else 200_000


def bench_spmv(ctx: BenchContext) -> Iterator[BenchResult]:
    from .ops import SpmvProblem, spmv, spmv_variant

    rt = ctx.rt
    repeat, budget = (5, 1.0) if ctx.quick else (20, 3.0)
    m = spmv_rows(rt.kind, ctx.quick)
    for family in ("random", "power-law"):
        a = random_csr(m, m, 32, family, seed=1)
        x = np.random.default_rng(2).standard_normal(m).astype(np.float32)
        nbytes = a.nbytes + 8.0 * m  # A's arrays (index width as stored), x once, y
        if rt.is_numpy:
            t = rt.timeit(lambda: spmv(a, x, rt=rt), repeat=repeat, budget_s=budget)
            y, note = spmv(a, x, rt=rt), "SciPy (the NumPy backend is the reference itself)"
        else:
            variant, params = spmv_variant(a, rt)
            prob = SpmvProblem(a, x, rt)
            t = rt.timeit(prob.enqueue, warmup=2, repeat=repeat, budget_s=budget)
            y = prob.run()
            st = a.row_stats()
            note = (f"{prob.variant} {prob.params}; rows mean {st['mean']:.1f}, max {st['max']:,}, "
                    f"cv {st['cv']:.2f}")
        csr = a.to_scipy()
        ref_t, ref_y = references.spmv(ctx.reference, csr, x, repeat=repeat, budget_s=budget,
                                       threads=ctx.threads)
        ref_name = ("torch CSR (cuSPARSE), int64 indices" if ctx.reference == "torch-cuda"
                    else f"SciPy CSR, rows split over {ctx.threads} threads")
        res_params = {"rows": m, "nnz": a.nnz, "family": family}
        if ctx.reference == "torch-cuda":  # cuSPARSE with 32-bit indices moves 4 bytes less per nnz
            t32, _ = references.spmv(ctx.reference, csr, x, repeat=repeat, budget_s=budget,
                                     index_dtype=np.int32)
            res_params["reference_us"] = {"int64 indices": ref_t.median * 1e6,
                                          "int32 indices": t32.median * 1e6}
            if t32.median < ref_t.median:
                ref_t, ref_name = t32, "torch CSR (cuSPARSE), int32 indices"
        err = float(np.linalg.norm(y - ref_y) / max(np.linalg.norm(ref_y), 1e-30))
        yield ctx.result("sparse", f"spmv {family} {m:,} rows", t, ref=ref_t, reference=ref_name,
                         flops=2.0 * a.nnz, nbytes=nbytes, ceiling="bandwidth", params=res_params,
                         rel_error=err, note=note)


def bench_bsr(ctx: BenchContext) -> Iterator[BenchResult]:
    from ..ops import sgemm_timing
    from .ops import SpmmProblem, spmm

    rt = ctx.rt
    repeat, budget = (3, 1.0) if ctx.quick else (10, 3.0)
    gpu = rt.kind == "opencl-gpu"
    m, k, n = (4096, 4096, 512) if gpu and not ctx.quick else (1024, 1024, 256)
    bs = default_block_shape(rt)
    rng = np.random.default_rng(3)
    keep = rng.random((m // bs[0], k // bs[1])) >= 0.9
    w = (rng.standard_normal((m, k)).astype(np.float32) * np.kron(keep, np.ones(bs, bool)))
    a = BlockSparseMatrix.from_dense(w, bs)
    b = rng.standard_normal((k, n)).astype(np.float32)
    if rt.is_numpy:
        t = rt.timeit(lambda: spmm(a, b, rt), repeat=repeat, budget_s=budget)
        c = spmm(a, b, rt)
        note = "SciPy BSR"
    else:
        prob = SpmmProblem(a, b, rt)
        t = rt.timeit(prob.enqueue, warmup=1, repeat=repeat, budget_s=budget)
        c = prob.run()
        p = prob.params
        note = (f"{'bsr_matmul4' if p.get('V4') else 'bsr_matmul'} {p}" if p
                else "spmm_csr_rows on the blocks' entries")
    dense_t = sgemm_timing(w, b, rt=rt, repeat=repeat, budget_s=budget).median
    ref_t, ref_c = references.matmul(ctx.reference, w, b, repeat=repeat, budget_s=budget, threads=ctx.threads)
    err = float(np.linalg.norm(c - ref_c) / np.linalg.norm(ref_c))
    flops = 2.0 * a.nblocks * bs[0] * bs[1] * n
    yield ctx.result(
        "sparse", f"bsr {m}x{k}x{n} @{100 * a.block_sparsity:.0f}% blocks {bs[0]}x{bs[1]}", t, ref=ref_t,
        reference=f"dense float32 product ({references.describe(ctx.reference)})", flops=flops,
        nbytes=a.nbytes + 4.0 * (k * n + m * n), ceiling="fp32",
        params={"m": m, "k": k, "n": n, "block_sparsity": a.block_sparsity,
                "vs_our_sgemm": dense_t / t.median},
        rel_error=err,
        note=f"{note}; {dense_t / t.median:.2f}x our dense SGEMM ({dense_t * 1e3:.3f} ms); reference: dense "
             f"product")


def spmv_profile(a, rt, *, repeat: int = 10, name: str | None = None):
    """:class:`~workbench.roofline.OpProfile` of y = A x on ``rt``: 2 nnz flops; bytes as the
    benchmark counts them (A's arrays as stored, x once, y)."""
    from ..roofline import OpProfile
    from ..runtime import resolve_rt
    from .ops import SpmvProblem, as_sparse, spmv

    rt = resolve_rt(rt)
    a = as_sparse(a)
    m, k = a.shape
    x = np.random.default_rng(0).standard_normal(k).astype(np.float32)
    if rt.is_numpy:
        t = rt.timeit(lambda: spmv(a, x, rt=rt), repeat=repeat, budget_s=1.0)
    else:
        t = rt.timeit(SpmvProblem(a, x, rt).enqueue, warmup=1, repeat=repeat, budget_s=1.0)
    nbytes = a.nbytes + 4.0 * (k + m)
    return OpProfile(name or f"spmv {m:,} rows", 2.0 * max(a.nnz, 1), nbytes, t.median)


def spmm_profile(a, n: int, rt, *, repeat: int = 5, name: str | None = None):
    """:class:`~workbench.roofline.OpProfile` of C = A B (A CSR or block-sparse (M, K), B dense
    (K, n)): flops of the stored non-zeros (whole blocks for block-sparse), bytes of A's arrays,
    B read once and C written once (the least traffic)."""
    from ..roofline import OpProfile
    from ..runtime import resolve_rt
    from .ops import SpmmProblem, as_sparse, spmm

    rt = resolve_rt(rt)
    a = as_sparse(a)
    m, k = a.shape
    b = np.random.default_rng(0).standard_normal((k, n)).astype(np.float32)
    if rt.is_numpy:
        t = rt.timeit(lambda: spmm(a, b, rt), repeat=repeat, budget_s=1.0)
    else:
        t = rt.timeit(SpmmProblem(a, b, rt).enqueue, warmup=1, repeat=repeat, budget_s=1.0)
    stored = a.nblocks * a.block_shape[0] * a.block_shape[1] if isinstance(a, BlockSparseMatrix) else a.nnz
    kind = "bsr" if isinstance(a, BlockSparseMatrix) else "csr"
    return OpProfile(name or f"spmm {kind} {m}x{k}x{n}", 2.0 * max(stored, 1) * n,
                     a.nbytes + 4.0 * (k * n + m * n), t.median)
