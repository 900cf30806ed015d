"""Accuracy over seeds: Diehl & Cook's STDP classifier trained with several seeds, reported as
mean +- sample standard deviation, each seed's figures kept.

One study: the digits (``digits(scale="unit")``), a validation split carved from the training
images once (the same rows for every seed, so seeds differ only in initial weights and Poisson
inputs), each seed trained on the rest, its settings judged on the validation rows, and the test
split scored once per seed. The test accuracy is what the study reports; the validation figure is
what a user tuning the recipe should look at.
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Callable

import numpy as np

from ..data import digits
from ..runtime import resolve_rt
from ..validation import positive_int
from .classifier import SNNImageClassifier

STUDY_KIND = "diehl-cook-seed-study"
METRICS = ("train_accuracy", "validation_accuracy", "test_accuracy")


def seed_study(seeds=(0, 1, 2, 3, 4), *, n_neurons: int = 400, epochs: int = 3, validation_size: int = 200,
               images: int | None = None, rt=None, on_seed: Callable[[dict], None] | None = None) -> dict:
    """Train :class:`SNNImageClassifier` once per seed; returns a JSON-ready dict: ``kind``,
    ``date``, ``device``, ``params``, ``runs`` (per seed: the three accuracies and seconds) and
    ``summary`` (per metric: mean, sd with ddof 1, min, max, n). ``images``: training images
    per seed (default all but the validation rows). ``on_seed(run)`` after each seed; returning
    False ends the study there (the summary covers the seeds done)."""
    rt = resolve_rt(rt)
    seeds = [int(s) for s in seeds]
    if not seeds:
        from ..errors import InputError

        raise InputError("seeds", "expected at least one seed")
    validation_size = positive_int(validation_size, "validation_size")
    data = digits(scale="unit")
    rest, val = data.split_validation(validation_size, seed=0)
    x, y = rest.x_train, rest.y_train
    if images is not None:
        n = positive_int(images, "images")
        x, y = x[:n], y[:n]
    runs = []
    for seed in seeds:
        clf = SNNImageClassifier(n_neurons=n_neurons, epochs=epochs, seed=seed, rt=rt)
        t0 = time.perf_counter()
        clf.fit(x, y, store=False, validation=val, test=(data.x_test, data.y_test))
        run = {"seed": seed, "seconds": time.perf_counter() - t0, **clf.metrics_}
        runs.append(run)
        if on_seed is not None and on_seed(run) is False:  # a job runner's stop: end after this seed
            break
    summary = {}
    for m in METRICS:
        v = np.array([r[m] for r in runs], float)
        summary[m] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
                      "min": float(v.min()), "max": float(v.max()), "n": int(v.size)}
    return {"kind": STUDY_KIND, "schema": 1,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "device": rt.name,
            "params": {"n_neurons": n_neurons, "epochs": epochs, "training_images": int(len(x)),
                                          "validation_images": validation_size,
                                          "test_images": int(len(data.x_test)),
                                          "seeds": seeds, "dataset": "digits (unit scale)"},
            "runs": runs, "summary": summary}
