"""Run a pruned model's linear layers on the sparse kernels.

:func:`sparsify` attaches a :class:`SparseLinear` to each pruned Dense/Conv2d through the layers'
inference hook (``layer.product``, see :mod:`workbench.nn.layers`): the forward product
``y = x W + b`` becomes ``y^T = W^T x^T`` with ``W^T`` (out, in) stored as CSR or block-sparse
and ``x^T`` dense, i.e. :func:`~workbench.sparse.spmm`. Training still uses the dense masked path.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..runtime import Runtime, resolve_rt
from .formats import BlockSparseMatrix, CSRMatrix


class SparseLinear:
    """``(x2d, rt) -> x2d W + b`` with ``W^T`` in ``fmt`` (``"csr"`` or ``"bsr"``)."""

    def __init__(self, layer, fmt: str = "csr", *, block_shape=None, rt=None):
        if fmt not in ("csr", "bsr"):
            raise InputError("fmt", f"expected 'csr' or 'bsr', got {fmt!r}")
        w_t = np.ascontiguousarray(layer.weight_matrix().T)  # (out, in)
        self.format = fmt
        self.matrix = (CSRMatrix.from_dense(w_t) if fmt == "csr"
                       else BlockSparseMatrix.from_dense(w_t, block_shape, rt))
        self.bias = layer.bias.copy()

    def __call__(self, x2d, rt) -> np.ndarray:
        from .ops import spmm

        return np.ascontiguousarray(spmm(self.matrix, np.ascontiguousarray(x2d.T), rt).T) + self.bias

    @property
    def nbytes(self) -> int:
        return self.matrix.nbytes + self.bias.nbytes


def sparsify(model, fmt: str = "auto", *, rt: Runtime | str | None = None, batch: int = 64,
             min_sparsity: float = 0.0) -> dict[str, str]:
    """Put every pruned Dense/Conv2d (sparsity above ``min_sparsity``) on sparse kernels.

    ``fmt``: ``"csr"``, ``"bsr"``, or ``"auto"`` (per layer, :func:`~workbench.sparse.
    choose_format` for a batch of ``batch`` rows; a layer where dense wins stays dense).
    Returns the format chosen per layer; :func:`densify` undoes it.
    """
    from .choose import choose_format

    rt = resolve_rt(rt)
    if fmt not in ("auto", "csr", "bsr"):
        raise InputError("fmt", f"expected 'auto', 'csr' or 'bsr', got {fmt!r}")
    out = {}
    for name, layer in model.linear_layers():
        w = layer.weight_matrix()
        if 1.0 - np.count_nonzero(w) / w.size <= min_sparsity:
            out[name] = "dense"
            continue
        choice = choose_format(w.T, rt, n=batch).format if fmt == "auto" else fmt
        layer.product = None if choice == "dense" else SparseLinear(layer, choice, rt=rt)
        out[name] = choice
    return out


def densify(model) -> None:
    """Remove the sparse inference hooks that :func:`sparsify` attached."""
    for _, layer in model.linear_layers():
        if isinstance(layer.product, SparseLinear):
            layer.product = None
