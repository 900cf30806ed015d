"""Datasets: the embedded digits data and small synthetic generators.

``digits`` is scikit-learn's bundled copy of the UCI optical digits (1,797 8x8 images, 10 classes,
no download), the workbench's embedded default for every capability.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class Dataset:
    """A train/test split. ``x_*``: (n, features) float32; ``y_*``: (n,) int64 class labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = ""
    image_shape: tuple[int, ...] | None = None  # (height, width) when rows are flattened images

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(initial=-1), self.y_test.max(initial=-1)) + 1)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def split_validation(self, size: int, seed: int = 0) -> tuple["Dataset", tuple[np.ndarray, np.ndarray]]:
        """``(training set without them, (x_val, y_val))``: ``size`` training rows drawn at random
        (seeded) and held out, for choosing settings (a bit allocation, a learning rate) on rows
        the model never trained on; the test split stays untouched for the final figure."""
        from .validation import positive_int

        size = positive_int(size, "size")
        n = self.x_train.shape[0]
        if size >= n:
            raise InputError("size", f"expected fewer than the {n} training rows, got {size}")
        held = np.zeros(n, bool)
        held[np.random.default_rng(seed).choice(n, size, replace=False)] = True
        rest = dataclasses.replace(self, x_train=self.x_train[~held], y_train=self.y_train[~held])
        return rest, (self.x_train[held], self.y_train[held])

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
                f"classes={self.n_classes})")


def _check_test_size(test_size) -> float:
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.floating)) \
            or not 0.0 < float(test_size) < 1.0:
        raise InputError("test_size", f"expected a fraction in (0, 1), got {test_size!r}")
    return float(test_size)


def _stratified_split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified split: each class contributes round(test_size * count) test rows,
    chosen by a NumPy Generator seeded with ``seed`` (same split on every machine)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        n_test = int(round(test_size * idx.size))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    rng.shuffle(train_idx)
    rng.shuffle(test_idx)
    return train_idx, test_idx


def digits(test_size: float = 0.25, seed: int = 0, scale: str = "standard") -> Dataset:
    """scikit-learn's 8x8 digits, split deterministically.

    ``scale="standard"``: pixels (0..16) standardized per feature with the *training* split's
    mean and standard deviation (features constant in training keep scale 1), so no test
    information leaks. ``scale="unit"``: pixel / 16, intensities in [0, 1] (spike encoders).

    Returns a :class:`Dataset` with ``x_*`` of shape (n, 64) float32, ``y_*`` (n,) int64 and
    ``image_shape=(8, 8)``; with the defaults, 1,347 training and 450 test rows.
    """
    from sklearn.datasets import load_digits

    test_size = _check_test_size(test_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError("seed", f"expected an integer, got {seed!r}")
    if scale not in ("standard", "unit"):
        raise InputError("scale", f"expected 'standard' or 'unit', got {scale!r}")
    bunch = load_digits()
    x = bunch.data.astype(np.float64)
    y = bunch.target.astype(np.int64)
    tr, te = _stratified_split(y, test_size, int(seed))
    if scale == "unit":
        xu = (x / 16.0).astype(np.float32)
        return Dataset(xu[tr], y[tr], xu[te], y[te], name="digits", image_shape=(8, 8))
    mean = x[tr].mean(axis=0)
    std = x[tr].std(axis=0)
    std[std == 0] = 1.0
    xs = ((x - mean) / std).astype(np.float32)
    return Dataset(xs[tr], y[tr], xs[te], y[te], name="digits", image_shape=(8, 8))


def blobs(n: int = 600, features: int = 16, *, classes: int = 4, test_size: float = 0.25,
          seed: int = 0) -> Dataset:
    """Gaussian blobs (scikit-learn's ``make_blobs``), float32, for quick synthetic checks."""
    from sklearn.datasets import make_blobs

    test_size = _check_test_size(test_size)
    x, y = make_blobs(n_samples=n, n_features=features, centers=classes, random_state=seed)
    tr, te = _stratified_split(y, test_size, seed)
    x = x.astype(np.float32)
    return Dataset(x[tr], y[tr].astype(np.int64), x[te], y[te].astype(np.int64), name="blobs")


def mackey_glass(n: int = 2000, tau: float = 17.0, *, beta: float = 0.2, gamma: float = 0.1,
                 power: float = 10.0, step: float = 1.0, dt: float = 0.1, x0: float = 1.2,
                 discard: int = 500) -> np.ndarray:
    """The Mackey-Glass delay differential equation, chaotic for tau = 17:

        dx/dt = beta x(t - tau) / (1 + x(t - tau)^power) - gamma x(t),

    integrated with Euler steps of ``dt`` from a constant history ``x0``, sampled every ``step``
    time units after ``discard`` samples of transient: (n,) float64.
    """
    from .validation import positive_int

    n = positive_int(n, "n")
    for name, value in (("tau", tau), ("dt", dt), ("step", step)):
        if not (isinstance(value, (int, float)) and value > 0):
            raise InputError(name, f"expected a positive number, got {value!r}")
    if dt > step:
        raise InputError("dt", f"expected dt <= step = {step}, got {dt}")
    lag = int(round(tau / dt))
    every = int(round(step / dt))
    total = (n + int(discard)) * every
    x = np.empty(total + lag + 1)
    x[:lag + 1] = x0
    for k in range(lag, total + lag):
        past = x[k - lag]
        x[k + 1] = x[k] + dt * (beta * past / (1.0 + past ** power) - gamma * x[k])
    return x[lag + 1::every][int(discard):int(discard) + n].copy()
