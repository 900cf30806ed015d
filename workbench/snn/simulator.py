"""Running an :class:`~workbench.snn.network.SNNNetwork` on a runtime.

:class:`Simulator` steps the network in chunks: every step is a handful of kernel launches (one
per population, one per projection, two per plastic projection) queued without waiting; after a
chunk the host reads back the spike lists, per-step counts and membrane traces. Parameters,
biases, rates and projection scales can change between chunks (the dashboard's sliders) without
restarting. On the NumPy runtime the same steps run as array code: the reference the kernels are
tested against (:class:`~workbench.snn.numpy_engine.NumpyEngine`);
:class:`~workbench.snn.opencl_engine.OpenCLEngine` runs ``kernels/lif.cl`` and ``kernels/stdp.cl``.
Both return the raw data of a chunk (:class:`ChunkData`); the simulator makes the record.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from ..errors import InputError
from ..runtime import resolve_rt
from ..validation import as_array, number, positive_int
from .network import LIFLayer, PoissonGroup, Projection, SNNNetwork, _per_neuron
from .numpy_engine import ChunkData, NumpyEngine
from .opencl_engine import TUNABLES, OpenCLEngine
from .record import SpikeRecord

F32 = np.float32


class Simulator:
    """A network placed on a runtime, with its state (membranes, refractory counters, adaptive
    thresholds, delay buffers, weights, traces) and its clock ``t`` (steps done).

    record: keep every spike time (else only per-neuron and per-step counts). record_v: membrane
    traces to keep, ``{layer or name: neuron ids}``. chunk_steps: steps between host read-backs
    (default 1000; fewer when recording, see below). tunables: overrides of the OpenCL engine's
    entry in kernels/lif.tuning.json (``WG``, ``VEC``, ``BLOCK``, ``SPREAD``, ``SPREAD_ITEMS``,
    ``CLOCK``), e.g. ``{"CLOCK": 0}`` for scalar step arguments; the NumPy engine has none to take.
    """

    def __init__(self, net: SNNNetwork, rt=None, *, record: bool = True, record_v=None,
                 chunk_steps: int | None = None, tunables: dict | None = None):
        if not isinstance(net, SNNNetwork):
            raise InputError("net", f"expected an SNNNetwork, got {type(net).__name__}")
        if not net.populations:
            raise InputError("net", "the network has no populations")
        self.net = net
        self.rt = resolve_rt(rt)
        self.dt = net.dt
        self.record = bool(record)
        self.record_v = self._record_v(record_v)
        n_max = max(p.n for p in net.populations)
        if chunk_steps is None:
            # a recorded chunk keeps room for every neuron firing every step: 32M spikes (256M
            # on a GPU, whose memory is larger and whose read-backs cost more) per population
            budget = 1 << (28 if self.rt.kind == "opencl-gpu" else 25)
            chunk_steps = max(1, min(1000, budget // n_max)) if record else 1000
        self.chunk_steps = positive_int(chunk_steps, "chunk_steps")
        self.offsets, start = {}, 0
        for p in net.populations:
            self.offsets[p.name] = (start, p.n)
            start += p.n
        if tunables is not None and not isinstance(tunables, dict):
            raise InputError("tunables",
                             f"expected a dict such as {{'CLOCK': 0}}, got {type(tunables).__name__}")
        unknown = set(tunables or {}) - set(TUNABLES)
        if unknown:
            raise InputError("tunables",
                             f"unknown SNN engine tunables {sorted(unknown)}; expected some of {TUNABLES}")
        self.tunables = dict(tunables or {})
        self.t = 0
        engine = OpenCLEngine if self.rt.is_opencl else NumpyEngine
        self.engine = engine(self)

    def _record_v(self, record_v) -> dict:
        out = {}
        for key, ids in (record_v or {}).items():
            layer = self.net[key] if isinstance(key, str) else key
            if not isinstance(layer, LIFLayer) or not any(layer is p for p in self.net.populations):
                raise InputError("record_v", f"expected LIF layers of this network as keys, got {key!r}")
            ids = np.atleast_1d(np.asarray(ids))
            if ids.dtype.kind not in "iu" or ids.size == 0 or ids.min() < 0 or ids.max() >= layer.n:
                raise InputError("record_v", f"expected neuron ids in [0, {layer.n}) for {layer.name!r}")
            out[layer.name] = ids.astype(np.uint32)
        return out

    # -- running -------------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """ms simulated so far."""
        return self.t * self.dt

    def chunks(self, n_steps: int, _counts: bool = True) -> Iterator[SpikeRecord]:
        """Run ``n_steps`` more steps, yielding each chunk's record as it completes."""
        n_steps = positive_int(n_steps, "n_steps")
        left = n_steps
        while left:
            steps = min(left, self.chunk_steps)
            rec = self._make_record(self.engine.run_chunk(self.t, steps, _counts))
            self.t += steps
            left -= steps
            yield rec

    def run(self, n_steps: int, on_chunk: Callable[[SpikeRecord], None] | None = None) -> SpikeRecord:
        """Run ``n_steps`` more steps and return their record (``on_chunk`` sees each chunk)."""
        records = []
        # a recorded chunk's per-neuron counts cost O(neurons): count once, at the end, unless
        # on_chunk wants them chunk by chunk
        per_chunk = on_chunk is not None or not self.record
        for rec in self.chunks(n_steps, _counts=per_chunk):
            records.append(rec)
            if on_chunk is not None:
                on_chunk(rec)
        out = SpikeRecord.concatenate(records)
        if out.counts is None:
            out.counts = np.bincount(out.ids, minlength=sum(p.n for p in self.net.populations))
        return out

    # -- live changes ----------------------------------------------------------------------------
    def _member(self, obj, kind, name):
        if isinstance(obj, str):
            obj = self.net[obj]
        pool = self.net.projections if kind is Projection else self.net.populations
        if not isinstance(obj, kind) or not any(obj is p for p in pool):
            raise InputError(name, f"expected a {kind.__name__} of this network, got {obj!r}")
        return obj

    def set_params(self, layer, **changes) -> None:
        """Change a LIF layer's parameters (any but ``dt``) from the next step on."""
        layer = self._member(layer, LIFLayer, "layer")
        if "dt" in changes and float(changes["dt"]) != layer.params.dt:
            raise InputError("dt", "the step cannot change during a run")
        layer.params = layer.params.replace(**changes)
        self.engine.update_layer(layer)

    def set_bias(self, layer, bias) -> None:
        """Change a LIF layer's constant input current (nA, scalar or per neuron)."""
        layer = self._member(layer, LIFLayer, "layer")
        layer.bias = _per_neuron(bias, layer.n, "bias")
        self.engine.update_layer(layer)

    def set_rates(self, group, rates) -> None:
        """Change a Poisson group's rates (Hz, scalar or per neuron)."""
        group = self._member(group, PoissonGroup, "group")
        new = _per_neuron(rates, group.n, "rates")
        if np.min(new) < 0:
            raise InputError("rates", "expected non-negative rates (Hz)")
        old, group.rates = group.rates, new
        try:
            group.probabilities(self.dt)
        except InputError:
            group.rates = old
            raise
        self.engine.update_group(group)

    def set_scale(self, projection, scale: float) -> None:
        """Multiply a projection's delivered weights by ``scale`` (plasticity still acts on the
        unscaled weights)."""
        projection = self._member(projection, Projection, "projection")
        projection.scale = number(scale, "scale")

    # -- state -----------------------------------------------------------------------------------
    def state(self, layer) -> dict:
        """Copies of a LIF layer's ``v`` (mV), ``refractory`` (steps left), ``theta`` (mV)."""
        layer = self._member(layer, LIFLayer, "layer")
        return self.engine.layer_state(layer)

    def set_state(self, layer, v=None, theta=None) -> None:
        """Overwrite a LIF layer's membrane potentials and/or adaptive thresholds."""
        layer = self._member(layer, LIFLayer, "layer")
        v = None if v is None else np.broadcast_to(_per_neuron(v, layer.n, "v"), (layer.n,)).astype(F32)
        theta = None if theta is None else np.broadcast_to(_per_neuron(theta, layer.n, "theta"),
                                                           (layer.n,)).astype(F32)
        self.engine.set_layer_state(layer, v, theta)

    def weights(self, projection) -> np.ndarray:
        """A projection's current weights as a dense (n_pre, n_post) float32 array."""
        projection = self._member(projection, Projection, "projection")
        w = self.engine.weights(projection)
        if projection.is_dense:
            return w.reshape(projection.pre.n, projection.post.n)
        out = np.zeros((projection.pre.n, projection.post.n), F32)
        rows = np.repeat(np.arange(projection.pre.n), np.diff(projection.indptr.astype(np.int64)))
        out[rows, projection.indices] = w
        return out

    def set_weights(self, projection, weights) -> None:
        """Overwrite a projection's weights: a dense (n_pre, n_post) array, or for sparse
        projections also the (n_synapses,) values in CSR order."""
        projection = self._member(projection, Projection, "projection")
        w = as_array(weights, "weights", finite=True)
        if projection.is_dense:
            if w.shape != projection.dense.shape:
                raise InputError("weights", f"expected shape {projection.dense.shape}, got {w.shape}")
            flat = w.reshape(-1)
        elif w.shape == (projection.n_synapses,):
            flat = w
        elif w.shape == (projection.pre.n, projection.post.n):
            rows = np.repeat(np.arange(projection.pre.n), np.diff(projection.indptr.astype(np.int64)))
            flat = np.ascontiguousarray(w[rows, projection.indices])
        else:
            raise InputError("weights", f"expected ({projection.n_synapses},) or "
                                        f"({projection.pre.n}, {projection.post.n}), got {w.shape}")
        self.engine.set_weights(projection, flat)

    # -- the record --------------------------------------------------------------------------------
    def _make_record(self, data: ChunkData) -> SpikeRecord:
        """The :class:`SpikeRecord` of an engine's raw chunk (see :class:`ChunkData`)."""
        t0, steps, per_pop, counts, v, count = data
        step_counts = np.zeros((steps, len(per_pop)), np.int64)
        times, ids = [], []
        for col, (pop, (per_step, idx)) in enumerate(zip(self.net.populations, per_pop)):
            per_step = np.asarray(per_step, np.int64)
            step_counts[:, col] = per_step
            if self.record:
                times.append(np.repeat(np.arange(steps, dtype=np.int64), per_step))
                ids.append(np.asarray(idx, np.int64) + self.offsets[pop.name][0])
        if times:
            st, gid = np.concatenate(times), np.concatenate(ids)
            order = np.lexsort((gid, st))
            st, gid = st[order], gid[order]
        else:
            st, gid = np.zeros(0, np.int64), np.zeros(0, np.int64)
        if counts is None and count:
            counts = np.bincount(gid, minlength=sum(p.n for p in self.net.populations))
        vt = {name: (self.record_v[name].astype(np.int64), arr) for name, arr in v.items()}
        return SpikeRecord((t0 + st + 1) * self.dt, gid, counts, steps, self.dt, t0 * self.dt,
                           dict(self.offsets), vt, step_counts)


def simulate(net: SNNNetwork, n_steps: int | None = None, *, duration: float | None = None, rt=None,
             record: bool = True, record_v=None, on_chunk=None,
             chunk_steps: int | None = None) -> SpikeRecord:
    """Run ``net`` from its initial state for ``n_steps`` steps (or ``duration`` ms) on ``rt``;
    returns the :class:`SpikeRecord` (times in ms, global ids, counts, traces, rates)."""
    if (n_steps is None) == (duration is None):
        raise InputError("n_steps", "give exactly one of n_steps or duration")
    if duration is not None:
        duration = number(duration, "duration")
        if duration <= 0:
            raise InputError("duration", f"expected a positive duration (ms), got {duration}")
        n_steps = max(1, int(round(duration / net.dt)))
    sim = Simulator(net, rt=rt, record=record, record_v=record_v, chunk_steps=chunk_steps)
    return sim.run(n_steps, on_chunk=on_chunk)
