"""Pruning, sparse formats and sparse kernels on OpenCL.

Formats (:mod:`.formats`): :class:`CSRMatrix`, :class:`CSCMatrix`, :class:`BlockSparseMatrix`.
Kernels (:mod:`.ops`): :func:`spmv` (scalar, vector and load-balanced row-splitting variants),
:func:`spmm` (CSR and block-sparse times dense). Pruning (:mod:`.prune`, :mod:`.gradual`):
magnitude, global, structured (channels, filters, heads), gradual on Zhu & Gupta's schedule.
Format choice (:mod:`.choose`): :func:`choose_format`, :func:`crossover_sweep`,
:class:`DynamicSparseActivations`.
"""

from .choose import (
    DynamicSparseActivations,
    FormatChoice,
    choose_format,
    crossover_sparsity,
    crossover_sweep,
    format_latencies,
    predict_latencies,
)
from .formats import FORMATS, BlockSparseMatrix, CSCMatrix, CSRMatrix, default_block_shape
from .gradual import GradualPruner, PruneStep, load_prune_runs, polynomial_schedule
from .model import SparseLinear, densify, sparsify
from .ops import SPMV_VARIANTS, SpmmProblem, SpmvProblem, as_sparse, spmm, spmv, spmv_variant
from .prune import (
    global_magnitude_prune,
    magnitude_prune,
    model_sparsity,
    prune_channels,
    prune_filters,
    prune_heads,
)

__all__ = [
    "DynamicSparseActivations", "FormatChoice", "GradualPruner", "PruneStep", "choose_format",
    "crossover_sparsity", "crossover_sweep", "format_latencies", "global_magnitude_prune", "load_prune_runs",
    "magnitude_prune",
    "model_sparsity", "polynomial_schedule", "predict_latencies", "prune_channels", "prune_filters",
    "prune_heads", "SparseLinear", "densify", "sparsify",
    "FORMATS", "SPMV_VARIANTS", "BlockSparseMatrix", "CSCMatrix", "CSRMatrix", "SpmmProblem",
    "SpmvProblem", "as_sparse", "default_block_shape", "spmm", "spmv", "spmv_variant",
]
