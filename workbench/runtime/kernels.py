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

import json
import re
from importlib import resources
from pathlib import Path

from .. import config
from ..errors import InputError
from .devices import DeviceInfo

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def kernel_dir() -> Path:
    """The folder holding the ``.cl`` files: the installed package data, else the repository's."""
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
    """The tunables for ``family`` on ``info``: user record, else shipped device entry, else the
    shipped default for the device type. Returns a dict (possibly empty) with a ``"_source"`` key.
    """
    user = _read_json(user_tuning_path(family)).get(info.key)
    if user:
        return {**user["params"], "_source": "user"}
    table = _read_json(kernel_dir() / f"{family}.tuning.json")
    for entry in table.get("devices", []):
        if (
            entry.get("vendor", "").lower() in info.vendor.lower()
            and entry.get("name", "").lower() in info.name.lower()
        ):
            return {**entry["params"], "_source": f"shipped:{entry.get('name', '')}"}
    default = table.get("defaults", {}).get(info.type, {})
    return {**default, "_source": f"default:{info.type}"}


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
