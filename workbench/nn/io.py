"""Saving and loading models as ``.npz`` without pickle.

The file holds the model's arrays under ``"<layer>.<name>"`` and one string array ``__workbench__``
with JSON ``{"format": "workbench.nn", "version": 1, "model": kind, "config": {...}}``. Loading
uses ``numpy.load(allow_pickle=False)`` and rebuilds the model from its registered class, so a
file can never run code; anything else is refused with :class:`InputError`.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from ..errors import InputError
from .models import Sequential, build

FORMAT, VERSION = "workbench.nn", 1
META = "__workbench__"


def save(model: Sequential, path) -> str:
    """Write ``model`` to ``path`` (``.npz`` appended if missing); returns the path written.
    The file is written beside the target and renamed, so a kill never leaves half a model."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    meta = {"format": FORMAT, "version": VERSION, "model": model.kind, "config": model.config()}
    arrays = {k: np.ascontiguousarray(v) for k, v in model.state().items()}
    tmp = path + ".tmp.npz"
    np.savez(tmp, **{META: np.array(json.dumps(meta))}, **arrays)
    os.replace(tmp, path)
    return path


def load(path) -> Sequential:
    """Read a model written by :func:`save`."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            if META not in f.files:
                raise InputError("path", f"{path} is not a workbench model (no {META} entry)")
            meta = json.loads(str(f[META][()]))
            arrays = {k: f[k] for k in f.files if k != META}
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError("path", f"{path} does not exist") from None
    except (ValueError, OSError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        # allow_pickle=False turns an object array into a ValueError: never executed.
        raise InputError("path", f"{path} is not a workbench model file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError("path", f"{path} is not a workbench model file")
    if meta.get("version") != VERSION:
        raise InputError("path", f"{path} has format version {meta.get('version')}, expected {VERSION}")
    model = build(meta.get("model"), meta.get("config") or {})
    model.load_state(arrays)
    return model
