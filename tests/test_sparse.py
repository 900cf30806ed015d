"""Sparse formats against SciPy, and the sparse kernels against the NumPy/SciPy reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from workbench import sparse
from workbench.errors import InputError
from workbench.runtime import get_runtime
from workbench.sparse import BlockSparseMatrix, CSCMatrix, CSRMatrix

from .conftest import DEVICE_IDS, rel_error

RNG = np.random.default_rng(0)


def random_dense(m, n, density, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((m, n)) * (rng.random((m, n)) < density)).astype(np.float32)


def power_law(m, n, mean, seed=0):
    """Rows with Zipf-like lengths (a few very long rows), columns uniform, canonical CSR."""
    rng = np.random.default_rng(seed)
    lengths = np.minimum(rng.zipf(1.6, m), n)
    lengths = np.maximum(1, (lengths * mean / lengths.mean()).astype(int))
    lengths = np.minimum(lengths, n)
    lengths[3] = n  # one full row
    lengths[5] = 0  # and an empty one
    rows = [np.sort(rng.choice(n, size=l, replace=False)) for l in lengths]
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate(rows)
    return CSRMatrix(rng.standard_normal(indices.size), indices, indptr, (m, n))


# -- formats ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, to", [(CSRMatrix, "tocsr"), (CSCMatrix, "tocsc")])
@pytest.mark.parametrize("shape, density", [((37, 53), 0.1), ((1, 9), 0.5), ((8, 8), 0.0), ((64, 3), 1.0)])
def test_compressed_formats_are_scipys(cls, to, shape, density):
    d = random_dense(*shape, density)
    a = cls.from_dense(d)
    ref = getattr(sp.csr_matrix(d), to)()
    ref.sort_indices()
    np.testing.assert_array_equal(a.indptr, ref.indptr)
    np.testing.assert_array_equal(a.indices, ref.indices)
    np.testing.assert_array_equal(a.data, ref.data)
    assert a.nnz == ref.nnz and a.shape == shape
    np.testing.assert_array_equal(a.to_dense(), d)
    back = cls.from_scipy(a.to_scipy())
    np.testing.assert_array_equal(back.to_dense(), d)
    np.testing.assert_array_equal(a.transpose().to_dense(), d.T)
    assert a.indices.dtype == np.uint16  # narrow indices: the minor dimension is <= 65,536
    assert a.to_scipy().indices.dtype == np.int32
    assert a.nbytes == 6 * a.nnz + 4 * (shape[cls._major] + 1)


def test_index_width_follows_the_minor_dimension():
    wide = CSRMatrix([1.0, 2.0], [0, 70_000], [0, 1, 2], (2, 70_001))
    assert wide.indices.dtype == np.int32 and wide.nbytes == 8 * 2 + 4 * 3
    assert CSRMatrix([1.0], [65_535], [0, 1], (1, 65_536)).indices.dtype == np.uint16
    assert CSCMatrix.from_dense(np.eye(4, 70_001)).indices.dtype == np.uint16  # CSC indexes rows
    assert CSCMatrix.from_dense(np.eye(70_001, 4)).indices.dtype == np.int32


def test_unsorted_and_duplicate_indices_are_canonicalized():
    # row 0: columns 3, 1, 3 (a duplicate); row 1 empty; row 2: 0
    a = CSRMatrix([1.0, 2.0, 4.0, 5.0], [3, 1, 3, 0], [0, 3, 3, 4], (3, 4))
    np.testing.assert_array_equal(a.indices, [1, 3, 0])
    np.testing.assert_array_equal(a.indptr, [0, 2, 2, 3])
    np.testing.assert_array_equal(a.data, [2.0, 5.0, 5.0])
    ref = sp.csr_matrix(([1.0, 2.0, 4.0, 5.0], [3, 1, 3, 0], [0, 3, 3, 4]), shape=(3, 4))
    ref.sum_duplicates()
    np.testing.assert_array_equal(a.to_dense(), ref.toarray())


@pytest.mark.parametrize("shape, block",
                         [((64, 96), (16, 16)), ((50, 70), (16, 8)), ((5, 5), (4, 4)), ((32, 32), (32, 32))])
def test_block_sparse_round_trips_and_pads(shape, block):
    d = random_dense(*shape, 0.02)
    d[: block[0], : block[1]] = 1.0  # at least one block
    a = BlockSparseMatrix.from_dense(d, block)
    np.testing.assert_array_equal(a.to_dense(), d)
    np.testing.assert_array_equal(a.transpose().to_dense(), d.T)
    assert a.padded_shape[0] % block[0] == 0 and a.padded_shape[0] >= shape[0]
    s = a.to_scipy()
    np.testing.assert_array_equal(s.toarray(), d)
    if a.padded_shape == shape:
        ref = sp.bsr_matrix(d, blocksize=block)
        ref.sort_indices()
        ref.eliminate_zeros()
        np.testing.assert_array_equal(BlockSparseMatrix.from_scipy(ref).to_dense(), d)
        assert s.format == "bsr"


def test_memory_at_ninety_percent_sparsity_is_a_fifth_of_dense():
    d = random_dense(512, 512, 0.1)
    assert CSRMatrix.from_dense(d).nbytes <= d.nbytes / 5
    blocks = (RNG.random((16, 16)) < 0.1).astype(np.float32)
    db = np.kron(blocks, np.ones((32, 32), np.float32)) * RNG.standard_normal((512, 512)).astype(np.float32)
    b = BlockSparseMatrix.from_dense(db, (32, 32))
    assert b.nbytes <= db.nbytes / 5


@pytest.mark.parametrize("bad, arg", [
    (lambda: CSRMatrix.from_dense(np.zeros(3)), "dense"),
    (lambda: CSRMatrix.from_dense(np.zeros((2, 2, 2))), "dense"),
    (lambda: CSRMatrix.from_dense(np.array([[np.nan]])), "dense"),
    (lambda: CSRMatrix([1.0], [5], [0, 1], (1, 3)), "indices"),
    (lambda: CSRMatrix([1.0], [0], [0, 2], (1, 3)), "indptr"),
    (lambda: CSRMatrix([1.0], [0], [0, 1, 1], (1, 3)), "indptr"),
    (lambda: CSRMatrix([np.inf], [0], [0, 1], (1, 3)), "data"),
    (lambda: BlockSparseMatrix.from_dense(np.ones((4, 4)), (0, 2)), "block_shape"),
    (lambda: BlockSparseMatrix(np.ones((2, 2, 2)), [0, 0], [0, 2], (2, 4)), "indices"),
    (lambda: sparse.spmv(np.ones((2, 2)), np.ones(2), rt="numpy"), "a"),
    (lambda: sparse.spmv(CSRMatrix.from_dense(np.eye(3)), np.ones(2), rt="numpy"), "x"),
    (lambda: sparse.spmm(CSRMatrix.from_dense(np.eye(3)), np.ones((2, 2)), "numpy"), "b"),
    (lambda: sparse.spmv(CSRMatrix.from_dense(np.eye(3)), np.array([1.0, np.nan, 0.0]), rt="numpy"), "x"),
])
def test_bad_input_names_the_argument(bad, arg):
    with pytest.raises(InputError) as err:
        bad()
    assert err.value.argument == arg


# -- kernels ------------------------------------------------------------------------------------
MATRICES = {
    "random": lambda: CSRMatrix.from_dense(random_dense(300, 200, 0.05)),
    "power-law": lambda: power_law(500, 400, 8),
    "all-zero": lambda: CSRMatrix.from_dense(np.zeros((17, 9))),
    "one-row": lambda: CSRMatrix.from_dense(random_dense(1, 70, 0.5)),
    # more columns than uint16 indices address: the int32-index kernels
    "wide": lambda: CSRMatrix(RNG.standard_normal(600).astype(np.float32), RNG.integers(0, 70_000, 600),
                              np.arange(0, 601, 20), (30, 70_000)),
}


# The NumPy backend ignores ``variant`` (it is SciPy's product): it runs once, not five times.
SPMV_CASES = [(d, v) for d in DEVICE_IDS for v in (None, "scalar", "vector", "split", "adaptive")
              if d != "numpy" or v is None]


@pytest.mark.parametrize("name", sorted(MATRICES))
@pytest.mark.parametrize("device, variant", SPMV_CASES)
def test_spmv_matches_a_dense_product(device, name, variant):
    a = MATRICES[name]()
    x = RNG.standard_normal(a.shape[1]).astype(np.float32)
    ref = a.to_scipy().toarray().astype(np.float64) @ x.astype(np.float64)  # not SciPy's SpMV
    y = sparse.spmv(a, x, rt=get_runtime(device), variant=variant)
    assert y.shape == (a.shape[0],) and y.dtype == np.float32
    assert rel_error(y, ref) < 1e-5 if np.any(ref) else not np.any(y)


def test_split_units_cover_long_rows(cl_runtime):
    a = power_law(300, 5000, 20, seed=3)
    x = RNG.standard_normal(a.shape[1]).astype(np.float32)
    ref = a.to_scipy().astype(np.float64) @ x
    for chunk in (1, 7, 64):
        prob = sparse.SpmvProblem(a, x, cl_runtime, variant="split", params={"CHUNK": chunk})
        assert rel_error(prob.run(), ref) < 1e-5


def test_spmm_with_int32_indices(runtime):
    a = MATRICES["wide"]()
    assert a.indices.dtype == np.int32
    b = RNG.standard_normal((a.shape[1], 3)).astype(np.float32)
    assert rel_error(sparse.spmm(a, b, runtime), a.to_scipy().astype(np.float64) @ b) < 1e-5


@pytest.mark.parametrize("nnz, long_chunk", [(16, 16), (64, 100), (1024, 8192)])
def test_adaptive_blocks_cover_every_row_once(cl_runtime, nnz, long_chunk):
    from workbench.sparse.ops import adaptive_plan

    a = power_law(400, 3000, 12, seed=5)
    a = CSRMatrix(a.data, a.indices, np.concatenate([a.indptr, np.full(300, a.nnz)]),
                  (a.shape[0] + 300, a.shape[1]))
    blocks, rows, first, count = adaptive_plan(a, nnz, long_chunk)
    stream, chunk = blocks[blocks[:, 1] >= 0], blocks[blocks[:, 1] < 0]
    covered = np.concatenate([np.arange(r, r + n) for r, n, _, _ in stream] + [rows])
    assert np.array_equal(np.sort(covered), np.arange(a.shape[0]))  # trailing empty rows included
    assert np.all(stream[:, 3] - stream[:, 2] <= 2 * nnz)
    assert np.all(chunk[:, 3] - chunk[:, 2] <= long_chunk) and count.sum() == len(chunk)
    assert np.all(a.lengths()[rows] > nnz)
    x = RNG.standard_normal(a.shape[1]).astype(np.float32)
    p = sparse.SpmvProblem(a, x, cl_runtime, variant="adaptive",
                           params={"WG": 64, "NNZ": nnz, "LONG": long_chunk})
    assert rel_error(p.run(), a.to_scipy().astype(np.float64) @ x) < 1e-5


@pytest.mark.parametrize("fmt", ["csr", "csc", "bsr", "bsr-odd"])
@pytest.mark.parametrize("n", [1, 5, 130])
def test_spmm_matches_scipy(runtime, fmt, n):
    d = random_dense(70, 45, 0.1)
    d[:, 20:] *= RNG.random((70, 25)) < 0.5
    a = {"csr": CSRMatrix.from_dense, "csc": CSCMatrix.from_dense,
         "bsr": lambda m: BlockSparseMatrix.from_dense(m, (16, 16)),
         "bsr-odd": lambda m: BlockSparseMatrix.from_dense(m, (3, 5))}[fmt](d)
    b = RNG.standard_normal((45, n)).astype(np.float32)
    c = sparse.spmm(a, b, runtime)
    assert c.shape == (70, n) and rel_error(c, d.astype(np.float64) @ b) < 1e-5
    x = b[:, 0]
    assert rel_error(sparse.spmv(a, x, rt=runtime), d.astype(np.float64) @ x) < 1e-5


@pytest.mark.parametrize("tile",
                         [(64, 4, 4), (64, 8, 4), (128, 8, 8), (32, 4, 8), (64, 4, 4, 0), (32, 2, 4, 0)])
def test_bsr_kernel_tiles_match_numpy(cl_runtime, tile):
    tw, tm, tn, v4 = (*tile, 1)[:4]
    d = random_dense(100, 90, 1.0) * np.kron(RNG.random((7, 6)) < 0.4, np.ones((16, 16), bool))[:100, :90]
    a = BlockSparseMatrix.from_dense(d, (16, 16))
    b = RNG.standard_normal((90, 70)).astype(np.float32)
    p = {"TW": tw, "TM": tm, "TN": tn, "V4": v4}  # V4 0: the scalar bsr_matmul
    from workbench.sparse.ops import bsr4_fits

    if v4 and not bsr4_fits({"BR": 16, "BC": 16, **p}, cl_runtime):
        pytest.skip(f"tile {tile} needs more work-items than this device allows")
    c = sparse.SpmmProblem(a, b, cl_runtime, params=p).run()
    assert rel_error(c, d.astype(np.float64) @ b) < 1e-5


def test_bsr_matmul4_rejects_a_tile_that_does_not_fit(cl_runtime):
    a = BlockSparseMatrix.from_dense(np.ones((16, 16)), (16, 16))
    with pytest.raises(InputError) as err:
        sparse.SpmmProblem(a, np.ones((16, 4), np.float32), cl_runtime,
                           params={"TW": 64, "TM": 3, "TN": 4, "V4": 1})
    assert err.value.argument == "params"


def test_spmm_all_zero_and_empty(runtime):
    z = BlockSparseMatrix.from_dense(np.zeros((32, 32)), (16, 16))
    assert z.nblocks == 0
    np.testing.assert_array_equal(sparse.spmm(z, np.ones((32, 3)), runtime), np.zeros((32, 3)))
    e = CSRMatrix.from_dense(np.zeros((0, 4)))
    assert sparse.spmv(e, np.ones(4), rt=runtime).shape == (0,)


def test_variant_choice_follows_row_statistics(runtime):
    even = CSRMatrix.from_dense(random_dense(400, 400, 0.1))
    skewed = power_law(2000, 20000, 8, seed=1)
    v_even, _ = sparse.spmv_variant(even, runtime)
    v_skew, _ = sparse.spmv_variant(skewed, runtime)
    if runtime.kind == "opencl-gpu":
        assert (v_even, v_skew) == ("adaptive", "adaptive")
    else:
        assert v_even == "scalar"


def test_spmv_defaults_are_one_set_whichever_way_a_variant_is_chosen(cl_runtime):
    """The variant chosen from the row statistics and the same variant asked for by name run with
    the same tunables: kernels/spmv.tuning.json is the only source of them."""
    rng = np.random.default_rng(3)
    even = CSRMatrix.from_scipy(sp.random(300, 300, density=0.05, random_state=1, format="csr"))
    rows = np.zeros((300, 5000), np.float32)
    rows[0, :] = rng.random(5000) + 0.1  # one row far longer than the rest (CPUs: "split")
    rows[1:, :2] = 1.0
    skewed = CSRMatrix.from_dense(rows)
    chosen = set()
    for a in (even, skewed):
        x = np.ones(a.shape[1], np.float32)
        variant, params = sparse.spmv_variant(a, cl_runtime)
        chosen.add(variant)
        forced = sparse.SpmvProblem(a, x, cl_runtime, variant=variant)
        assert forced.params == params == sparse.SpmvProblem(a, x, cl_runtime).params
    assert chosen == ({"adaptive"} if cl_runtime.kind == "opencl-gpu" else {"scalar", "split"})
