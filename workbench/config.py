"""Where the workbench keeps its files, read from the environment in one place.

``WORKBENCH_HOME`` (default ``~/.workbench``) holds the experiment store and the per-device tuning
records that ``workbench tune`` writes. ``WORKBENCH_QUICK=1`` shortens measurements (fewer repeats,
smaller buffers) for tests and CI; results stay correct, only noisier.
``WORKBENCH_BRIAN2_PYTHON`` names a Python with Brian2 for the SNN benchmark.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The workbench's data folder, created on first use."""
    path = Path(os.environ.get("WORKBENCH_HOME") or Path.home() / ".workbench").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def quick() -> bool:
    """True when ``WORKBENCH_QUICK`` asks for short measurements."""
    return os.environ.get("WORKBENCH_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}


def brian2_python() -> str | None:
    """``WORKBENCH_BRIAN2_PYTHON``: a Python that has Brian2 (which pins its own NumPy), for the
    SNN benchmark's same-run comparison; None when unset."""
    return os.environ.get("WORKBENCH_BRIAN2_PYTHON") or None
