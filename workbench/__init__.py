"""workbench: research-grade compute on any OpenCL device.

Quick start::

    import numpy as np
    from workbench import get_runtime, ops, roofline
    rt = get_runtime()                             # best device, or NumPy with a warning
    a, b = np.random.rand(300, 200), np.random.rand(200, 100)
    c = ops.matmul(a, b, rt=rt)                    # tiled SGEMM on that device
    ceilings = roofline.measure_ceilings(rt, quick=True)

The capability packages (``ops``, ``roofline``, ``nn``, ``quant``, ``sparse``, ``snn``,
``store``, ``jobs``...) are imported on first use: ``workbench.quant`` works after a plain
``import workbench``.
"""

import importlib

from . import errors, runtime
from .errors import DeviceMemoryError, InputError, KernelBuildError, WorkbenchError
from .runtime import default, get_runtime, list_devices

__version__ = "0.1.0"
_SUBMODULES = ("bench", "config", "data", "jobs", "nn", "ops", "quant", "recipes", "references", "report",
               "roofline", "snn", "sparse", "store", "tune", "validation", "viz", "widgets")


def __getattr__(name: str):
    # subpackages on first use: importing bokeh or ipywidgets is not free, and most scripts need few
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")

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
