"""Optimizers that update a model's parameter arrays in place.

SGD with momentum (PyTorch's convention): ``v <- mu v + g``; ``w <- w - lr v``.
Adam (Kingma & Ba 2015): ``m <- b1 m + (1 - b1) g``, ``s <- b2 s + (1 - b2) g^2``,
``w <- w - lr m_hat / (sqrt(s_hat) + eps)`` with bias-corrected ``m_hat``, ``s_hat``.
Weight decay, when set, adds ``wd * w`` to the gradient of weights (not biases).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


class Optimizer:
    def __init__(self, model, lr: float, weight_decay: float = 0.0):
        if not (isinstance(lr, (int, float)) and lr > 0 and np.isfinite(lr)):
            raise InputError("lr", f"expected a positive learning rate, got {lr!r}")
        self.model, self.lr, self.weight_decay = model, float(lr), float(weight_decay)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.t = 0

    def _grads(self):
        for lname, layer, pname in self.model.parameters():
            g = layer.grads.get(pname)
            if g is None:
                continue
            w = layer.params()[pname]
            if self.weight_decay and pname == "weight":
                g = g + self.weight_decay * w
            yield f"{lname}.{pname}", w, g

    def step(self) -> None:
        self.t += 1
        for key, w, g in self._grads():
            self._update(key, w, g.astype(np.float32, copy=False))

    def _update(self, key, w, g):  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    def __init__(self, model, lr: float = 0.05, *, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(model, lr, weight_decay)
        self.momentum = float(momentum)

    def _update(self, key, w, g):
        if self.momentum:
            st = self.state.setdefault(key, {"v": np.zeros_like(w)})
            st["v"] *= self.momentum
            st["v"] += g
            g = st["v"]
        w -= np.float32(self.lr) * g


class Adam(Optimizer):
    def __init__(self, model, lr: float = 1e-3, *, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(model, lr, weight_decay)
        self.b1, self.b2 = (float(b) for b in betas)
        self.eps = float(eps)

    def _update(self, key, w, g):
        st = self.state.setdefault(key, {"m": np.zeros_like(w), "s": np.zeros_like(w)})
        st["m"] *= self.b1
        st["m"] += (1 - self.b1) * g
        st["s"] *= self.b2
        st["s"] += (1 - self.b2) * g * g
        m_hat = st["m"] / (1 - self.b1 ** self.t)
        s_hat = st["s"] / (1 - self.b2 ** self.t)
        w -= (self.lr * m_hat / (np.sqrt(s_hat) + self.eps)).astype(np.float32)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
