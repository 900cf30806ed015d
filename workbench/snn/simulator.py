"""Running an :class:`~workbench.snn.network.SNNNetwork` on a runtime.

:class:`Simulator` steps the network in chunks: every step is a handful of kernel launches (one
per population, one per projection, two per plastic projection) queued without waiting; after a
chunk the host reads back the spike lists, per-step counts and membrane traces. Parameters,
biases, rates and projection scales can change between chunks (the dashboard's sliders) without
restarting. On the NumPy runtime the same steps run as array code: the reference the kernels are
tested against (:class:`_NumpyEngine`); :class:`_OpenCLEngine` runs ``kernels/lif.cl`` and
``kernels/stdp.cl``.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from ..errors import InputError
from ..runtime import resolve_rt
from ..validation import positive_int
from .network import LIFLayer, PoissonGroup, Projection, SNNNetwork, SpikeSource
from .record import SpikeRecord

F32 = np.float32


class Simulator:
    """A network placed on a runtime, with its state (membranes, refractory counters, adaptive
    thresholds, delay buffers, weights, traces) and its clock ``t`` (steps done).

    record: keep every spike time (else only per-neuron and per-step counts). record_v: membrane
    traces to keep, ``{layer or name: neuron ids}``. chunk_steps: steps between host read-backs
    (default 1000; fewer when recording, see below).
    """

    def __init__(self, net: SNNNetwork, rt=None, record: bool = True, record_v=None,
                 chunk_steps: int | None = None):
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
        self.t = 0
        engine = _OpenCLEngine if self.rt.is_opencl else _NumpyEngine
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
            rec = self.engine.run_chunk(self.t, steps, _counts)
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
        from .network import _per_neuron

        layer = self._member(layer, LIFLayer, "layer")
        layer.bias = _per_neuron(bias, layer.n, "bias")
        self.engine.update_layer(layer)

    def set_rates(self, group, rates) -> None:
        """Change a Poisson group's rates (Hz, scalar or per neuron)."""
        from .network import _per_neuron

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
        from .params import _number

        projection = self._member(projection, Projection, "projection")
        projection.scale = _number(scale, "scale")

    # -- state -----------------------------------------------------------------------------------
    def state(self, layer) -> dict:
        """Copies of a LIF layer's ``v`` (mV), ``refractory`` (steps left), ``theta`` (mV)."""
        layer = self._member(layer, LIFLayer, "layer")
        return self.engine.layer_state(layer)

    def set_state(self, layer, v=None, theta=None) -> None:
        """Overwrite a LIF layer's membrane potentials and/or adaptive thresholds."""
        from .network import _per_neuron

        layer = self._member(layer, LIFLayer, "layer")
        v = None if v is None else np.broadcast_to(_per_neuron(v, layer.n, "v"), (layer.n,)).astype(F32)
        theta = None if theta is None else np.broadcast_to(_per_neuron(theta, layer.n, "theta"), (layer.n,)).astype(F32)
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
        from ..validation import as_array

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
    def _make_record(self, t0: int, steps: int, per_pop: list, counts, v: dict, count: bool = True) -> SpikeRecord:
        """per_pop: for each population, (spikes per step (steps,), their local ids concatenated
        step by step, or None when not recording). counts: spikes per neuron in the chunk, or
        None to count them from the ids (recording only) when ``count``, else to leave None."""
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


def simulate(net: SNNNetwork, n_steps: int | None = None, duration: float | None = None, rt=None,
             record: bool = True, record_v=None, on_chunk=None, chunk_steps: int | None = None) -> SpikeRecord:
    """Run ``net`` from its initial state for ``n_steps`` steps (or ``duration`` ms) on ``rt``;
    returns the :class:`SpikeRecord` (times in ms, global ids, counts, traces, rates)."""
    if (n_steps is None) == (duration is None):
        raise InputError("n_steps", "give exactly one of n_steps or duration")
    if duration is not None:
        from .params import _number

        duration = _number(duration, "duration")
        if duration <= 0:
            raise InputError("duration", f"expected a positive duration (ms), got {duration}")
        n_steps = max(1, int(round(duration / net.dt)))
    sim = Simulator(net, rt=rt, record=record, record_v=record_v, chunk_steps=chunk_steps)
    return sim.run(n_steps, on_chunk=on_chunk)


# =============================================================================================
# The NumPy reference
# =============================================================================================
def _row_synapses(indptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions of all stored entries of ``rows`` in a CSR/CSC layout, row after row."""
    starts = indptr[rows].astype(np.int64)
    lengths = indptr[rows + 1].astype(np.int64) - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offs = np.cumsum(lengths) - lengths
    return np.arange(total) - np.repeat(offs, lengths) + np.repeat(starts, lengths)


def _csc_view(proj: Projection):
    """(col_ptr, col_pre, col_syn) of a CSR projection: its synapses grouped by post neuron."""
    rows = np.repeat(np.arange(proj.pre.n, dtype=np.int64), np.diff(proj.indptr.astype(np.int64)))
    order = np.argsort(proj.indices, kind="stable")
    col_ptr = np.zeros(proj.post.n + 1, np.int64)
    np.add.at(col_ptr, proj.indices.astype(np.int64) + 1, 1)
    return (np.cumsum(col_ptr).astype(np.uint32), rows[order].astype(np.uint32), order.astype(np.uint32))


class _LIFConsts:
    def __init__(self, layer: LIFLayer):
        p = layer.params
        self.decay = F32(p.decay)
        self.v_th = F32(p.v_th)
        self.v_reset = F32(p.v_reset)
        self.ref_steps = p.ref_steps
        self.theta_decay = F32(np.exp(-p.dt / layer.tau_theta))
        self.theta_plus = F32(layer.theta_plus)
        self.v_inf = layer.v_inf()


class _Traces:
    """Lazy STDP traces of a plastic projection: value at the last spike and that step."""

    def __init__(self, proj: Projection, dt: float):
        rule = proj.plasticity
        self.rule = rule
        self.k_plus = F32(dt / rule.tau_plus)
        self.k_minus = F32(dt / rule.tau_minus)
        self.tr_pre = np.zeros(proj.pre.n, F32)
        self.last_pre = np.zeros(proj.pre.n, np.int32)
        self.tr_post = np.zeros(proj.post.n, F32)
        self.last_post = np.zeros(proj.post.n, np.int32)


class _NumpyEngine:
    """The reference: each kernel's step written as NumPy array code in float32."""

    def __init__(self, sim: Simulator):
        self.sim = sim
        net = sim.net
        self.lif, self.poisson, self.counts = {}, {}, {}
        for p in net.populations:
            self.counts[p.name] = np.zeros(p.n, np.int64)
            if isinstance(p, LIFLayer):
                d = net.ring_size(p)
                self.lif[p.name] = {
                    "v": np.broadcast_to(p.v_init, (p.n,)).astype(F32),
                    "ref": np.zeros(p.n, np.int32), "theta": np.broadcast_to(p.theta_init, (p.n,)).astype(F32),
                    "ring": np.zeros((d, p.n), F32), "c": _LIFConsts(p),
                }
            elif isinstance(p, PoissonGroup):
                self.update_group(p)
        self.w, self.csc, self.traces = {}, {}, {}
        for i, c in enumerate(net.projections):
            self.w[i] = (c.dense if c.is_dense else c.data).reshape(-1).astype(F32)
            if c.plasticity is not None:
                self.traces[i] = _Traces(c, sim.dt)
                if not c.is_dense:
                    self.csc[i] = _csc_view(c)

    def update_layer(self, layer: LIFLayer) -> None:
        self.lif[layer.name]["c"] = _LIFConsts(layer)

    def update_group(self, group: PoissonGroup) -> None:
        self.poisson[group.name] = np.broadcast_to(group.probabilities(self.sim.dt), (group.n,)).astype(F32)

    def layer_state(self, layer):
        s = self.lif[layer.name]
        return {"v": s["v"].copy(), "refractory": s["ref"].copy(), "theta": s["theta"].copy()}

    def set_layer_state(self, layer, v, theta):
        s = self.lif[layer.name]
        if v is not None:
            s["v"][:] = v
        if theta is not None:
            s["theta"][:] = theta

    def _index(self, proj):
        return next(i for i, c in enumerate(self.sim.net.projections) if c is proj)

    def weights(self, proj):
        return self.w[self._index(proj)].copy()

    def set_weights(self, proj, flat):
        self.w[self._index(proj)][:] = flat

    # -- one population's step ------------------------------------------------------------------
    def lif_step(self, layer: LIFLayer, t: int) -> np.ndarray:
        s = self.lif[layer.name]
        c, v, ref, theta, ring = s["c"], s["v"], s["ref"], s["theta"], s["ring"]
        slot = t % ring.shape[0]
        syn = ring[slot].copy()
        ring[slot] = 0
        held = ref > 0
        if layer.adaptive:
            theta *= c.theta_decay
        v_new = c.v_inf + (v - c.v_inf) * c.decay + syn
        v[:] = np.where(held, v, v_new)
        ref[held] -= 1
        spk = ~held & (v >= c.v_th + theta) if layer.adaptive else ~held & (v >= c.v_th)
        v[spk] = c.v_reset
        ref[spk] = c.ref_steps
        if layer.adaptive:
            theta[spk] += c.theta_plus
        return np.nonzero(spk)[0]

    def poisson_step(self, group: PoissonGroup, t: int) -> np.ndarray:
        from .rng import uniform

        u = uniform(group.seed, t, np.arange(group.n, dtype=np.uint32))
        return np.nonzero(u < self.poisson[group.name])[0]

    # -- delivery and plasticity -----------------------------------------------------------------
    def propagate(self, i: int, proj: Projection, ids: np.ndarray, t: int) -> None:
        if ids.size == 0:
            return
        ring = self.lif[proj.post.name]["ring"]
        d_slots = ring.shape[0]
        scale = F32(proj.scale)
        if proj.is_dense:
            w = self.w[i].reshape(proj.pre.n, proj.post.n)
            # an axis-0 sum adds the rows in order, as the kernel does
            ring[(t + proj.delays) % d_slots] += scale * w[ids].sum(0, dtype=F32)
            return
        syn = _row_synapses(proj.indptr, ids)
        if syn.size == 0:
            return
        delay = proj.delays[syn] if np.ndim(proj.delays) else proj.delays
        slots = (t + np.asarray(delay, np.int64)) % d_slots
        np.add.at(ring, (slots, proj.indices[syn]), scale * self.w[i][syn])

    def stdp(self, i: int, proj: Projection, pre_ids: np.ndarray, post_ids: np.ndarray, t: int) -> None:
        tr, rule, w = self.traces[i], proj.plasticity, self.w[i]
        lo, hi = F32(rule.w_min), F32(rule.w_max)
        a_minus, a_plus = F32(rule.a_minus), F32(rule.a_plus)

        def trace_at(vals, last, idx, k):
            return vals[idx] * np.exp(-(t - last[idx]).astype(F32) * k)

        def spike(vals, last, idx, k):
            vals[idx] = F32(1.0) if rule.trace == "nearest" else trace_at(vals, last, idx, k) + F32(1.0)
            last[idx] = t

        if pre_ids.size:
            if proj.is_dense:
                syn = (pre_ids[:, None] * proj.post.n + np.arange(proj.post.n)).reshape(-1)
                post = np.tile(np.arange(proj.post.n), pre_ids.size)
            else:
                syn = _row_synapses(proj.indptr, pre_ids)
                post = proj.indices[syn]
            x = trace_at(tr.tr_post, tr.last_post, post, tr.k_minus)
            old = w[syn]
            dw = a_minus * x * (old - lo) if rule.multiplicative else a_minus * x
            w[syn] = np.clip(old - dw, lo, hi)
            spike(tr.tr_pre, tr.last_pre, pre_ids, tr.k_plus)
        if post_ids.size:
            if proj.is_dense:
                syn = (np.arange(proj.pre.n)[None, :] * proj.post.n + post_ids[:, None]).reshape(-1)
                pre = np.tile(np.arange(proj.pre.n), post_ids.size)
            else:
                col_ptr, col_pre, col_syn = self.csc[i]
                cols = _row_synapses(col_ptr, post_ids)
                syn, pre = col_syn[cols].astype(np.int64), col_pre[cols]
            x = trace_at(tr.tr_pre, tr.last_pre, pre, tr.k_plus)
            old = w[syn]
            dw = a_plus * x * (hi - old) if rule.multiplicative else a_plus * x
            w[syn] = np.clip(old + dw, lo, hi)
            spike(tr.tr_post, tr.last_post, post_ids, tr.k_minus)

    # -- a chunk ---------------------------------------------------------------------------------
    def run_chunk(self, t0: int, steps: int, count: bool = True) -> SpikeRecord:
        sim, net = self.sim, self.sim.net
        src = {}
        for p in net.populations:
            if isinstance(p, SpikeSource):
                ids, cnt = p.events(t0, steps)
                src[p.name] = np.split(ids.astype(np.int64), np.cumsum(cnt)[:-1])
        got = {p.name: ([], []) for p in net.populations}
        v = {name: np.zeros((steps, ids.size), F32) for name, ids in sim.record_v.items()}
        before = {k: c.copy() for k, c in self.counts.items()}
        for tl in range(steps):
            t = t0 + tl
            fired = {}
            for p in net.populations:
                if isinstance(p, LIFLayer):
                    ids = self.lif_step(p, t)
                elif isinstance(p, PoissonGroup):
                    ids = self.poisson_step(p, t)
                else:
                    ids = src[p.name][tl]
                fired[p.name] = ids
                self.counts[p.name][ids] += 1
                got[p.name][1].append(ids)
            for i, c in enumerate(net.projections):
                self.propagate(i, c, fired[c.pre.name], t)
            for i, c in enumerate(net.projections):
                if c.plasticity is not None:
                    self.stdp(i, c, fired[c.pre.name], fired[c.post.name], t)
            for name, ids in sim.record_v.items():
                v[name][tl] = self.lif[name]["v"][ids]
        per_pop = [(np.array([a.size for a in got[p.name][1]]), np.concatenate(got[p.name][1])) for p in net.populations]
        counts = np.concatenate([self.counts[p.name] - before[p.name] for p in net.populations])
        return sim._make_record(t0, steps, per_pop, counts, v, count)


from .opencl_engine import _OpenCLEngine  # noqa: E402  (the OpenCL twin, in its own module)
