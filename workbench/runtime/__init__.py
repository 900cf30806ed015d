"""Devices, selection, contexts and queues, program builds, profiling, and the NumPy backend."""

from .base import Runtime, Timing
from .devices import DeviceInfo, list_devices
from .kernels import kernel_dir, record_tuning, tuning
from .selection import default, get_runtime, resolve_rt

__all__ = [
    "DeviceInfo",
    "Runtime",
    "Timing",
    "default",
    "get_runtime",
    "kernel_dir",
    "list_devices",
    "record_tuning",
    "resolve_rt",
    "tuning",
]
