"""Describing a spiking network: populations, the projections between them, and the run.

A :class:`SNNNetwork` holds populations (:class:`LIFLayer`, :class:`PoissonGroup`,
:class:`SpikeSource`) and projections (dense or CSR weights, per-synapse or uniform delays,
optionally plastic under an :class:`~workbench.snn.stdp.STDP` rule). It is only a description:
:meth:`SNNNetwork.simulator` puts it on a runtime (OpenCL kernels, or the NumPy reference) and
:func:`simulate` runs it and returns a :class:`~workbench.snn.record.SpikeRecord`.

Synapses are delta synapses: a spike of neuron i adds w_ij (mV) to the membrane of j at the step
``delay`` later (at least one step). Each step, in order: every population updates (LIF
integration, threshold, reset, refractory; sources draw or replay their spikes), then every
projection delivers this step's spikes, then plastic projections apply STDP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..validation import as_array, number, positive_int
from .params import LIFParams


class Population:
    """Something that spikes: ``n`` neurons with a ``name`` unique in its network."""

    n: int
    name: str


class LIFLayer(Population):
    """``n`` leaky integrate-and-fire neurons sharing ``params``, integrated exactly over each
    step of dt ms (the membrane equation tau_m dv/dt = v_rest - v + r_m I has a closed form for a
    constant current)::

        v[t+1] = v_inf + (v[t] - v_inf) exp(-dt / tau_m) + sum_j w_ij s_j[t - d_ij]
        v_inf  = v_rest + r_m * bias                                     (mV = MOhm * nA)
        spike:  v[t+1] >= v_th + theta[t+1]  ->  v = v_reset, held for round(t_ref / dt) steps
        theta[t+1] = theta[t] exp(-dt / tau_theta) + theta_plus * spike[t]

    Synaptic input is a jump of w mV per presynaptic spike (delta synapses), arriving d steps
    later (the projection's delay); a refractory neuron ignores input and keeps its potential.

    bias: a constant input current (nA), scalar or (n,). v_init: the initial membrane potential
    (mV), scalar or (n,), default v_rest. theta_plus / tau_theta: an adaptive threshold (Diehl &
    Cook 2015): each spike raises the neuron's threshold by ``theta_plus`` mV, which decays back
    with ``tau_theta`` ms; 0 (the default) keeps it fixed. theta_init: the threshold's initial
    raise (mV, scalar or (n,)), e.g. one learned before. name: unique in its network (default:
    ``liflayer<i>``).

    Example::

        net = SNNNetwork()
        exc = net.add(LIFLayer(100, LIFParams(tau_m=20.0), bias=1.6))   # v_inf = -49 mV: fires
        rec = simulate(net, duration=100.0)                               # ms
        rec.counts.shape                                                  # (100,) spikes per neuron

    Shapes: ``bias``, ``v_init``, ``theta_init`` scalar or (n,); a simulator's state (v,
    refractory, theta) is (n,) each.
    """

    def __init__(self, n: int, params: LIFParams | None = None, *, bias=0.0, v_init=None,
                 theta_plus: float = 0.0, tau_theta: float = 1e7, theta_init=0.0, name: str | None = None):
        self.n = positive_int(n, "n")
        if params is None:
            params = LIFParams()
        if not isinstance(params, LIFParams):
            raise InputError("params", f"expected LIFParams, got {type(params).__name__}")
        self.params = params
        self.bias = _per_neuron(bias, self.n, "bias")
        self.v_init = _per_neuron(params.v_rest if v_init is None else v_init, self.n, "v_init")
        self.theta_plus = number(theta_plus, "theta_plus")
        self.tau_theta = number(tau_theta, "tau_theta")
        if self.theta_plus < 0:
            raise InputError("theta_plus", f"expected a non-negative threshold step (mV), got {theta_plus}")
        if self.tau_theta <= 0:
            raise InputError("tau_theta", f"expected a positive time constant (ms), got {tau_theta}")
        self.theta_init = _per_neuron(theta_init, self.n, "theta_init")
        self.name = name

    @property
    def adaptive(self) -> bool:
        """Whether the threshold moves (theta_plus > 0) or starts raised (theta_init != 0)."""
        return self.theta_plus > 0 or bool(np.any(self.theta_init != 0))

    def v_inf(self) -> np.ndarray:
        """v_rest + r_m bias per neuron (mV), float32 (n,) or a 0-d array."""
        return np.asarray(self.params.v_rest + self.params.r_m * self.bias, np.float32)

    def __repr__(self) -> str:
        return f"LIFLayer({self.n}, name={self.name!r})"


class PoissonGroup(Population):
    """``n`` independent Poisson sources at ``rates`` Hz (scalar or (n,)), drawn each step from
    the counter-based hash of (seed, step, neuron): the same spikes on every backend and as
    :func:`~workbench.snn.encoders.rate_encode` with that seed."""

    def __init__(self, n: int, rates=10.0, *, seed: int = 0, name: str | None = None):
        self.n = positive_int(n, "n")
        self.rates = _per_neuron(rates, self.n, "rates")
        if np.min(self.rates) < 0:
            raise InputError("rates", "expected non-negative rates (Hz)")
        self.seed = int(seed)
        self.name = name

    def probabilities(self, dt: float) -> np.ndarray:
        p = np.asarray(self.rates * dt * 1e-3, np.float32)
        if p.size and p.max() > 1:
            raise InputError("rates", f"a rate of {np.max(self.rates):g} Hz is above 1/dt = {1e3 / dt:g} Hz")
        return p

    def __repr__(self) -> str:
        return f"PoissonGroup({self.n}, name={self.name!r})"


class SpikeSource(Population):
    """Replays a spike array (n_steps, n) (an encoder's output): row k fires at step k; after the
    last row the source is silent. ``loop=True`` repeats it."""

    def __init__(self, spikes, loop: bool = False, name: str | None = None):
        arr = np.asarray(spikes)
        if arr.ndim != 2 or arr.dtype.kind not in "biuf":
            raise InputError("spikes",
                             f"expected a (n_steps, n) array of 0/1, got shape {arr.shape} dtype {arr.dtype}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise InputError("spikes", "contains NaN or Inf")
        self.spikes = arr.astype(bool)
        self.n = self.spikes.shape[1]
        if self.n < 1:
            raise InputError("spikes", "expected at least one neuron")
        self.loop = bool(loop)
        self.name = name

    def events(self, t0: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids concatenated step by step, spikes per step) for steps t0 .. t0 + steps - 1."""
        total = self.spikes.shape[0]
        rows = np.arange(t0, t0 + steps)
        rows = rows % total if self.loop else rows
        block = np.zeros((steps, self.n), bool)
        ok = rows < total
        block[ok] = self.spikes[rows[ok]]
        steps_idx, ids = np.nonzero(block)
        counts = np.bincount(steps_idx, minlength=steps).astype(np.uint32)
        return ids.astype(np.uint32), counts

    def __repr__(self) -> str:
        return f"SpikeSource({self.spikes.shape[0]} steps x {self.n}, name={self.name!r})"


@dataclass
class Projection:
    """Synapses from ``pre`` to ``post``: ``weights`` (mV) as a dense (n_pre, n_post) array or as
    CSR (``indptr`` over pre, ``indices`` = post), ``delays`` in steps (>= 1; scalar or one per
    synapse, CSR only), optionally ``plasticity`` (an STDP rule)."""

    pre: Population
    post: LIFLayer
    dense: np.ndarray | None
    indptr: np.ndarray | None
    indices: np.ndarray | None
    data: np.ndarray | None
    delays: np.ndarray | int
    plasticity: object | None = None
    name: str = ""
    scale: float = 1.0  # a live multiplier (the dashboard's inhibition slider)

    @property
    def is_dense(self) -> bool:
        return self.dense is not None

    @property
    def max_delay(self) -> int:
        return int(np.max(self.delays)) if np.ndim(self.delays) else int(self.delays)

    @property
    def n_synapses(self) -> int:
        return int(self.dense.size if self.is_dense else self.data.size)

    def weights(self) -> np.ndarray:
        """The initial weights as a dense (n_pre, n_post) array."""
        if self.is_dense:
            return self.dense.copy()
        out = np.zeros((self.pre.n, self.post.n), np.float32)
        rows = np.repeat(np.arange(self.pre.n), np.diff(self.indptr))
        out[rows, self.indices] = self.data
        return out


def _per_neuron(value, n: int, name: str) -> np.ndarray:
    """A finite float64 scalar (0-d) or (n,) array."""
    if np.ndim(value) == 0:
        return np.asarray(number(value, name), np.float64)
    arr = as_array(value, name, dtype=np.float64, finite=True)
    if arr.shape != (n,):
        raise InputError(name, f"expected a scalar or shape ({n},), got {arr.shape}")
    return arr


class SNNNetwork:
    """Populations and projections: the description a simulator runs (it holds no state; each
    :meth:`simulator` copies weights and initial values). Every LIF layer shares one step ``dt``
    (ms): the one given here, else the first LIF layer's (sources only: LIFParams().dt).

    A projection (:meth:`connect`) adds, at each step, every presynaptic spike's weights to the
    postsynaptic potentials ``delay`` ms later::

        v_post[t + d] += scale * W[pre, post]      W dense (n_pre, n_post) or CSR over pre (mV)

    and may learn by :class:`~workbench.snn.stdp.STDP`.

    Example::

        net = SNNNetwork()
        src = net.add(PoissonGroup(784, rates=20.0))                     # Hz
        exc = net.add(LIFLayer(100, theta_plus=0.05, tau_theta=1e7))
        net.connect(src, exc, 0.3 * np.random.default_rng(0).random((784, 100)),
                    delay=1.0, plasticity=STDP(w_max=1.0))               # ms, mV
        rec = net.simulator("numpy").run(1000)                             # 1000 steps of 0.1 ms
        rec.counts.shape                                                   # (884,) spikes per neuron

    Shapes: ``weights`` (n_pre, n_post) dense, or a CSR matrix of that shape (one entry per
    synapse); neuron ids in a record run over the populations in the order they were added.
    """

    def __init__(self, dt: float | None = None):
        self.populations: list[Population] = []
        self.projections: list[Projection] = []
        if dt is not None:
            dt = number(dt, "dt")
            if dt <= 0:
                raise InputError("dt", f"expected a positive step (ms), got {dt}")
        self._dt = dt  # else taken from the first LIF layer

    # -- building ------------------------------------------------------------------------------
    def add(self, population: Population) -> Population:
        if not isinstance(population, Population):
            raise InputError("population",
                             f"expected a LIFLayer, PoissonGroup or SpikeSource, got "
                             f"{type(population).__name__}")
        if any(p is population for p in self.populations):
            raise InputError("population", "already in this network")
        if population.name is None:
            population.name = f"{type(population).__name__.lower()}{len(self.populations)}"
        if any(p.name == population.name for p in self.populations):
            raise InputError("name", f"a population named {population.name!r} exists already")
        if isinstance(population, LIFLayer):
            if self._dt is None:
                self._dt = population.params.dt
            elif not math.isclose(population.params.dt, self._dt, rel_tol=1e-9):
                raise InputError("params",
                                 f"dt {population.params.dt} ms differs from the network's {self._dt} ms")
        self.populations.append(population)
        return population

    def connect(self, pre: Population, post: LIFLayer, weights, *, delay: float | None = None,
                plasticity=None, name: str | None = None) -> Projection:
        """Synapses from ``pre`` to ``post``. ``weights``: (n_pre, n_post) dense array, or a
        :class:`~workbench.sparse.CSRMatrix` / SciPy sparse matrix of that shape (only its
        stored entries become synapses). ``delay`` (ms): scalar, or for sparse weights one per
        stored entry (in CSR order); rounded to steps, at least one step (the default)."""
        for p, arg in ((pre, "pre"), (post, "post")):
            if not any(q is p for q in self.populations):
                raise InputError(arg, "add the population to the network first")
        if not isinstance(post, LIFLayer):
            raise InputError("post", f"expected a LIFLayer to receive synapses, got {type(post).__name__}")
        dense = indptr = indices = data = None
        csr = _as_csr(weights)
        if csr is None:
            dense = as_array(weights, "weights", ndim=2, finite=True)
            if dense.shape != (pre.n, post.n):
                raise InputError("weights",
                                 f"expected shape ({pre.n}, {post.n}) = (pre, post), got {dense.shape}")
            n_syn = dense.size
        else:
            if csr.shape != (pre.n, post.n):
                raise InputError("weights",
                                 f"expected shape ({pre.n}, {post.n}) = (pre, post), got {csr.shape}")
            data = as_array(csr.data, "weights", finite=True)
            indices = np.ascontiguousarray(csr.indices, np.uint32)
            indptr = np.ascontiguousarray(csr.indptr, np.uint32)
            n_syn = data.size
        delays = self._delay_steps(delay, n_syn, dense is not None)
        if plasticity is not None:
            from .stdp import STDP

            if not isinstance(plasticity, STDP):
                raise InputError("plasticity", f"expected an STDP rule, got {type(plasticity).__name__}")
            w = dense if dense is not None else data
            if w.size and (w.min() < plasticity.w_min or w.max() > plasticity.w_max):
                raise InputError("weights", f"plastic weights must start within [w_min, w_max] = "
                                            f"[{plasticity.w_min}, {plasticity.w_max}]")
        proj = Projection(pre, post, dense, indptr, indices, data, delays, plasticity,
                          name or f"{pre.name}->{post.name}")
        self.projections.append(proj)
        return proj

    def _delay_steps(self, delay, n_syn: int, dense: bool):
        dt = self.dt
        if delay is None:
            return 1
        if np.ndim(delay) == 0:
            ms = number(delay, "delay")
            steps = int(round(ms / dt))
            if steps < 1:
                raise InputError("delay", f"expected at least one step ({dt} ms), got {ms} ms")
            if steps > 255:
                raise InputError("delay", f"expected at most 255 steps ({255 * dt:g} ms), got {ms} ms")
            return steps
        arr = as_array(delay, "delay", dtype=np.float64, finite=True)
        if dense:
            raise InputError("delay",
                             "per-synapse delays need sparse (CSR) weights; give a scalar for dense ones")
        if arr.shape != (n_syn,):
            raise InputError("delay",
                             f"expected a scalar or one delay per synapse ({n_syn},), got {arr.shape}")
        steps = np.rint(arr / dt).astype(np.int64)
        if steps.size and (steps.min() < 1 or steps.max() > 255):
            raise InputError("delay", f"expected delays between one step ({dt} ms) and 255 steps")
        return steps.astype(np.uint8)

    # -- queries -------------------------------------------------------------------------------
    @property
    def dt(self) -> float:
        return self._dt if self._dt is not None else LIFParams().dt

    def __getitem__(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise InputError("name", f"no population named {name!r}; have {[p.name for p in self.populations]}")

    def layers(self) -> list[LIFLayer]:
        return [p for p in self.populations if isinstance(p, LIFLayer)]

    def incoming(self, layer: LIFLayer) -> list[Projection]:
        return [c for c in self.projections if c.post is layer]

    def ring_size(self, layer: LIFLayer) -> int:
        """Slots of the delay ring buffer of ``layer``: the longest incoming delay + 1."""
        return 1 + max([c.max_delay for c in self.incoming(layer)], default=1)

    def simulator(self, rt=None, record: bool = True, *, record_v=None, chunk_steps: int | None = None,
                  tunables: dict | None = None):
        """A :class:`~workbench.snn.simulator.Simulator` for this network on ``rt`` (``tunables``:
        overrides of the OpenCL engine's kernels/lif.tuning.json entry, e.g. ``{"CLOCK": 0}``)."""
        from .simulator import Simulator

        return Simulator(self, rt=rt, record=record, record_v=record_v, chunk_steps=chunk_steps,
                         tunables=tunables)


def _as_csr(weights):
    """(indptr, indices, data, shape) holder for CSR-like weights, else None for dense input."""
    from ..sparse.formats import CSRMatrix

    if isinstance(weights, CSRMatrix):
        return weights
    try:
        import scipy.sparse as sp

        if sp.issparse(weights):
            m = sp.csr_matrix(weights)
            m.sum_duplicates()
            m.sort_indices()
            return m
    except ImportError:  # pragma: no cover
        pass
    return None
