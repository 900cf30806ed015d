"""Kernel sources and per-device tunables.

OpenCL C lives in ``kernels/<family>.cl`` (shipped in the wheel as ``workbench.kernels``). Each
family may have ``kernels/<family>.tuning.json``: a small CLBlast-style database of ``#define``
values, looked up from the most to the least specific entry::

    {"defaults": {"gpu": {...}, "cpu": {...}},
     "devices": [{"vendor": "NVIDIA", "name": "H100", "params": {...}, "note": "..."}]}

``workbench tune <family>`` writes what it finds for the current device to
``$WORKBENCH_HOME/tuning/<family>.json`` (keyed by ``DeviceInfo.key``), which wins over the
shipped table.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from pathlib import Path

from .. import config
from ..errors import InputError
from .devices import DeviceInfo

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@functools.lru_cache(maxsize=None)
def kernel_dir() -> Path:
    """The folder holding the ``.cl`` files: the installed package data, else the repository's.
    Looked up once per process: it is on the path of every launch (``rt.program``'s key), and
    importlib's lookup costs about 20 us."""
    try:
        path = Path(str(resources.files("workbench.kernels")))
        if (path / "gemm.cl").is_file():
            return path
    except (ModuleNotFoundError, TypeError):
        pass  # running from a source tree on PYTHONPATH without an install
    return Path(__file__).resolve().parents[2] / "kernels"


def kernel_path(family: str) -> Path:
    if not isinstance(family, str) or not _NAME.match(family):
        raise InputError("name", f"expected a kernel family name such as 'gemm', got {family!r}")
    path = kernel_dir() / f"{family}.cl"
    if not path.is_file():
        known = sorted(p.stem for p in kernel_dir().glob("*.cl"))
        raise InputError("name", f"no kernel file {family}.cl; known families: {', '.join(known)}")
    return path


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:  # a hand-edited table should say where it broke
        raise InputError("tuning", f"{path} is not valid JSON: {exc}") from None


def user_tuning_path(family: str) -> Path:
    return config.home() / "tuning" / f"{family}.json"


def tuning(family: str, info: DeviceInfo) -> dict:
    """The tunables for kernel ``family`` on ``info``, from the most to the least specific entry:

    1. the user's record for this exact device and driver (``workbench tune`` wrote it);
    2. a shipped entry whose ``vendor`` and ``name`` are substrings of the device's;
    3. a shipped entry for the device's architecture (same vendor, ``"arch"`` equal to
       :attr:`DeviceInfo.family`, e.g. ``sm_90`` for both an H100 and an H200): a sibling's
       tile is a far better start than the generic default;
    4. the shipped default for the device type.

    Returns a dict (possibly empty) with a ``"_source"`` key: ``"user"``, ``"shipped:<name>"``,
    ``"arch:<family> (<name>)"`` or ``"default:<type>"`` (:func:`is_untuned` reads it).
    """
    user = _read_json(user_tuning_path(family)).get(info.key)
    if user:
        return {**user["params"], "_source": "user"}
    table = _read_json(kernel_dir() / f"{family}.tuning.json")
    entries = table.get("devices", [])
    same_vendor = [e for e in entries if e.get("vendor", "").lower() in info.vendor.lower()]
    for entry in same_vendor:
        if entry.get("name") and entry["name"].lower() in info.name.lower():
            return {**entry["params"], "_source": f"shipped:{entry['name']}"}
    for entry in same_vendor:
        if entry.get("arch") and entry["arch"] == info.family:
            sibling = f" ({entry['name']})" if entry.get("name") else ""
            return {**entry["params"], "_source": f"arch:{info.family}{sibling}"}
    default = table.get("defaults", {}).get(info.type, {})
    return {**default, "_source": f"default:{info.type}"}


def is_untuned(source: str) -> bool:
    """Whether a ``tuning()`` source is the generic default: nothing measured on this device or
    its architecture."""
    return source.startswith("default:")


def tuned(family: str, info: DeviceInfo, default_variant: str) -> tuple[str, dict, str]:
    """``(variant, integer macros, source)`` for ``family`` on ``info``: the one reader of the
    tuning tables. ``variant`` comes from the entry's ``"variant"`` key (else
    ``default_variant``); every other key is an integer ``#define``."""
    p = dict(tuning(family, info))
    source = p.pop("_source", "")
    variant = p.pop("variant", default_variant)
    return variant, {k: int(v) for k, v in p.items()}, source


def record_tuning(family: str, info: DeviceInfo, params: dict, **meta) -> Path:
    """Store tuned parameters for ``info`` in the user's database; returns the file written."""
    path = user_tuning_path(family)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = _read_json(path)
    table[info.key] = {"device": info.name, "params": params, **meta}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=2, sort_keys=True))
    tmp.replace(path)  # atomic: a killed tuner never leaves half a file
    return path
