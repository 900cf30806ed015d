"""The roofline model on measured ceilings, and why an operation sits where it does.

The roofline model (Williams, Waterman & Patterson, 2009) bounds the rate of a kernel with
arithmetic intensity I = flops / bytes moved (FLOP/byte) by

    P(I) = min(P_peak, I * B)          [GFLOP/s]

with P_peak the compute ceiling (GFLOP/s) and B the memory bandwidth (GB/s = 1e9 bytes/s). The
ridge point I* = P_peak / B separates memory-bound (I < I*) from compute-bound kernels. Two more
limits decide short or host-fed operations, so :meth:`Roofline.bound` has four answers:

* ``"launch"``: the operation takes no more than :data:`LAUNCH_FACTOR` times the measured launch
  latency, so what it costs is the launch, not its flops or bytes;
* ``"transfer"``: its operands come from the host, and moving them at the measured host<->device
  bandwidth takes at least half of its time;
* ``"memory"`` or ``"compute"``: which roof binds at its intensity.

:meth:`Roofline.explain` answers "why does it sit there" in the way Nsight Compute's and Intel
Advisor's roofline views do: time, traffic, intensity, the binding roof, how far below it, and
what would move it; a point *above* its roof gets the reason instead of sitting there unexplained.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..runtime.devices import DeviceInfo

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
COMPUTE_FIELDS = ("fp32_gflops", "int32_gops", "int8_gops")
SPREAD_NOISY = 0.30  # (p90 - p10) / median over repeats above this: the reading is noisy
ABOVE_THEORY = 1.10  # a reading this far above the datasheet figure is a broken measurement
LAUNCH_FACTOR = 2.0  # an op within this factor of the launch latency is launch-bound
CPU_TURBO_ALLOWANCE = 1.5  # a CPU's theoretical peak allows its cores this far above the reported clock

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
    """A device's measured ceilings (see :mod:`workbench.roofline.probes` for each one).

    ``noisy``: the ceilings whose deciding reading varied by more than :data:`SPREAD_NOISY` over
    its repeats (a measurement to repeat, not to trust). ``vendor``: roofs measured with the
    vendor's own library in the same run, e.g. ``{"int8 tensor cores (cuBLASLt)": {"value":
    952000.0, "unit": "GOP/s", "field": "int8_gops"}}``: the rate an expert kernel reaches, which
    our OpenCL kernels cannot when OpenCL does not expose the instructions.
    """

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
    noisy: list[str] = field(default_factory=list)
    vendor: dict = field(default_factory=dict)

    def add(self, reading: Reading) -> None:
        """Fold one reading in: a ceiling is the best reading that feeds it (the least for
        launch latency)."""
        self.readings.append(dataclasses.asdict(reading))
        old = getattr(self, reading.field)
        better = min if reading.field == "launch_us" else max
        setattr(self, reading.field, reading.value if old is None else better(old, reading.value))

    def deciding_reading(self, field_: str) -> dict | None:
        """The reading a ceiling's value comes from (the best one)."""
        rows = [r for r in self.readings if r["field"] == field_]
        if not rows:
            return None
        return (min if field_ == "launch_us" else max)(rows, key=lambda r: r["value"])

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Ceilings":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def summary(self) -> list[tuple[str, str]]:
        """(label, formatted value) pairs for tables; a noisy ceiling says so."""
        out = []
        for f in CEILING_FIELDS:
            v = getattr(self, f)
            text = "n/a" if v is None else f"{v:,.1f} {UNITS[f]}"
            out.append((LABELS[f], text + (" (noisy)" if f in self.noisy else "")))
        return out


@dataclass(frozen=True)
class OpProfile:
    """One measured operation: ``flops`` (count), ``bytes`` (the fewest bytes it must move
    through device memory), ``seconds`` (median time). ``host_bytes``: bytes its timed call moved
    between host and device (0 when the operands were resident). ``kind``: the series it belongs
    to on a chart (``"sgemm"``, ``"int8"``, ``"spmv"``, ...); ``compute``: the compute ceiling it is
    judged against (``"fp32_gflops"``, ``"int8_gops"``...). ``min_s``/``max_s``: its range."""

    name: str
    flops: float
    bytes: float
    seconds: float
    host_bytes: float = 0.0
    kind: str = ""
    compute: str = "fp32_gflops"
    min_s: float | None = None
    max_s: float | None = None

    def __post_init__(self):
        for attr in ("flops", "bytes", "seconds", "host_bytes"):
            v = getattr(self, attr)
            if not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v) or v < 0:
                raise InputError(attr, f"expected a finite number >= 0, got {v!r}")
        if self.bytes == 0:
            raise InputError("bytes", "an operation moves at least some bytes")
        if self.seconds == 0:
            raise InputError("seconds", "a measured time must be > 0")
        if self.compute not in COMPUTE_FIELDS:
            raise InputError("compute", f"expected one of {COMPUTE_FIELDS}, got {self.compute!r}")

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
        if compute not in COMPUTE_FIELDS:
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

    def _for(self, profile: OpProfile) -> "Roofline":
        """The model with the profile's own compute ceiling (an int8 op against the INT8 roof)."""
        if profile.compute == self.compute or not getattr(self.ceilings, profile.compute):
            return self
        return Roofline(self.ceilings, profile.compute)

    def transfer_seconds(self, profile: OpProfile) -> float:
        """Time the profile's host traffic takes at the measured host<->device bandwidth."""
        bw = min(x for x in (self.ceilings.h2d_gbs, self.ceilings.d2h_gbs) if x) \
            if (self.ceilings.h2d_gbs or self.ceilings.d2h_gbs) else None
        return 0.0 if not profile.host_bytes or not bw else profile.host_bytes / (bw * 1e9)

    def bound(self, profile: OpProfile) -> str:
        """``"launch"``, ``"transfer"``, ``"memory"`` or ``"compute"`` (module docstring)."""
        launch = self.ceilings.launch_us
        if launch and profile.seconds <= LAUNCH_FACTOR * launch * 1e-6:
            return "launch"
        if profile.host_bytes and self.transfer_seconds(profile) >= 0.5 * profile.seconds:
            return "transfer"
        model = self._for(profile)
        return "memory" if profile.ai < model.ridge_point else "compute"

    def efficiency(self, profile: OpProfile) -> float:
        """Achieved / attainable rate at the profile's intensity (0..1, or above 1 when the
        measured ceilings underestimate the device: :meth:`explain` says why)."""
        model = self._for(profile)
        return profile.gflops / model.attainable(profile.ai)

    def explain(self, profile: OpProfile) -> dict:
        """Why ``profile`` sits where it does: a dict with ``time_s``, ``traffic_bytes``,
        ``intensity`` (FLOP/byte), ``rate`` (GFLOP/s) and ``attainable``, ``roof`` (the binding
        one, with its value), ``bound`` (:meth:`bound`), ``efficiency``, ``headroom`` (how many
        times faster the roof allows), ``why`` (one sentence) and ``advice`` (what would move it)."""
        model = self._for(profile)
        bound = self.bound(profile)
        att = model.attainable(profile.ai)
        eff = profile.gflops / att
        c = self.ceilings
        memory_side = profile.ai < model.ridge_point
        roof = ("memory bandwidth", model.bandwidth, "GB/s") if memory_side else \
            (LABELS[model.compute], model.peak, UNITS[model.compute])
        advice: list[str] = []
        if bound == "launch":
            why = (f"{profile.seconds * 1e6:.1f} us is within {LAUNCH_FACTOR:g}x of the {c.launch_us:.1f} us "
                   f"it takes to launch a kernel: the launch, not the work, sets its time.")
            advice += ["a larger problem (a batch) per launch", "fusing it with its neighbours"]
        elif bound == "transfer":
            why = (f"moving {profile.host_bytes / 1e6:,.2f} MB between host and device takes "
                   f"{self.transfer_seconds(profile) * 1e6:,.0f} us of its {profile.seconds * 1e6:,.0f} us.")
            advice += ["keeping the operands on the device between calls",
                       "pinned host memory, or overlapping copies with compute (an async pipeline)"]
        elif memory_side:
            why = (f"at {profile.ai:.2f} FLOP/byte it is left of the ridge point ({model.ridge_point:.1f}): "
                   f"memory bandwidth ({model.bandwidth:,.0f} GB/s) caps it at {att:,.1f} GFLOP/s.")
            advice += ["more work per byte: a larger batch, blocking for reuse",
                       "fewer bytes: a narrower format (int8, int4), a sparse format at high sparsity"]
        else:
            why = (f"at {profile.ai:.2f} FLOP/byte it is right of the ridge point ({model.ridge_point:.1f}): "
                   f"the {LABELS[model.compute]} ({model.peak:,.0f} {UNITS[model.compute]}) caps it.")
            advice += ["tuning the kernel for this device (`workbench tune`)",
                       "narrower arithmetic (int8 dot products) where accuracy allows"]
        if eff > 1.0:
            why = (f"it runs at {eff:.0%} of the roof, above it: " + _above_roof_reason(c, profile))
            advice = ["measuring the ceilings again (not in quick mode, with nothing else running)"]
        elif bound in ("memory", "compute") and eff < 0.5:
            advice.insert(0, f"it reaches {eff:.0%} of what the roof allows: the kernel, not the device, "
                             "limits it (occupancy, access pattern, launch shape)")
        return {"name": profile.name, "time_s": profile.seconds, "traffic_bytes": profile.bytes,
                "intensity": profile.ai, "rate": profile.gflops, "attainable": att,
                "roof": {"name": roof[0], "value": roof[1], "unit": roof[2]}, "bound": bound,
                "efficiency": eff, "headroom": 1.0 / eff if eff > 0 else math.inf, "why": why,
                "advice": advice}


def _above_roof_reason(c: Ceilings, profile: OpProfile) -> str:
    if c.kind == "numpy":
        return ("the NumPy backend's ceilings are measured with simple NumPy loops, while its BLAS "
                "uses every core and its widest vector instructions, so the chart's roof is low for it.")
    if c.quick:
        return "the ceilings were measured in quick mode (small buffers, few repeats) and read low."
    if c.noisy:
        return f"the ceilings were noisy when measured ({', '.join(c.noisy)}) and read low."
    if profile.compute == "int8_gops" or profile.kind in ("int8", "pmadd"):
        return ("this kernel uses instructions the INT8 microbenchmark does not (vpmaddwd, FP32 FMA "
                "lanes), so the measured INT8 roof is below what it can reach.")
    return "the microbenchmark reading is below what this kernel reaches (measured under load?)."


def theoretical_peaks(info: DeviceInfo) -> dict:
    """Datasheet-style upper bounds used to reject implausible readings (missing when unknown)."""
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
        # Drivers (and virtual machines) report the base clock; cores turbo above it. The bound
        # is there to catch a benchmark the compiler deleted, so it allows 1.5x turbo.
        clock_hz *= CPU_TURBO_ALLOWANCE
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
