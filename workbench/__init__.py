"""workbench: research-grade compute on any OpenCL device.

Quick start::

    import workbench
    rt = workbench.runtime.get_runtime()          # best device, or NumPy with a warning
    c = workbench.ops.matmul(a, b, rt=rt)          # tiled SGEMM on that device
    ceilings = workbench.roofline.measure_ceilings(rt)
"""

from . import errors, runtime
from .errors import DeviceMemoryError, InputError, KernelBuildError, WorkbenchError
from .runtime import default, get_runtime, list_devices

__version__ = "0.1.0"

__all__ = [
    "DeviceMemoryError",
    "InputError",
    "KernelBuildError",
    "WorkbenchError",
    "default",
    "errors",
    "get_runtime",
    "list_devices",
    "runtime",
]
