"""Enumerate OpenCL devices and describe them.

:func:`list_devices` never raises for a missing driver: with no OpenCL installed (no ICD loader,
no platform, pyopencl absent) it returns only the NumPy host backend, so every caller can offer
something to run on.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

try:  # pyopencl is a hard dependency, but a broken install must still leave NumPy usable.
    import pyopencl as cl
except Exception:  # pragma: no cover - exercised only on machines without pyopencl
    cl = None


@dataclass(frozen=True)
class DeviceInfo:
    """What we know about one device.

    ``id`` is ``"cl:P:D"`` (platform P, device D, the order of ``PYOPENCL_CTX``) or ``"numpy"``.
    Memory sizes are bytes, clocks MHz. ``simd_width`` is the hardware's lock-step width where the
    driver reports it (NVIDIA warp, AMD wavefront) and the native float vector width otherwise.
    """

    id: str
    name: str
    platform: str
    vendor: str
    type: str  # "gpu", "cpu", "accelerator" or "host"
    compute_units: int = 1
    clock_mhz: int = 0
    global_mem_bytes: int = 0
    local_mem_bytes: int = 0
    max_alloc_bytes: int = 0
    max_work_group_size: int = 1
    opencl_version: str = ""
    driver_version: str = ""
    fp16: bool = False
    fp64: bool = False
    integer_dot: bool = False
    simd_width: int = 1
    native_float_width: int = 1
    compute_capability: tuple[int, int] | None = None
    fp_denormals: bool = False
    max_sub_devices: int = 0
    host_isa: tuple[str, ...] = field(default_factory=tuple, repr=False)
    extensions: tuple[str, ...] = field(default_factory=tuple, repr=False)

    @property
    def dot4_candidates(self) -> tuple[str, ...]:
        """The 4-way int8 dot-product paths this device advertises, best first, then the
        portable one: ``"dp4a"`` (NVIDIA inline PTX, compute capability >= 6.1), ``"khr"``
        (``cl_khr_integer_dot_product``), ``"plain"`` (four multiply-adds). Whether an
        advertised path also *builds* is probed once per runtime (``runtime.capabilities.dot4_paths``)."""
        out = []
        if self.compute_capability is not None and tuple(self.compute_capability) >= (6, 1):
            out.append("dp4a")
        if "cl_khr_integer_dot_product" in self.extensions:
            out.append("khr")
        return (*out, "plain")

    @property
    def family(self) -> str:
        """The device's architecture family, for tuning tables: ``"sm_90"`` for an NVIDIA GPU of
        compute capability 9.0; ``"x86-avx512"``, ``"x86-avx2"`` or ``"x86"`` for a CPU device
        (PoCL's kernels are vectorised for the host's widest vectors); else the device name. A
        device that is not in a table by name still matches its family's entry."""
        if self.compute_capability is not None:
            return "sm_%d%d" % tuple(self.compute_capability)
        if self.type == "cpu" and self.host_isa:  # a CPU device's kernels follow the host's vectors
            if "avx512f" in self.host_isa:
                return "x86-avx512"
            return "x86-avx2" if "avx2" in self.host_isa else "x86"
        return self.name

    @property
    def key(self) -> str:
        """A stable identity for caches and the store: platform, device and driver version (and,
        for a CPU device limited to fewer cores than the host has, e.g. by
        ``POCL_MAX_PTHREAD_COUNT`` for per-core figures, that count: its ceilings differ)."""
        key = f"{self.platform}|{self.name}|{self.driver_version}"
        cores = os.cpu_count() or 0
        if self.type == "cpu" and 0 < self.compute_units < cores:
            key += f"|{self.compute_units} of {cores} cores"
        return key

    @property
    def is_numpy(self) -> bool:
        return self.id == "numpy"

    def as_row(self) -> dict:
        """A flat dict for tables (the CLI, the dashboard's Devices page)."""
        row = dataclasses.asdict(self)
        row.pop("extensions")
        row["host_isa"] = " ".join(self.host_isa)
        row["global_mem_gib"] = round(self.global_mem_bytes / 2**30, 2)
        row["compute_capability"] = (
            "" if self.compute_capability is None else "%d.%d" % self.compute_capability
        )
        return row


NUMPY_DEVICE = DeviceInfo(
    id="numpy",
    name="NumPy (host)",
    platform="NumPy",
    vendor="NumPy",
    type="host",
    compute_units=os.cpu_count() or 1,
)

_TYPE_NAMES = {"gpu": "GPU", "cpu": "CPU", "accelerator": "ACCELERATOR"}


def _device_type(dev) -> str:
    for name, attr in _TYPE_NAMES.items():
        if dev.type & getattr(cl.device_type, attr):
            return name
    return "accelerator"


def _nvidia_extras(dev, exts: set[str]) -> tuple[int, tuple[int, int] | None]:
    """Warp size and compute capability through cl_nv_device_attribute_query."""
    if "cl_nv_device_attribute_query" not in exts:
        return 0, None
    try:
        cc = (int(dev.compute_capability_major_nv), int(dev.compute_capability_minor_nv))
        return int(dev.warp_size_nv), cc
    except Exception:
        return 32, None


def _amd_simd(dev, exts: set[str]) -> int:
    if "cl_amd_device_attribute_query" not in exts:
        return 0
    try:
        return int(dev.wavefront_width_amd)
    except Exception:
        return 64


# x86 features that our CPU kernels choose between (the PoCL device of a CPU is the host).
_ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni")


def host_isa() -> tuple[str, ...]:
    """The host CPU's x86 features of interest (Linux ``/proc/cpuinfo``); empty elsewhere."""
    import platform as _platform

    if _platform.machine().lower() not in ("x86_64", "amd64"):
        return ()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return tuple(f for f in _ISA_FLAGS if f in flags)
    except OSError:
        pass
    return ()


def _denormals(dev) -> bool:
    try:
        return bool(dev.single_fp_config & cl.device_fp_config.DENORM)
    except Exception:
        return False


def _max_sub_devices(dev) -> int:
    try:
        return int(dev.partition_max_sub_devices)
    except Exception:
        return 0


def describe(dev, platform, platform_index: int, device_index: int) -> DeviceInfo:
    """Build a :class:`DeviceInfo` from a pyopencl device."""
    exts = set(dev.extensions.split())
    warp, cc = _nvidia_extras(dev, exts)
    wave = _amd_simd(dev, exts)
    native = int(dev.native_vector_width_float) or 1
    # dp4a exists from compute capability 6.1; the Khronos extension covers Intel and AMD.
    integer_dot = "cl_khr_integer_dot_product" in exts or (cc is not None and cc >= (6, 1))
    return DeviceInfo(
        id=f"cl:{platform_index}:{device_index}",
        name=dev.name.strip(),
        platform=platform.name.strip(),
        vendor=dev.vendor.strip(),
        type=_device_type(dev),
        compute_units=int(dev.max_compute_units),
        clock_mhz=int(dev.max_clock_frequency),
        global_mem_bytes=int(dev.global_mem_size),
        local_mem_bytes=int(dev.local_mem_size),
        max_alloc_bytes=int(dev.max_mem_alloc_size),
        max_work_group_size=int(dev.max_work_group_size),
        opencl_version=dev.version.strip(),
        driver_version=dev.driver_version.strip(),
        fp16="cl_khr_fp16" in exts,
        fp64="cl_khr_fp64" in exts or bool(getattr(dev, "double_fp_config", 0)),
        integer_dot=integer_dot,
        simd_width=warp or wave or native,
        native_float_width=native,
        compute_capability=cc,
        fp_denormals=_denormals(dev),
        max_sub_devices=_max_sub_devices(dev),
        host_isa=host_isa() if _device_type(dev) == "cpu" else (),
        extensions=tuple(sorted(exts)),
    )


def opencl_devices() -> list[tuple[DeviceInfo, object]]:
    """Every OpenCL device as ``(info, pyopencl.Device)``; empty when no driver is usable."""
    if cl is None:
        return []
    try:
        platforms = cl.get_platforms()
    except Exception:  # no ICD loader, or PLATFORM_NOT_FOUND_KHR
        return []
    found = []
    for pi, platform in enumerate(platforms):
        try:
            devices = platform.get_devices()
        except Exception:  # a platform with no devices raises DEVICE_NOT_FOUND
            continue
        for di, dev in enumerate(devices):
            try:
                found.append((describe(dev, platform, pi, di), dev))
            except Exception:  # a half-working driver should not hide the others
                continue
    return found


def list_devices(include_numpy: bool = True) -> list[DeviceInfo]:
    """All OpenCL devices on this machine, GPUs first, then the NumPy host backend.

    The order within each type is the driver's (``PYOPENCL_CTX`` indices stay valid through
    ``DeviceInfo.id``).
    """
    infos = [info for info, _ in opencl_devices()]
    order = {"gpu": 0, "accelerator": 1, "cpu": 2}
    infos.sort(key=lambda d: order.get(d.type, 3))
    if include_numpy:
        infos.append(NUMPY_DEVICE)
    return infos
