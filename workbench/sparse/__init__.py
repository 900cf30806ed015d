"""Pruning, sparse formats and sparse kernels on OpenCL.

Formats (:mod:`.formats`): :class:`CSRMatrix`, :class:`CSCMatrix`, :class:`BlockSparseMatrix`.
Kernels (:mod:`.ops`): :func:`spmv` (scalar, vector and load-balanced row-splitting variants),
:func:`spmm` (CSR and block-sparse times dense).
"""

from .formats import FORMATS, BlockSparseMatrix, CSCMatrix, CSRMatrix, default_block_shape
from .ops import SPMV_VARIANTS, SpmmProblem, SpmvProblem, as_sparse, spmm, spmv, spmv_variant

__all__ = [
    "FORMATS", "SPMV_VARIANTS", "BlockSparseMatrix", "CSCMatrix", "CSRMatrix", "SpmmProblem",
    "SpmvProblem", "as_sparse", "default_block_shape", "spmm", "spmv", "spmv_variant",
]
