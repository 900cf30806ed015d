"""Pruning: unstructured (masks) and structured (physically smaller dense models).

Unstructured pruning zeroes individual weights and keeps a 0/1 ``prune_mask`` on the layer
(:mod:`workbench.nn.layers`), so fine-tuning cannot revive them:

* :func:`magnitude_prune`: each chosen layer to the same sparsity s, removing its ``round(s n)``
  smallest |w| (already-pruned weights count as the smallest);
* :func:`global_magnitude_prune`: one threshold over all chosen layers' |w| together, so layers
  with many small weights give up more (Han et al. 2015; what ``torch.nn.utils.prune.
  global_unstructured`` does with L1).

Structured pruning removes whole units and returns a new, smaller dense model that needs no
sparse kernel to be faster:

* :func:`prune_channels`: hidden units of an MLP's Dense layer, scored by
  ||W_in[:, j]||_2 ||W_out[j, :]||_2 (what the unit receives times what it sends); the next
  layer loses the matching input rows;
* :func:`prune_filters`: output filters of a ConvNet's Conv2d, scored by their L1 norm (Li et al.
  2017); the next Conv2d loses the input channels, or the Dense after Flatten the rows of them;
* :func:`prune_heads`: attention heads of an AttentionNet, scored by
  :meth:`~workbench.nn.layers.MultiHeadSelfAttention.head_importance`; Wq, Wk, Wv lose the
  head's columns and Wo its rows (Michel et al. 2019 prune heads the same way).

Biases are never pruned. ``sparsity`` / ``amount`` lie in [0, 1).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..nn.io import build
from ..nn.layers import FLOAT, Conv2d, Dense, Flatten, Layer, MultiHeadSelfAttention
from ..nn.models import Sequential


def check_sparsity(value, name: str = "sparsity") -> float:
    try:
        s = float(value)
    except (TypeError, ValueError):
        raise InputError(name, f"expected a number in [0, 1), got {value!r}") from None
    if not 0.0 <= s < 1.0 or not np.isfinite(s):
        raise InputError(name, f"must lie in [0, 1), got {value!r}")
    return s


def _targets(model, layers) -> list[tuple[str, Layer]]:
    if isinstance(model, (Dense, Conv2d)):
        return [("layer", model)]
    if not isinstance(model, Sequential):
        raise InputError("model",
                         f"expected a workbench.nn model or a Dense/Conv2d layer, got {type(model).__name__}")
    linear = model.linear_layers()
    if layers is None:
        return linear
    names = [layers] if isinstance(layers, str) else list(layers)
    known = dict(linear)
    for n in names:
        if n not in known:
            raise InputError("layers", f"no prunable layer {n!r}; prunable: {sorted(known)}")
    return [(n, known[n]) for n in names]


def _set_mask(layer: Layer, keep: np.ndarray) -> np.ndarray:
    layer.prune_mask = keep.astype(FLOAT).reshape(layer.weight.shape)
    layer.weight *= layer.prune_mask  # pruned weights are zero in the arrays too
    return layer.prune_mask


def magnitude_prune(model, sparsity: float, layers=None) -> dict[str, float]:
    """Unstructured magnitude pruning, layer by layer (Han et al. 2015): in each chosen layer,
    the round(s * size) weights of smallest |w| get a zero mask::

        mask_ij = 0  if |w_ij| is among the layer's k = round(s N) smallest, else 1
        w_eff   = w * mask          (masks persist: training never revives a pruned weight)

    model: a :mod:`workbench.nn` model, or one Dense/Conv2d layer. sparsity: s, the fraction of
    zero weights to reach per layer, in [0, 1). layers: the layers to prune (names, layer
    objects, or None for every Dense and Conv2d). Weights already pruned stay pruned, so the
    result is at least the layer's earlier sparsity. Ties are broken by position (stable).

    Returns ``{layer name: sparsity reached}`` (fractions of zeros).

    Example::

        ds = data.digits(); model = nn.MLP(); nn.train(model, ds, epochs=20)
        magnitude_prune(model, 0.9)              # {'0': 0.9, '2': 0.9}: the two Dense layers
        nn.evaluate(model, ds.x_test, ds.y_test)  # fine-tune, or use GradualPruner, to recover

    Shapes: masks are the shape of each layer's weight ((in, out) Dense, (c_out, c_in, kh, kw)
    Conv2d); biases are never pruned.
    """
    s = check_sparsity(sparsity)
    out = {}
    for name, layer in _targets(model, layers):
        w = np.abs(layer.effective_weight()).reshape(-1)
        k = int(round(s * w.size))
        keep = np.ones(w.size, bool)
        keep[np.argsort(w, kind="stable")[:k]] = False
        if layer.prune_mask is not None:  # never revive a pruned weight
            keep &= layer.prune_mask.reshape(-1) > 0
        _set_mask(layer, keep)
        out[name] = 1.0 - float(keep.mean())
    return out


def global_magnitude_prune(model, sparsity: float, layers=None) -> dict[str, float]:
    """Prune the chosen layers together to an overall ``sparsity`` with one magnitude
    threshold. Returns each layer's resulting sparsity."""
    s = check_sparsity(sparsity)
    targets = _targets(model, layers)
    mags = [np.abs(l.effective_weight()).reshape(-1) for _, l in targets]
    allw = np.concatenate(mags) if mags else np.zeros(0)
    k = int(round(s * allw.size))
    order = np.argsort(allw, kind="stable")
    keep_all = np.ones(allw.size, bool)
    keep_all[order[:k]] = False
    out, start = {}, 0
    for (name, layer), m in zip(targets, mags):
        keep = keep_all[start:start + m.size]
        start += m.size
        if layer.prune_mask is not None:
            keep = keep & (layer.prune_mask.reshape(-1) > 0)
        _set_mask(layer, keep)
        out[name] = 1.0 - float(keep.mean())
    return out


def model_sparsity(model: Sequential) -> dict[str, float]:
    """Fraction of zero weights per Dense/Conv2d layer and ``"total"`` over all of them."""
    out, zeros, total = {}, 0, 0
    for name, layer in model.linear_layers():
        w = layer.effective_weight()
        z = int(np.count_nonzero(w == 0))
        out[name] = z / max(1, w.size)
        zeros, total = zeros + z, total + w.size
    out["total"] = zeros / max(1, total)
    return out


# -- structured -------------------------------------------------------------------------------
def _n_keep(n: int, amount: float) -> int:
    return max(1, n - int(round(amount * n)))


def _top(scores: np.ndarray, keep: int) -> np.ndarray:
    """Indices of the ``keep`` largest scores, in their original order (ties: lower index)."""
    order = np.argsort(-scores, kind="stable")[:keep]
    return np.sort(order)


def _rebuild(model: Sequential, config: dict, sliced: dict[str, np.ndarray]) -> Sequential:
    """A model of ``config`` with ``model``'s arrays, ``sliced`` replacing some of them; masks
    are folded into the weights first (structured pruning returns a plain dense model)."""
    state = {}
    for name, layer in model.named_layers():
        for p, arr in layer.params().items():
            effective = p == "weight" and hasattr(layer, "effective_weight")
            state[f"{name}.{p}"] = layer.effective_weight() if effective else arr
        for p, arr in layer.buffers().items():
            if p != "prune_mask":
                state[f"{name}.{p}"] = arr
    state.update(sliced)
    new = build(model.kind, config)
    new.load_state(state)
    return new


def _layer_index(model: Sequential, name: str, cls) -> int:
    try:
        i = int(name)
    except (TypeError, ValueError):
        i = -1
    if not 0 <= i < len(model.layers) or not isinstance(model.layers[i], cls):
        options = [str(j) for j, l in enumerate(model.layers) if isinstance(l, cls)]
        raise InputError("layer",
                         f"expected the index of a {cls.__name__} layer, one of {options}; got {name!r}")
    return i


def _layer_names(layers) -> list:
    """``layers`` as a list of layer names: one name (str or int) or an iterable of them."""
    if isinstance(layers, (str, int, np.integer)) and not isinstance(layers, bool):
        return [layers]
    try:
        names = list(layers)
    except TypeError:
        raise InputError("layers", f"expected a layer name or a list of names, got {layers!r}") from None
    for n in names:
        if not isinstance(n, (str, int, np.integer)) or isinstance(n, bool):
            raise InputError("layers", f"expected layer names, got {n!r}")
    return names


def prune_channels(model: Sequential, amount: float, layers=None) -> Sequential:
    """Remove ``amount`` of the hidden units of an MLP's Dense layers (default: every hidden
    one; the output layer is never pruned). Returns a new, smaller MLP."""
    a = check_sparsity(amount, "amount")
    if model.kind != "MLP":
        raise InputError("model", f"prune_channels works on an MLP; use prune_filters for a ConvNet "
                                  f"and prune_heads for an AttentionNet (got {model.kind})")
    dense = [i for i, l in enumerate(model.layers) if isinstance(l, Dense)]
    hidden = dense[:-1]
    chosen = hidden if layers is None else [_layer_index(model, n, Dense) for n in _layer_names(layers)]
    sizes, sliced = list(model.sizes), {}
    weights = {i: model.layers[i].effective_weight() for i in dense}
    biases = {i: model.layers[i].bias for i in dense}
    for i in chosen:
        if i not in hidden:
            raise InputError("layers", f"layer {i} is the output layer; its units are the classes")
        nxt = dense[dense.index(i) + 1]
        w_in, w_out = weights[i], weights[nxt]
        score = np.linalg.norm(w_in, axis=0) * np.linalg.norm(w_out, axis=1)
        keep = _top(score, _n_keep(w_in.shape[1], a))
        weights[i], biases[i] = w_in[:, keep], biases[i][keep]
        weights[nxt] = w_out[keep, :]
        sizes[dense.index(i) + 1] = keep.size
    for i in dense:
        sliced[f"{i}.weight"], sliced[f"{i}.bias"] = weights[i], biases[i]
    return _rebuild(model, {**model.config(), "sizes": sizes}, sliced)


def prune_filters(model: Sequential, amount: float, layers=None) -> Sequential:
    """Remove ``amount`` of the output filters of a ConvNet's Conv2d layers (default: all).
    Returns a new ConvNet with fewer channels."""
    a = check_sparsity(amount, "amount")
    if model.kind != "ConvNet":
        raise InputError("model", f"prune_filters works on a ConvNet, got {model.kind}")
    convs = [i for i, l in enumerate(model.layers) if isinstance(l, Conv2d)]
    chosen = convs if layers is None else [_layer_index(model, n, Conv2d) for n in _layer_names(layers)]
    w = {i: l.effective_weight() for i, l in enumerate(model.layers) if isinstance(l, (Conv2d, Dense))}
    b = {i: l.bias for i, l in enumerate(model.layers) if isinstance(l, (Conv2d, Dense))}
    channels = list(model.channels)
    for i in chosen:
        score = np.abs(w[i]).reshape(w[i].shape[0], -1).sum(axis=1)
        keep = _top(score, _n_keep(w[i].shape[0], a))
        c_old = w[i].shape[0]
        w[i], b[i] = w[i][keep], b[i][keep]
        channels[convs.index(i)] = keep.size
        j = next(j for j in range(i + 1, len(model.layers)) if j in w)
        if isinstance(model.layers[j], Conv2d):
            w[j] = w[j][:, keep]
        else:  # Dense after Flatten: channel c owns rows c*HW .. (c+1)*HW
            if not any(isinstance(l, Flatten) for l in model.layers[i:j]):
                raise InputError("model", "a Conv2d must reach the Dense through Flatten")
            hw = w[j].shape[0] // c_old
            rows = (keep[:, None] * hw + np.arange(hw)[None, :]).reshape(-1)
            w[j] = w[j][rows]
    sliced = {f"{i}.weight": w[i] for i in w} | {f"{i}.bias": b[i] for i in b}
    return _rebuild(model, {**model.config(), "channels": channels}, sliced)


def prune_heads(model: Sequential, amount: float | None = None, heads=None) -> Sequential:
    """Remove attention heads of an AttentionNet: the ``amount`` least important ones, or the
    listed ``heads`` (indices). At least one head stays. Returns a new AttentionNet."""
    if model.kind != "AttentionNet":
        raise InputError("model", f"prune_heads works on an AttentionNet, got {model.kind}")
    i = next(j for j, l in enumerate(model.layers) if isinstance(l, MultiHeadSelfAttention))
    att: MultiHeadSelfAttention = model.layers[i]
    h, d = att.heads, att.head_dim
    if heads is not None:
        drop = sorted({int(x) for x in np.atleast_1d(heads)})
        if any(not 0 <= x < h for x in drop) or len(drop) >= h:
            raise InputError("heads",
                             f"expected distinct head indices in [0, {h}) leaving at least one, "
                             f"got {heads!r}")
        keep = np.array([x for x in range(h) if x not in drop])
    else:
        a = check_sparsity(0.0 if amount is None else amount, "amount")
        score = att.head_importance() * (att.head_mask > 0)  # masked heads go first
        keep = _top(score, _n_keep(h, a))
    cols = (keep[:, None] * d + np.arange(d)[None, :]).reshape(-1)
    sliced = {}
    for p in ("q", "k", "v"):
        lin = getattr(att, p)
        sliced[f"{i}.{p}.weight"] = lin.effective_weight()[:, cols]
        sliced[f"{i}.{p}.bias"] = lin.bias[cols]
    sliced[f"{i}.o.weight"] = att.o.effective_weight()[cols, :]
    sliced[f"{i}.head_mask"] = att.head_mask[keep]
    cfg = {**model.config(), "heads": int(keep.size), "head_dim": d}
    return _rebuild(model, cfg, sliced)
