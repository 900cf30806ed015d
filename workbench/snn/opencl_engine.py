"""The OpenCL side of :class:`~workbench.snn.simulator.Simulator`: buffers and launches for
``kernels/lif.cl`` and ``kernels/stdp.cl``. Same steps, same order, same float32 arithmetic as
the NumPy reference (:class:`~workbench.snn.numpy_engine.NumpyEngine`); only the order in which
simultaneous spikes are summed differs (atomics), a last-bit difference."""

from __future__ import annotations

import time

import numpy as np

from ..errors import InputError
from ..runtime.kernels import tuned
from ..validation import positive_int
from .network import LIFLayer, PoissonGroup, Projection, SpikeSource
from .numpy_engine import ChunkData, _csc_view, _LIFConsts, _Traces

F32, U32, I32 = np.float32, np.uint32, np.int32


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


# How kernels learn the step (kernels/snn.h) is the ``CLOCK`` tunable (kernels/lif.tuning.json):
# 1, tables over the chunk's steps read at a device step counter (no argument changes between
# launches); 0, scalar arguments set before each launch. Tests check both forms.
TUNABLES = ("WG", "VEC", "BLOCK", "SPREAD", "SPREAD_ITEMS", "CLOCK")


def engine_tunables(rt, overrides: dict | None = None) -> dict:
    """The SNN engine's tunables on ``rt``: kernels/lif.tuning.json's entry for the device (see
    :func:`workbench.runtime.kernels.tuning`), then ``overrides`` (a Simulator's ``tunables=``)."""
    _, p, _ = tuned("lif", rt.info, "")
    for key, value in (overrides or {}).items():
        if key not in TUNABLES:
            raise InputError("tunables", f"unknown SNN engine tunable {key!r}; expected some of {TUNABLES}")
        p[key] = positive_int(int(value) if isinstance(value, bool) else value, f"tunables[{key!r}]",
                              minimum=0)
    if p.get("BLOCK", 1) < 1 or p.get("SPREAD", 1) < 1 or p.get("VEC", 1) < 1:
        raise InputError("tunables", f"BLOCK, SPREAD and VEC must be at least 1, got {p}")
    return p


class _Dyn:
    """A kernel argument that changes every step: ``fn(t, t_local)`` (scalars, or arrays of the
    chunk's steps for a CLOCK table); ``const``: its value when it happens not to change."""

    def __init__(self, fn, const=None):
        self.fn = fn
        self.const = const


_T = _Dyn(lambda t, tl: U32(t))
_TI = _Dyn(lambda t, tl: I32(t))
_TL = _Dyn(lambda t, tl: U32(tl))
_ZERO = _Dyn(lambda t, tl: np.zeros(np.shape(tl), U32), const=U32(0))


class _Launch:
    """One kernel launch of every step, on a private ``cl.Kernel`` whose fixed arguments are set
    once per chunk; each step sets only the few that change (``_Dyn``) and enqueues. (Setting
    all ~25 arguments each launch cost more host time than PoCL's LIF step itself.)"""

    def __init__(self, program, name: str, global_size, local_size, *args, clock=None):
        import pyopencl as cl

        self.kernel = cl.Kernel(program.cl_program, name)
        self.global_size, self.local_size = tuple(global_size), local_size
        self.dynamic = []
        for i, a in enumerate(args):
            if isinstance(a, _Dyn) and clock is not None:
                t0, steps, queue = clock[1:]
                t = np.arange(t0, t0 + steps, dtype=np.int64)
                # the step values of the whole chunk, read on the device at clk[0] (kernels/snn.h)
                table = np.ascontiguousarray(np.asarray(a.fn(t, t - t0)).astype(np.int64).astype(U32))
                buf = cl.Buffer(queue.context, cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR,
                                hostbuf=table)
                self.kernel.set_arg(i, buf)
                self.dynamic.append(buf)  # kept alive with the launch
            elif isinstance(a, _Dyn) and a.const is not None:
                self.kernel.set_arg(i, a.const)
            elif isinstance(a, _Dyn):
                self.dynamic.append((i, a.fn))
            else:
                self.kernel.set_arg(i, a)
        self.tables = clock is not None
        if self.tables:
            self.kernel.set_arg(len(args), clock[0])

    def __call__(self, queue, t: int, tl: int):
        import pyopencl as cl

        if not self.tables:
            for i, fn in self.dynamic:
                self.kernel.set_arg(i, fn(t, tl))
        return cl.enqueue_nd_range_kernel(queue, self.kernel, self.global_size, self.local_size)


class OpenCLEngine:
    def __init__(self, sim):

        self._consts = _LIFConsts
        self.sim = sim
        rt = self.rt = sim.rt
        net = sim.net
        gpu = rt.kind == "opencl-gpu"
        overrides = getattr(sim, "tunables", None) or {}
        if not gpu and {"WG", "VEC"} & set(overrides):
            raise InputError("tunables", "WG and VEC apply to GPUs; this device runs lif_block, one "
                                         "work-item per group (tune BLOCK, SPREAD, SPREAD_ITEMS instead)")
        p = self.tunables = engine_tunables(rt, overrides)
        if not gpu and p.get("SPREAD_ITEMS", 0) < 1:
            raise InputError("tunables", f"SPREAD_ITEMS must be at least 1 on this device, got {p}")
        self.wg = p["WG"] if gpu else 0  # CPUs: one work-item per work-group (PoCL spreads groups)
        self.clock = bool(p["CLOCK"])
        self.clk = rt.to_device(np.zeros(1, U32)) if self.clock else None
        self._clock_args = None  # (clk buffer, t0, steps, queue) while a chunk's plan is built
        # CPUs: neurons per work-item of lif_block, one work-item per work-group
        self.block = p["BLOCK"]
        self.block_local = (1,)
        cu = max(1, int(getattr(rt.info, "compute_units", 1) or 1))
        # enough work-items to cover a busy step's spikes, few enough that an idle launch is cheap
        self.spread = p["SPREAD"] * cu * (self.wg or p["SPREAD_ITEMS"])
        self.vec = p["VEC"] if gpu else 1  # lanes per spike in propagate_csr
        q = rt.queue
        # CPUs: a LIF layer with exactly one out-going sparse projection delivers through it in
        # its own lif_block launch (one launch per step instead of two; see kernels/lif.cl).
        self.fused = {}
        if not gpu:
            for p in net.layers():
                out = [i for i, c in enumerate(net.projections) if c.pre is p]
                if len(out) == 1 and not net.projections[out[0]].is_dense:
                    self.fused[p.name] = out[0]
        self.pop = {}
        for p in net.populations:
            # Recording keeps a whole chunk's spikes; otherwise the list is a ring of one step's
            # worth, a power of two so that the running counter may wrap around 2^32.
            cap = p.n * sim.chunk_steps if sim.record else 1 << (p.n - 1).bit_length()
            s = {"count": rt.to_device(np.zeros(p.n, U32), "spike counts")}  # per chunk
            if not isinstance(p, SpikeSource):
                s["list"] = rt.empty(max(cap, 1), U32, "spike list")
                s["cap"] = cap
                s["ctr"] = rt.to_device(np.zeros(1, U32))
                s["cnt"] = rt.to_device(np.zeros(sim.chunk_steps, U32))
            if isinstance(p, LIFLayer):
                d = net.ring_size(p)
                s["slots"] = d
                s["v"] = rt.to_device(np.broadcast_to(p.v_init, (p.n,)).astype(F32), "membrane potentials")
                s["ref"] = rt.to_device(np.zeros(p.n, I32))
                s["theta"] = rt.to_device(np.broadcast_to(p.theta_init, (p.n,)).astype(F32) if p.adaptive
                                          else np.zeros(1, F32))
                s["ring"] = rt.to_device(np.zeros(d * p.n, F32), "delay ring buffer")
                self.pop[p.name] = s
                self.update_layer(p)
            else:
                self.pop[p.name] = s
                if isinstance(p, PoissonGroup):
                    self.update_group(p)
        self.proj = []
        for c in net.projections:
            s = {}
            if c.is_dense:
                s["w"] = rt.to_device(c.dense.reshape(-1).astype(F32), "weights")
            else:
                s["w"] = rt.to_device(c.data.astype(F32), "weights")
                s["indptr"] = rt.to_device(c.indptr.astype(U32))
                s["indices"] = rt.to_device(c.indices.astype(U32))
                per_syn = np.ndim(c.delays) > 0
                s["delays"] = rt.to_device(c.delays.astype(np.uint8) if per_syn else np.ones(1, np.uint8))
                s["prog"] = rt.program("lif", WG=self.wg, DELAYS=int(per_syn), VEC=self.vec,
                                       CLOCK=int(self.clock))
            if c.plasticity is not None:
                tr = _Traces(c, sim.dt)
                s["k"] = (tr.k_plus, tr.k_minus)
                for name in ("tr_pre", "last_pre", "tr_post", "last_post"):
                    s[name] = rt.to_device(getattr(tr, name))
                s["stdp"] = rt.program("stdp", WG=self.wg, CLOCK=int(self.clock),
                                       MULT=int(c.plasticity.multiplicative),
                                       NEAREST=int(c.plasticity.trace == "nearest"))
                if not c.is_dense:
                    col_ptr, col_pre, col_syn = _csc_view(c)
                    s["col_ptr"], s["col_pre"], s["col_syn"] = (
                        rt.to_device(col_ptr), rt.to_device(col_pre), rt.to_device(col_syn))
            self.proj.append(s)
        self.vbuf = {name: (rt.to_device(ids), rt.empty(sim.chunk_steps * ids.size, F32))
                     for name, ids in sim.record_v.items()}
        self.plain = rt.program("lif", WG=self.wg, CLOCK=int(self.clock))
        q.finish()

    # -- parameters ------------------------------------------------------------------------------
    def update_layer(self, layer: LIFLayer) -> None:
        s = self.pop[layer.name]
        c = self._consts(layer)
        s["c"] = c
        per_neuron = c.v_inf.ndim == 1
        s["v_inf"] = self.rt.to_device(c.v_inf if per_neuron else np.zeros(1, F32))
        s["v_inf_one"] = F32(0.0 if per_neuron else c.v_inf)
        fused = self.fused.get(layer.name)
        delays = fused is not None and np.ndim(self.sim.net.projections[fused].delays) > 0
        s["prog"] = self.rt.program("lif", WG=self.wg, CLOCK=int(self.clock), BIAS_ARRAY=int(per_neuron),
                                    ADAPT=int(layer.adaptive),
                                    FUSE=int(fused is not None), DELAYS=int(delays), BLOCK=self.block)

    def update_group(self, group: PoissonGroup) -> None:
        s = self.pop[group.name]
        p = group.probabilities(self.sim.dt)
        per_neuron = p.ndim == 1
        s["p"] = self.rt.to_device(p.astype(F32) if per_neuron else np.zeros(1, F32))
        s["p_one"] = F32(0.0 if per_neuron else p)
        s["prog"] = self.rt.program("lif", WG=self.wg, CLOCK=int(self.clock), BIAS_ARRAY=int(per_neuron))

    def layer_state(self, layer):
        s = self.pop[layer.name]
        theta = s["theta"].get() if layer.adaptive else np.zeros(layer.n, F32)
        return {"v": s["v"].get(), "refractory": s["ref"].get(), "theta": theta}

    def set_layer_state(self, layer, v, theta):
        s = self.pop[layer.name]
        if v is not None:
            s["v"].set(np.ascontiguousarray(v, F32))
        if theta is not None and layer.adaptive:
            s["theta"].set(np.ascontiguousarray(theta, F32))

    def _index(self, proj: Projection) -> int:
        return next(i for i, c in enumerate(self.sim.net.projections) if c is proj)

    def weights(self, proj):
        return self.proj[self._index(proj)]["w"].get()

    def set_weights(self, proj, flat):
        self.proj[self._index(proj)]["w"].set(np.ascontiguousarray(flat, F32))

    # -- launches --------------------------------------------------------------------------------
    def _global(self, n: int) -> int:
        return _round_up(max(n, 1), self.wg) if self.wg else max(n, 1)

    def _local(self):
        return (self.wg,) if self.wg else None

    def _spikes_args(self, pop) -> tuple:
        """(list, cap, ends, end_idx, cnt, t_local) of ``pop``'s spikes at the current step."""
        s = self.pop[pop.name]
        if isinstance(pop, SpikeSource):
            return (s["src_list"].data, U32(s["src_cap"]), s["src_ends"].data, _TL, s["src_cnt"].data, _TL)
        return (s["list"].data, U32(s["cap"]), s["ctr"].data, _ZERO, s["cnt"].data, _TL)

    def _pop_launch(self, p) -> _Launch:
        s = self.pop[p.name]
        tail = (s["list"].data, U32(s["cap"]), s["ctr"].data, s["cnt"].data, _TL, s["count"].data)
        if isinstance(p, PoissonGroup):
            return self._launch(s["prog"], "poisson_step", (self._global(p.n),), self._local(), U32(p.n),
                                s["p"].data,
                           s["p_one"], U32(p.seed & 0xFFFFFFFF), _T, *tail)
        c, n, slots = s["c"], p.n, s["slots"]
        args = (U32(n), s["v"].data, s["ref"].data, s["theta"].data, s["v_inf"].data, s["v_inf_one"],
                s["ring"].data, _Dyn(lambda t, tl: U32((t % slots) * n)),
                c.decay, c.v_th, c.v_reset, I32(c.ref_steps), c.theta_decay, c.theta_plus, *tail)
        if self.wg:
            return self._launch(s["prog"], "lif_step", (self._global(n),), self._local(), *args)
        # CPUs: a work-item per block of neurons, delivering through a fused projection
        fused = self.fused.get(p.name)
        if fused is not None:
            args += self._csr_delivery(fused)
        return self._launch(s["prog"], "lif_block", (-(-n // self.block),), self.block_local, *args)

    def _csr_delivery(self, i: int) -> tuple:
        """The trailing arguments that deliver through CSR projection ``i``."""
        c, s = self.sim.net.projections[i], self.proj[i]
        post = self.pop[c.post.name]
        delay_one = 1 if np.ndim(c.delays) else int(c.delays)
        return (s["indptr"].data, s["indices"].data, s["w"].data, s["delays"].data, U32(delay_one),
                F32(c.scale), post["ring"].data, U32(c.post.n), U32(post["slots"]), _T)

    def _deliver_launch(self, i: int) -> _Launch:
        c = self.sim.net.projections[i]
        s, post = self.proj[i], self.pop[c.post.name]
        spikes = self._spikes_args(c.pre)
        if c.is_dense:
            return self._launch(self.plain, "propagate_dense", (c.post.n,), None, *spikes, s["w"].data,
                                U32(c.delays),
                           F32(c.scale), post["ring"].data, U32(c.post.n), U32(post["slots"]), _T)
        size = min(self._global(c.pre.n * self.vec), self.spread)
        return self._launch(s["prog"], "propagate_csr", (size,), None, *spikes, *self._csr_delivery(i))

    def _stdp_launches(self, i: int) -> list[_Launch]:
        c = self.sim.net.projections[i]
        s, rule = self.proj[i], c.plasticity
        k_plus, k_minus = s["k"]
        bounds = (F32(rule.w_min), F32(rule.w_max))
        pre, post = self._spikes_args(c.pre), self._spikes_args(c.post)
        traces = (s["tr_post"].data, s["last_post"].data, s["tr_pre"].data, s["last_pre"].data)
        traces_post = (s["tr_pre"].data, s["last_pre"].data, s["tr_post"].data, s["last_post"].data)
        times = (_TI, k_plus, k_minus)
        prog, w = s["stdp"], s["w"].data
        if c.is_dense:
            size = (min(c.pre.n * c.post.n, self.spread),)
            return [
                self._launch(prog, "stdp_pre_dense", size, None, *pre, w, U32(c.post.n), *traces, *times,
                        F32(rule.a_minus), *bounds),
                self._launch(prog, "stdp_post_dense", size, None, *post, w, U32(c.pre.n), U32(c.post.n),
                             *traces_post,
                        *times, F32(rule.a_plus), *bounds),
            ]
        return [
            self._launch(prog, "stdp_pre_csr", (min(self._global(c.pre.n), self.spread),), None, *pre,
                    s["indptr"].data, s["indices"].data, w, *traces, *times, F32(rule.a_minus), *bounds),
            self._launch(prog, "stdp_post_csr", (min(self._global(c.post.n), self.spread),), None, *post,
                    s["col_ptr"].data, s["col_pre"].data, s["col_syn"].data, w, *traces_post, *times,
                    F32(rule.a_plus), *bounds),
        ]

    def _launch(self, program, name: str, global_size, local_size, *args) -> _Launch:
        return _Launch(program, name, global_size, local_size, *args, clock=self._clock_args)

    def _plan(self, t0: int, steps: int) -> list[_Launch]:
        """Every launch of one step, in order (rebuilt each chunk: parameters may have changed)."""
        self._clock_args = (self.clk.data, t0, steps, self.rt.queue) if self.clock else None
        net = self.sim.net
        plan = [self._pop_launch(p) for p in net.populations if not isinstance(p, SpikeSource)]
        plan += [self._deliver_launch(i) for i in range(len(net.projections)) if i not in self.fused.values()]
        for i, c in enumerate(net.projections):
            if c.plasticity is not None:
                plan += self._stdp_launches(i)
        for name, (ids, out) in self.vbuf.items():
            k = ids.size
            plan.append(self._launch(self.plain, "gather_v", (k,), None, self.pop[name]["v"].data, ids.data,
                                     U32(k),
                                out.data, _Dyn(lambda t, tl, k=k: U32(tl * k))))
        if self.clock:
            plan.append(_Launch(self.plain, "tick", (1,), None, self.clk.data))
        return plan

    # -- a chunk ---------------------------------------------------------------------------------
    def run_chunk(self, t0: int, steps: int, count: bool = True):
        sim, net, rt = self.sim, self.sim.net, self.rt
        for p in net.populations:
            s = self.pop[p.name]
            if isinstance(p, SpikeSource):
                ids, cnt = p.events(t0, steps)
                s["src_list"] = rt.to_device(ids if ids.size else np.zeros(1, U32))
                s["src_cap"] = max(ids.size, 1)
                s["src_cnt"] = rt.to_device(cnt)
                s["src_ends"] = rt.to_device(np.cumsum(cnt, dtype=np.uint64).astype(U32))
                s["host_ids"], s["host_cnt"] = ids, cnt
            else:
                s["ctr"].fill(0)
                s["cnt"].fill(0)
                if not sim.record:
                    s["count"].fill(0)
        t_start = time.perf_counter()
        plan = self._plan(t0, steps)
        if self.clock:
            self.clk.fill(0)
        with rt.launch_lock:
            for tl in range(steps):
                t = t0 + tl
                for launch in plan:
                    launch(rt.queue, t, tl)
        t_queued = time.perf_counter()
        rt.queue.finish()
        t_done = time.perf_counter()
        per_pop, counts = [], []
        for p in net.populations:
            s = self.pop[p.name]
            if isinstance(p, SpikeSource):
                cnt, ids = s["host_cnt"], s["host_ids"]
                counts.append(np.bincount(ids, minlength=p.n))
            else:
                cnt = s["cnt"].get()[:steps]
                total = int(cnt.sum())
                ids = s["list"][:total].get() if sim.record and total else np.zeros(0, U32)
                # when recording, the ids count the spikes; else read the device's counters
                counts.append(None if sim.record else s["count"].get())
            per_pop.append((cnt, ids if sim.record else None))
        v = {name: out.get()[:steps * ids.size].reshape(steps, ids.size) for name,
             (ids, out) in self.vbuf.items()}
        if sim.record:
            counts = None
        elif len(counts) == 1:
            counts = counts[0]
        else:
            counts = np.concatenate(counts)
        rec = ChunkData(t0, steps, per_pop, counts, v, count)
        # where a chunk's wall time went: queueing the launches, waiting for the device, read-back
        self.last_timing = {"enqueue_s": t_queued - t_start, "device_wait_s": t_done - t_queued,
                            "readback_s": time.perf_counter() - t_done, "steps": steps}
        return rec
