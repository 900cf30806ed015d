"""A spiking network to watch and tune while it runs: what the *Spikes* page and
``SpikeRasterPanel`` stream from.

:class:`LiveNetwork` is a balanced network after Brunel (2000): ``n_exc`` excitatory and
``n_inh`` inhibitory LIF neurons, each receiving synapses from ``k_exc`` excitatory and
``k_inh`` inhibitory neurons drawn at random (fixed in-degree, as NEST's ``fixed_indegree`` with
multapses: a pair drawn twice gets a double weight), plus ``k_input`` synapses from ``n_input``
Poisson neurons firing at ``input_rate``. The in-degrees do not grow with the network, so a
larger one behaves the same at the same cost per neuron. Excitatory synapses add
``w_exc`` mV to the membrane; inhibitory ones subtract ``g * inhibition * w_exc`` mV, every
synapse with ``delay`` ms. With g = 5 and k_exc / k_inh = 4 the recurrent input is
inhibition-dominated and the network fires irregularly at about 20 Hz; turning
``inhibition`` down lets excitation win (fast, synchronous bursts), turning the input up or
the threshold down raises the rates.

Four knobs change the running simulation between chunks, without a restart (:meth:`set`):
``tau_m`` (ms) and ``v_th`` (mV) of both layers, ``input_rate`` (Hz) of the Poisson drive,
``inhibition`` (a factor on every inhibitory weight). :meth:`run` is a generator of
:class:`LiveChunk`; each chunk is logged to the store (run kind ``"snn"``: population rates and
the knob values in force, so the record shows when a knob moved). :meth:`stop` (from any thread)
ends the run after the current chunk and marks the run ``stopped``; :meth:`run` again goes on
from there.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..errors import InputError
from ..runtime import resolve_rt
from ..store import resolve_store
from ..validation import number, positive_int
from .network import LIFLayer, PoissonGroup, SNNNetwork
from .params import LIFParams
from .record import SpikeRecord

SNN_KIND = "snn"  # store run kind of live simulations
KNOBS = ("tau_m", "v_th", "input_rate", "inhibition")
# what a knob may be set to: (low, high) inclusive; v_th must stay above v_reset = v_rest
KNOB_RANGES = {"tau_m": (2.0, 100.0), "v_th": (-60.0, -40.0), "input_rate": (0.0, 100.0),
               "inhibition": (0.0, 3.0)}


@dataclass
class LiveChunk:
    """One chunk of a live run. ``record``: its spikes (times in ms since the run began, global
    ids; ``record.offsets`` names the populations), per-step counts and membrane traces;
    ``index``: chunks done before it in this run; ``rates``: mean rate of the excitatory and the
    inhibitory neurons over the chunk (Hz); ``knobs``: the values in force during it; ``wall_s``:
    seconds it took to compute; ``groups``: name -> (first global id, size) of the excitatory and
    inhibitory neurons in ``record``."""

    index: int
    record: SpikeRecord
    rates: dict
    knobs: dict
    wall_s: float
    groups: dict

    @property
    def t_ms(self) -> float:
        """Simulated time at the end of the chunk (ms)."""
        return self.record.t0 + self.record.duration


def _indegree(n_post: int, blocks, n_pre: int, rng):
    """(n_pre, n_post) CSR weights: for each (first id, size, k, weight) block of pre neurons,
    every post neuron receives ``k`` synapses of that weight from neurons of the block drawn
    at random (with replacement; duplicates merge into one synapse of summed weight)."""
    import scipy.sparse as sp

    pres, posts, ws = [], [], []
    for first, size, k, w in blocks:
        pres.append(rng.integers(0, size, n_post * k) + first)
        posts.append(np.repeat(np.arange(n_post), k))
        ws.append(np.full(n_post * k, w, np.float32))
    m = sp.csr_matrix((np.concatenate(ws), (np.concatenate(pres), np.concatenate(posts))),
                      shape=(n_pre, n_post))
    m.sum_duplicates()
    return m


class LiveNetwork:
    """A balanced excitatory/inhibitory LIF network to run live (see the module docstring).

    Sizes: ``n_exc``, ``n_inh``, ``n_input`` neurons; ``k_exc``, ``k_inh``, ``k_input``: the
    synapses each neuron receives from each (at most the population's size). Synapses:
    ``w_exc`` mV, ``g`` the relative strength of
    inhibition, ``delay`` ms. Knobs (start values): ``tau_m`` ms, ``v_th`` mV, ``input_rate`` Hz,
    ``inhibition``. ``dt`` ms. ``trace_neurons``: excitatory neurons whose membrane is recorded.
    ``store``: where runs are logged (None: the default store; False: nowhere).
    """

    def __init__(self, n_exc: int = 800, n_inh: int = 200, *, n_input: int = 800, k_exc: int = 80,
                 k_inh: int = 20, k_input: int = 80,
                 w_exc: float = 0.5, g: float = 5.0, delay: float = 1.5, tau_m: float = 20.0,
                 v_th: float = -50.0, input_rate: float = 20.0, inhibition: float = 1.0, dt: float = 0.1,
                 trace_neurons: int = 3, seed: int = 0, rt=None, store=None):
        for name, value in (("n_exc", n_exc), ("n_inh", n_inh), ("n_input", n_input), ("k_exc", k_exc),
                            ("k_inh", k_inh), ("k_input", k_input)):
            positive_int(value, name)
        k_exc, k_inh, k_input = min(k_exc, n_exc), min(k_inh, n_inh), min(k_input, n_input)
        for name, value in (("w_exc", w_exc), ("g", g)):
            if number(value, name) < 0:
                raise InputError(name, f"expected a non-negative value, got {value}")
        self.trace_neurons = positive_int(trace_neurons, "trace_neurons")
        if self.trace_neurons > n_exc:
            raise InputError("trace_neurons", f"expected at most n_exc = {n_exc}, got {trace_neurons}")
        self.rt = resolve_rt(rt)
        self.store = store
        self.params = {"n_exc": n_exc, "n_inh": n_inh, "n_input": n_input, "k_exc": k_exc, "k_inh": k_inh,
                       "k_input": k_input,
                       "w_exc": float(w_exc), "g": float(g), "delay": float(delay), "dt": float(dt),
                       "seed": int(seed)}
        self.knobs = {}
        self._check_knobs(dict(tau_m=tau_m, v_th=v_th, input_rate=input_rate, inhibition=inhibition),
                          into=self.knobs)
        rng = np.random.default_rng(seed)
        lif = LIFParams(tau_m=self.knobs["tau_m"], v_rest=-65.0, v_reset=-65.0, v_th=self.knobs["v_th"],
                        t_ref=2.0,
                        dt=dt)
        n = n_exc + n_inh
        net = SNNNetwork()
        self.input = net.add(PoissonGroup(n_input, rates=self.knobs["input_rate"], seed=seed + 1,
                                          name="input"))
        # Excitatory and inhibitory neurons share one layer (ids [0, n_exc) and [n_exc, n)) and
        # one recurrent projection: the same dynamics, and on a CPU three launches per step
        # instead of nine (a layer with one out-going projection delivers inside its update).
        # Membranes start spread between rest and threshold, so the network does not start in lockstep.
        self.layer = net.add(LIFLayer(n, lif, v_init=rng.uniform(-65.0, lif.v_th, n).astype(np.float32),
                                      name="network"))
        net.connect(self.input, self.layer, _indegree(n, [(0, n_input, k_input, w_exc)], n_input, rng),
                    delay=delay, name="input->network")
        w = _indegree(n, [(0, n_exc, k_exc, w_exc), (n_exc, n_inh, k_inh, -g * w_exc)], n, rng)
        self.recurrent = net.connect(self.layer, self.layer, w, delay=delay, name="recurrent")
        self._w_base = np.asarray(w.data,
                                  np.float32)  # CSR order; the inhibition knob scales the negative ones
        self._inhibitory = self._w_base < 0
        self.net = net
        # global ids (as in a SpikeRecord) of the two groups
        start = n_input
        self.groups = {"excitatory": (start, n_exc), "inhibitory": (start + n_exc, n_inh)}
        self.sim = net.simulator(self.rt, record=True, record_v={"network": np.arange(self.trace_neurons)})
        self._set_inhibition(self.knobs["inhibition"])
        self._pending: dict = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.run_id_: int | None = None
        self.chunks_done_ = 0
        self.stop_received_after_: int | None = None
        self.status_ = "new"  # after run(): "finished", "stopped" or "failed"

    # -- knobs ----------------------------------------------------------------------------------
    @staticmethod
    def _check_knobs(changes: dict, into: dict) -> None:
        for name, value in changes.items():
            if name not in KNOBS:
                raise InputError(name, f"not a knob of the live network; knobs: {', '.join(KNOBS)}")
            value = number(value, name)
            lo, hi = KNOB_RANGES[name]
            if not lo <= value <= hi:
                raise InputError(name, f"expected a value in [{lo:g}, {hi:g}], got {value:g}")
            into[name] = value

    def set(self, **knobs) -> None:
        """Change knobs (``tau_m``, ``v_th``, ``input_rate``, ``inhibition``) from any thread;
        checked now, applied before the next chunk. Raises InputError naming a bad knob."""
        checked: dict = {}
        self._check_knobs(knobs, into=checked)
        with self._lock:
            self._pending.update(checked)

    def _apply_pending(self) -> None:
        with self._lock:
            changes, self._pending = self._pending, {}
        lif = {k: v for k, v in changes.items() if k in ("tau_m", "v_th")}
        if lif:
            self.sim.set_params(self.layer, **lif)
        if "input_rate" in changes:
            self.sim.set_rates(self.input, changes["input_rate"])
        if "inhibition" in changes:
            self._set_inhibition(changes["inhibition"])
        self.knobs.update(changes)

    def _set_inhibition(self, factor: float) -> None:
        self.sim.set_weights(self.recurrent, np.where(self._inhibitory, self._w_base * np.float32(factor),
                                                      self._w_base))

    # -- running --------------------------------------------------------------------------------
    def stop(self) -> None:
        """End :meth:`run` after the current chunk (from any thread). The chunk count when the
        request arrived is kept (``stop_received_after_``) and, for a stored run, written in its
        note, so how long a Stop took to arrive and how long to act can be told apart."""
        self.stop_received_after_ = self.chunks_done_
        self._stop.set()

    @property
    def t_ms(self) -> float:
        """Simulated time so far (ms)."""
        return self.sim.time

    def run(self, duration: float = 1000.0, chunk: float = 20.0,
            pace: float | None = 1.0) -> Iterator[LiveChunk]:
        """Simulate ``duration`` more ms in chunks of ``chunk`` ms, yielding each. ``pace``:
        simulated ms per wall-clock ms (1.0: real time; None: as fast as the device goes), so a
        rolling raster scrolls at a speed one can follow. Stopped early by :meth:`stop` (which
        also cuts the pace's wait short) or by closing the generator; either way the store's run
        says ``stopped`` and keeps every chunk logged before; an error leaves it ``failed``."""
        duration, chunk = number(duration, "duration"), number(chunk, "chunk")
        if duration <= 0:
            raise InputError("duration", f"expected a positive duration (ms), got {duration}")
        if chunk <= 0:
            raise InputError("chunk", f"expected a positive chunk (ms), got {chunk}")
        if pace is not None and number(pace, "pace") <= 0:
            raise InputError("pace", f"expected a positive pace or None, got {pace}")
        self._stop.clear()
        store = resolve_store(self.store)
        if store is None:
            self.status_ = "running"
            finished = yield from self._chunks(duration, chunk, pace, None)
            self.status_ = "finished" if finished else "stopped"
            return
        if self.run_id_ is None:
            params = {**self.params, **{f"{k}_start": v for k, v in self.knobs.items()}}
            ctx = store.run(SNN_KIND, params, device=self.rt)
        else:
            ctx = store.run(SNN_KIND, resume=self.run_id_)  # going on after a stop
        run = None
        try:
            with ctx as run:
                self.run_id_, self.status_ = run.id, "running"
                if not (yield from self._chunks(duration, chunk, pace, run)):
                    run.stop()
        finally:
            self.status_ = run.status if run is not None else "failed"
            if run is not None and self._stop.is_set():  # also when a job runner closed the generator
                store.annotate(run.id, note=f"Stop received after {self.stop_received_after_} chunks; "
                                            f"stopped after {self.chunks_done_}")

    def _chunks(self, duration: float, chunk: float, pace: float | None, run) -> Iterator[LiveChunk]:
        """The chunks of one :meth:`run`; returns True when the whole duration ran."""
        dt = self.sim.dt
        steps_left = max(1, int(round(duration / dt)))
        chunk_steps = max(1, int(round(chunk / dt)))
        start = time.perf_counter()
        t_start = self.t_ms
        while steps_left and not self._stop.is_set():
            self._apply_pending()
            steps = min(chunk_steps, steps_left)
            t0 = time.perf_counter()
            rec = self.sim.run(steps)
            wall = time.perf_counter() - t0
            steps_left -= steps
            rates = {name: float(rec.counts[a:a + k].sum() / k / (rec.duration * 1e-3))
                     for name, (a, k) in self.groups.items()}
            out = LiveChunk(self.chunks_done_, rec, rates, dict(self.knobs), wall, dict(self.groups))
            if run is not None:
                run.log(out.index, t_ms=out.t_ms, rate_excitatory=rates["excitatory"],
                        rate_inhibitory=rates["inhibitory"], spikes=int(rec.ids.size), wall_s=wall,
                        **out.knobs)
            self.chunks_done_ += 1
            if pace is not None:  # wait until the wall clock catches up with the simulation
                ahead = (self.t_ms - t_start) / pace * 1e-3 - (time.perf_counter() - start)
                if ahead > 0:
                    self._stop.wait(ahead)
            yield out
        return not steps_left


def load_snn_runs(rt=None, store=None) -> list[tuple[dict, list[dict]]]:
    """Live runs of ``rt``'s device in the store, newest first, each as (run, chunks): the
    store's record and its logged chunks (``t_ms``, ``rate_excitatory``, ``rate_inhibitory``,
    ``spikes``, the knobs)."""
    rt = resolve_rt(rt)
    store = resolve_store(store)
    if store is None:
        return []
    return [(run, store.metrics(run["id"])) for run in store.runs(SNN_KIND, device=rt)]
