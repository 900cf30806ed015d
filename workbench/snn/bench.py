"""``workbench bench --suite snn``: simulation throughput of the LIF network of
:mod:`workbench.snn.brian2_reference` (random synapses, constant drive, most neurons firing at
up to ~26 Hz; 19 Hz on average).

* ``lif-network N x 20``: N LIF neurons with 20 synapses each, 1000 steps of 0.1 ms (``quick``:
  200): 10M neurons on a GPU (quick 1M), 100k elsewhere. Timed on the host clock over the whole
  ``Simulator.run`` (every launch, the read-back of counts), spike times not kept (``record=False``)
  as Brian2's benchmark keeps only a count. Reference in the same run: the NumPy reference engine
  on the same network (over fewer steps when it would take long, per step scaled; the note says
  so). Where Brian2 is importable, or ``WORKBENCH_BRIAN2_PYTHON`` names a Python that has it, a
  second row compares with Brian2's Cython runtime on the same network.
* ``lif-network N x 200``: ten times the synapses at a tenth of the weight: delivery-bound;
  reports synaptic events/s (a tenth of the neurons on a GPU).

``gflops``/``gbs`` count 7 flops and 24 bytes per neuron-step (read v, refractory count, v_inf,
delay slot; write v, slot) and 1 flop, 16 bytes per synaptic event (index, weight, atomic add).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Iterator

import numpy as np

from ..bench import BenchContext, BenchResult, register
from ..roofline import OpProfile
from ..runtime import Runtime, resolve_rt
from ..runtime.base import repeat_timing
from . import brian2_reference
from .network import LIFLayer, SNNNetwork
from .params import LIFParams

FLOPS_PER_NEURON_STEP, BYTES_PER_NEURON_STEP = 7.0, 24.0
FLOPS_PER_EVENT, BYTES_PER_EVENT = 1.0, 16.0


def benchmark_network(n: int, synapses: int = 20, seed: int = 0, weight: float | None = None) -> SNNNetwork:
    """The benchmark network (see :mod:`workbench.snn.brian2_reference`) as an SNNNetwork."""
    from ..sparse.formats import CSRMatrix

    w = brian2_reference.WEIGHT_MV if weight is None else weight
    a = brian2_reference.network_arrays(n, synapses, seed, weight=w)
    net = SNNNetwork()
    layer = net.add(LIFLayer(n, LIFParams(**brian2_reference.PARAMS), bias=a["bias"], v_init=a["v0"], name="lif"))
    net.connect(layer, layer, CSRMatrix(a["w"], a["indices"], a["indptr"], (n, n)), delay=0.1)
    return net


def throughput(net: SNNNetwork, steps: int, rt: Runtime | str | None = None, repeat: int = 3,
               budget_s: float = 10.0) -> dict:
    """Time ``steps`` steps of ``net`` (after a 10-step warm-up; repeats continue the run):
    seconds (median), neuron-steps/s, spikes and synaptic events per run, events/s."""
    rt = resolve_rt(rt)
    sim = net.simulator(rt, record=False)
    sim.run(10)
    spikes = []

    def once() -> float:
        import time

        t0 = time.perf_counter()
        rec = sim.run(steps)
        dt = time.perf_counter() - t0
        spikes.append(int(rec.counts.sum()))
        return dt

    t = repeat_timing(once, 0, repeat, budget_s, "host")
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


def brian2_figure(n: int, synapses: int, steps: int) -> dict | None:
    """Brian2 (Cython) on the same network, in this process or in ``WORKBENCH_BRIAN2_PYTHON``."""
    try:
        import brian2  # noqa: F401

        return brian2_reference.run_brian2(n, synapses, steps)
    except ImportError:
        pass
    python = os.environ.get("WORKBENCH_BRIAN2_PYTHON")
    if not python:
        return None
    out = subprocess.run([python, brian2_reference.__file__, "--n", str(n), "--synapses", str(synapses),
                          "--steps", str(steps)], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        print(f"Brian2 run failed: {out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _sizes(rt: Runtime, quick: bool) -> tuple[int, int]:
    if rt.kind == "opencl-gpu":
        return (1_000_000 if quick else 10_000_000), (200 if quick else 1000)
    return 100_000, (200 if quick else 1000)


def _result(name, res, ref_s, ref_note, ctx: BenchContext, params: dict, note: str) -> BenchResult:
    prof = lif_profile(res)
    gbs = prof.bytes / prof.seconds / 1e9
    return BenchResult(
        "snn", name, params, median_s=res["seconds"], spread=res["timing"].spread,
        gflops=prof.flops / prof.seconds / 1e9, gbs=gbs,
        pct_of_ceiling=100 * gbs / ctx.ceilings.bandwidth_gbs if ctx.ceilings.bandwidth_gbs else None,
        ceiling="bandwidth", reference_s=ref_s, ratio=None if ref_s is None else ref_s / res["seconds"],
        note=(f"{res['neuron_steps_per_s'] / 1e6:,.0f} M neuron-steps/s, {res['events_per_s'] / 1e6:,.1f} M "
              f"events/s, {res['spikes']:,.0f} spikes; {note}; reference: {ref_note}"),
    )


@register("snn", "lif-network")
def bench_lif_network(ctx: BenchContext) -> Iterator[BenchResult]:
    rt = ctx.rt
    n, steps = _sizes(rt, ctx.quick)
    for synapses, weight in ((20, None), (200, brian2_reference.WEIGHT_MV / 10)):
        if synapses == 200 and rt.kind == "opencl-gpu":
            n = n // 10  # 2G synapses would not fit the host reference; 200M at a tenth of the neurons
        net = benchmark_network(n, synapses, weight=weight)
        res = throughput(net, steps, rt, repeat=3, budget_s=5.0 if ctx.quick else 20.0)
        # the NumPy reference engine, on fewer steps when the full run would be long
        ref_steps = steps if n * steps <= 2e7 else max(10, int(2e7 // n))
        ref = throughput(benchmark_network(n, synapses, weight=weight), ref_steps, "numpy", repeat=3,
                         budget_s=5.0 if ctx.quick else 20.0)
        ref_s = ref["seconds"] * steps / ref_steps
        params = {"neurons": n, "synapses_per_neuron": synapses, "steps": steps, "dt_ms": 0.1,
                  "neuron_steps_per_s": res["neuron_steps_per_s"], "events_per_s": res["events_per_s"],
                  "spikes": res["spikes"], "reference_neuron_steps_per_s": ref["neuron_steps_per_s"]}
        scaled = f" over {ref_steps} steps, scaled" if ref_steps != steps else ""
        ref_note = f"NumPy reference engine{scaled} ({ref['neuron_steps_per_s'] / 1e6:,.0f} M neuron-steps/s)"
        eng = "" if rt.kind == "numpy" else (
            "lif_step + propagate_csr" if rt.kind == "opencl-gpu" else "lif_block with fused delivery")
        yield _result(f"lif-network {n:,} x {synapses}", res, ref_s, ref_note, ctx, params, eng or "NumPy engine")
        if synapses == 20:
            b2 = brian2_figure(n, synapses, steps) if rt.kind != "opencl-gpu" else None
            if b2 is not None:
                params = dict(params, brian2=b2)
                yield _result(f"lif-network {n:,} x {synapses} vs Brian2", res, b2["seconds"],
                              f"Brian2 {b2['brian2']} {b2['target']} runtime "
                              f"({b2['neuron_steps_per_s'] / 1e6:,.0f} M neuron-steps/s, {b2['spikes']:,} spikes)",
                              ctx, params, eng)
