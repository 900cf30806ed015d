"""Exceptions raised by the workbench.

Every error a user can cause by what they pass in is an :class:`InputError` that names the
argument and says what was expected, raised before any kernel runs. It subclasses ``ValueError``
so that code written against NumPy's conventions still catches it.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class InputError(WorkbenchError, ValueError):
    """A bad argument: wrong dtype, shape, range, or an unknown name.

    ``argument`` holds the argument's name so that UIs can point at the offending control.
    """

    def __init__(self, argument: str, message: str):
        self.argument = argument
        super().__init__(f"{argument}: {message}")


class KernelBuildError(WorkbenchError):
    """An OpenCL program failed to build. Carries the file, the build options and the log."""

    def __init__(self, path: str, options: list[str], log: str, device: str = ""):
        self.path = path
        self.options = list(options)
        self.log = log
        self.device = device
        on = f" for {device}" if device else ""
        super().__init__(
            f"building {path}{on} failed\n"
            f"options: {' '.join(self.options) or '(none)'}\n"
            f"build log:\n{log.strip() or '(empty)'}"
        )


class DeviceMemoryError(WorkbenchError, MemoryError):
    """A buffer is larger than the device allows (max allocation or global memory)."""

    def __init__(self, what: str, nbytes: int, limit: int, device: str = ""):
        self.what = what
        self.nbytes = int(nbytes)
        self.limit = int(limit)
        on = f" on {device}" if device else ""
        super().__init__(
            f"{what} needs {nbytes / 2**20:.1f} MiB, more than the {limit / 2**20:.1f} MiB "
            f"one buffer may take{on}"
        )
