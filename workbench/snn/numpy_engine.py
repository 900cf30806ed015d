"""The NumPy reference engine of :class:`~workbench.snn.simulator.Simulator`: each kernel's step
written as array code in float32, and the state helpers both engines share (the CSC view of a
projection for STDP, the LIF constants, the lazy STDP traces). Engines return a chunk's raw data
(:class:`ChunkData`); the simulator turns it into a :class:`~workbench.snn.SpikeRecord`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .network import LIFLayer, PoissonGroup, Projection, SpikeSource
from .rng import uniform

F32 = np.float32


class ChunkData(NamedTuple):
    """A chunk as an engine computed it: ``t0`` (its first step), ``steps``; ``per_pop``: for each
    population (spikes per step (steps,), their local ids concatenated step by step, or None when
    not recording); ``counts``: spikes per neuron, or None to count them from the ids when
    ``count``; ``v``: recorded membrane traces by population name."""

    t0: int
    steps: int
    per_pop: list
    counts: object
    v: dict
    count: bool


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


class NumpyEngine:
    """The reference: each kernel's step written as NumPy array code in float32."""

    def __init__(self, sim):
        self.sim = sim
        net = sim.net
        self.lif, self.poisson, self.counts = {}, {}, {}
        for p in net.populations:
            self.counts[p.name] = np.zeros(p.n, np.int64)
            if isinstance(p, LIFLayer):
                d = net.ring_size(p)
                self.lif[p.name] = {
                    "v": np.broadcast_to(p.v_init, (p.n,)).astype(F32),
                    "ref": np.zeros(p.n, np.int32),
                    "theta": np.broadcast_to(p.theta_init, (p.n,)).astype(F32),
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
    def run_chunk(self, t0: int, steps: int, count: bool = True) -> ChunkData:
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
        per_pop = [(np.array([a.size for a in got[p.name][1]]),
                    np.concatenate(got[p.name][1])) for p in net.populations]
        counts = np.concatenate([self.counts[p.name] - before[p.name] for p in net.populations])
        return ChunkData(t0, steps, per_pop, counts, v, count)


