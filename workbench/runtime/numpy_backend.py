"""The NumPy host backend: the reference every OpenCL op is checked against, and the fallback
when no OpenCL driver exists. It runs no OpenCL programs; ops dispatch to their NumPy code."""

from __future__ import annotations

from ..errors import WorkbenchError
from .base import Runtime
from .devices import NUMPY_DEVICE


class NumpyRuntime(Runtime):
    """Runs every op with NumPy on the host; ``timeit`` uses the host clock."""

    def __init__(self):
        self._init_state()
        self.info = NUMPY_DEVICE
        self.name = NUMPY_DEVICE.name
        self.kind = "numpy"

    def program(self, name: str, **defines):
        raise WorkbenchError(
            "the NumPy backend runs no OpenCL programs; pick an OpenCL device with "
            "get_runtime('gpu') or get_runtime('cpu')"
        )
