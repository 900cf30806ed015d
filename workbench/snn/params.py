"""Leaky integrate-and-fire parameters and the exact one-step update they imply.

Units: times in ms, potentials in mV, currents in nA, resistance in MOhm (so R I is in mV).
Between spikes the membrane obeys

    tau_m dv/dt = -(v - v_rest) + r_m I,

which for an input I held constant over a step of length dt integrates exactly to

    v(t + dt) = v_inf + (v(t) - v_inf) exp(-dt / tau_m),   v_inf = v_rest + r_m I.

Crossing ``v_th`` emits a spike, sets v to ``v_reset`` and holds it there for the absolute
refractory period ``t_ref`` (``round(t_ref / dt)`` steps), during which input is ignored.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from ..errors import InputError
from ..validation import number


@dataclass(frozen=True)
class LIFParams:
    """Parameters of a population of LIF neurons (defaults: a cortical pyramidal cell).

    tau_m: membrane time constant (ms, > 0); v_rest, v_reset, v_th: resting, reset and threshold
    potentials (mV, v_reset < v_th); t_ref: absolute refractory period (ms, >= 0); r_m: membrane
    resistance (MOhm, > 0); dt: integration step (ms, 0 < dt < tau_m).
    """

    tau_m: float = 20.0
    v_rest: float = -65.0
    v_reset: float = -65.0
    v_th: float = -50.0
    t_ref: float = 2.0
    r_m: float = 10.0
    dt: float = 0.1

    def __post_init__(self):
        for name in ("tau_m", "v_rest", "v_reset", "v_th", "t_ref", "r_m", "dt"):
            object.__setattr__(self, name, number(getattr(self, name), name))
        if self.tau_m <= 0:
            raise InputError("tau_m", f"expected a positive time constant (ms), got {self.tau_m}")
        if self.dt <= 0:
            raise InputError("dt", f"expected a positive step (ms), got {self.dt}")
        if self.dt >= self.tau_m:
            raise InputError("dt", f"expected a step smaller than tau_m = {self.tau_m} ms, got {self.dt}")
        if self.t_ref < 0:
            raise InputError("t_ref", f"expected a non-negative refractory period (ms), got {self.t_ref}")
        if self.r_m <= 0:
            raise InputError("r_m", f"expected a positive membrane resistance (MOhm), got {self.r_m}")
        if self.v_reset >= self.v_th:
            raise InputError("v_reset",
                             f"expected a reset below the threshold {self.v_th} mV, got {self.v_reset}")

    @property
    def decay(self) -> float:
        """exp(-dt / tau_m): the fraction of v - v_inf left after one step."""
        return math.exp(-self.dt / self.tau_m)

    @property
    def ref_steps(self) -> int:
        """The refractory period in whole steps, round(t_ref / dt)."""
        return int(round(self.t_ref / self.dt))

    def time_to_threshold(self, current: float, v0: float | None = None) -> float:
        """Time (ms) for v to climb from ``v0`` (default v_rest) to v_th under constant
        ``current`` (nA): tau_m ln((v_inf - v0) / (v_inf - v_th)); ``inf`` if v_inf <= v_th.

        With v_rest = v_reset = 0 this is the issue's t* = tau_m ln(R I / (R I - v_th)).
        """
        v0 = self.v_rest if v0 is None else float(v0)
        v_inf = self.v_rest + self.r_m * current
        if v_inf <= self.v_th:
            return math.inf
        if v0 >= self.v_th:
            return 0.0
        return self.tau_m * math.log((v_inf - v0) / (v_inf - self.v_th))

    def interspike_interval(self, current: float) -> float:
        """t_ref + the climb from v_reset to v_th (ms) under constant ``current`` (nA)."""
        return self.t_ref + self.time_to_threshold(current, self.v_reset)

    def replace(self, **changes) -> "LIFParams":
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)
