"""Sparse times dense on the OpenCL kernels of ``kernels/spmv.cl`` and ``kernels/bsr.cl``.

``spmv(a, x, rt=rt)`` is y = A x and ``spmm(a, b, rt)`` is C = A B for A sparse (CSR, CSC or
block-sparse) and x, B dense. On the NumPy runtime both are SciPy's products (float32), the
reference the OpenCL results are tested against (within 1e-5 relative).

SpMV kernels (chosen from the row-length statistics by :func:`spmv_variant`, or forced with
``variant=``):

* ``scalar``: a work-item per row; CPUs, where a work-group is one thread's loop;
* ``vector``: a SIMD group of VEC lanes per row (VEC the power of two nearest the mean row
  length, at most the warp / wavefront);
* ``split``: rows cut into units of at most CHUNK non-zeros, VEC lanes per unit, partial sums
  added by a second launch; CPUs with rows far longer than the rest;
* ``adaptive``: CSR-Adaptive (:func:`adaptive_plan`): blocks of about NNZ non-zeros staged in
  local memory, as many lanes per row as the block's rows leave, long rows in chunks. GPUs, for
  even and skewed rows alike: on the H100 (2026-11-24, 2M rows, 32 non-zeros a row on average)
  it was the fastest variant on both the random and the power-law matrix
  (docs/results/h100-2026-11-24-spmv-variants.txt).

Block-sparse SpMV runs the CSR kernels on the blocks' entries; block-sparse SpMM runs
``bsr_matmul`` (``bsr_matmul4`` on GPUs), which never touches the zero blocks.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..runtime import Runtime, resolve_rt
from .formats import BlockSparseMatrix, CSCMatrix, CSRMatrix

SPMV_VARIANTS = ("scalar", "vector", "split", "adaptive")
SPARSE_TYPES = (CSRMatrix, CSCMatrix, BlockSparseMatrix)


def as_sparse(a, name: str = "a"):
    """A CSRMatrix or BlockSparseMatrix for the kernels (CSC and SciPy matrices become CSR)."""
    if isinstance(a, (CSRMatrix, BlockSparseMatrix)):
        return a
    if isinstance(a, CSCMatrix):
        return _cached(a, "csr", a.tocsr)
    try:
        import scipy.sparse as sp

        if sp.issparse(a):
            return CSRMatrix.from_scipy(a)
    except ImportError:  # pragma: no cover - scipy is a dependency
        pass
    raise InputError(name, f"expected a CSRMatrix, CSCMatrix, BlockSparseMatrix or SciPy sparse matrix, "
                           f"got {type(a).__name__} (dense arrays: CSRMatrix.from_dense)")


def _cached(obj, key, make):
    """A host-side form derived from ``obj`` (its CSR, SciPy or plan arrays), built once and kept
    on it; what lives on a device is kept by the runtime instead (``rt.memo(..., owner=obj)``)."""
    cache = obj.__dict__.setdefault("_derived", {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


def _scipy(a):
    """The SciPy form, built once per matrix (``to_scipy`` copies the arrays every call)."""
    return _cached(a, "scipy", a.to_scipy)


def _bsr_as_csr(a: BlockSparseMatrix) -> CSRMatrix:
    """The block matrix's stored entries (zeros inside blocks included) as padded-shape CSR."""
    def make():
        import scipy.sparse as sp

        bsr = sp.bsr_matrix((a.blocks, a.indices, a.indptr), shape=a.padded_shape, blocksize=a.block_shape)
        csr = bsr.tocsr()
        csr.sort_indices()
        return CSRMatrix(csr.data, csr.indices, csr.indptr, csr.shape)

    return _cached(a, "csr", make)


def _dense_vector(x, k: int, name: str = "x") -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise InputError(name, f"expected numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, np.float32)
    if arr.shape != (k,):
        raise InputError(name, f"expected shape ({k},) to match the matrix's {k} columns, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(name, "contains NaN or Inf")
    return arr


def _dense_matrix(b, k: int, name: str = "b") -> np.ndarray:
    arr = np.asarray(b)
    if arr.dtype.kind not in "biuf":
        raise InputError(name, f"expected numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, np.float32)
    if arr.ndim != 2 or arr.shape[0] != k:
        raise InputError(name, f"expected a ({k}, N) matrix to match the sparse matrix's {k} columns, "
                               f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(name, "contains NaN or Inf")
    return arr


# -- variant choice -----------------------------------------------------------------------------
def spmv_tuning(rt: Runtime | str | None = None) -> dict:
    """kernels/spmv.tuning.json's entry for ``rt``'s device (GPUs: the ``gpu`` defaults; CPUs,
    accelerators and the NumPy backend: ``cpu``), through the one tuning reader
    (:func:`workbench.runtime.kernels.tuning`): ``auto`` (the variant row statistics choose),
    the long-row bounds, and each variant's ``#define`` values."""
    return _table("spmv", resolve_rt(rt))


def _table(family: str, rt: Runtime) -> dict:
    """``family``'s tuning entry for ``rt``, read once per device; the table's ``gpu`` or ``cpu``
    side by the kernels' two code paths (accelerators and the NumPy backend take the CPU's)."""
    import dataclasses

    from ..runtime.kernels import tuning

    kind = "gpu" if rt.kind == "opencl-gpu" else "cpu"
    info = rt.info if rt.info.type == kind else dataclasses.replace(rt.info, type=kind)
    return rt.memo(("tuning", family), lambda: tuning(family, info))


def spmv_variant(a: CSRMatrix, rt: Runtime | str | None = None) -> tuple[str, dict]:
    """``(variant, tunables)`` for ``a`` on ``rt`` from its row statistics (see module doc) and
    :func:`spmv_tuning`."""
    rt = resolve_rt(rt)
    table = spmv_tuning(rt)
    variant = table["auto"]
    if rt.kind != "opencl-gpu":
        # CPU work-groups are taken by threads dynamically; only rows far longer than a work-
        # group's worth of ordinary rows unbalance them.
        st = a.row_stats()
        if st["max"] > max(table["long_row"], table["long_row_x_mean"] * max(st["mean"], 1.0)):
            variant = "split"
    return variant, variant_params(variant, rt)


def variant_params(variant: str, rt: Runtime) -> dict:
    """The ``#define`` values of SpMV ``variant`` on ``rt`` (:func:`spmv_tuning`; ``VEC`` capped at
    the device's SIMD width, work-groups at the table's ``max_wg``)."""
    table = spmv_tuning(rt)
    p = dict(table.get(variant, {}))
    if "VEC" in p:
        p["VEC"] = min(int(p["VEC"]), max(1, rt.info.simd_width))
    if variant in ("vector", "split"):
        cap = int(table["max_wg"])
        p["WG"] = min(p.get("WG", cap), cap)
        p["VEC"] = min(p.get("VEC", 1), p["WG"])
    return p


# -- device-resident problems ------------------------------------------------------------------
def _idx_t(a: CSRMatrix) -> str:
    """The kernels' IDX_T for ``a``'s column indices."""
    return "ushort" if a.indices.dtype == np.uint16 else "int"


def _device_csr(a: CSRMatrix, rt):
    def make():
        # OpenCL has no zero-length buffers: an empty matrix keeps one unused element
        idx = a.indices if a.nnz else np.zeros(1, a.indices.dtype)
        val = a.data if a.nnz else np.zeros(1, np.float32)
        return (rt.to_device(a.indptr, "indptr").data, rt.to_device(idx, "indices").data,
                rt.to_device(val, "values").data)

    return rt.memo("csr.device", make, owner=a)  # kept by the device as long as the matrix lives


def _split_plan(a: CSRMatrix, chunk: int):
    """Units (row, start) cutting every row into pieces of at most ``chunk`` non-zeros, and the
    rows of more than one unit with their first unit (for the summing launch)."""
    def make():
        lengths = a.lengths().astype(np.int64)
        per_row = np.maximum(1, -(-lengths // chunk))
        unit_row = np.repeat(np.arange(a.shape[0], dtype=np.int64), per_row)
        first = np.concatenate([[0], np.cumsum(per_row)])
        offset = np.arange(unit_row.size) - first[unit_row]
        unit_start = a.indptr[unit_row].astype(np.int64) + offset * chunk
        long_rows = np.nonzero(per_row > 1)[0]
        return (unit_row.astype(np.int32), unit_start.astype(np.int32), long_rows.astype(np.int32),
                first[long_rows].astype(np.int32), per_row[long_rows].astype(np.int32))

    return _cached(a, ("split", chunk), make)


def adaptive_plan(a: CSRMatrix, nnz: int, long_chunk: int):
    """Blocks of :func:`spmv_adaptive <kernels/spmv.cl>`: an (B, 4) int32 array of (first row,
    rows, lo, hi) for stream blocks and (row, -1 - slot, lo, hi) for chunks of long rows (longer
    than ``nnz``) of at most ``long_chunk`` non-zeros, long chunks first; and the long rows with
    their first slot and chunk count (for ``spmv_split_sum``).

    Stream blocks start at the first row at or after every multiple of ``nnz`` non-zeros and at
    every long row's ends, so each holds at most ``2 nnz`` non-zeros (a block ends past its last
    boundary by at most one row of at most ``nnz``); vectorized, no loop over rows."""
    def make():
        ptr = a.indptr.astype(np.int64)
        m, total = a.shape[0], int(ptr[-1])
        lengths = np.diff(ptr)
        long_rows = np.nonzero(lengths > nnz)[0]
        cuts = np.searchsorted(ptr[:m], np.arange(0, max(total, 1), nnz), side="left")
        bounds = np.unique(np.concatenate([[0, m], cuts, long_rows, long_rows + 1]))
        start, end = bounds[:-1], bounds[1:]
        keep = end > start
        start, end = start[keep], end[keep]
        is_long = np.zeros(m + 1, bool)
        is_long[long_rows] = True
        stream = ~((end - start == 1) & is_long[start])
        start, end = start[stream], end[stream]
        streams = np.stack([start, end - start, ptr[start], ptr[end]], axis=1)
        chunks = np.maximum(1, -(-lengths[long_rows] // long_chunk))
        row = np.repeat(long_rows, chunks)
        first = np.concatenate([[0], np.cumsum(chunks)])
        k = np.arange(row.size) - np.repeat(first[:-1], chunks)
        lo = ptr[row] + k * long_chunk
        hi = np.minimum(lo + long_chunk, ptr[row + 1])
        longs = np.stack([row, -1 - np.arange(row.size), lo, hi], axis=1)
        blocks = np.concatenate([longs, streams]).astype(np.int32)
        return (blocks, long_rows.astype(np.int32), first[:-1].astype(np.int32), chunks.astype(np.int32))

    return _cached(a, ("adaptive", nnz, long_chunk), make)


class SpmvProblem:
    """y = A x with everything on the device; :meth:`enqueue` returns the launches' events."""

    def __init__(self, a, x, rt: Runtime, *, variant: str | None = None, params: dict | None = None):
        import pyopencl.array as cla

        a = as_sparse(a)
        self.a = _bsr_as_csr(a) if isinstance(a, BlockSparseMatrix) else a
        self.shape = a.shape
        self.rt = rt
        if variant is not None and variant not in SPMV_VARIANTS:
            raise InputError("variant", f"expected one of {SPMV_VARIANTS}, got {variant!r}")
        self.variant = variant or spmv_variant(self.a, rt)[0]
        p = variant_params(self.variant, rt)
        p.update(params or {})
        self.params = p
        m_pad, k_pad = self.a.shape
        xp = np.zeros(k_pad, np.float32)
        xp[:x.shape[0]] = x
        self.x = rt.to_device(xp, "x")
        self.y = cla.empty(rt.queue, max(1, m_pad), np.float32)
        self.bufs = _device_csr(self.a, rt)
        self.prog = rt.program("spmv", IDX_T=_idx_t(self.a),
                               **{k: v for k, v in p.items() if k in ("WG", "VEC", "NNZ")})
        if self.variant == "adaptive":
            blocks, rows, first, count = adaptive_plan(self.a, int(p["NNZ"]), int(p["LONG"]))
            self.n_blocks, self.n_long = blocks.shape[0], rows.size
            self.blocks = rt.to_device(blocks if blocks.size else np.zeros((1, 4), np.int32), "blocks").data
            self.plan = [rt.to_device(arr if arr.size else np.zeros(1, np.int32), "plan").data
                         for arr in (rows, first, count)]
            self.partial = cla.empty(rt.queue, max(1, int(count.sum())), np.float32)
        if self.variant == "split":
            plan = _split_plan(self.a, int(p["CHUNK"]))
            self.units, rows = plan[0].size, plan[2]
            self.plan = [rt.to_device(arr if arr.size else np.zeros(1, np.int32),
                                      "plan").data for arr in plan]
            self.n_long = rows.size
            self.partial = cla.empty(rt.queue, max(1, self.units), np.float32)

    def enqueue(self) -> list:
        m = self.a.shape[0]
        if m == 0:
            return []
        ptr, idx, val = self.bufs
        p = self.params
        if self.variant == "scalar":
            return [self.prog.spmv_scalar((m,), None, ptr, idx, val, self.x.data, self.y.data, np.int32(m))]
        if self.variant == "adaptive":
            wg = p["WG"]
            events = [self.prog.spmv_adaptive((self.n_blocks * wg,), (wg,), ptr, idx, val, self.x.data,
                                              self.y.data, self.blocks, self.partial.data)]
            if self.n_long:
                rows, first, count = self.plan
                events.append(self.prog.spmv_split_sum((self.n_long,), None, rows, first, count,
                                                       self.partial.data, self.y.data, np.int32(self.n_long)))
            return events
        wg, rows_per_group = p["WG"], p["WG"] // p["VEC"]
        if self.variant == "vector":
            groups = -(-m // rows_per_group)
            return [self.prog.spmv_vector((groups * wg,), (wg,), ptr, idx, val, self.x.data, self.y.data,
                                          np.int32(m))]
        unit_row, unit_start, rows, first, count = self.plan
        groups = -(-self.units // rows_per_group)
        events = [self.prog.spmv_split((groups * wg,), (wg,), ptr, idx, val, self.x.data, self.y.data,
                                       unit_row, unit_start, self.partial.data, np.int32(self.units),
                                       np.int32(p["CHUNK"]))]
        if self.n_long:
            events.append(self.prog.spmv_split_sum((self.n_long,), None, rows, first, count,
                                                   self.partial.data,
                                                   self.y.data, np.int32(self.n_long)))
        return events

    def run(self) -> np.ndarray:
        events = self.enqueue()
        if not events:
            return np.zeros(self.shape[0], np.float32)
        self.y.add_event(events[-1])
        return self.y.get()[:self.shape[0]]


def spmv(a, x, *, rt: Runtime | str | None = None, variant: str | None = None) -> np.ndarray:
    """``y = A x``: A (M, K) sparse, x (K,) float32; returns (M,) float32.

    ``variant`` forces an OpenCL kernel (``"scalar"``, ``"vector"``, ``"split"``); by default
    :func:`spmv_variant` picks one from the row statistics. Bytes moved: ``a.nbytes`` (6 or 8 per
    non-zero plus 4 (M + 1)) plus 4 K (x, at best once) and 4 M (y); flops: 2 nnz.
    """
    rt = resolve_rt(rt)
    a = as_sparse(a)
    x = _dense_vector(x, a.shape[1])
    if rt.is_numpy:
        return np.asarray(_scipy(a) @ x, np.float32).reshape(-1)
    with rt.launch_lock:
        return SpmvProblem(a, x, rt, variant=variant).run()


# -- SpMM ---------------------------------------------------------------------------------------
def bsr_params(block_shape: tuple[int, int], rt: Runtime) -> dict:
    """``bsr_matmul`` tunables for a block shape: a work-group covers the block's rows and TW
    columns of C with TM x TN outputs per work-item, at most 256 work-items. On GPUs, blocks
    whose sides divide by 4 use ``bsr_matmul4`` (``V4``: float4 tiles, prefetched blocks)."""
    br, bc = block_shape
    table = _table("bsr", rt)
    for tw, tm, tn in table["tiles4"]:
        p = {"BR": br, "BC": bc, "TW": tw, "TM": tm, "TN": tn, "V4": 1}
        if bsr4_fits(p, rt):
            return p
    tn, tw = int(table["TN"]), int(table["TW"])
    tx = tw // tn
    limit = max(1, min(int(table["max_group"]), rt.info.max_work_group_size) // tx)
    tm = next(d for d in range(1, br + 1) if br % d == 0 and br // d <= limit)
    return {"BR": br, "BC": bc, "TW": tw, "TM": tm, "TN": tn}


def bsr4_fits(p: dict, rt: Runtime) -> bool:
    """Whether ``bsr_matmul4`` can run tile ``p``: float4 rows and columns, whole float4s staged
    by every work-item, a work-group the device allows."""
    br, bc, tw, tm, tn = p["BR"], p["BC"], p["TW"], p["TM"], p["TN"]
    if br % 4 or bc % 4 or tm % 4 or tn % 4 or br % tm or tw % tn:
        return False
    nt = (tw // tn) * (br // tm)
    return (nt <= rt.info.max_work_group_size and (br * bc // 4) % nt == 0 and (bc * tw // 4) % nt == 0
            and br * bc // 4 >= nt and bc * tw // 4 >= nt)


class SpmmProblem:
    """C = A B on the device. CSR: ``spmm_csr`` on GPUs, ``spmm_csr_rows`` on CPUs. Block-sparse:
    ``bsr_matmul4`` / ``bsr_matmul`` on GPUs (or wherever tile ``params`` are given); on CPUs the
    blocks' entries run through ``spmm_csr_rows``, whose streamed rows suit a CPU far better
    than a work-group kernel with barriers."""

    def __init__(self, a, b: np.ndarray, rt: Runtime, *, params: dict | None = None):
        self.rt, self.a = rt, as_sparse(a)
        self.m, self.n = self.a.shape[0], b.shape[1]
        if isinstance(self.a, BlockSparseMatrix) and rt.kind != "opencl-gpu" and not params:
            kp = self.a.padded_shape[1]
            if kp != b.shape[0]:  # the blocks' padding columns meet zero rows of B
                b = np.concatenate([b, np.zeros((kp - b.shape[0], self.n), np.float32)])
            self.a = _bsr_as_csr(self.a)
        if isinstance(self.a, BlockSparseMatrix):
            p = bsr_params(self.a.block_shape, rt)
            p.update(params or {})
            if p.get("V4") and not bsr4_fits(p, rt):
                raise InputError("params", f"bsr_matmul4 cannot run tile {p} (see bsr4_fits)")
            self.params = p
            mp, kp = self.a.padded_shape
            self.np_ = max(p["TW"], -(-self.n // p["TW"]) * p["TW"])
            bp = np.zeros((kp, self.np_), np.float32)
            bp[:b.shape[0], :self.n] = b
            self.b = rt.to_device(bp, "b")
            self.c = rt.empty((max(mp, 1), self.np_), np.float32, "c")
            def upload(a=self.a, v4=bool(p.get("V4"))):
                blocks = a.blocks if a.nblocks else np.zeros((1, *a.block_shape), np.float32)
                if v4:  # bsr_matmul4 reads each block transposed (BC x BR)
                    blocks = np.ascontiguousarray(blocks.transpose(0, 2, 1))
                return (rt.to_device(a.indptr, "indptr").data,
                        rt.to_device(a.indices if a.nblocks else np.zeros(1, np.int32), "indices").data,
                        rt.to_device(blocks, "blocks").data)

            self.bufs = rt.memo(("bsr.device", bool(p.get("V4"))), upload, owner=self.a)
            self.prog = rt.program("bsr", **p)
        else:
            self.params = {}
            self.np_ = self.n
            self.b = rt.to_device(b, "b")
            self.c = rt.empty((max(self.a.shape[0], 1), max(self.n, 1)), np.float32, "c")
            self.bufs = _device_csr(self.a, rt)
            self.prog = rt.program("spmv", IDX_T=_idx_t(self.a))
            lanes = int(spmv_tuning(rt)["spmm_lanes"])  # work-items per row of C (spmm_csr)
            self.lanes = lanes if self.n >= lanes else 1 << max(0, (self.n - 1).bit_length())

    def enqueue(self) -> list:
        if self.m == 0 or self.n == 0:
            return []
        ptr, idx, val = self.bufs
        if isinstance(self.a, BlockSparseMatrix):
            p = self.params
            mb = self.a.block_grid[0]
            tx, ty = p["TW"] // p["TN"], p["BR"] // p["TM"]
            kernel = self.prog.bsr_matmul4 if p.get("V4") else self.prog.bsr_matmul
            return [kernel((tx * (self.np_ // p["TW"]), ty * mb), (tx, ty), ptr, idx, val,
                           self.b.data, self.c.data, np.int32(self.np_), np.int32(self.np_))]
        m = self.a.shape[0]  # padded rows where block-sparse runs as CSR
        args = (ptr, idx, val, self.b.data, self.c.data, np.int32(m), np.int32(self.n), np.int32(self.n),
                np.int32(self.n))
        if self.rt.kind != "opencl-gpu":  # CPUs: a row of C per work-item, rows of B streamed
            return [self.prog.spmm_csr_rows((m,), None, *args)]
        ln = self.lanes  # chosen once, not on every launch
        return [self.prog.spmm_csr((-(-self.n // ln) * ln, m), (ln, 1), *args)]

    def run(self) -> np.ndarray:
        events = self.enqueue()
        if not events:
            return np.zeros((self.m, self.n), np.float32)
        self.c.add_event(events[-1])
        return self.c.get()[:self.m, :self.n]


def spmm(a, b, rt: Runtime | str | None = None) -> np.ndarray:
    """``C = A B``: A (M, K) sparse (CSR, CSC or block-sparse), B (K, N) dense float32; returns
    (M, N) float32. Flops: 2 nnz N (CSR) or 2 nblocks br bc N (block-sparse, zeros inside the
    kept blocks included)."""
    rt = resolve_rt(rt)
    a = as_sparse(a)
    b = _dense_matrix(b, a.shape[1])
    if rt.is_numpy:
        return np.asarray(_scipy(a) @ b, np.float32)
    with rt.launch_lock:
        return SpmmProblem(a, b, rt).run()
