"""Devices, selection, contexts and queues, program builds, profiling, and the NumPy backend."""

from .base import Runtime, Timing
from .devices import DeviceInfo, list_devices
from .kernels import is_untuned, kernel_dir, record_tuning, tuned, tuning
from .selection import default, get_runtime, resolve_rt

__all__ = [
    "DeviceInfo",
    "Runtime",
    "Timing",
    "default",
    "get_runtime",
    "is_untuned",
    "kernel_dir",
    "list_devices",
    "record_tuning",
    "resolve_rt",
    "tuned",
    "tuning",
]
