"""Choosing a device: ``get_runtime(device)`` and ``default()``.

Order (DESIGN.md): the ``device`` argument, then ``WORKBENCH_DEVICE`` (``numpy``, ``cpu``,
``gpu``, an id such as ``cl:0:1`` or a name substring), then ``PYOPENCL_CTX`` (``"P:D"`` or
``"P"``); otherwise the first GPU, else an OpenCL CPU, else NumPy with one warning. One runtime
(context and queue) per device per process, cached here.
"""

from __future__ import annotations

import os
import threading
import warnings

from ..errors import InputError
from .base import Runtime
from .devices import DeviceInfo, opencl_devices
from .numpy_backend import NumpyRuntime

_lock = threading.Lock()
_runtimes: dict[str, Runtime] = {}
_default: Runtime | None = None
_warned_numpy = False


def _catalogue() -> str:
    rows = [f"{info.id} ({info.type}): {info.name} [{info.platform}]" for info, _ in opencl_devices()]
    rows.append("numpy: NumPy host backend")
    return "; ".join(rows)


def _match(spec: str, devices: list[tuple[DeviceInfo, object]]) -> tuple[DeviceInfo, object] | None:
    """The device that ``spec`` names, or None when ``spec`` names none."""
    s = spec.strip().lower()
    if s in {"gpu", "cpu", "accelerator"}:
        return next((d for d in devices if d[0].type == s), None)
    if s.startswith("cl:"):
        s = s[3:]
    parts = s.split(":")
    if all(p.isdigit() for p in parts) and 1 <= len(parts) <= 2:
        p = int(parts[0])
        d = int(parts[1]) if len(parts) == 2 else 0
        return next((x for x in devices if x[0].id == f"cl:{p}:{d}"), None)
    return next(
        (x for x in devices if s in x[0].name.lower() or s in x[0].platform.lower()), None
    )


def _numpy_runtime(warn: bool) -> Runtime:
    global _warned_numpy
    if warn and not _warned_numpy:
        _warned_numpy = True
        warnings.warn(
            "no OpenCL device found: running on the NumPy host backend. Install an OpenCL "
            "driver (on Debian/Ubuntu: apt-get install pocl-opencl-icd) to use OpenCL.",
            RuntimeWarning,
            stacklevel=3,
        )
    if "numpy" not in _runtimes:
        _runtimes["numpy"] = NumpyRuntime()
    return _runtimes["numpy"]


def _opencl_runtime(info: DeviceInfo, device) -> Runtime:
    from .opencl import OpenCLRuntime  # imported late: pyopencl may be missing

    if info.id not in _runtimes:
        _runtimes[info.id] = OpenCLRuntime(info, device)
    return _runtimes[info.id]


def _resolve(spec: str, source: str) -> Runtime:
    if spec.strip().lower() == "numpy":
        return _numpy_runtime(warn=False)
    devices = opencl_devices()
    found = _match(spec, devices)
    if found is None:
        raise InputError(source, f"no device matches {spec!r}; devices: {_catalogue()}")
    return _opencl_runtime(*found)


def get_runtime(device: "str | int | Runtime | None" = None) -> Runtime:
    """The runtime for ``device`` (see the module docstring for the selection order).

    ``device`` may be a :class:`Runtime` (returned as is), ``"numpy"``, ``"gpu"``, ``"cpu"``, an
    id ``"cl:P:D"``, ``"P:D"``, an integer index into ``list_devices()``, or a substring of a
    device or platform name. An unknown name raises :class:`InputError` listing the devices.
    """
    if isinstance(device, Runtime):
        return device
    with _lock:
        if isinstance(device, bool) or not isinstance(device, (str, int, type(None))):
            raise InputError("device", f"expected a name, an index or a Runtime, got {device!r}")
        if isinstance(device, int):
            from .devices import list_devices

            infos = list_devices()
            if not 0 <= device < len(infos):
                raise InputError("device", f"index {device} out of range; devices: {_catalogue()}")
            device = infos[device].id
        if device is not None:
            return _resolve(device, "device")
        env = os.environ.get("WORKBENCH_DEVICE", "").strip()
        if env:
            return _resolve(env, "WORKBENCH_DEVICE")
        ctx = os.environ.get("PYOPENCL_CTX", "").strip()
        if ctx:
            return _resolve(ctx, "PYOPENCL_CTX")
        devices = opencl_devices()
        for wanted in ("gpu", "accelerator", "cpu"):
            for info, dev in devices:
                if info.type == wanted:
                    return _opencl_runtime(info, dev)
        return _numpy_runtime(warn=True)


def default() -> Runtime:
    """The process-wide default runtime, chosen once by :func:`get_runtime` with no argument."""
    global _default
    if _default is None:
        _default = get_runtime()
    return _default


def resolve_rt(rt: "Runtime | str | None") -> Runtime:
    """What capability code calls on its ``rt=`` argument: None means :func:`default`."""
    return default() if rt is None else get_runtime(rt)
