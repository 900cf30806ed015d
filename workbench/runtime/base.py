"""The interface every backend offers, and the timing record it returns."""

from __future__ import annotations

import statistics
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Hashable

import numpy as np

from .devices import DeviceInfo


@dataclass(frozen=True)
class Timing:
    """Repeated measurements of one operation, in seconds.

    ``median`` is what benchmarks report; ``spread`` is the relative width of the samples over
    the median: p90 - p10 with ten samples or more, the range without the smallest and largest
    sample with five to nine, max - min with fewer. Used to flag noisy readings. ``source``
    says what clock produced the samples: ``"events"`` (OpenCL profiling
    events, device time only) or ``"host"`` (``time.perf_counter`` around a synchronous call).
    """

    samples: tuple[float, ...]
    source: str

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    @property
    def spread(self) -> float:
        med = self.median
        if med <= 0:
            return 0.0
        n = len(self.samples)
        if n >= 10:
            lo, hi = np.percentile(self.samples, [10, 90])
            return float(hi - lo) / med
        if n >= 5:
            ordered = sorted(self.samples)
            return (ordered[-2] - ordered[1]) / med
        return (self.max - self.min) / med

    def __float__(self) -> float:
        return self.median

    def as_dict(self) -> dict:
        return {
            "median_s": self.median,
            "min_s": self.min,
            "max_s": self.max,
            "spread": self.spread,
            "repeats": len(self.samples),
            "source": self.source,
        }


def plan_repeats(first_seconds: float, repeat: int, budget_s: float | None) -> int:
    """How many timed repeats fit in ``budget_s`` given one call took ``first_seconds``.

    Never fewer than 3 (a median of fewer says little), never more than ``repeat``.
    """
    if budget_s is None or first_seconds <= 0:
        return repeat
    return max(3, min(repeat, int(budget_s / first_seconds)))


def repeat_timing(
    once: Callable[[], float],
    warmup: int = 1,
    *, repeat: int = 10,
    budget_s: float | None = 2.0,
    source: str = "host",
) -> Timing:
    """Call ``once()`` (which runs the work and returns its seconds) ``warmup`` times untimed,
    then as many times as :func:`plan_repeats` allows; the one timing loop of every clock."""
    for _ in range(warmup):
        once()
    first = once()
    samples = [first] + [once() for _ in range(plan_repeats(first, repeat, budget_s) - 1)]
    return Timing(tuple(samples), source)


def host_timeit(
    fn: Callable[[], object],
    warmup: int = 1,
    *, repeat: int = 10,
    budget_s: float | None = 2.0,
    sync: Callable[[], None] | None = None,
) -> Timing:
    """Median-of-repeats host timing of ``fn()``; ``sync()`` (if given) runs inside each timed
    call, after ``fn``, for backends that return before the work is done."""

    def once() -> float:
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        return time.perf_counter() - t0

    return repeat_timing(once, warmup, repeat=repeat, budget_s=budget_s, source="host")


class Runtime:
    """A device to run on: an OpenCL device or the NumPy host backend.

    Attributes: ``name`` (the device's name), ``kind`` (``"opencl-gpu"``, ``"opencl-cpu"`` or
    ``"numpy"``), ``info`` (:class:`DeviceInfo`). Capability code takes a runtime as ``rt=`` and
    never creates contexts itself.

    The runtime owns every piece of per-device state, so that it lives and dies with the device's
    context and no capability package keeps its own cache:

    * :meth:`memo` for things built once per device (engines, configurations, plans), optionally
      tied to the lifetime of an ``owner`` object (a matrix's device copy dies with the matrix);
    * :meth:`scratch` (OpenCL) for reused temporary device buffers, one pool per device.
    """

    name: str
    kind: str
    info: DeviceInfo

    def _init_state(self) -> None:
        # Timings on one device are serialised (across dashboard sessions, threads): two
        # measurements at once would time each other's kernels. Where both are needed,
        # measure_lock is taken before an OpenCL runtime's launch_lock (no lock cycle).
        self.measure_lock = threading.RLock()
        self._memo_lock = threading.RLock()
        self._memo: dict = {}
        self._owned: dict[int, tuple[weakref.ref, dict]] = {}
        self._key_locks: dict = {}

    @property
    def is_opencl(self) -> bool:
        return self.kind != "numpy"

    @property
    def is_numpy(self) -> bool:
        """True for the NumPy host backend (the reference): the one way to ask."""
        return self.kind == "numpy"

    # -- per-device state ---------------------------------------------------------------------
    def _table(self, owner) -> dict:
        if owner is None:
            return self._memo
        oid = id(owner)
        hit = self._owned.get(oid)
        if hit is None or hit[0]() is not owner:
            def drop(_ref, oid=oid, owned=self._owned):
                owned.pop(oid, None)

            hit = self._owned[oid] = (weakref.ref(owner, drop), {})
        return hit[1]

    def memo(self, key: Hashable, make: Callable[[], Any], *, owner: object = None) -> Any:
        """The value ``make()`` built for ``key`` on this device, built on first use only.

        pyopencl's ``context_dependent_memoize`` in one method: what is built for a device is
        kept by the device's runtime, so nothing keys a module-level cache on ``id(rt)``. With
        ``owner`` (any object that can be weakly referenced), the entry is kept only as long
        as ``owner`` lives, for device copies of a user's matrix or weights. Thread-safe: two
        threads asking for one key build it once.
        """
        with self._memo_lock:
            table = self._table(owner)
            if key in table:
                return table[key]
            lock = self._key_locks.setdefault((id(owner), key), threading.Lock())
        with lock:
            with self._memo_lock:
                table = self._table(owner)
                if key in table:
                    return table[key]
            value = make()
            with self._memo_lock:
                self._table(owner)[key] = value
                self._key_locks.pop((id(owner), key), None)
            return value

    def forget(self, key: Hashable | None = None, *, owner: object = None) -> None:
        """Drop one memoised entry (``key``), or every entry of ``owner``, or with neither every
        device-wide entry (after ``workbench tune`` recorded new tunables, say)."""
        with self._memo_lock:
            if owner is not None:
                if key is None:
                    self._owned.pop(id(owner), None)
                else:
                    self._table(owner).pop(key, None)
            elif key is None:
                self._memo.clear()
            else:
                self._memo.pop(key, None)

    def program(self, name: str, **defines):
        raise NotImplementedError

    def finish(self) -> None:
        """Wait for all queued work (a no-op on the host backend)."""

    def host_timeit(
        self,
        fn: Callable[[], object],
        warmup: int = 1,
        *, repeat: int = 10,
        budget_s: float | None = 2.0,
    ) -> Timing:
        """Time ``fn()`` with the host clock; ``finish()`` is called after every call.

        Used for the NumPy backend, for references (NumPy, torch) and where a host round trip is
        the quantity of interest (launch latency, end-to-end calls with transfers).
        Holds ``measure_lock`` throughout.
        """
        with self.measure_lock:
            return host_timeit(fn, warmup, repeat=repeat, budget_s=budget_s, sync=self.finish)

    def timeit(self, fn, warmup: int = 1, *, repeat: int = 10, budget_s: float | None = 2.0) -> Timing:
        """Median-of-repeats timing of ``fn()``; see the backend's docstring for the clock used."""
        return self.host_timeit(fn, warmup=warmup, repeat=repeat, budget_s=budget_s)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ({self.kind})>"
