"""Training loop, loss and evaluation.

Loss: mean softmax cross-entropy, ``L = -(1/N) sum_n log softmax(z_n)[y_n]``, whose gradient
with respect to the logits is ``(softmax(z) - onehot(y)) / N``.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..errors import InputError
from ..runtime import Runtime, resolve_rt
from ..validation import as_array, positive_int
from .layers import softmax
from .optim import OPTIMIZERS, Optimizer


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """(mean loss, gradient with respect to ``logits``)."""
    n = logits.shape[0]
    p = softmax(logits.astype(np.float64))
    loss = -np.log(np.maximum(p[np.arange(n), y], 1e-300)).mean()
    g = p
    g[np.arange(n), y] -= 1.0
    return float(loss), (g / n).astype(np.float32)


def _labels(y, n: int, name: str, classes: int | None = None) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise InputError(name, f"expected {n} labels, got shape {y.shape}")
    if y.dtype.kind not in "iu":
        raise InputError(name, f"expected integer class labels, got dtype {y.dtype}")
    if n and (y.min() < 0 or (classes is not None and y.max() >= classes)):
        raise InputError(name, f"labels must lie in [0, {classes}), got [{y.min()}, {y.max()}]")
    return y.astype(np.int64)


def evaluate(model, x, y, *, rt: Runtime | str | None = None, batch_size: int = 512) -> float:
    """Classification accuracy of ``model`` on (x, y), in [0, 1]."""
    x = as_array(x, "x", ndim=2, finite=True)
    if x.shape[0] == 0:
        raise InputError("x", "no samples to evaluate")
    y = _labels(y, x.shape[0], "y")
    return float((model.predict(x, rt, batch_size) == y).mean())


def make_optimizer(model, optimizer: str | Optimizer, lr: float, **kwargs) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        return optimizer
    if optimizer not in OPTIMIZERS:
        raise InputError("optimizer", f"expected one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    return OPTIMIZERS[optimizer](model, lr=lr, **kwargs)


def train(model, data, *, epochs: int = 20, lr: float = 1e-3, batch_size: int = 32,
          on_step: Callable[[dict], object] | None = None, optimizer: str | Optimizer = "adam",
          seed: int = 0, rt: Runtime | str | None = None, weight_decay: float = 0.0,
          evaluate_every_epoch: bool = True) -> list[dict]:
    """Mini-batch training with softmax cross-entropy.

    Args:
        model: a :class:`~workbench.nn.Sequential` (MLP, ConvNet, AttentionNet).
        data: a :class:`~workbench.data.Dataset`.
        epochs, lr, batch_size: the usual; ``optimizer`` is ``"adam"`` (default), ``"sgd"``
            (momentum 0.9) or an :class:`Optimizer`.
        on_step: called after every step with ``{"step", "epoch", "loss", "batch_accuracy"}``
            and after every epoch with ``{"epoch", "loss", "train_accuracy", "test_accuracy",
            "seconds", "end_of_epoch": True}``; returning ``False`` stops training.
        seed: shuffling order (``numpy.random.default_rng(seed)``).

    Returns:
        One dict per finished epoch (the end-of-epoch records above).
    """
    rt = resolve_rt(rt)
    epochs = positive_int(epochs, "epochs")
    batch_size = positive_int(batch_size, "batch_size")
    x = as_array(data.x_train, "data.x_train", ndim=2, finite=True)
    if x.shape[0] == 0:
        raise InputError("data", "empty training set")
    y = _labels(data.y_train, x.shape[0], "data.y_train")
    opt = make_optimizer(model, optimizer, lr, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    history: list[dict] = []
    step = 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        order = rng.permutation(x.shape[0])
        total, correct = 0.0, 0
        for i in range(0, x.shape[0], batch_size):
            idx = order[i:i + batch_size]
            logits = model.forward(x[idx], rt, train=True)
            loss, g = cross_entropy(logits, y[idx])
            model.backward(g, rt)
            opt.step()
            step += 1
            hits = int((logits.argmax(axis=1) == y[idx]).sum())
            total += loss * idx.size
            correct += hits
            if on_step is not None and on_step({"step": step, "epoch": epoch, "loss": loss,
                                                "batch_accuracy": hits / idx.size}) is False:
                return history
        record = {"epoch": epoch, "loss": total / x.shape[0], "train_accuracy": correct / x.shape[0],
                  "seconds": time.perf_counter() - t0, "end_of_epoch": True}
        if evaluate_every_epoch and len(data.x_test):
            record["test_accuracy"] = evaluate(model, data.x_test, data.y_test, rt=rt)
        history.append(record)
        if on_step is not None and on_step(record) is False:
            break
    return history


def measure_latency(model, x, *, rt: Runtime | str | None = None, repeat: int = 5) -> float:
    """Median host wall time in seconds of one forward pass over ``x`` on ``rt`` (transfers
    included: what a caller of ``model.forward`` waits for)."""
    rt = resolve_rt(rt)
    x = as_array(x, "x", ndim=2, finite=True)
    t = rt.host_timeit(lambda: model.forward(x, rt), warmup=1, repeat=repeat, budget_s=2.0)
    return t.median
