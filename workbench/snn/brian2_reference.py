"""The benchmark network, and the same network in Brian2 (run only where Brian2 is installed).

This file imports nothing from workbench, so a Python that has Brian2 (which pins NumPy < 2)
can run it on its own::

    python workbench/snn/brian2_reference.py --n 100000 --synapses 20 --steps 1000

and print one JSON line: Brian2's wall time for the run (code generation and compilation done
in a first, untimed run), neuron-steps/s, synaptic events/s and spikes.

The network (:func:`network_arrays`): ``n`` LIF neurons (tau_m 20 ms, v_rest = v_reset = -65 mV,
v_th -50 mV, t_ref 2 ms, R 10 MOhm, dt 0.1 ms), each with a constant current drawn uniformly
from [1.4, 1.8] nA (R I from 14 to 18 mV against a 15 mV gap: most neurons fire, up to ~26 Hz)
and a membrane potential drawn uniformly from [v_reset, v_th); each neuron has ``synapses``
out-going synapses to random targets, 0.1 mV each, with a one-step delay.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

PARAMS = dict(tau_m=20.0, v_rest=-65.0, v_reset=-65.0, v_th=-50.0, t_ref=2.0, r_m=10.0, dt=0.1)
WEIGHT_MV = 0.1


def network_arrays(n: int, synapses: int = 20, seed: int = 0, weight: float = WEIGHT_MV) -> dict:
    """bias (nA, (n,)), v0 (mV, (n,)), and the synapses as CSR over pre: indptr, indices, w
    (``weight`` mV each)."""
    rng = np.random.default_rng(seed)
    bias = rng.uniform(1.4, 1.8, n)
    v0 = rng.uniform(PARAMS["v_reset"], PARAMS["v_th"], n)
    indices = rng.integers(0, n, n * synapses).astype(np.uint32)
    indptr = (np.arange(n + 1, dtype=np.int64) * synapses).astype(np.uint32)
    w = np.full(n * synapses, weight, np.float32)
    return {"bias": bias, "v0": v0, "indptr": indptr, "indices": indices, "w": w}


def run_brian2(n: int, synapses: int = 20, steps: int = 1000, seed: int = 0, target: str = "cython") -> dict:
    import brian2 as b2

    b2.prefs.codegen.target = target
    b2.start_scope()
    p = PARAMS
    arr = network_arrays(n, synapses, seed)
    b2.defaultclock.dt = p["dt"] * b2.ms
    eqs = """
    dv/dt = (v_rest - v + R * I) / tau : volt (unless refractory)
    I : amp (constant)
    """
    g = b2.NeuronGroup(n, eqs, threshold="v >= v_th", reset="v = v_reset", refractory=p["t_ref"] * b2.ms,
                       method="exact", namespace={
                           "v_rest": p["v_rest"] * b2.mV, "v_th": p["v_th"] * b2.mV,
                           "v_reset": p["v_reset"] * b2.mV, "R": p["r_m"] * b2.Mohm, "tau": p["tau_m"] * b2.ms})
    g.I = arr["bias"] * b2.nA
    g.v = arr["v0"] * b2.mV
    s = b2.Synapses(g, g, on_pre=f"v_post += {WEIGHT_MV}*mV", delay=p["dt"] * b2.ms)
    s.connect(i=np.repeat(np.arange(n), synapses), j=arr["indices"].astype(np.int64))
    mon = b2.SpikeMonitor(g, record=False)
    net = b2.Network(g, s, mon)
    net.run(10 * p["dt"] * b2.ms)  # code generation and compilation, untimed
    before = int(mon.num_spikes)
    t0 = time.perf_counter()
    net.run(steps * p["dt"] * b2.ms)
    wall = time.perf_counter() - t0
    spikes = int(mon.num_spikes) - before
    return {"brian2": b2.__version__, "target": target, "n": n, "synapses": synapses, "steps": steps,
            "seconds": wall, "neuron_steps_per_s": n * steps / wall,
            "events_per_s": spikes * synapses / wall, "spikes": spikes}


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--synapses", type=int, default=20)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", default="cython")
    args = ap.parse_args()
    json.dump(run_brian2(args.n, args.synapses, args.steps, args.seed, args.target), sys.stdout)
    print()
