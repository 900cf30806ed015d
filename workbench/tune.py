"""``workbench tune gemm``: search ``gemm.cl``'s tunables on the current device.

Candidates are the tile shapes that the kernel's own constraints allow (the same checks as its
``#error`` guard, plus the device's local memory and work-group limits); each is built, checked
against NumPy on a small product, and timed (device events, median) on a square product. The best
is written to ``$WORKBENCH_HOME/tuning/gemm.json`` for this device and driver, which
``GemmConfig.for_device`` then prefers over the shipped table.
"""

from __future__ import annotations

import datetime as _dt
import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import InputError, KernelBuildError
from .ops import GemmConfig, GemmEngine, reset_gemm_engine
from .runtime import Runtime, record_tuning, resolve_rt


@dataclass
class TuneResult:
    config: GemmConfig
    gflops: float | None  # None: the candidate failed to build or gave a wrong answer
    error: str = ""


def gemm_candidates(rt: Runtime) -> list[GemmConfig]:
    """Every configuration worth timing on ``rt``."""
    info = rt.info
    if rt.kind == "opencl-cpu":
        out = []
        for mr, nv, lm in itertools.product((4, 6, 8, 12), (1, 2, 3), (1, 4, 16)):
            if mr * nv + nv + 1 <= 32:  # accumulators + B vectors + the broadcast A value fit
                out.append(GemmConfig("packed", {"MR": mr, "NV": nv}, lm))
        return out
    out = []
    for bm, bn, bk, tm, tn in itertools.product((64, 128), (64, 128), (8, 16, 32), (4, 8), (4, 8)):
        threads = (bm // tm) * (bn // tn)
        if not 64 <= threads <= min(256, info.max_work_group_size):
            continue
        if (bm * bk // 4) % threads or (bk * bn // 4) % threads:
            continue
        if 2 * bk * (bm + bn) * 4 > info.local_mem_bytes:
            continue
        out.append(GemmConfig("tiled", {"BM": bm, "BN": bn, "BK": bk, "TM": tm, "TN": tn}))
    return out


def _evaluate(rt: Runtime, cfg: GemmConfig, size: int, repeat: int) -> TuneResult:
    try:
        engine = GemmEngine(rt, cfg)
    except KernelBuildError as exc:
        return TuneResult(cfg, None, f"build failed: {exc.log.splitlines()[-1] if exc.log else exc}")
    if engine.variant != cfg.variant:
        return TuneResult(cfg, None, "does not fit this device")
    rng = np.random.default_rng(1)
    # Correctness first, on a shape that exercises the padded edges.
    m, n, k = 2 * engine.tile[0] + 3, 2 * engine.tile[1] + 5, 67
    a = rng.random((m, k), dtype=np.float32) - 0.5
    b = rng.random((k, n), dtype=np.float32) - 0.5
    da, db, dc = rt.to_device(a), rt.to_device(b), rt.empty((m, n))
    engine.enqueue(da.data, db.data, dc.data, m, n, k, dispatch=False)
    ref = a.astype(np.float64) @ b
    err = np.linalg.norm(dc.get() - ref) / np.linalg.norm(ref)
    if not err < 1e-5:
        return TuneResult(cfg, None, f"wrong answer (relative error {err:.1e})")
    a = rng.random((size, size), dtype=np.float32) - 0.5
    da, db, dc = rt.to_device(a), rt.to_device(a), rt.empty((size, size))
    t = rt.timeit(lambda: engine.enqueue(da.data, db.data, dc.data, size, size, size, dispatch=False),
                  warmup=1, repeat=repeat, budget_s=2.0)
    return TuneResult(cfg, 2.0 * size**3 / t.median / 1e9)


def run_candidates(candidates: list, evaluate: Callable, rate: str,
                   *, on_result: Callable | None = None) -> list:
    """Evaluate every candidate in turn (``evaluate(cfg)`` returns a result with a ``rate``
    attribute, None on failure), report each through ``on_result(res, i, n)``; best first."""
    results = []
    for i, cfg in enumerate(candidates, 1):
        res = evaluate(cfg)
        results.append(res)
        if on_result is not None:
            on_result(res, i, len(candidates))
    results.sort(key=lambda r: -(getattr(r, rate) or 0.0))
    return results


def estimate_seconds(rt: Runtime, quick: bool = False) -> float:
    """About how long :func:`tune_gemm` takes on ``rt``: a build, a check and a timed product
    per candidate (measured here: about 2 s a candidate on a GPU at 4096^3, 1.5 s on a
    two-core PoCL at 1024^3)."""
    if rt.is_numpy:
        return 0.0
    per = (1.0 if quick else 2.0) if rt.kind == "opencl-gpu" else (0.8 if quick else 1.5)
    return per * len(gemm_candidates(rt))


def tune_gemm(
    rt: Runtime | str | None = None,
    size: int | None = None,
    *, quick: bool = False,
    on_result: Callable[[TuneResult, int, int], None] | None = None,
    record: bool = True,
    candidates: list[GemmConfig] | None = None,
) -> list[TuneResult]:
    """Time every candidate on a ``size``-cubed product; record the best for this device.

    Returns the results, best first. ``size`` defaults to 4096 on GPUs and 1024 on CPUs
    (``quick``: 1024 and 512). ``candidates`` replaces the searched list (default:
    :func:`gemm_candidates`).
    """
    rt = resolve_rt(rt)
    if rt.is_numpy:
        raise InputError("device", "the NumPy backend has no kernels to tune; pick an OpenCL device")
    if size is None:
        size = (1024 if quick else 4096) if rt.kind == "opencl-gpu" else (512 if quick else 1024)
    cands = gemm_candidates(rt) if candidates is None else list(candidates)
    results = run_candidates(cands, lambda cfg: _evaluate(rt, cfg, size, repeat=3 if quick else 7),
                             "gflops", on_result=on_result)
    best = results[0] if results and results[0].gflops else None
    if record and best is not None:
        params = {"variant": best.config.variant, **best.config.params}
        if best.config.variant == "packed":
            params["LM"] = best.config.lm
        record_tuning("gemm", rt.info, params, gflops=round(best.gflops, 1), size=size,
                      date=_dt.date.today().isoformat())
        reset_gemm_engine(rt)
    return results


