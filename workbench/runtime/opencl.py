"""The OpenCL backend: one context and one profiling queue per device, programs cached per context.

Kernels are launched through :class:`Kernel`, which holds a lock around ``clSetKernelArg`` and the
enqueue: a shared ``cl_kernel`` is not thread-safe, and the dashboard launches from several
sessions' threads at once.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from typing import Callable, Sequence

import numpy as np
import pyopencl as cl
import pyopencl.array as cla

from ..errors import DeviceMemoryError, InputError, KernelBuildError
from .base import Runtime, Timing, repeat_timing
from .devices import DeviceInfo
from .kernels import kernel_dir, kernel_path

_DEFINE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
log = logging.getLogger(__name__)


def define_preamble(defines: dict) -> str:
    """``#define`` lines for ``defines`` (upper-case names; bools become 1/0), sorted."""
    lines = []
    for name in sorted(defines):
        if not _DEFINE.match(name):
            raise InputError("defines", f"tunable names are upper-case macros, got {name!r}")
        value = defines[name]
        if isinstance(value, bool):
            value = int(value)
        lines.append(f"#define {name} {value}")
    return "\n".join(lines) + ("\n" if lines else "")


def _same_arg(old, new) -> bool:
    """Whether kernel argument ``new`` is what is already set: the same buffer object, or a
    scalar of the same type and value."""
    if old is new:
        return True
    if (isinstance(old, cl.MemoryObjectHolder) or isinstance(new, cl.MemoryObjectHolder)
            or old is None or new is None):
        return False
    return type(old) is type(new) and old == new


class Kernel:
    """A launcher for one kernel of a built program; calling it enqueues and returns the event.

    Only the arguments that differ from the last launch's are set: each ``clSetKernelArg`` costs
    the host time of a small kernel on some drivers (about 15 us on NVIDIA's), and repeated calls
    of one op (a GEMV in a loop, a benchmark) pass the same buffers every time."""

    def __init__(self, program: "Program", name: str):
        self.name = name
        self._program = program
        self._kernel = cl.Kernel(program.cl_program, name)
        self._args: list = []

    def __call__(
        self,
        global_size: Sequence[int],
        local_size: Sequence[int] | None,
        *args,
        wait_for: Sequence[cl.Event] | None = None,
    ) -> cl.Event:
        rt = self._program.rt
        with rt.launch_lock:
            last = self._args
            for i, a in enumerate(args):
                if i >= len(last) or not _same_arg(last[i], a):
                    self._kernel.set_arg(i, a)
            self._args = list(args)
            return cl.enqueue_nd_range_kernel(
                rt.queue, self._kernel, tuple(global_size),
                None if local_size is None else tuple(local_size), wait_for=wait_for,
            )

    def work_group_info(self, param: str):
        """``cl.kernel_work_group_info`` entry for this device, e.g. ``"WORK_GROUP_SIZE"``."""
        info = getattr(cl.kernel_work_group_info, param)
        return self._kernel.get_work_group_info(info, self._program.rt.device)


class Program:
    """A program built from ``kernels/<family>.cl`` with a ``#define`` preamble."""

    def __init__(self, rt: "OpenCLRuntime", family: str, defines: dict, options: list[str]):
        self.rt = rt
        self.family = family
        self.defines = dict(defines)
        self.options = list(options)
        self.path = kernel_path(family)
        source = define_preamble(defines) + f'#line 1 "{self.path.name}"\n' + self.path.read_text()
        try:
            # A successful build's messages (NVIDIA's "overriding noinline", say) go to the
            # debug log, not a warning on every first use; a failed build raises with its log.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", cl.CompilerWarning)
                self.cl_program = cl.Program(rt.ctx, source).build(options=self.options)
            for w in caught:
                if issubclass(w.category, cl.CompilerWarning):
                    log.debug("building %s: %s", self.path.name, w.message)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        except cl.Error as exc:
            raise KernelBuildError(
                str(self.path), self.options + [f"-D{k}={v}" for k, v in sorted(defines.items())],
                _build_log(exc), rt.name,
            ) from None
        self._kernels: dict[str, Kernel] = {}

    def __getattr__(self, name: str) -> Kernel:
        if name.startswith("_"):
            raise AttributeError(name)
        kernels = self.__dict__["_kernels"]
        if name not in kernels:
            try:
                kernels[name] = Kernel(self, name)
            except cl.Error:
                raise AttributeError(f"{self.path.name} has no kernel {name!r}") from None
        return kernels[name]


def _build_log(exc: Exception) -> str:
    """The compiler's messages from a pyopencl build exception, without its repeated prefix."""
    text = str(exc)
    marker = text.find("Build on")
    return text[marker:] if marker >= 0 else text


class OpenCLRuntime(Runtime):
    """An OpenCL device with a profiling command queue.

    ``timeit`` measures device time from the events that the timed callable returns (first
    event's start to last event's end), after warm-up, and reports the median of repeats.
    """

    def __init__(self, info: DeviceInfo, device: cl.Device):
        self._init_state()
        self.info = info
        self.device = device
        self.name = info.name
        self.kind = "opencl-gpu" if info.type == "gpu" else "opencl-cpu"
        self.ctx = cl.Context([device])
        self.queue = cl.CommandQueue(
            self.ctx, properties=cl.command_queue_properties.PROFILING_ENABLE
        )
        # A plain attribute, not the frozen info's, so that tests can emulate a small device.
        self.max_alloc = info.max_alloc_bytes
        self.launch_lock = threading.RLock()
        self._build_lock = threading.Lock()
        self._programs: dict[tuple, Program] = {}
        self._scratch: dict[str, cl.Buffer] = {}

    # -- programs -----------------------------------------------------------------------------
    def program(self, name: str, options: Sequence[str] = (), **defines) -> Program:
        """Build (once per context) ``kernels/<name>.cl`` with ``#define``s for ``defines``."""
        opts = ["-I", str(kernel_dir()), *options]
        key = (name, tuple(sorted(defines.items())), tuple(opts))
        with self._build_lock:
            prog = self._programs.get(key)
            if prog is None:
                prog = self._programs[key] = Program(self, name, defines, opts)
        return prog

    # -- memory -------------------------------------------------------------------------------
    def check_alloc(self, nbytes: int, what: str) -> None:
        if nbytes > self.max_alloc:
            raise DeviceMemoryError(what, nbytes, self.max_alloc, self.name)

    def to_device(self, array: np.ndarray, what: str = "array") -> cla.Array:
        array = np.ascontiguousarray(array)
        self.check_alloc(array.nbytes, what)
        return cla.to_device(self.queue, array)

    def empty(self, shape, dtype=np.float32, what: str = "array") -> cla.Array:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        self.check_alloc(nbytes, what)
        return cla.empty(self.queue, shape, dtype)

    def scratch(self, name: str, nbytes: int) -> cl.Buffer:
        """A temporary device buffer of at least ``nbytes`` kept between calls under ``name``
        (grown when a call needs more, never shrunk): the device's one scratch pool.

        Allocating per call cost more than the work itself for small products (drivers allocate
        lazily, at first use). A caller holds ``launch_lock`` from its first use of the buffer to
        its last launch, because every caller of one name shares the buffer."""
        nbytes = max(int(nbytes), 1)
        buf = self._scratch.get(name)
        if buf is None or buf.size < nbytes:
            self.check_alloc(nbytes, f"scratch buffer {name!r}")
            self._scratch.pop(name, None)  # release the old one before asking for the larger
            buf = self._scratch[name] = cl.Buffer(self.ctx, cl.mem_flags.READ_WRITE, nbytes)
        return buf

    @property
    def scratch_bytes(self) -> int:
        """Bytes held by the scratch pool."""
        return sum(b.size for b in self._scratch.values())

    def release_scratch(self) -> None:
        """Free every scratch buffer (they are allocated again on next use)."""
        with self.launch_lock:
            self._scratch.clear()

    def finish(self) -> None:
        self.queue.finish()

    # -- timing -------------------------------------------------------------------------------
    def timeit(
        self,
        fn: Callable[[], cl.Event | Sequence[cl.Event] | None],
        warmup: int = 1,
        *, repeat: int = 10,
        budget_s: float | None = 2.0,
    ) -> Timing:
        """Device time of ``fn()``, which enqueues work and returns its event(s).

        A callable that returns no event is timed with the host clock instead (with a
        ``finish()`` after each call), and the Timing says so in ``source``. Holds
        ``measure_lock`` throughout, so two timings on one device never overlap.
        """
        with self.measure_lock:
            return self._timeit(fn, warmup, repeat, budget_s)

    def _timeit(self, fn, warmup: int, repeat: int, budget_s: float | None) -> Timing:

        def events_of_one_call():
            events = fn()
            if isinstance(events, cl.Event):
                events = [events]
            return events

        probe = events_of_one_call()  # doubles as the first warm-up call
        if probe is None:
            return self.host_timeit(fn, warmup=max(0, warmup - 1), repeat=repeat, budget_s=budget_s)
        cl.wait_for_events(list(probe))

        def once() -> float:
            events = list(events_of_one_call())
            cl.wait_for_events(events)
            return (events[-1].profile.end - events[0].profile.start) * 1e-9

        return repeat_timing(once, max(0, warmup - 1), repeat=repeat, budget_s=budget_s, source="events")
