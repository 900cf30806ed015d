"""Where an int4_gemv call's time goes on this GPU (not part of the package: a one-off probe).
Prints one JSON line per measurement (medians over 200 calls, microseconds)."""
import json, sys, time
import numpy as np
import pyopencl as cl
from workbench.runtime import get_runtime
from workbench.quant import pack_int4
from workbench.quant.int4 import Int4Weights, int4_gemv, _enqueue, _prepares_on_device
from workbench.quant.config import quant_config, quant_program

rt = get_runtime("gpu")
q = rt.queue
def med(fn, n=200):
    for _ in range(10): fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    ts.sort(); return round(ts[len(ts)//2] * 1e6, 1), round(ts[len(ts)//10] * 1e6, 1), round(ts[9*len(ts)//10] * 1e6, 1)
out = {}
for n in (4096, 16384):
    rng = np.random.default_rng(0)
    w = Int4Weights(pack_int4(rng.integers(-8, 8, (n, n)).astype(np.int8)), np.ones(n, np.float32), k=n)
    x = rng.standard_normal(n).astype(np.float32)
    x2 = x[None, :]
    y = np.empty((1, n), np.float32)
    dev_x = cl.Buffer(rt.ctx, cl.mem_flags.READ_WRITE, 4 * n)
    dev_y = cl.Buffer(rt.ctx, cl.mem_flags.READ_WRITE, 4 * n)
    r = {}
    r["finish"] = med(lambda: q.finish())
    r["upload_blocking"] = med(lambda: cl.enqueue_copy(q, dev_x, x, is_blocking=True))
    r["download_blocking"] = med(lambda: cl.enqueue_copy(q, y, dev_y, is_blocking=True))
    pin_x = cl.Buffer(rt.ctx, cl.mem_flags.READ_ONLY | cl.mem_flags.ALLOC_HOST_PTR, 4 * n)
    pin_y = cl.Buffer(rt.ctx, cl.mem_flags.WRITE_ONLY | cl.mem_flags.ALLOC_HOST_PTR, 4 * n)
    hx, _ = cl.enqueue_map_buffer(q, pin_x, cl.map_flags.WRITE, 0, (n,), np.float32)
    hy, _ = cl.enqueue_map_buffer(q, pin_y, cl.map_flags.READ, 0, (n,), np.float32)
    def pinned_round():  # pinned (mapped) host arrays as the copies' host pointers
        hx[:] = x
        cl.enqueue_copy(q, dev_x, hx, is_blocking=False)
        cl.enqueue_copy(q, hy, dev_y, is_blocking=True)
        return hy.copy()
    r["pinned_up_down"] = med(pinned_round)
    def plain_round():
        cl.enqueue_copy(q, dev_x, x, is_blocking=False)
        cl.enqueue_copy(q, y, dev_y, is_blocking=True)
    r["plain_up_down"] = med(plain_round)
    r["call"] = med(lambda: int4_gemv(x, w, rt=rt))
    cfg = quant_config(rt); prog = quant_program(rt); w.device(rt)
    xp = rt.scratch("p.xp", 4 * w.ldx); info = rt.scratch("p.info", 8); outb = rt.scratch("p.y", 4 * n)
    xr = rt.scratch("p.x", 4 * n)
    def no_gate():
        up = cl.enqueue_copy(q, xr, x2, is_blocking=False)
        ev = _enqueue(rt, cfg, w, 1, xr, xp, info, outb, None, wait_for=[up])
        cl.enqueue_copy(q, y, outb, wait_for=ev[-1:], is_blocking=True)
    r["no_gate"] = med(no_gate)
    def no_gate_no_wait():
        cl.enqueue_copy(q, xr, x2, is_blocking=False)
        _enqueue(rt, cfg, w, 1, xr, xp, info, outb, None)
        cl.enqueue_copy(q, y, outb, is_blocking=True)
    r["no_gate_in_order"] = med(no_gate_no_wait)
    def pinned_call():
        hx[:] = x
        cl.enqueue_copy(q, xr, hx, is_blocking=False)
        _enqueue(rt, cfg, w, 1, xr, xp, info, outb, None)
        cl.enqueue_copy(q, hy, outb, is_blocking=True)
        return hy.copy()
    r["pinned_in_order"] = med(pinned_call)
    def kernels_only():
        _enqueue(rt, cfg, w, 1, xr, xp, info, outb, None)[-1].wait()
    r["kernels_wait"] = med(kernels_only)
    def gemv_only():
        _enqueue(rt, cfg, w, 1, None, xp, info, outb, None)[-1].wait()
    r["gemv_only_wait"] = med(gemv_only)
    def launch_py():
        _enqueue(rt, cfg, w, 1, xr, xp, info, outb, None)
    r["enqueue_only_python"] = med(launch_py)
    q.finish()
    r["pinned_matches"] = bool(np.allclose(pinned_call(), int4_gemv(x, w, rt=rt), rtol=1e-4, atol=1e-2))
    print(json.dumps({"n": n, **r}), flush=True)
