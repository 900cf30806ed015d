"""The microbenchmarks that measure a device's ceilings (``kernels/roofline.cl``).

=============  ==============================================================================
bandwidth_gbs  best of float/float2/float4/float8/float16 copies and a float4 STREAM triad
fp32_gflops    independent FMA chains (2 flops per lane per FMA)
int32_gops     uint multiply-add chains (2 ops per lane)
int8_gops      the best of uchar multiply-add chains and, where present, 4-way int8 dot
               products (NVIDIA dp4a or cl_khr_integer_dot_product, 8 ops each)
h2d_gbs        host-to-device copy, the best of pageable and pinned host memory
d2h_gbs        device-to-host copy, likewise
launch_us      one empty kernel: enqueue and wait, host clock (the only host-timed ceiling,
               because the latency *is* the host round trip)
=============  ==============================================================================

:func:`iter_ceilings` runs them one at a time so a UI can show ceilings as they arrive. A
reading above :data:`~workbench.roofline.model.ABOVE_THEORY` times the datasheet figure stops the
measurement with :class:`ImplausibleMeasurement` (a benchmark the compiler optimised away, or a
broken timer); a ceiling whose deciding reading is noisy is listed in ``Ceilings.noisy``.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from .. import config
from ..errors import WorkbenchError
from ..runtime import Runtime, Timing, resolve_rt
from ..runtime.capabilities import dot4_defines, dot4_paths
from .model import ABOVE_THEORY, LABELS, SPREAD_NOISY, UNITS, Ceilings, Reading, theoretical_peaks


class ImplausibleMeasurement(WorkbenchError):
    """A ceiling reading above what the device can do: the benchmark is broken, not fast."""


@dataclass
class Step:
    """A planned microbenchmark: its ceiling, a label, and the function that runs it."""

    field: str
    name: str
    run: Callable[[], Reading]


def _gb(nbytes: float, t: Timing) -> float:
    return nbytes / t.median / 1e9


def _sizes(rt: Runtime, quick: bool) -> dict:
    gpu = rt.kind == "opencl-gpu"
    mib = 2**20
    buf = (128 if quick else 512) * mib if gpu else (64 if quick else 256) * mib
    xfer = (64 if quick else 256) * mib if gpu else (32 if quick else 64) * mib
    if rt.is_opencl:
        cap = min(rt.max_alloc, rt.info.global_mem_bytes // 8)
        buf, xfer = min(buf, cap), min(xfer, cap)
    budget = 0.5 if quick else 2.0
    return {"buf": buf // 64 * 64, "xfer": xfer // 64 * 64, "budget": budget,
            "repeat": 5 if quick else 15, "launches": 50 if quick else 300,
            "target_s": (0.004 if gpu else 0.02) * (1 if quick else 3)}


class _OpenCLProbes:
    """The OpenCL microbenchmarks of one runtime; the bandwidth buffers are made on first use
    and freed before the compute chains (devices short of memory need them back)."""

    CHAINS = 8

    def __init__(self, rt: Runtime, quick: bool):
        import pyopencl as cl

        self.cl = cl
        self.rt, self.s = rt, _sizes(rt, quick)
        cpu = rt.kind == "opencl-cpu"
        self.vw = min(16, rt.info.native_float_width) if cpu else 4
        self.prog = rt.program("roofline", VW=self.vw, VW8=16, CHAINS=self.CHAINS)
        self.gsize = rt.info.compute_units * (1024 if cpu else 2048)
        self.out = rt.empty((self.gsize,), np.float32, "roofline output").data
        self._bufs: tuple | None = None

    def _buffers(self):
        if self._bufs is None:
            cl, n = self.cl, self.s["buf"]
            host = np.random.default_rng(0).random(n // 4, dtype=np.float32) + 1.0  # no zeros, no denormals
            self.rt.check_alloc(n, "bandwidth buffer")
            mf = cl.mem_flags
            self._bufs = (cl.Buffer(self.rt.ctx, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=host),
                          cl.Buffer(self.rt.ctx, mf.READ_WRITE, n),
                          cl.Buffer(self.rt.ctx, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=host))
        return self._bufs

    def copy(self, width: int) -> Reading:
        src, dst, _ = self._buffers()
        s = self.s
        knl = getattr(self.prog, f"copy_{width}")
        t = self.rt.timeit(lambda: knl((s["buf"] // (4 * width),), None, src, dst),
                           warmup=2, repeat=s["repeat"], budget_s=s["budget"])
        return Reading("bandwidth_gbs", f"copy float{width if width > 1 else ''}",
                       _gb(2 * s["buf"], t), "GB/s", t.as_dict(), f"{s['buf'] >> 20} MiB")

    def triad(self) -> Reading:
        src, dst, third = self._buffers()
        s = self.s
        t = self.rt.timeit(lambda: self.prog.triad((s["buf"] // 16,), None, dst, src, third, np.float32(0.5)),
                           warmup=2, repeat=s["repeat"], budget_s=s["budget"])
        return Reading("bandwidth_gbs", "triad float4", _gb(3 * s["buf"], t), "GB/s",
                       t.as_dict(), f"{s['buf'] >> 20} MiB x 3")

    def chains(self, field_: str, name: str, knl, args, ops_per_iter: int) -> Reading:
        """Independent chains, ``iters`` long, sized so one launch takes ``target_s``."""
        self._bufs = None  # the bandwidth buffers are done with
        s, rt = self.s, self.rt
        no_sink = np.int32(0)
        iters = 64
        t0 = rt.timeit(lambda: knl((self.gsize,), None, self.out, *args, np.int32(iters), no_sink),
                       warmup=1, repeat=3, budget_s=None)
        iters = int(min(1 << 20, max(64, iters * s["target_s"] / max(t0.median, 1e-9))))
        t = rt.timeit(lambda: knl((self.gsize,), None, self.out, *args, np.int32(iters), no_sink),
                      warmup=1, repeat=s["repeat"], budget_s=s["budget"] * 2)
        ops = float(self.gsize) * iters * ops_per_iter
        return Reading(field_, name, ops / t.median / 1e9, UNITS[field_], t.as_dict(),
                       f"{self.gsize} work-items x {iters} iterations")

    def transfer(self, direction: str) -> Reading:
        cl, rt, s = self.cl, self.rt, self.s
        n = s["xfer"]
        rt.check_alloc(n, "transfer buffer")
        dev = cl.Buffer(rt.ctx, cl.mem_flags.READ_WRITE, n)
        pageable = np.random.default_rng(1).random(n // 4, dtype=np.float32)
        pinned_buf = cl.Buffer(rt.ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.ALLOC_HOST_PTR, n)
        pinned, _ = cl.enqueue_map_buffer(rt.queue, pinned_buf, cl.map_flags.READ | cl.map_flags.WRITE,
                                          0, (n // 4,), np.float32)
        pinned[:] = pageable
        best, best_t, which = 0.0, None, ""
        for label, host in (("pageable", pageable), ("pinned", pinned)):
            if direction == "h2d":
                fn = lambda host=host: cl.enqueue_copy(rt.queue, dev, host, is_blocking=False)  # noqa: E731
            else:
                fn = lambda host=host: cl.enqueue_copy(rt.queue, host, dev, is_blocking=False)  # noqa: E731
            t = rt.timeit(fn, warmup=1, repeat=s["repeat"], budget_s=s["budget"])
            if _gb(n, t) > best:
                best, best_t, which = _gb(n, t), t, label
        del pinned
        return Reading(f"{direction}_gbs", LABELS[f"{direction}_gbs"], best, "GB/s", best_t.as_dict(),
                       f"{n >> 20} MiB, the faster of pageable and pinned host memory: {which}")

    def launch(self) -> Reading:
        samples = []
        for _ in range(10):  # warm-up: first launches pay for lazy driver set-up
            self.prog.empty((1,), None, self.out).wait()
        for _ in range(self.s["launches"]):
            t0 = time.perf_counter()
            self.prog.empty((1,), None, self.out).wait()
            samples.append(time.perf_counter() - t0)
        t = Timing(tuple(samples), "host")
        return Reading("launch_us", "empty kernel, enqueue + wait", t.median * 1e6, "us",
                       t.as_dict(), "1 work-item")

    def steps(self) -> list[Step]:
        c, vw = self.CHAINS, self.vw
        prog = self.prog
        out = [Step("bandwidth_gbs", f"copy float{w if w > 1 else ''}", lambda w=w: self.copy(w))
               for w in (1, 2, 4, 8, 16)]
        out.append(Step("bandwidth_gbs", "triad float4", self.triad))
        out.append(Step("fp32_gflops", "fp32 fma chains", lambda: self.chains(
            "fp32_gflops", f"fp32 fma, float{vw} x {c} chains", prog.fp32_fma,
            (np.float32(0.999), np.float32(1e-3)), 2 * c * vw)))
        out.append(Step("int32_gops", "int32 mad chains", lambda: self.chains(
            "int32_gops", f"int32 mad, uint{vw} x {c} chains", prog.int32_mad,
            (np.uint32(1664525), np.uint32(1013904223)), 2 * c * vw)))
        out.append(Step("int8_gops", "int8 mad chains", lambda: self.chains(
            "int8_gops", f"int8 mad, uchar16 x {c} chains", prog.int8_mad,
            (np.uint8(5), np.uint8(3)), 2 * c * 16)))
        paths = [p for p in dot4_paths(self.rt) if p != "plain"]
        if paths:  # the best 4-way int8 dot the device has (the capability probe picked it)
            how = {"dp4a": "dp4a", "khr": "cl_khr_integer_dot_product"}[paths[0]]
            dot = self.rt.program("roofline", CHAINS=c, **dot4_defines(paths[0]))
            out.append(Step("int8_gops", f"int8 dot ({how})", lambda: self.chains(
                "int8_gops", f"int8 4-way dot ({how}) x {c} chains", dot.int8_dot,
                (np.int32(0x01020304), np.int32(0x05060708)), 8 * c)))
        out.append(Step("h2d_gbs", "host to device", lambda: self.transfer("h2d")))
        out.append(Step("d2h_gbs", "device to host", lambda: self.transfer("d2h")))
        out.append(Step("launch_us", "launch latency", self.launch))
        return out


def _numpy_steps(rt: Runtime, quick: bool) -> list[Step]:
    s = _sizes(rt, quick)

    def copy() -> Reading:
        n = s["buf"] // 4
        src = np.random.default_rng(0).random(n, dtype=np.float32) + 1.0
        dst = np.empty_like(src)
        t = rt.timeit(lambda: np.copyto(dst, src), warmup=1, repeat=s["repeat"], budget_s=s["budget"])
        return Reading("bandwidth_gbs", "numpy copyto", _gb(2 * src.nbytes, t), "GB/s",
                       t.as_dict(), f"{src.nbytes >> 20} MiB")

    def sgemm() -> Reading:
        n = 512 if quick else 1024
        a = np.random.default_rng(0).random((n, n), dtype=np.float32)
        t = rt.timeit(lambda: a @ a, warmup=1, repeat=s["repeat"], budget_s=s["budget"])
        return Reading("fp32_gflops", f"numpy sgemm {n}^3 (BLAS)", 2 * n**3 / t.median / 1e9,
                       "GFLOP/s", t.as_dict(), f"{n}^3")

    def elementwise(field_: str, dtype) -> Callable[[], Reading]:
        def run() -> Reading:
            x = np.arange(1 << 14, dtype=dtype)  # cache-resident: measures the arithmetic
            a, b = dtype(5), dtype(3)

            def mad():
                for _ in range(64):
                    np.multiply(x, a, out=x)
                    np.add(x, b, out=x)

            t = rt.timeit(mad, warmup=1, repeat=s["repeat"], budget_s=s["budget"])
            return Reading(field_, f"numpy {np.dtype(dtype).name} multiply-add",
                           2 * 64 * x.size / t.median / 1e9, "GOP/s", t.as_dict(), f"{x.size} elements")
        return run

    def launch() -> Reading:
        x = np.ones(1, np.float32)
        t = rt.timeit(lambda: np.negative(x, out=x), warmup=10, repeat=s["launches"], budget_s=None)
        return Reading("launch_us", "numpy ufunc call overhead", t.median * 1e6, "us", t.as_dict(),
                       "1 element")

    return [
        Step("bandwidth_gbs", "numpy copy", copy),
        Step("fp32_gflops", "numpy sgemm", sgemm),
        Step("int32_gops", "numpy int32 mad", elementwise("int32_gops", np.uint32)),
        Step("int8_gops", "numpy int8 mad", elementwise("int8_gops", np.uint8)),
        Step("launch_us", "numpy call overhead", launch),
    ]


def plan_ceilings(rt: Runtime | str | None = None, quick: bool | None = None) -> list[Step]:
    """The microbenchmarks that :func:`measure_ceilings` will run, in order, not yet run."""
    rt = resolve_rt(rt)
    quick = config.quick() if quick is None else quick
    return _numpy_steps(rt, quick) if rt.is_numpy else _OpenCLProbes(rt, quick).steps()


def new_ceilings(rt: Runtime, quick: bool = False) -> Ceilings:
    return Ceilings(
        device=rt.name, device_key=rt.info.key, kind=rt.kind,
        theoretical=theoretical_peaks(rt.info), quick=quick,
        measured_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


def check_reading(ceilings: Ceilings, reading: Reading) -> None:
    """Raise :class:`ImplausibleMeasurement` for a reading above the datasheet bound."""
    bound = ceilings.theoretical.get(reading.field)
    if bound and reading.value > ABOVE_THEORY * bound:
        raise ImplausibleMeasurement(
            f"{reading.name}: {reading.value:,.0f} {UNITS[reading.field]} is above the device's theoretical "
            f"{LABELS[reading.field]} ({bound:,.0f} {UNITS[reading.field]}): the benchmark is broken "
            "(optimised away, or a wrong timer), not fast; nothing was kept")


def noisy_ceilings(ceilings: Ceilings) -> list[str]:
    """The ceilings whose deciding reading varied by more than SPREAD_NOISY over its repeats
    (quick measurements are few and short by design and are not judged; latencies are
    heavy-tailed and reported as medians)."""
    if ceilings.quick:
        return []
    out = []
    for f in ("bandwidth_gbs", "fp32_gflops", "int32_gops", "int8_gops", "h2d_gbs", "d2h_gbs"):
        r = ceilings.deciding_reading(f)
        if r is not None and r.get("timing", {}).get("spread", 0.0) > SPREAD_NOISY:
            out.append(f)
    return out


def check_plausible(ceilings: Ceilings) -> list[str]:
    """Warnings for noisy ceilings (a reading above the datasheet stops the measurement before)."""
    warnings = []
    for f in noisy_ceilings(ceilings):
        r = ceilings.deciding_reading(f)
        warnings.append(f"{LABELS[f]} ({r['name']}): noisy, spread {r['timing']['spread']:.0%} over "
                        f"{r['timing'].get('repeats')} repeats; measure again with nothing else running")
    return warnings


def iter_ceilings(rt: Runtime | str | None = None,
                  quick: bool | None = None) -> Iterator[tuple[Reading, Ceilings, int, int]]:
    """Run the microbenchmarks one at a time, yielding ``(reading, ceilings so far, i, total)``
    after each, so a UI can show ceilings as they arrive. Raises ImplausibleMeasurement."""
    rt = resolve_rt(rt)
    quick = config.quick() if quick is None else quick
    steps = plan_ceilings(rt, quick)
    ceilings = new_ceilings(rt, quick)
    for i, step in enumerate(steps, 1):
        reading = step.run()
        check_reading(ceilings, reading)
        ceilings.add(reading)
        if i == len(steps):
            ceilings.noisy = noisy_ceilings(ceilings)
            ceilings.warnings = check_plausible(ceilings)
        yield reading, ceilings, i, len(steps)
