"""Measured roofline: a device's ceilings from our own microbenchmarks, and the model built on them.

The roofline model (Williams, Waterman & Patterson, 2009) bounds the rate of a kernel with
arithmetic intensity I = flops / bytes moved (FLOP/byte) by

    P(I) = min(P_peak, I * B)          [GFLOP/s]

with P_peak the compute ceiling (GFLOP/s) and B the memory bandwidth (GB/s = 1e9 bytes/s). The
ridge point I* = P_peak / B separates memory-bound (I < I*) from compute-bound kernels.

Ceilings here are *measured* on the user's device (``kernels/roofline.cl``):

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

Readings above the datasheet figure, or with a wide spread over repeats, are flagged in
``Ceilings.warnings``. Ceilings are cached in the store per device and driver version, so a plot
can be redrawn without measuring again (:func:`get_ceilings`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from . import config
from .errors import InputError
from .runtime import Runtime, Timing, resolve_rt
from .runtime.devices import DeviceInfo

CEILING_FIELDS = (
    "bandwidth_gbs", "fp32_gflops", "int32_gops", "int8_gops", "h2d_gbs", "d2h_gbs", "launch_us",
)
UNITS = {
    "bandwidth_gbs": "GB/s", "fp32_gflops": "GFLOP/s", "int32_gops": "GOP/s",
    "int8_gops": "GOP/s", "h2d_gbs": "GB/s", "d2h_gbs": "GB/s", "launch_us": "us",
}
LABELS = {
    "bandwidth_gbs": "memory bandwidth", "fp32_gflops": "FP32 peak", "int32_gops": "INT32 peak",
    "int8_gops": "INT8 peak", "h2d_gbs": "host to device", "d2h_gbs": "device to host",
    "launch_us": "launch latency",
}
SPREAD_WARN = 0.30  # (max - min) / median over repeats above this is called noisy
ABOVE_THEORY = 1.10  # a reading this far above the datasheet is implausible

# Datasheet memory bandwidth (GB/s) for devices whose OpenCL name we can recognise.
DATASHEET_BANDWIDTH_GBS = {
    "H100 80GB HBM3": 3350, "H100 PCIe": 2000, "H100 NVL": 3900, "H200": 4800,
    "A100-SXM4-80GB": 2039, "A100-SXM4-40GB": 1555, "A100-PCIE-40GB": 1555,
    "A100 80GB PCIe": 1935, "L40S": 864, "RTX 4090": 1008, "RTX 3090": 936,
    "Radeon RX 580": 256, "Ellesmere": 256,
}
# FP32 lanes per compute unit by NVIDIA compute capability (major, minor).
_NV_LANES = {(9, 0): 128, (8, 9): 128, (8, 7): 128, (8, 6): 128, (8, 0): 64, (7, 5): 64,
             (7, 2): 64, (7, 0): 64, (6, 2): 128, (6, 1): 128, (6, 0): 64}


@dataclass
class Reading:
    """One microbenchmark's result: ``value`` in ``unit`` for the ceiling ``field``."""

    field: str
    name: str
    value: float
    unit: str
    timing: dict = dataclasses.field(default_factory=dict)
    size: str = ""


@dataclass
class Ceilings:
    """A device's measured ceilings (see the module docstring for what each one is)."""

    device: str
    device_key: str
    kind: str
    bandwidth_gbs: float | None = None
    fp32_gflops: float | None = None
    int32_gops: float | None = None
    int8_gops: float | None = None
    h2d_gbs: float | None = None
    d2h_gbs: float | None = None
    launch_us: float | None = None
    readings: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    theoretical: dict = field(default_factory=dict)
    measured_at: str = ""
    quick: bool = False

    def add(self, reading: Reading) -> None:
        """Fold one reading in: a ceiling is the best reading that feeds it (the least for
        launch latency)."""
        self.readings.append(dataclasses.asdict(reading))
        old = getattr(self, reading.field)
        better = min if reading.field == "launch_us" else max
        setattr(self, reading.field, reading.value if old is None else better(old, reading.value))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Ceilings":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def summary(self) -> list[tuple[str, str]]:
        """(label, formatted value) pairs for tables."""
        out = []
        for f in CEILING_FIELDS:
            v = getattr(self, f)
            out.append((LABELS[f], "n/a" if v is None else f"{v:,.1f} {UNITS[f]}"))
        return out


# -- the model --------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpProfile:
    """One measured operation: ``flops`` (count), ``bytes`` (the fewest bytes it must move
    through device memory), ``seconds`` (median time)."""

    name: str
    flops: float
    bytes: float
    seconds: float

    def __post_init__(self):
        for attr in ("flops", "bytes", "seconds"):
            v = getattr(self, attr)
            if not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v) or v < 0:
                raise InputError(attr, f"expected a finite number >= 0, got {v!r}")
        if self.bytes == 0:
            raise InputError("bytes", "an operation moves at least some bytes")
        if self.seconds == 0:
            raise InputError("seconds", "a measured time must be > 0")

    @property
    def ai(self) -> float:
        """Arithmetic intensity, FLOP/byte."""
        return self.flops / self.bytes

    @property
    def gflops(self) -> float:
        return self.flops / self.seconds / 1e9

    @property
    def gbs(self) -> float:
        return self.bytes / self.seconds / 1e9


class Roofline:
    """``P(I) = min(peak, I * bandwidth)`` from measured :class:`Ceilings`.

    ``compute`` names the compute ceiling (``"fp32_gflops"``, ``"int8_gops"``...).
    """

    def __init__(self, ceilings: Ceilings, compute: str = "fp32_gflops"):
        if compute not in ("fp32_gflops", "int32_gops", "int8_gops"):
            raise InputError("compute", f"expected fp32_gflops, int32_gops or int8_gops, got {compute!r}")
        peak, bw = getattr(ceilings, compute), ceilings.bandwidth_gbs
        if not peak or not bw:
            raise InputError("ceilings", f"need measured {compute} and bandwidth_gbs")
        self.ceilings = ceilings
        self.compute = compute
        self.peak = float(peak)
        self.bandwidth = float(bw)

    @property
    def ridge_point(self) -> float:
        """I* = peak / bandwidth, FLOP/byte."""
        return self.peak / self.bandwidth

    def attainable(self, ai):
        """Attainable GFLOP/s at arithmetic intensity ``ai`` (FLOP/byte; scalar or array)."""
        arr = np.asarray(ai, dtype=np.float64)
        if np.any(~np.isfinite(arr)) or np.any(arr < 0):
            raise InputError("ai", "arithmetic intensity must be finite and >= 0")
        out = np.minimum(self.peak, arr * self.bandwidth)
        return float(out) if out.ndim == 0 else out

    def bound(self, profile: OpProfile) -> str:
        return "memory" if profile.ai < self.ridge_point else "compute"

    def efficiency(self, profile: OpProfile) -> float:
        """Achieved / attainable rate at the profile's intensity (0..1, or above 1 when the
        measured ceilings underestimate the device)."""
        return profile.gflops / self.attainable(profile.ai)


# -- theoretical figures ----------------------------------------------------------------------
def theoretical_peaks(info: DeviceInfo) -> dict:
    """Datasheet-style upper bounds used to flag implausible readings (missing when unknown)."""
    out: dict = {}
    clock_hz = info.clock_mhz * 1e6
    lanes = None
    if info.compute_capability is not None:
        lanes = _NV_LANES.get(tuple(info.compute_capability), 128)
    elif info.type == "gpu" and "amd" in info.vendor.lower():
        lanes = 64
    elif info.type == "gpu" and "intel" in info.vendor.lower():
        lanes = 8
    elif info.type == "cpu":
        lanes = info.native_float_width * 2  # two FMA pipes per core on current x86 and Arm
    if lanes and clock_hz:
        out["fp32_gflops"] = info.compute_units * lanes * 2 * clock_hz / 1e9
        # Generous integer bounds, there to catch a benchmark the compiler optimised away:
        # an integer multiply-add pipe no wider than the FP32 one, and at most 16 int8
        # operations per FP32 flop (4-way dot products on 4x narrower lanes).
        out["int32_gops"] = out["fp32_gflops"]
        out["int8_gops"] = 16 * out["fp32_gflops"]
    for name, gbs in DATASHEET_BANDWIDTH_GBS.items():
        if name.lower() in info.name.lower():
            out["bandwidth_gbs"] = float(gbs)
            break
    return out


# -- microbenchmarks --------------------------------------------------------------------------
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
    if rt.kind != "numpy":
        cap = min(rt.max_alloc, rt.info.global_mem_bytes // 8)
        buf, xfer = min(buf, cap), min(xfer, cap)
    budget = 0.5 if quick else 2.0
    return {"buf": buf // 64 * 64, "xfer": xfer // 64 * 64, "budget": budget,
            "repeat": 5 if quick else 15, "launches": 50 if quick else 300,
            "target_s": (0.004 if gpu else 0.02) * (1 if quick else 3)}


def _opencl_steps(rt: Runtime, quick: bool) -> list[Step]:
    import pyopencl as cl

    s = _sizes(rt, quick)
    cpu = rt.kind == "opencl-cpu"
    vw = min(16, rt.info.native_float_width) if cpu else 4
    chains = 8
    prog = rt.program("roofline", VW=vw, VW8=16, CHAINS=chains)
    ctx, queue = rt.ctx, rt.queue
    mf = cl.mem_flags
    state: dict = {}

    def buffers():
        if "src" not in state:
            n = s["buf"]
            rng = np.random.default_rng(0)
            host = rng.random(n // 4, dtype=np.float32) + 1.0  # no zeros, no denormals
            state["host"] = host
            state["src"] = cl.Buffer(ctx, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=host)
            state["dst"] = cl.Buffer(ctx, mf.READ_WRITE, n)
            state["third"] = cl.Buffer(ctx, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=host)
        return state["src"], state["dst"], state["third"]

    def release():
        state.clear()

    def copy_step(width: int) -> Callable[[], Reading]:
        def run() -> Reading:
            src, dst, _ = buffers()
            knl = getattr(prog, f"copy_{width}")
            t = rt.timeit(lambda: knl((s["buf"] // (4 * width),), None, src, dst),
                          warmup=2, repeat=s["repeat"], budget_s=s["budget"])
            return Reading("bandwidth_gbs", f"copy float{width if width > 1 else ''}",
                           _gb(2 * s["buf"], t), "GB/s", t.as_dict(), f"{s['buf'] >> 20} MiB")
        return run

    def triad() -> Reading:
        src, dst, third = buffers()
        t = rt.timeit(lambda: prog.triad((s["buf"] // 16,), None, dst, src, third, np.float32(0.5)),
                      warmup=2, repeat=s["repeat"], budget_s=s["budget"])
        return Reading("bandwidth_gbs", "triad float4", _gb(3 * s["buf"], t), "GB/s",
                       t.as_dict(), f"{s['buf'] >> 20} MiB x 3")

    cu = rt.info.compute_units
    gsize = cu * (1024 if cpu else 2048)
    out = cl.Buffer(ctx, mf.READ_WRITE, 4 * gsize)

    def compute_step(field_: str, name: str, knl, args, ops_per_iter: int) -> Callable[[], Reading]:
        def run() -> Reading:
            release()  # the bandwidth buffers are done with; free them for the devices that need it
            iters = 64
            no_sink = np.int32(0)
            t0 = rt.timeit(lambda: knl((gsize,), None, out, *args, np.int32(iters), no_sink),
                           warmup=1, repeat=3, budget_s=None)
            iters = int(min(1 << 20, max(64, iters * s["target_s"] / max(t0.median, 1e-9))))
            t = rt.timeit(lambda: knl((gsize,), None, out, *args, np.int32(iters), no_sink),
                          warmup=1, repeat=s["repeat"], budget_s=s["budget"] * 2)
            ops = float(gsize) * iters * ops_per_iter
            return Reading(field_, name, ops / t.median / 1e9, UNITS[field_], t.as_dict(),
                           f"{gsize} work-items x {iters} iterations")
        return run

    steps = [Step("bandwidth_gbs", f"copy float{w if w > 1 else ''}", copy_step(w)) for w in (1, 2, 4, 8, 16)]
    steps.append(Step("bandwidth_gbs", "triad float4", triad))
    steps.append(Step("fp32_gflops", "fp32 fma chains", compute_step(
        "fp32_gflops", f"fp32 fma, float{vw} x {chains} chains", prog.fp32_fma,
        (np.float32(0.999), np.float32(1e-3)), 2 * chains * vw)))
    steps.append(Step("int32_gops", "int32 mad chains", compute_step(
        "int32_gops", f"int32 mad, uint{vw} x {chains} chains", prog.int32_mad,
        (np.uint32(1664525), np.uint32(1013904223)), 2 * chains * vw)))
    steps.append(Step("int8_gops", "int8 mad chains", compute_step(
        "int8_gops", f"int8 mad, uchar16 x {chains} chains", prog.int8_mad,
        (np.uint8(5), np.uint8(3)), 2 * chains * 16)))
    dot = _dot_program(rt, chains)
    if dot is not None:
        prog_dot, how = dot
        steps.append(Step("int8_gops", f"int8 dot ({how})", compute_step(
            "int8_gops", f"int8 4-way dot ({how}) x {chains} chains", prog_dot.int8_dot,
            (np.int32(0x01020304), np.int32(0x05060708)), 8 * chains)))

    def transfer(direction: str) -> Callable[[], Reading]:
        def run() -> Reading:
            n = s["xfer"]
            dev = cl.Buffer(ctx, mf.READ_WRITE, n)
            pageable = np.random.default_rng(1).random(n // 4, dtype=np.float32)
            pinned_buf = cl.Buffer(ctx, mf.READ_WRITE | mf.ALLOC_HOST_PTR, n)
            pinned, _ = cl.enqueue_map_buffer(queue, pinned_buf, cl.map_flags.READ | cl.map_flags.WRITE,
                                              0, (n // 4,), np.float32)
            pinned[:] = pageable
            best, best_t, which = 0.0, None, ""
            for label, host in (("pageable", pageable), ("pinned", pinned)):
                if direction == "h2d":
                    fn = lambda host=host: cl.enqueue_copy(queue, dev, host, is_blocking=False)
                else:
                    fn = lambda host=host: cl.enqueue_copy(queue, host, dev, is_blocking=False)
                t = rt.timeit(fn, warmup=1, repeat=s["repeat"], budget_s=s["budget"])
                if _gb(n, t) > best:
                    best, best_t, which = _gb(n, t), t, label
            del pinned
            field_ = f"{direction}_gbs"
            return Reading(field_, f"{direction} ({which} host memory)", best, "GB/s",
                           best_t.as_dict(), f"{n >> 20} MiB")
        return run

    steps.append(Step("h2d_gbs", "host to device", transfer("h2d")))
    steps.append(Step("d2h_gbs", "device to host", transfer("d2h")))

    def launch() -> Reading:
        samples = []
        for _ in range(10):  # warm-up: first launches pay for lazy driver set-up
            prog.empty((1,), None, out).wait()
        for _ in range(s["launches"]):
            t0 = time.perf_counter()
            prog.empty((1,), None, out).wait()
            samples.append(time.perf_counter() - t0)
        t = Timing(tuple(samples), "host")
        return Reading("launch_us", "empty kernel, enqueue + wait", t.median * 1e6, "us",
                       t.as_dict(), "1 work-item")

    steps.append(Step("launch_us", "launch latency", launch))
    return steps


def _dot_program(rt: Runtime, chains: int):
    """The int8 dot-product microbenchmark where the device has a 4-way int8 dot, else None."""
    from .errors import KernelBuildError

    info = rt.info
    candidates = []
    if info.compute_capability is not None and tuple(info.compute_capability) >= (6, 1):
        candidates.append(("USE_DP4A", "dp4a"))
    if "cl_khr_integer_dot_product" in info.extensions:
        candidates.append(("USE_KHR_DOT", "cl_khr_integer_dot_product"))
    for macro, how in candidates:
        try:
            return rt.program("roofline", CHAINS=chains, **{macro: 1}), how
        except KernelBuildError:
            continue  # the driver advertises it but cannot build it: measure the others
    return None


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
        return Reading("launch_us", "numpy ufunc call overhead", t.median * 1e6, "us", t.as_dict(), "1 element")

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
    return _numpy_steps(rt, quick) if rt.kind == "numpy" else _opencl_steps(rt, quick)


def new_ceilings(rt: Runtime, quick: bool = False) -> Ceilings:
    return Ceilings(
        device=rt.name, device_key=rt.info.key, kind=rt.kind,
        theoretical=theoretical_peaks(rt.info), quick=quick,
        measured_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


def check_plausible(ceilings: Ceilings) -> list[str]:
    """Warnings for readings above the datasheet figure or with a wide spread (spreads are not
    judged for quick measurements, which are few and short by design)."""
    warnings = []
    for r in ceilings.readings:
        if r["field"] == "launch_us" or ceilings.quick:
            continue  # latencies are heavy-tailed by nature; the median is what we report
        spread = r.get("timing", {}).get("spread", 0.0)
        if spread > SPREAD_WARN:
            warnings.append(f"{r['name']}: noisy, spread {spread:.0%} over "
                            f"{r['timing'].get('repeats')} repeats")
    for f, bound in ceilings.theoretical.items():
        v = getattr(ceilings, f, None)
        if v is not None and v > ABOVE_THEORY * bound:
            warnings.append(f"{LABELS[f]}: {v:,.0f} {UNITS[f]} is above the theoretical "
                            f"{bound:,.0f} {UNITS[f]}; check the measurement")
    return warnings


def iter_ceilings(rt: Runtime | str | None = None, quick: bool | None = None) -> Iterator[tuple[Reading, Ceilings, int, int]]:
    """Run the microbenchmarks one at a time, yielding ``(reading, ceilings so far, i, total)``
    after each, so a UI can show ceilings as they arrive."""
    rt = resolve_rt(rt)
    quick = config.quick() if quick is None else quick
    steps = plan_ceilings(rt, quick)
    ceilings = new_ceilings(rt, quick)
    for i, step in enumerate(steps, 1):
        reading = step.run()
        ceilings.add(reading)
        if i == len(steps):
            ceilings.warnings = check_plausible(ceilings)
        yield reading, ceilings, i, len(steps)


def measure_ceilings(
    rt: Runtime | str | None = None,
    on_result: Callable[[Reading, int, int], None] | None = None,
    quick: bool | None = None,
    store=None,
) -> Ceilings:
    """Measure every ceiling of ``rt`` (see the module docstring) and return :class:`Ceilings`.

    ``on_result(reading, i, total)`` is called after each microbenchmark. ``store``: a
    :class:`workbench.store.Store` to cache the result in (default: the user's store; ``False``
    keeps it out of any store). Takes a few seconds (``quick=True``: about a second).
    """
    ceilings = None
    for reading, ceilings, i, total in iter_ceilings(rt, quick):
        if on_result is not None:
            on_result(reading, i, total)
    save_ceilings(ceilings, store)
    return ceilings


def _store(store):
    if store is False:
        return None
    if store is None:
        from .store import Store

        return Store()
    return store


def save_ceilings(ceilings: Ceilings, store=None) -> None:
    st = _store(store)
    if st is not None:
        st.save_ceilings(ceilings.device_key, ceilings.device, ceilings.as_dict())


def cached_ceilings(rt: Runtime | str | None = None, store=None) -> Ceilings | None:
    """The last ceilings measured for this device and driver, or None."""
    rt = resolve_rt(rt)
    st = _store(store)
    payload = None if st is None else st.load_ceilings(rt.info.key)
    return None if payload is None else Ceilings.from_dict(payload)


def get_ceilings(rt: Runtime | str | None = None, refresh: bool = False, store=None,
                 quick: bool | None = None) -> Ceilings:
    """Cached ceilings when there are some (and ``refresh`` is False), else measure them."""
    rt = resolve_rt(rt)
    if not refresh:
        cached = cached_ceilings(rt, store)
        if cached is not None:
            return cached
    return measure_ceilings(rt, quick=quick, store=store)


# -- measured operations kept beside the ceilings ---------------------------------------------
def save_profiles(rt: Runtime, profiles: list[OpProfile], store=None) -> int | None:
    """Keep measured operations (e.g. the SGEMM points of a roofline chart) in the store as a
    finished run of kind ``"roofline-points"``, so they can be redrawn later."""
    st = _store(store)
    if st is None or not profiles:
        return None
    run = st.start_run("roofline-points", {"device_key": rt.info.key,
                                           "names": [p.name for p in profiles]}, device=rt.name)
    for i, p in enumerate(profiles):
        st.log_metric(run, i, flops=p.flops, bytes=p.bytes, seconds=p.seconds)
    st.finish_run(run)
    return run


def load_profiles(rt: Runtime, store=None) -> list[OpProfile]:
    """The operations of the latest finished ``"roofline-points"`` run of this device."""
    st = _store(store)
    if st is None:
        return []
    for run in st.runs("roofline-points"):
        if run["params"].get("device_key") == rt.info.key and run["status"] == "finished":
            names = run["params"]["names"]
            return [OpProfile(names[m["step"]], m["flops"], m["bytes"], m["seconds"])
                    for m in st.metrics(run["id"])]
    return []
