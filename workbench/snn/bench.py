"""``workbench bench --suite snn``: simulation throughput of the LIF network of
:mod:`workbench.snn.brian2_reference` (random synapses, constant drive, most neurons firing at
up to ~26 Hz; 19 Hz on average).

* ``lif-network N x 20``: N LIF neurons with 20 synapses each, 1000 steps of 0.1 ms (``quick``:
  200): 10M neurons on a GPU (quick 1M), 100k elsewhere. Timed on the host clock over the whole
  ``Simulator.run`` (every launch, the read-back of counts), spike times not kept (``record=False``)
  as Brian2's benchmark keeps only a count. Every repeat times the *same window* (the steps after
  a 10-step warm-up, on a fresh simulator), so its spike count is one number. Reference in the
  same run: the NumPy reference engine on the same network (over fewer steps when it would take
  long, per step scaled; the note says so). Where Brian2 is importable, or
  ``WORKBENCH_BRIAN2_PYTHON`` names a Python that has it, more rows compare with Brian2 on the
  same network and the same window: its C++ standalone mode with OpenMP on as many threads as
  ours (``openmp_threads = n``) and, per core, its Cython runtime (single-threaded by design).
  Both spike counts are recorded, and the benchmark fails when they differ by more than 1%.
* ``lif-network N x 200``: ten times the synapses at a tenth of the weight: delivery-bound;
  reports synaptic events/s (a tenth of the neurons on a GPU).

``gflops``/``gbs`` count 7 flops and 24 bytes per neuron-step (read v, refractory count, v_inf,
delay slot; write v, slot) and 1 flop, 16 bytes per synaptic event (index, weight, atomic add).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Iterator

import numpy as np

from .. import config
from ..bench import BenchContext, BenchResult
from ..errors import WorkbenchError
from ..roofline import OpProfile
from ..runtime import Runtime, Timing, resolve_rt
from ..runtime.base import repeat_timing
from . import brian2_reference
from .network import LIFLayer, SNNNetwork
from .params import LIFParams

FLOPS_PER_NEURON_STEP, BYTES_PER_NEURON_STEP = 7.0, 24.0
FLOPS_PER_EVENT, BYTES_PER_EVENT = 1.0, 16.0


def benchmark_network(n: int, synapses: int = 20, *, seed: int = 0,
                      weight: float | None = None) -> SNNNetwork:
    """The benchmark network (see :mod:`workbench.snn.brian2_reference`) as an SNNNetwork."""
    from ..sparse.formats import CSRMatrix

    w = brian2_reference.WEIGHT_MV if weight is None else weight
    a = brian2_reference.network_arrays(n, synapses, seed=seed, weight=w)
    net = SNNNetwork()
    layer = net.add(LIFLayer(n, LIFParams(**brian2_reference.PARAMS), bias=a["bias"], v_init=a["v0"],
                             name="lif"))
    net.connect(layer, layer, CSRMatrix(a["w"], a["indices"], a["indptr"], (n, n)), delay=0.1)
    return net


WARMUP_STEPS = 10  # before every timed window, ours and Brian2's


def throughput(net: SNNNetwork, steps: int, *, rt: Runtime | str | None = None, repeat: int = 3,
               budget_s: float = 10.0) -> dict:
    """Time steps ``WARMUP_STEPS .. WARMUP_STEPS + steps`` of ``net``, each repeat on a fresh
    simulator run through the same warm-up, so every repeat does the same work: seconds
    (median), neuron-steps/s, spikes and synaptic events in the window, events/s."""
    rt = resolve_rt(rt)
    spikes = []

    def once() -> float:
        sim = net.simulator(rt, record=False)
        sim.run(WARMUP_STEPS)
        rt.finish()
        t0 = time.perf_counter()
        rec = sim.run(steps)
        dt = time.perf_counter() - t0
        spikes.append(int(rec.counts.sum()))
        return dt

    t = repeat_timing(once, 0, repeat=repeat, budget_s=budget_s, source="host")
    if len(set(spikes)) != 1:
        raise WorkbenchError(f"the same window gave different spike counts over repeats: {spikes}")
    n = sum(p.n for p in net.layers())
    syn = sum(c.n_synapses for c in net.projections)
    per_spike = syn / max(n, 1)
    sp = float(np.median(spikes))
    return {"timing": t, "seconds": t.median, "neuron_steps_per_s": n * steps / t.median,
            "spikes": sp, "events": sp * per_spike, "events_per_s": sp * per_spike / t.median, "n": n,
            "steps": steps}


def lif_profile(result: dict, name: str = "lif network step") -> OpProfile:
    """The run as a roofline point: per neuron-step and per event flops and bytes."""
    ns = result["n"] * result["steps"]
    return OpProfile(name, FLOPS_PER_NEURON_STEP * ns + FLOPS_PER_EVENT * result["events"],
                     BYTES_PER_NEURON_STEP * ns + BYTES_PER_EVENT * result["events"], result["seconds"])


def brian2_figure(n: int, synapses: int, steps: int, *, target: str = "cython", threads: int = 1,
                  repeat: int = 3) -> dict | None:
    """Brian2 on the same network and window (:func:`brian2_reference.run_brian2`) in
    ``WORKBENCH_BRIAN2_PYTHON`` (Brian2 pins its own NumPy), else this Python if it has Brian2;
    None where there is none. ``target``: ``"cython"`` or ``"cpp_standalone"`` (``threads``
    OpenMP threads)."""
    python = config.brian2_python()
    if python is None:
        try:
            import brian2  # noqa: F401
        except ImportError:
            return None
        python = sys.executable
    out = subprocess.run([python, brian2_reference.__file__, "--n", str(n), "--synapses", str(synapses),
                          "--steps", str(steps), "--warmup", str(WARMUP_STEPS), "--target", target,
                          "--threads", str(threads), "--repeat", str(repeat)],
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        print(f"Brian2 run failed: {out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _sizes(rt: Runtime, quick: bool) -> tuple[int, int]:
    if rt.kind == "opencl-gpu":
        return (1_000_000 if quick else 10_000_000), (200 if quick else 1000)
    return 100_000, (200 if quick else 1000)


SPIKE_AGREEMENT = 0.01  # our and Brian2's spike counts over the same window may differ this much


def _result(name, res, ref: Timing | None, ref_note, ctx: BenchContext, params: dict, note: str,
            reference_threads: int | None = None, reference: str = "") -> BenchResult:
    prof = lif_profile(res)
    r = ctx.result("snn", name, res["timing"], ref=ref, reference=reference or ref_note, flops=prof.flops,
                   nbytes=prof.bytes, ceiling="bandwidth", params=params, scope="call",
                   note=(f"{res['neuron_steps_per_s'] / 1e6:,.0f} M neuron-steps/s, "
                         f"{res['events_per_s'] / 1e6:,.1f} M "
                         f"events/s, {res['spikes']:,.0f} spikes; {note}; reference: {ref_note}"))
    if reference_threads is not None:
        r.reference_threads = reference_threads
    return r


def _brian2_rows(ctx: BenchContext, res: dict, n: int, synapses: int, steps: int, params: dict,
                 eng: str) -> Iterator[BenchResult]:
    """Brian2 on as many threads as ours (C++ standalone, OpenMP) and, per core, its Cython
    runtime; fails when a spike count differs from ours by more than ``SPIKE_AGREEMENT``."""
    threads = ctx.threads or 1
    targets = [("cpp_standalone", threads)]
    if threads == 1:
        targets.append(("cython", 1))
    for target, nthreads in targets:
        b2 = brian2_figure(n, synapses, steps, target=target, threads=nthreads, repeat=5)
        if b2 is None:
            continue
        off = abs(b2["spikes"] - res["spikes"]) / max(b2["spikes"], 1)
        if off > SPIKE_AGREEMENT:
            raise WorkbenchError(f"Brian2 ({target}) fired {b2['spikes']:,} spikes in the window, we fired "
                                 f"{res['spikes']:,.0f}: {off:.1%} apart, more than {SPIKE_AGREEMENT:.0%}")
        ref = Timing(tuple(b2["samples"]), "host")
        label = "C++ standalone, OpenMP" if target == "cpp_standalone" else "Cython runtime"
        who = f"Brian2 {b2['brian2']} {label}, {nthreads} thread{'s' if nthreads > 1 else ''}"
        yield _result(f"lif-network {n:,} x {synapses} vs Brian2 {target}", res, ref,
                      f"{who} ({b2['neuron_steps_per_s'] / 1e6:,.0f} M neuron-steps/s, {b2['spikes']:,} "
                      f"spikes)",
                      ctx, dict(params, brian2=b2, spikes_brian2=b2["spikes"], spikes_ours=res["spikes"]),
                      eng, reference_threads=nthreads, reference=who)


def bench_lif_network(ctx: BenchContext) -> Iterator[BenchResult]:
    rt = ctx.rt
    n, steps = _sizes(rt, ctx.quick)
    for synapses, weight in ((20, None), (200, brian2_reference.WEIGHT_MV / 10)):
        if synapses == 200 and rt.kind == "opencl-gpu":
            n = n // 10  # 2G synapses would not fit the host reference; 200M at a tenth of the neurons
        net = benchmark_network(n, synapses, weight=weight)
        repeat = 3 if rt.kind == "opencl-gpu" else 5  # a shared CPU is noisy: more repeats, same window
        res = throughput(net, steps, rt=rt, repeat=repeat, budget_s=5.0 if ctx.quick else 20.0)
        # the NumPy reference engine, on fewer steps when the full run would be long
        ref_steps = steps if n * steps <= 2e7 else max(10, int(2e7 // n))
        # the same network object: building a 200M-synapse network costs more than the runs
        ref = throughput(net, ref_steps, rt="numpy", repeat=3,
                         budget_s=5.0 if ctx.quick else 20.0)
        scale = steps / ref_steps
        ref_t = Timing(tuple(s * scale for s in ref["timing"].samples), "host")
        params = {"neurons": n, "synapses_per_neuron": synapses, "steps": steps, "dt_ms": 0.1,
                  "neuron_steps_per_s": res["neuron_steps_per_s"], "events_per_s": res["events_per_s"],
                  "spikes": res["spikes"], "reference_neuron_steps_per_s": ref["neuron_steps_per_s"]}
        scaled = f" over {ref_steps} steps, scaled" if ref_steps != steps else ""
        ref_note = f"NumPy reference engine{scaled} ({ref['neuron_steps_per_s'] / 1e6:,.0f} M neuron-steps/s)"
        eng = "" if rt.is_numpy else (
            "lif_step + propagate_csr" if rt.kind == "opencl-gpu" else "lif_block with fused delivery")
        yield _result(f"lif-network {n:,} x {synapses}", res, ref_t, ref_note, ctx, params,
                      eng or "NumPy engine",
                      reference=f"NumPy reference engine{scaled}",
                      reference_threads=1)
        if synapses == 20 and rt.kind != "opencl-gpu":
            yield from _brian2_rows(ctx, res, n, synapses, steps, params, eng or "NumPy engine")
