"""Sparse matrix formats: CSR, CSC and block-sparse (BSR), float32 values.

Every matrix here is *canonical*: within each row (CSR, BSR) or column (CSC) the indices are
strictly increasing, so there are no duplicates. Arrays handed in unsorted or with duplicates are
canonicalized (duplicates summed, as SciPy's ``sum_duplicates`` does); indices out of range, a
malformed ``indptr`` or non-finite values are an :class:`~workbench.errors.InputError`.
Explicit zeros handed in are kept (SciPy keeps them too); ``from_dense`` stores only non-zeros.

Indices: pointers are int32. CSR column (CSC row) indices are uint16 when the minor dimension is
at most 65,536 and int32 beyond (:func:`index_dtype`): a weight matrix of a layer is rarely wider,
and the narrow index saves a sixth of the bytes an SpMV streams. ``to_scipy`` hands SciPy int32
indices; the values are identical. BSR block-column indices are int32 (one per block: negligible).

Memory (``nbytes``): CSR and CSC hold ``4 nnz`` (values) + ``2 nnz`` or ``4 nnz`` (indices) +
``4 (rows + 1)`` (pointers); BSR holds ``4 nblocks br bc`` + ``4 nblocks`` + ``4 (block rows + 1)``.
At sparsity s of an M x K float32 matrix with K <= 65,536, CSR costs about ``6 (1 - s) M K + 4 M``
bytes against ``4 M K`` dense: 0.15 of dense at s = 0.9 (with int32 indices it would be 0.2 plus the
pointers, just over a fifth).

Block-sparse matrices whose shape does not divide by the block are padded with zeros at the
bottom and right edges; ``shape`` stays the true shape and ``to_dense`` crops.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

INDEX = np.int32
VALUE = np.float32
COMPACT_LIMIT = 1 << 16  # uint16 indices address up to this many columns


def index_dtype(n_minor: int) -> np.dtype:
    """dtype of CSR column / CSC row indices for ``n_minor`` columns / rows."""
    return np.dtype(np.uint16 if n_minor <= COMPACT_LIMIT else INDEX)


def _dense_2d(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise InputError(name, f"expected a 2-D matrix, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise InputError(name, f"expected a numeric matrix, got dtype {arr.dtype}")
    arr = arr.astype(VALUE, copy=False)
    if not np.all(np.isfinite(arr)):
        raise InputError(name, "contains NaN or Inf")
    return arr


def _shape(shape, name="shape") -> tuple[int, int]:
    try:
        m, n = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError(name, f"expected (rows, columns), got {shape!r}") from None
    if m < 0 or n < 0:
        raise InputError(name, f"dimensions must be >= 0, got {shape!r}")
    return m, n


def _canonical(data, indices, indptr, n_major: int, n_minor: int, what: str, index=INDEX):
    """Validate compressed arrays; sort each major slice's indices and sum duplicates. Indices
    come back as ``index``, pointers as int32."""
    data = np.asarray(data)
    if data.dtype.kind not in "biuf":
        raise InputError("data", f"expected numeric values, got dtype {data.dtype}")
    data = data.astype(VALUE).reshape(-1)
    indices = np.asarray(indices)
    indptr = np.asarray(indptr)
    if indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
        raise InputError("indices", f"{what} indices and indptr must be integers")
    indices = indices.astype(np.int64).reshape(-1)
    indptr = indptr.astype(np.int64).reshape(-1)
    if indptr.shape != (n_major + 1,):
        raise InputError("indptr", f"expected {n_major + 1} entries for {n_major} {what}, got {indptr.size}")
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != indices.size:
        raise InputError("indptr", f"must start at 0, never decrease and end at nnz = {indices.size}")
    if data.size != indices.size:
        raise InputError("data", f"{data.size} values for {indices.size} indices")
    if not np.all(np.isfinite(data)):
        raise InputError("data", "contains NaN or Inf")
    if indices.size and (indices.min() < 0 or indices.max() >= n_minor):
        raise InputError("indices",
                         f"indices must lie in [0, {n_minor}), got [{indices.min()}, {indices.max()}]")
    major = np.repeat(np.arange(n_major, dtype=np.int64), np.diff(indptr))
    key = major * max(n_minor, 1) + indices
    if key.size > 1 and np.any(np.diff(key) <= 0):  # unsorted or duplicated: fix it
        order = np.argsort(key, kind="stable")
        key, data = key[order], data[order]
        # the sorted keys' first occurrences (np.unique would sort them a second time)
        start = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        uniq = key[start]
        if start.size < key.size:  # duplicates: summed in float64, rounded once
            data = np.add.reduceat(data.astype(np.float64), start).astype(VALUE)
        major, indices = uniq // max(n_minor, 1), uniq % max(n_minor, 1)
        indptr = np.concatenate(([0], np.cumsum(np.bincount(major, minlength=n_major))))
    if indptr[-1] > np.iinfo(INDEX).max:
        raise InputError("indices",
                         f"{indptr[-1]:,} non-zeros: int32 pointers hold at most {np.iinfo(INDEX).max:,}")
    return data, indices.astype(index), indptr.astype(INDEX)


class _Compressed:
    """Shared CSR/CSC machinery; ``_major`` is 0 for rows (CSR), 1 for columns (CSC)."""

    _major = 0
    format = ""

    def __init__(self, data, indices, indptr, shape):
        self.shape = _shape(shape)
        n_major, n_minor = self.shape[self._major], self.shape[1 - self._major]
        self.data, self.indices, self.indptr = _canonical(
            data, indices, indptr, n_major, n_minor, "rows" if self._major == 0 else "columns",
            index_dtype(n_minor))

    # -- conversion ---------------------------------------------------------------------------
    @classmethod
    def from_dense(cls, dense):
        a = _dense_2d(dense, "dense")
        a_major = a if cls._major == 0 else a.T
        major, minor = np.nonzero(a_major)  # row-major order: sorted within each major slice
        indptr = np.zeros(a_major.shape[0] + 1, np.int64)
        np.add.at(indptr, major + 1, 1)
        return cls(a_major[major, minor], minor, np.cumsum(indptr), a.shape)

    @classmethod
    def from_scipy(cls, matrix):
        import scipy.sparse as sp

        if not sp.issparse(matrix):
            raise InputError("matrix", f"expected a SciPy sparse matrix, got {type(matrix).__name__}")
        m = matrix.tocsr() if cls._major == 0 else matrix.tocsc()
        return cls(m.data, m.indices, m.indptr, m.shape)

    def to_scipy(self):
        import scipy.sparse as sp

        make = sp.csr_matrix if self._major == 0 else sp.csc_matrix
        return make((self.data.copy(), self.indices.astype(INDEX), self.indptr.copy()), shape=self.shape)

    def to_dense(self) -> np.ndarray:
        out = np.zeros(self.shape, VALUE)
        major = np.repeat(np.arange(self.shape[self._major]), np.diff(self.indptr))
        if self._major == 0:
            out[major, self.indices] = self.data
        else:
            out[self.indices, major] = self.data
        return out

    # -- properties ---------------------------------------------------------------------------
    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes + self.indices.nbytes + self.indptr.nbytes)

    @property
    def density(self) -> float:
        return self.nnz / max(1, self.shape[0] * self.shape[1])

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    def lengths(self) -> np.ndarray:
        """Non-zeros per row (CSR) or per column (CSC)."""
        return np.diff(self.indptr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, nnz={self.nnz}, sparsity={self.sparsity:.3f})"


class CSRMatrix(_Compressed):
    """Compressed sparse rows: row i's values are ``data[indptr[i]:indptr[i + 1]]`` at columns
    ``indices[...]``. Shapes: data (nnz,) float32, indices (nnz,) uint16 for K <= 65,536 else int32
    (:func:`index_dtype`), indptr (M + 1,) int32."""

    _major = 0
    format = "csr"

    def transpose(self) -> "CSRMatrix":
        """A^T as CSR: the same three arrays read as CSC of A^T, re-compressed by rows."""
        return CSRMatrix.from_scipy(self.to_scipy().T)

    def tocsc(self) -> "CSCMatrix":
        return CSCMatrix.from_scipy(self.to_scipy())

    def row_stats(self) -> dict:
        """Row-length statistics that pick an SpMV kernel: mean, max, coefficient of variation."""
        n = self.lengths().astype(np.float64)
        mean = float(n.mean()) if n.size else 0.0
        return {"rows": int(n.size), "nnz": self.nnz, "mean": mean, "max": int(n.max()) if n.size else 0,
                "cv": float(n.std() / mean) if mean > 0 else 0.0,
                "empty": int(np.count_nonzero(n == 0))}


class CSCMatrix(_Compressed):
    """Compressed sparse columns: column j's values are ``data[indptr[j]:indptr[j + 1]]`` at
    rows ``indices[...]``. Shapes: data (nnz,), indices (nnz,), indptr (N + 1,)."""

    _major = 1
    format = "csc"

    def transpose(self) -> "CSCMatrix":
        return CSCMatrix.from_scipy(self.to_scipy().T)

    def tocsr(self) -> CSRMatrix:
        return CSRMatrix.from_scipy(self.to_scipy())


def default_block_shape(rt=None) -> tuple[int, int]:
    """A square block whose side is a multiple of the device's SIMD width (warp, wavefront or
    float vector width), at least 16 and at most 64: 32 x 32 on NVIDIA, 64 x 64 on GCN AMD,
    16 x 16 on CPUs and for NumPy."""
    from ..runtime import resolve_rt

    info = resolve_rt(rt).info if rt is not None else None
    simd = max(1, getattr(info, "simd_width", 1) or 1) if info is not None else 1
    side = 16
    while side < simd and side < 64:
        side *= 2
    return side, side


class BlockSparseMatrix:
    """Block compressed rows (BSR): non-zero ``br x bc`` blocks, stored densely.

    Shapes: blocks (nblocks, br, bc) float32; indices (nblocks,) int32 block columns, sorted in
    each block row; indptr (Mb + 1,) int32 over the Mb = ceil(M / br) block rows. ``shape`` is
    the true (M, K); the padded shape is (Mb br, Kb bc).
    """

    format = "bsr"

    def __init__(self, blocks, indices, indptr, shape, *, block_shape=None):
        self.shape = _shape(shape)
        b = np.asarray(blocks)
        if b.ndim != 3:
            raise InputError("blocks", f"expected (nblocks, br, bc), got shape {b.shape}")
        bs = b.shape[1:] if block_shape is None else _shape(block_shape, "block_shape")
        if bs[0] <= 0 or bs[1] <= 0 or tuple(b.shape[1:]) != tuple(bs):
            raise InputError("block_shape", f"blocks of shape {b.shape[1:]} for block_shape {bs}")
        self.block_shape = (int(bs[0]), int(bs[1]))
        mb, kb = self.block_grid
        if np.asarray(indices).size != b.shape[0]:
            raise InputError("indices", f"{np.asarray(indices).size} block columns for {b.shape[0]} blocks")
        _, self.indices, self.indptr = _canonical(  # validates; values are placeholders
            np.zeros(b.shape[0]), indices, indptr, mb, kb, "block rows")
        if self.indices.size != b.shape[0]:
            raise InputError("indices", "duplicate block positions in a block row")
        raw = np.asarray(indices).astype(np.int64).reshape(-1)
        rows = np.repeat(np.arange(mb, dtype=np.int64), np.diff(np.asarray(indptr).astype(np.int64)))
        order = np.argsort(rows * kb + raw, kind="stable")  # the canonical order of the blocks
        blocks32 = b.astype(VALUE)
        if not np.all(np.isfinite(blocks32)):
            raise InputError("blocks", "contains NaN or Inf")
        self.blocks = np.ascontiguousarray(blocks32[order])

    @property
    def block_grid(self) -> tuple[int, int]:
        br, bc = self.block_shape
        return -(-self.shape[0] // br), -(-self.shape[1] // bc)

    @property
    def padded_shape(self) -> tuple[int, int]:
        mb, kb = self.block_grid
        return mb * self.block_shape[0], kb * self.block_shape[1]

    @classmethod
    def from_dense(cls, dense, block_shape=None, rt=None):
        a = _dense_2d(dense, "dense")
        br, bc = default_block_shape(rt) if block_shape is None else _shape(block_shape, "block_shape")
        if br <= 0 or bc <= 0:
            raise InputError("block_shape", f"block sides must be positive, got {(br, bc)}")
        m, k = a.shape
        mb, kb = -(-m // br), -(-k // bc)
        padded = np.zeros((mb * br, kb * bc), VALUE)
        padded[:m, :k] = a
        tiles = padded.reshape(mb, br, kb, bc).transpose(0, 2, 1, 3)  # (Mb, Kb, br, bc)
        keep = np.any(tiles != 0, axis=(2, 3))
        rows, cols = np.nonzero(keep)
        indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
        return cls(tiles[rows, cols].reshape(-1, br, bc), cols, indptr, (m, k), block_shape=(br, bc))

    @classmethod
    def from_scipy(cls, matrix, block_shape=None):
        import scipy.sparse as sp

        if not sp.issparse(matrix):
            raise InputError("matrix", f"expected a SciPy sparse matrix, got {type(matrix).__name__}")
        if block_shape is None and matrix.format == "bsr":
            m = matrix.tobsr()
            m.sort_indices()
            return cls(m.data, m.indices, m.indptr, m.shape, block_shape=m.blocksize)
        return cls.from_dense(matrix.toarray(), block_shape)

    def to_scipy(self):
        """``scipy.sparse.bsr_matrix`` when the block divides the shape; SciPy's BSR cannot hold
        padded edges, so a padded matrix comes back as a ``csr_matrix`` of the true shape."""
        import scipy.sparse as sp

        if self.padded_shape == self.shape:
            return sp.bsr_matrix((self.blocks.copy(), self.indices.copy(), self.indptr.copy()),
                                 shape=self.shape, blocksize=self.block_shape)
        return sp.csr_matrix(self.to_dense())

    def to_dense(self) -> np.ndarray:
        mb, kb = self.block_grid
        br, bc = self.block_shape
        tiles = np.zeros((mb, kb, br, bc), VALUE)
        rows = np.repeat(np.arange(mb), np.diff(self.indptr))
        tiles[rows, self.indices] = self.blocks
        dense = tiles.transpose(0, 2, 1, 3).reshape(mb * br, kb * bc)
        return np.ascontiguousarray(dense[:self.shape[0], :self.shape[1]])

    def transpose(self) -> "BlockSparseMatrix":
        """A^T with (bc, br) blocks."""
        mb, kb = self.block_grid
        rows = np.repeat(np.arange(mb), np.diff(self.indptr))
        order = np.lexsort((rows, self.indices))  # by block column, then block row
        indptr = np.concatenate([[0], np.cumsum(np.bincount(self.indices, minlength=kb))])
        return BlockSparseMatrix(self.blocks[order].transpose(0, 2, 1), rows[order], indptr,
                                 (self.shape[1], self.shape[0]), block_shape=self.block_shape[::-1])

    @property
    def nblocks(self) -> int:
        return int(self.indices.size)

    @property
    def nnz(self) -> int:
        """Stored values, zeros inside kept blocks included (what the kernels multiply)."""
        return self.nblocks * self.block_shape[0] * self.block_shape[1]

    @property
    def nbytes(self) -> int:
        return int(self.blocks.nbytes + self.indices.nbytes + self.indptr.nbytes)

    @property
    def block_sparsity(self) -> float:
        mb, kb = self.block_grid
        return 1.0 - self.nblocks / max(1, mb * kb)

    def __repr__(self) -> str:
        return (f"BlockSparseMatrix(shape={self.shape}, block_shape={self.block_shape}, "
                f"nblocks={self.nblocks}, block_sparsity={self.block_sparsity:.3f})")


FORMATS = {"csr": CSRMatrix, "csc": CSCMatrix, "bsr": BlockSparseMatrix}
