"""The benchmark network, and the same network in Brian2 (run only where Brian2 is installed).

This file imports nothing from workbench, so a Python that has Brian2 (which pins NumPy < 2)
can run it on its own::

    python workbench/snn/brian2_reference.py --n 100000 --synapses 20 --steps 1000

and print one JSON line: Brian2's time for the same window as our benchmark (the steps after a
10-step warm-up), neuron-steps/s, synaptic events/s and the window's spikes. ``--target
cpp_standalone --threads N`` runs Brian2's compiled C++ program with OpenMP on N threads.

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


def network_arrays(n: int, synapses: int = 20, *, seed: int = 0, weight: float = WEIGHT_MV) -> dict:
    """bias (nA, (n,)), v0 (mV, (n,)), and the synapses as CSR over pre: indptr, indices, w
    (``weight`` mV each)."""
    rng = np.random.default_rng(seed)
    bias = rng.uniform(1.4, 1.8, n)
    v0 = rng.uniform(PARAMS["v_reset"], PARAMS["v_th"], n)
    indices = rng.integers(0, n, n * synapses).astype(np.uint32)
    indptr = (np.arange(n + 1, dtype=np.int64) * synapses).astype(np.uint32)
    w = np.full(n * synapses, weight, np.float32)
    return {"bias": bias, "v0": v0, "indptr": indptr, "indices": indices, "w": w}


def run_brian2(n: int, synapses: int = 20, *, steps: int = 1000, seed: int = 0, target: str = "cython",
               threads: int = 1, warmup: int = 10, repeat: int = 3) -> dict:
    """Brian2's time for steps ``warmup .. warmup + steps`` of the network (our benchmark's
    window), ``repeat`` times: wall seconds of each timed run, their median, rates, and the
    spikes in the window.

    ``target="cython"``: Brian2's runtime mode (single-threaded; code generation and compilation
    happen in the untimed warm-up run; each repeat restores the state stored after the warm-up).
    ``target="cpp_standalone"``: the compiled C++ program with OpenMP on ``threads`` threads,
    built once and run ``repeat`` times; each run's time is the one Brian2 measures inside the
    program for its last ``run()`` (the window), without process start-up or file output.
    """
    import tempfile

    import brian2 as b2

    p = PARAMS
    arr = network_arrays(n, synapses, seed=seed)
    standalone = target == "cpp_standalone"
    if standalone:
        directory = tempfile.mkdtemp(prefix="workbench-brian2-")
        b2.set_device("cpp_standalone", directory=directory, build_on_run=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = int(threads)
    else:
        b2.prefs.codegen.target = target
    b2.start_scope()
    b2.defaultclock.dt = p["dt"] * b2.ms
    eqs = """
    dv/dt = (v_rest - v + R * I) / tau : volt (unless refractory)
    I : amp (constant)
    """
    g = b2.NeuronGroup(n, eqs, threshold="v >= v_th", reset="v = v_reset", refractory=p["t_ref"] * b2.ms,
                       method="exact", namespace={
                           "v_rest": p["v_rest"] * b2.mV, "v_th": p["v_th"] * b2.mV,
                           "v_reset": p["v_reset"] * b2.mV, "R": p["r_m"] * b2.Mohm,
                           "tau": p["tau_m"] * b2.ms})
    g.I = arr["bias"] * b2.nA
    g.v = arr["v0"] * b2.mV
    s = b2.Synapses(g, g, on_pre=f"v_post += {WEIGHT_MV}*mV", delay=p["dt"] * b2.ms)
    s.connect(i=np.repeat(np.arange(n), synapses), j=arr["indices"].astype(np.int64))
    warm = b2.SpikeMonitor(g, record=False)  # counts the warm-up's spikes only
    mon = b2.SpikeMonitor(g, record=False)
    net = b2.Network(g, s, warm, mon)
    net.run(warmup * p["dt"] * b2.ms)  # Cython: code generation and compilation, untimed
    warm.active = False
    samples = []
    if standalone:
        net.run(steps * p["dt"] * b2.ms)
        b2.device.build(directory=directory, compile=True, run=False)
        for _ in range(repeat):
            b2.device.run(directory=directory, with_output=False)
            samples.append(float(b2.device._last_run_time))
        spikes = int(mon.num_spikes) - int(warm.num_spikes)
        b2.device.reinit()
        b2.set_device("runtime")
    else:
        net.store("warm")
        spikes = None
        for _ in range(repeat):
            net.restore("warm")
            before = int(mon.num_spikes)
            t0 = time.perf_counter()
            net.run(steps * p["dt"] * b2.ms)
            samples.append(time.perf_counter() - t0)
            window = int(mon.num_spikes) - before
            if spikes is not None and window != spikes:
                raise RuntimeError(f"restored runs fired {spikes} and {window} spikes")
            spikes = window
    wall = float(np.median(samples))
    return {"brian2": b2.__version__, "target": target, "threads": int(threads) if standalone else 1,
            "n": n, "synapses": synapses, "steps": steps, "warmup": warmup, "samples": samples,
            "seconds": wall, "neuron_steps_per_s": n * steps / wall,
            "events_per_s": spikes * synapses / wall, "spikes": spikes}


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--synapses", type=int, default=20)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", default="cython", choices=["cython", "numpy", "cpp_standalone"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    json.dump(run_brian2(args.n, args.synapses, steps=args.steps, seed=args.seed, target=args.target,
                         threads=args.threads,
                         warmup=args.warmup, repeat=args.repeat), sys.stdout)
    print()
