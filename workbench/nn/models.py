"""Small classifiers built from :mod:`workbench.nn.layers`: ``MLP``, ``ConvNet``, ``AttentionNet``.

A model is a :class:`Sequential` stack built deterministically from its constructor arguments
(``config()``), so a saved file holds only those arguments and the arrays (no pickle).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..errors import InputError
from ..runtime import Runtime, resolve_rt
from ..validation import as_array
from .layers import (
    FLOAT,
    LAYERS,
    Conv2d,
    Dense,
    Flatten,
    Layer,
    MaxPool2d,
    MultiHeadSelfAttention,
    ReLU,
    Reshape,
)


class Sequential:
    """A stack of layers; ``forward`` maps (N, features) float32 inputs to (N, classes) logits."""

    kind = "Sequential"

    def __init__(self, layers: list[Layer]):
        self.layers = list(layers)

    # -- structure ------------------------------------------------------------------------------
    def named_layers(self) -> Iterator[tuple[str, Layer]]:
        """Every layer, nested children included, with dotted names ``"3"``, ``"1.q"``."""

        def walk(prefix: str, layer: Layer):
            yield prefix, layer
            for name, child in layer.children().items():
                yield from walk(f"{prefix}.{name}", child)

        for i, layer in enumerate(self.layers):
            yield from walk(str(i), layer)

    def linear_layers(self) -> list[tuple[str, Layer]]:
        """The layers that own a weight matrix (Dense and Conv2d), in forward order."""
        return [(n, l) for n, l in self.named_layers() if isinstance(l, (Dense, Conv2d))]

    def layer(self, name: str) -> Layer:
        for n, l in self.named_layers():
            if n == name:
                return l
        raise InputError("name", f"no layer {name!r}; layers: {[n for n, _ in self.named_layers()]}")

    def parameters(self) -> list[tuple[str, Layer, str]]:
        """(layer name, layer, parameter name) for every trainable array."""
        return [(n, l, p) for n, l in self.named_layers() for p in l.params()]

    def state(self) -> dict[str, np.ndarray]:
        """All arrays (parameters and buffers) by ``"<layer>.<name>"``."""
        out = {}
        for n, l in self.named_layers():
            for p, arr in {**l.params(), **l.buffers()}.items():
                out[f"{n}.{p}"] = arr
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays in place; every name must exist with the same shape. Pruning masks
        (``<layer>.prune_mask``) in ``state`` are attached to their layers."""
        layers = dict(self.named_layers())
        for name in state:
            lname, _, leaf = name.rpartition(".")
            if leaf == "prune_mask" and lname in layers:
                layer = layers[lname]
                mask = np.asarray(state[name], FLOAT)
                if mask.shape != layer.weight.shape:
                    raise InputError("state", f"{name}: shape {mask.shape}, weight has {layer.weight.shape}")
                layer.prune_mask = mask.copy()
        own = self.state()
        missing = sorted(set(own) - set(state))
        if missing:
            raise InputError("state", f"missing arrays: {missing[:5]}")
        for name, arr in own.items():
            new = np.asarray(state[name])
            if new.shape != arr.shape:
                raise InputError("state", f"{name}: shape {new.shape}, model has {arr.shape}")
            arr[...] = new

    def n_params(self) -> int:
        return int(sum(l.params()[p].size for _, l, p in self.parameters()))

    def nbytes(self) -> int:
        """Float32 size of the parameters in bytes."""
        return 4 * self.n_params()

    def config(self) -> dict:
        return {"layers": [{"kind": l.kind, **l.config()} for l in self.layers]}

    def copy(self) -> "Sequential":
        """An independent model with the same configuration and arrays (hooks not copied)."""
        other = build(self.kind, self.config())
        other.load_state(self.state())
        return other

    # -- compute -------------------------------------------------------------------------------
    def forward(self, x, rt: Runtime | str | None = None, train: bool = False) -> np.ndarray:
        rt = resolve_rt(rt)
        h = as_array(x, "x", ndim=2, finite=True)
        for layer in self.layers:
            h = layer.forward(h, rt, train)
        return h

    __call__ = forward

    def backward(self, g: np.ndarray, rt: Runtime | str | None = None) -> np.ndarray:
        rt = resolve_rt(rt)
        for layer in reversed(self.layers):
            g = layer.backward(g, rt)
        return g

    def predict(self, x, rt: Runtime | str | None = None, batch_size: int = 512) -> np.ndarray:
        x = as_array(x, "x", ndim=2, finite=True)
        out = [self.forward(x[i:i + batch_size], rt).argmax(axis=1) for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(l) for l in self.layers)
        return f"{type(self).__name__}(\n  {inner}\n)  # {self.n_params():,} parameters"


class MLP(Sequential):
    """Multi-layer perceptron: Dense + ReLU between ``sizes``, logits out.

    ``MLP((64, 128, 10))`` maps 64 features to 10 classes through one hidden layer of 128.
    Weights use He initialization from ``numpy.random.default_rng(seed)``.
    """

    kind = "MLP"

    def __init__(self, sizes=(64, 128, 10), seed: int = 0):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise InputError("sizes", f"expected at least two positive sizes, got {sizes}")
        self.sizes, self.seed = sizes, int(seed)
        rng = np.random.default_rng(seed)
        layers: list[Layer] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Dense(a, b, rng))
            if i < len(sizes) - 2:
                layers.append(ReLU())
        super().__init__(layers)

    def config(self):
        return {"sizes": self.sizes, "seed": self.seed}


class ConvNet(Sequential):
    """Small CNN for flattened square images: [Conv3x3 + ReLU + MaxPool2] per entry of
    ``channels``, then a Dense classifier.

    Input (N, H*W) is reshaped to (N, 1, H, W) (``image_shape``). With the defaults on 8x8
    digits: 1x8x8 -> 16x4x4 -> 32x2x2 -> 128 -> 10.
    """

    kind = "ConvNet"

    def __init__(self, image_shape=(8, 8), channels=(16, 32), *, classes: int = 10, seed: int = 0):
        self.image_shape = tuple(int(s) for s in image_shape)
        self.channels = [int(c) for c in channels]
        self.classes, self.seed = int(classes), int(seed)
        rng = np.random.default_rng(seed)
        h, w = self.image_shape
        layers: list[Layer] = [Reshape((1, h, w))]
        c_in = 1
        for c in self.channels:
            layers += [Conv2d(c_in, c, kernel=3, padding=1, rng=rng), ReLU(), MaxPool2d(2)]
            c_in, h, w = c, h // 2, w // 2
        if h < 1 or w < 1:
            raise InputError("channels",
                             f"{len(self.channels)} pooling stages shrink {image_shape} to nothing")
        layers += [Flatten(), Dense(c_in * h * w, self.classes, rng)]
        super().__init__(layers)

    def config(self):
        return {"image_shape": list(self.image_shape), "channels": self.channels,
                "classes": self.classes, "seed": self.seed}


class AttentionNet(Sequential):
    """A one-block transformer-style classifier: image rows as tokens.

    (N, T*F) -> tokens (N, T, F) -> Dense embedding to D + ReLU -> multi-head self-attention with
    residual -> flatten -> Dense to classes. On 8x8 digits T = F = 8.
    """

    kind = "AttentionNet"

    def __init__(self, tokens: int = 8, features: int = 8, *, d_model: int = 32, heads: int = 4,
                 classes: int = 10, seed: int = 0, head_dim: int | None = None):
        self.tokens, self.features, self.d_model = int(tokens), int(features), int(d_model)
        self.heads, self.classes, self.seed = int(heads), int(classes), int(seed)
        self.head_dim = None if head_dim is None else int(head_dim)
        rng = np.random.default_rng(seed)
        super().__init__([
            Reshape((self.tokens, self.features)),
            Dense(self.features, self.d_model, rng), ReLU(),
            MultiHeadSelfAttention(self.d_model, self.heads, rng=rng, head_dim=self.head_dim),
            Flatten(),
            Dense(self.tokens * self.d_model, self.classes, rng),
        ])

    def config(self):
        out = {"tokens": self.tokens, "features": self.features, "d_model": self.d_model,
               "heads": self.heads, "classes": self.classes, "seed": self.seed}
        if self.head_dim is not None:
            out["head_dim"] = self.head_dim
        return out


def _sequential_from_config(layers: list[dict]) -> Sequential:
    built = []
    for spec in layers:
        spec = dict(spec)
        kind = spec.pop("kind", None)
        if kind not in LAYERS:
            raise InputError("config", f"unknown layer kind {kind!r}")
        if kind == "Reshape":
            spec["shape"] = tuple(spec["shape"])
        built.append(LAYERS[kind](**spec))
    return Sequential(built)


MODELS = {"MLP": MLP, "ConvNet": ConvNet, "AttentionNet": AttentionNet}
# A configuration (from a file, say) may ask for at most this many parameters: 50M float32,
# 200 MB. Checked before anything is allocated, so a hostile file cannot exhaust memory.
MAX_PARAMS = 50_000_000


def _int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer)) or int(v) != v or v < 0:
        raise InputError("config", f"{name}: expected a non-negative integer, got {v!r}")
    return int(v)


def config_params(kind: str, config: dict) -> int:
    """The number of parameters ``kind`` built from ``config`` would hold (no arrays made)."""
    def get(key, default):
        return config.get(key, default) if isinstance(config, dict) else default

    if kind == "MLP":
        sizes = [_int(s, "sizes") for s in get("sizes", (64, 128, 10))]
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if kind == "ConvNet":
        shape = [_int(s, "image_shape") for s in get("image_shape", (8, 8))]
        chans = [_int(c, "channels") for c in get("channels", (16, 32))]
        convs = sum(a * b * 9 + b for a, b in zip([1, *chans[:-1]], chans))
        pixels = int(np.prod(shape, dtype=np.int64)) // max(1, 4 ** len(chans))
        return convs + (chans[-1] if chans else 1) * max(pixels, 1) * _int(get("classes", 10), "classes")
    if kind == "AttentionNet":
        t, f = _int(get("tokens", 8), "tokens"), _int(get("features", 8), "features")
        d, c = _int(get("d_model", 32), "d_model"), _int(get("classes", 10), "classes")
        w = _attention_width(d, get("heads", 4), get("head_dim", None))
        return f * d + d + _attention_params(d, w) + t * d * c + c
    if kind == "Sequential":
        total = 0
        for spec in get("layers", []):
            if not isinstance(spec, dict):
                raise InputError("config", f"a layer is described by a dict, got {spec!r}")
            if spec.get("kind") == "Dense":
                total += _int(spec.get("n_in", 0), "n_in") * _int(spec.get("n_out", 0), "n_out")
            elif spec.get("kind") == "Conv2d":
                k = _int(spec.get("kernel", 3), "kernel")
                total += _int(spec.get("c_in", 0), "c_in") * _int(spec.get("c_out", 0), "c_out") * k * k
            elif spec.get("kind") == "MultiHeadSelfAttention":
                d = _int(spec.get("d_model", 0), "d_model")
                total += _attention_params(d, _attention_width(d, spec.get("heads", 1), spec.get("head_dim")))
        return total
    return 0


def _attention_width(d: int, heads, head_dim) -> int:
    """H d_h, the width of the query/key/value projections (d_h defaults to D / H)."""
    h = max(1, _int(heads, "heads"))
    return h * (_int(head_dim, "head_dim") if head_dim is not None else max(1, d // h))


def _attention_params(d: int, w: int) -> int:
    """Wq, Wk, Wv (D x w each, with biases) and Wo (w x D, with its bias)."""
    return 4 * d * w + 3 * w + d


def build(kind: str, config: dict) -> Sequential:
    """The model ``kind`` (a key of :data:`MODELS`, or ``"Sequential"``) from its configuration;
    InputError for an unknown kind, a bad configuration, or one above :data:`MAX_PARAMS`."""
    if not isinstance(config, dict):
        raise InputError("config", f"expected a dict, got {type(config).__name__}")
    if kind != "Sequential" and kind not in MODELS:
        raise InputError("model", f"unknown model kind {kind!r}; known: {sorted(MODELS)}")
    n = config_params(kind, config)
    if n > MAX_PARAMS:
        raise InputError("config", f"the {kind} asks for {n:,} parameters, more than the {MAX_PARAMS:,} "
                                   "a model may have")
    if kind == "Sequential":
        return _sequential_from_config(config.get("layers", []))
    try:
        return MODELS[kind](**config)
    except TypeError as exc:
        raise InputError("config", f"bad configuration for {kind}: {exc}") from None
