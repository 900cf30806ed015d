"""Layers with hand-written forward and backward passes; the matrix products go through
:func:`workbench.ops.matmul` on the runtime passed in, everything else runs in NumPy on the host.

Shapes: ``N`` batch, ``C`` channels, ``H x W`` image, ``T`` tokens, ``D`` model width.
Linear layers compute ``y = x W + b`` with ``W`` of shape (in, out); convolutions keep the
field's (C_out, C_in, kh, kw) weight layout and run as im2col + one matrix product.

Two hooks serve the compression packages without subclassing:

* ``layer.fake_quant`` (quantization-aware training): an object with ``weight(w) -> (w_q, mask)``
  and ``activation(x) -> (x_q, mask)``; the forward pass uses the fake-quantized values and the
  backward pass multiplies gradients by the masks (the straight-through estimator: gradient 1
  inside the clipping range, 0 outside).
* ``layer.product`` (inference on other kernels): a callable ``(x2d, rt) -> y2d`` that replaces
  the float product *and* bias: :class:`workbench.quant.QuantizedLinear` (integer kernels),
  :class:`workbench.sparse.model.SparseLinear` (sparse kernels). ``layer.quantized`` is the
  old name of the same hook, kept as an alias.
* ``layer.prune_mask`` (unstructured pruning): a 0/1 array of the weight's shape; the forward
  pass uses ``weight * mask`` and the backward pass masks the weight gradient, so pruned weights
  stay zero through fine-tuning whatever the optimizer's state. Saved with the model.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import InputError
from ..ops import matmul

FLOAT = np.float32


def _he(rng: np.random.Generator, shape, fan_in: int) -> np.ndarray:
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(FLOAT)


class Layer:
    """Base class: no parameters, identity."""

    kind = "Layer"
    fake_quant = None
    product = None  # the replacement product (see the module docstring)
    prune_mask = None

    @property
    def quantized(self):
        """The old name of :attr:`product` (kept for callers written against it)."""
        return self.product

    @quantized.setter
    def quantized(self, value) -> None:
        self.product = value

    def params(self) -> dict[str, np.ndarray]:
        """Trainable arrays by name (updated in place by the optimizers)."""
        return {}

    def buffers(self) -> dict[str, np.ndarray]:
        """Saved, non-trainable arrays (masks)."""
        return {}

    def children(self) -> dict[str, "Layer"]:
        return {}

    def forward(self, x: np.ndarray, rt, train: bool = False) -> np.ndarray:
        return x

    def backward(self, g: np.ndarray, rt) -> np.ndarray:
        return g

    def config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.config().items())
        return f"{self.kind}({args})"


class Dense(Layer):
    """Fully connected layer: ``y = x W + b``.

    Shapes: x (..., in) -> y (..., out); W (in, out); b (out,). Leading dimensions are flattened
    into one batch of rows for the product. The output channel axis of ``W`` is 1.
    """

    kind = "Dense"
    channel_axis = 1

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator | None = None):
        rng = rng or np.random.default_rng(0)
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.weight = _he(rng, (self.n_in, self.n_out), self.n_in)
        self.bias = np.zeros(self.n_out, FLOAT)
        self.grads: dict[str, np.ndarray] = {}

    def params(self):
        return {"weight": self.weight, "bias": self.bias}

    def buffers(self):
        return {} if self.prune_mask is None else {"prune_mask": self.prune_mask}

    def effective_weight(self) -> np.ndarray:
        """The weight the forward pass uses: ``weight * prune_mask`` when pruned."""
        return self.weight if self.prune_mask is None else self.weight * self.prune_mask

    def config(self):
        return {"n_in": self.n_in, "n_out": self.n_out}

    def weight_matrix(self) -> np.ndarray:
        """The (K, N) matrix of the product, output channels on axis 1 (pruned entries zero)."""
        return self.effective_weight()

    def forward(self, x, rt, train=False):
        if x.shape[-1] != self.n_in:
            raise InputError("x", f"{self!r} expects {self.n_in} features, got shape {x.shape}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.n_in)
        if self.product is not None and not train:
            return self.product(x2, rt).reshape(*lead, self.n_out)
        w = self.effective_weight()
        self._xmask = self._wmask = None
        if self.fake_quant is not None:
            x2, self._xmask = self.fake_quant.activation(x2)
            w, self._wmask = self.fake_quant.weight(w)
        if train:
            self._x, self._w = x2, w
        y = matmul(x2, w, rt) + self.bias
        return y.reshape(*lead, self.n_out)

    def backward(self, g, rt):
        lead = g.shape[:-1]
        g2 = np.ascontiguousarray(g.reshape(-1, self.n_out), dtype=FLOAT)
        dw = matmul(self._x.T, g2, rt)
        if self._wmask is not None:
            dw = dw * self._wmask
        if self.prune_mask is not None:
            dw = dw * self.prune_mask
        self.grads = {"weight": dw, "bias": g2.sum(axis=0)}
        dx = matmul(g2, self._w.T, rt)
        if self._xmask is not None:
            dx = dx * self._xmask
        return dx.reshape(*lead, self.n_in)


class Conv2d(Layer):
    """2-D convolution, stride 1, zero padding ``padding``, as im2col + matmul.

    ``y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] * x_pad[n, c, i + u, j + v]``

    Shapes: x (N, C_in, H, W) -> y (N, C_out, H + 2p - k + 1, W + 2p - k + 1); W (C_out, C_in,
    k, k); b (C_out,). The im2col matrix has rows (n, i, j) and columns (c, u, v), so the product
    is (N Ho Wo, C_in k k) x (C_in k k, C_out). Output channels: axis 0 of ``W``.
    """

    kind = "Conv2d"
    channel_axis = 0

    def __init__(self, c_in: int, c_out: int, *, kernel: int = 3, padding: int = 1,
                 rng: np.random.Generator | None = None):
        rng = rng or np.random.default_rng(0)
        self.c_in, self.c_out, self.kernel, self.padding = int(c_in), int(c_out), int(kernel), int(padding)
        fan_in = self.c_in * self.kernel ** 2
        self.weight = _he(rng, (self.c_out, self.c_in, self.kernel, self.kernel), fan_in)
        self.bias = np.zeros(self.c_out, FLOAT)
        self.grads: dict[str, np.ndarray] = {}

    def params(self):
        return {"weight": self.weight, "bias": self.bias}

    def config(self):
        return {"c_in": self.c_in, "c_out": self.c_out, "kernel": self.kernel, "padding": self.padding}

    def buffers(self):
        return {} if self.prune_mask is None else {"prune_mask": self.prune_mask}

    def effective_weight(self) -> np.ndarray:
        return self.weight if self.prune_mask is None else self.weight * self.prune_mask

    def weight_matrix(self) -> np.ndarray:
        """The (C_in k k, C_out) matrix of the product (pruned entries zero)."""
        return np.ascontiguousarray(self.effective_weight().reshape(self.c_out, -1).T)

    def im2col(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) -> (N Ho Wo, C k k) patches."""
        p, k = self.padding, self.kernel
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        win = sliding_window_view(xp, (k, k), axis=(2, 3))  # (N, C, Ho, Wo, k, k)
        n, c, ho, wo = win.shape[:4]
        self._geom = (n, ho, wo, xp.shape)
        return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(n * ho * wo, c * k * k)

    def forward(self, x, rt, train=False):
        if x.ndim != 4 or x.shape[1] != self.c_in:
            raise InputError("x", f"{self!r} expects (N, {self.c_in}, H, W), got shape {x.shape}")
        cols = self.im2col(x)
        n, ho, wo, _ = self._geom
        if self.product is not None and not train:
            y = self.product(cols, rt)
        else:
            w = self.weight_matrix()
            self._xmask = self._wmask = None
            if self.fake_quant is not None:
                cols, self._xmask = self.fake_quant.activation(cols)
                w, self._wmask = self.fake_quant.weight(w)
            if train:
                self._cols, self._w = cols, w
            y = matmul(cols, w, rt) + self.bias
        return np.ascontiguousarray(y.reshape(n, ho, wo, self.c_out).transpose(0, 3, 1, 2))

    def backward(self, g, rt):
        n, ho, wo, xp_shape = self._geom
        gm = np.ascontiguousarray(g.transpose(0, 2, 3, 1).reshape(-1, self.c_out), dtype=FLOAT)
        dwm = matmul(self._cols.T, gm, rt)  # (C k k, C_out)
        if self._wmask is not None:
            dwm = dwm * self._wmask
        dw = np.ascontiguousarray(dwm.T).reshape(self.weight.shape)
        if self.prune_mask is not None:
            dw = dw * self.prune_mask
        self.grads = {"weight": dw, "bias": gm.sum(axis=0)}
        dcols = matmul(gm, self._w.T, rt)
        if self._xmask is not None:
            dcols = dcols * self._xmask
        k, p = self.kernel, self.padding
        dcols = dcols.reshape(n, ho, wo, self.c_in, k, k)
        dxp = np.zeros(xp_shape, FLOAT)
        for u in range(k):
            for v in range(k):
                dxp[:, :, u:u + ho, v:v + wo] += dcols[:, :, :, :, u, v].transpose(0, 3, 1, 2)
        return dxp[:, :, p:xp_shape[2] - p, p:xp_shape[3] - p] if p else dxp


class ReLU(Layer):
    """``y = max(x, 0)``."""

    kind = "ReLU"

    def forward(self, x, rt, train=False):
        if train:
            self._pos = x > 0
        return np.maximum(x, 0, dtype=FLOAT)

    def backward(self, g, rt):
        return g * self._pos


class MaxPool2d(Layer):
    """Non-overlapping ``size x size`` max pooling: (N, C, H, W) -> (N, C, H // s, W // s)
    (trailing rows and columns that do not fill a window are dropped)."""

    kind = "MaxPool2d"

    def __init__(self, size: int = 2):
        self.size = int(size)

    def config(self):
        return {"size": self.size}

    def forward(self, x, rt, train=False):
        s = self.size
        n, c, h, w = x.shape
        xc = x[:, :, :h - h % s, :w - w % s]
        win = xc.reshape(n, c, h // s, s, w // s, s)
        y = win.max(axis=(3, 5))
        if train:
            self._shape = x.shape
            # One winner per window (the first maximum) so gradients are not duplicated on ties.
            flat = win.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // s, w // s, s * s)
            self._arg = flat.argmax(axis=-1)
        return y

    def backward(self, g, rt):
        s = self.size
        n, c, h, w = self._shape
        onehot = np.zeros((n, c, h // s, w // s, s * s), FLOAT)
        np.put_along_axis(onehot, self._arg[..., None], g[..., None], axis=-1)
        blocks = onehot.reshape(n, c, h // s, w // s, s, s).transpose(0, 1, 2, 4, 3, 5)
        dx = np.zeros(self._shape, FLOAT)
        dx[:, :, :h - h % s, :w - w % s] = blocks.reshape(n, c, h - h % s, w - w % s)
        return dx


class Reshape(Layer):
    """Reshape every sample: (N, *in) -> (N, *shape)."""

    kind = "Reshape"

    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)

    def config(self):
        return {"shape": list(self.shape)}

    def forward(self, x, rt, train=False):
        self._in = x.shape
        if int(np.prod(x.shape[1:])) != int(np.prod(self.shape)):
            raise InputError("x", f"cannot reshape samples of shape {x.shape[1:]} to {self.shape}")
        return x.reshape(x.shape[0], *self.shape)

    def backward(self, g, rt):
        return g.reshape(self._in)


class Flatten(Reshape):
    """(N, ...) -> (N, features)."""

    kind = "Flatten"

    def __init__(self):
        self.shape = (-1,)

    def config(self):
        return {}

    def forward(self, x, rt, train=False):
        self._in = x.shape
        return x.reshape(x.shape[0], -1)


def softmax(s: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class MultiHeadSelfAttention(Layer):
    """Multi-head self-attention with a residual connection.

    ``Q = X Wq + bq``, ``K = X Wk + bk``, ``V = X Wv + bv`` split into H heads of width
    d (``head_dim``, default D / H; H d may differ from D after heads are pruned away);
    ``O_h = m_h softmax(Q_h K_h^T / sqrt(d)) V_h``; ``Y = X + concat(O_h) Wo + bo``.

    ``head_mask`` (H,) of 0/1 is the ``m_h`` above: a pruned head contributes nothing (the pruning
    package sets it). Shapes: X (N, T, D) -> Y (N, T, D). The four projections are
    :class:`Dense` children (``q``, ``k``, ``v``, ``o``), so they are quantized like any linear
    layer; the per-head score and value products run in NumPy on the host.
    """

    kind = "MultiHeadSelfAttention"

    def __init__(self, d_model: int, heads: int, *, rng: np.random.Generator | None = None,
                 head_dim: int | None = None):
        rng = rng or np.random.default_rng(0)
        if head_dim is None and (heads < 1 or d_model % heads):
            raise InputError("heads", f"d_model={d_model} is not divisible by heads={heads}")
        self.d_model, self.heads = int(d_model), int(heads)
        self.head_dim = int(head_dim) if head_dim is not None else self.d_model // self.heads
        if self.heads < 1 or self.head_dim < 1:
            raise InputError("heads", f"need at least one head of width >= 1, got {heads} x {head_dim}")
        inner = self.heads * self.head_dim
        self.q, self.k, self.v = (Dense(d_model, inner, rng) for _ in range(3))
        self.o = Dense(inner, d_model, rng)
        for lin in (self.q, self.k, self.v):  # Xavier-like scale keeps initial scores soft
            lin.weight *= np.float32(np.sqrt(0.5))
        self.head_mask = np.ones(self.heads, FLOAT)

    def children(self):
        return {"q": self.q, "k": self.k, "v": self.v, "o": self.o}

    def buffers(self):
        return {"head_mask": self.head_mask}

    def config(self):
        out = {"d_model": self.d_model, "heads": self.heads}
        if self.head_dim * self.heads != self.d_model:
            out["head_dim"] = self.head_dim
        return out

    def _split(self, z, n, t):
        return z.reshape(n, t, self.heads, -1).transpose(0, 2, 1, 3)  # (N, H, T, d)

    def forward(self, x, rt, train=False):
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise InputError("x", f"{self!r} expects (N, T, {self.d_model}), got shape {x.shape}")
        n, t, _ = x.shape
        q = self._split(self.q.forward(x, rt, train), n, t)
        k = self._split(self.k.forward(x, rt, train), n, t)
        v = self._split(self.v.forward(x, rt, train), n, t)
        scale = np.float32(1.0 / np.sqrt(self.head_dim))
        p = softmax(np.matmul(q, k.transpose(0, 1, 3, 2)) * scale)
        o = np.matmul(p, v) * self.head_mask[None, :, None, None]
        if train:
            self._cache = (q, k, v, p, scale)
        concat = np.ascontiguousarray(o.transpose(0, 2, 1, 3)).reshape(n, t, self.heads * self.head_dim)
        return x + self.o.forward(concat, rt, train)

    def backward(self, g, rt):
        q, k, v, p, scale = self._cache
        n, h, t, _ = q.shape
        dconcat = self.o.backward(g, rt)
        do = self._split(dconcat, n, t) * self.head_mask[None, :, None, None]
        dp = np.matmul(do, v.transpose(0, 1, 3, 2))
        dv = np.matmul(p.transpose(0, 1, 3, 2), do)
        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) * scale
        dq = np.matmul(ds, k)
        dk = np.matmul(ds.transpose(0, 1, 3, 2), q)
        width = self.heads * self.head_dim
        merge = lambda z: np.ascontiguousarray(z.transpose(0, 2, 1, 3)).reshape(n, t, width)
        dx = g + self.q.backward(merge(dq), rt) + self.k.backward(merge(dk), rt)
        return dx + self.v.backward(merge(dv), rt)

    def head_importance(self) -> np.ndarray:
        """L2 norm of each head's slice of the output projection (a simple saliency)."""
        return np.linalg.norm(self.o.weight.reshape(self.heads, self.head_dim, -1), axis=(1, 2))


LAYERS = {cls.kind: cls for cls in (Dense, Conv2d, ReLU, MaxPool2d, Reshape, Flatten,
                                    MultiHeadSelfAttention)}
