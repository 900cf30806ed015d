"""Pair-based spike-timing-dependent plasticity with traces (online; no backprop).

Each plastic projection keeps a presynaptic trace x_pre (per pre neuron, time constant tau_plus)
and a postsynaptic trace x_post (per post neuron, tau_minus). A trace decays as
x <- x exp(-dt / tau) and jumps at its neuron's spikes: ``+= 1`` (``trace="all"``: all-to-all
pairing) or ``= 1`` (``"nearest"``: only the nearest pair counts). Traces are kept lazily (value
and step of the last spike), so only neurons that fire cost work.

On a presynaptic spike (depression), for each outgoing synapse::

    additive:        w <- w - a_minus x_post
    multiplicative:  w <- w - a_minus x_post (w - w_min)

On a postsynaptic spike (potentiation), for each incoming synapse::

    additive:        w <- w + a_plus x_pre
    multiplicative:  w <- w + a_plus x_pre (w_max - w)

then w is clipped to [w_min, w_max]. Within a step, depression uses x_post from earlier steps
and potentiation sees this step's presynaptic spikes, so a pair at the same step potentiates.
For one isolated pair at Δt = t_post - t_pre this gives the window of :meth:`STDP.window`:
``a_plus exp(-Δt / tau_plus)`` for Δt >= 0, ``-a_minus exp(Δt / tau_minus)`` for Δt < 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InputError
from ..validation import number


@dataclass(frozen=True)
class STDP:
    """A pair-based STDP rule with traces (the module doc has the full update)::

        dw = +a_plus  x_pre  [(w_max - w) if multiplicative]    at each postsynaptic spike
        dw = -a_minus x_post [(w - w_min) if multiplicative]    at each presynaptic spike
        x <- x exp(-dt / tau)  every step;  x += 1 ("all") or x = 1 ("nearest") at a spike

    so one isolated pair at Δt = t_post - t_pre changes w by ``a_plus exp(-Δt / tau_plus)``
    (Δt >= 0) or ``-a_minus exp(Δt / tau_minus)`` (Δt < 0), :meth:`window`.

    a_plus / a_minus: amplitudes (weight units, mV for LIF targets, >= 0). tau_plus / tau_minus:
    trace time constants (ms, > 0). w_min <= w <= w_max: bounds (w clipped after each update).
    rule: ``"additive"`` or ``"multiplicative"`` (soft bounds, van Rossum et al. 2000). trace:
    ``"all"`` (all-to-all pairing) or ``"nearest"`` (nearest-neighbour pairs).

    Example::

        rule = STDP(a_plus=0.01, a_minus=0.0105, tau_plus=20.0, tau_minus=20.0, w_max=1.0)
        rule.window([-10.0, 10.0])            # array([-0.0064, 0.0061]): depression, potentiation
        net.connect(src, exc, w0, plasticity=rule)

    Shapes: a rule is a value (no state); the traces live in the simulator, (n_pre,) and (n_post,)
    per plastic projection.
    """

    a_plus: float = 0.01
    a_minus: float = 0.0105
    tau_plus: float = 20.0
    tau_minus: float = 20.0
    w_min: float = 0.0
    w_max: float = 1.0
    rule: str = "additive"
    trace: str = "all"

    def __post_init__(self):
        for name in ("a_plus", "a_minus", "tau_plus", "tau_minus", "w_min", "w_max"):
            object.__setattr__(self, name, number(getattr(self, name), name))
        for name in ("a_plus", "a_minus"):
            if getattr(self, name) < 0:
                raise InputError(name, f"expected a non-negative amplitude, got {getattr(self, name)}")
        for name in ("tau_plus", "tau_minus"):
            if getattr(self, name) <= 0:
                raise InputError(name, f"expected a positive time constant (ms), got {getattr(self, name)}")
        if not self.w_max > self.w_min:
            raise InputError("w_max", f"expected w_max > w_min, got [{self.w_min}, {self.w_max}]")
        if self.rule not in ("additive", "multiplicative"):
            raise InputError("rule", f"expected 'additive' or 'multiplicative', got {self.rule!r}")
        if self.trace not in ("all", "nearest"):
            raise InputError("trace", f"expected 'all' or 'nearest', got {self.trace!r}")

    @property
    def multiplicative(self) -> bool:
        return self.rule == "multiplicative"

    def window(self, delta_t) -> np.ndarray:
        """Weight change (additive rule) of one isolated pair at Δt = t_post - t_pre (ms)."""
        d = np.asarray(delta_t, dtype=np.float64)
        return np.where(d >= 0, self.a_plus * np.exp(-np.abs(d) / self.tau_plus),
                        -self.a_minus * np.exp(-np.abs(d) / self.tau_minus))

    def as_dict(self) -> dict:
        return asdict(self)
