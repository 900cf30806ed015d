"""Training recipes of the shipped models: one place for every UI, notebook and test.

A recipe is how long and how fast to train a model of :mod:`workbench.nn` on the embedded digits
data from scratch (``epochs``, ``lr``), and how to fine-tune it between pruning steps
(``finetune_epochs``, ``finetune_lr``). The values are the ones that reach the targets the tests
check (about 97% for the MLP, 98% for the ConvNet, pruned to 90% within a point of dense).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class Recipe:
    """Adam, batch 32. ``epochs``/``lr``: training from scratch; ``quick_epochs``: the shorter
    run a dashboard page or panel starts with (seconds on a CPU); ``finetune_epochs``/
    ``finetune_lr``: between gradual pruning steps."""

    epochs: int
    lr: float
    quick_epochs: int
    finetune_epochs: int
    finetune_lr: float


RECIPES = {
    "MLP": Recipe(epochs=20, lr=1e-3, quick_epochs=15, finetune_epochs=5, finetune_lr=1e-3),
    # the ConvNet needs a larger fine-tuning rate to recover at 90% sparsity (tests/test_prune.py)
    "ConvNet": Recipe(epochs=20, lr=1e-3, quick_epochs=10, finetune_epochs=8, finetune_lr=3e-3),
    "AttentionNet": Recipe(epochs=10, lr=1e-3, quick_epochs=10, finetune_epochs=5, finetune_lr=1e-3),
}


def recipe(kind: str) -> Recipe:
    """The recipe of a model kind (``model.kind``: ``"MLP"``, ``"ConvNet"``, ``"AttentionNet"``)."""
    if kind not in RECIPES:
        raise InputError("kind", f"no recipe for {kind!r}; known: {', '.join(RECIPES)}")
    return RECIPES[kind]
