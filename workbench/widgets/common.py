"""Pieces the notebook panels share."""

from __future__ import annotations

from ..data import digits
from ..nn import MLP, train


def model_and_data(model=None, data=None):
    """``(model, data)``: the given ones, else the digits data and an MLP trained on it for 15
    epochs with NumPy (about a second), which is what a panel opened with no arguments shows."""
    data = data or digits()
    if model is None:
        model = MLP()
        train(model, data, epochs=15, rt="numpy")
    return model, data
