"""``workbench tune quant``: search ``quant.cl``'s int8 GEMM tunables on the current device.

GPU candidates vary the tiled kernel's BM, BN, BKW, TM, TN within the device's work-group and
local-memory limits; CPU candidates vary the packed kernel's MR, NV, LM. Each is built, checked
for an exact answer on a padded-edge shape, and timed (device events) on a square product; the
best is recorded in ``$WORKBENCH_HOME/tuning/quant.json`` for this device.

A second stage then searches ``int4_gemv``'s tunables on top of the best GEMM: on a GPU the
work-group size WG, the rows per work-group ROWS and the nibble unpack (``UNPACK_DENORMAL``, where
the device has subnormal floats); on a CPU the rows per work-item. Each is checked against NumPy
and timed in GB/s of packed weights; the best is recorded with the GEMM's tunables.
"""

from __future__ import annotations

import datetime as _dt
import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import InputError, KernelBuildError
from ..runtime import Runtime, record_tuning, resolve_rt
from ..tune import run_candidates
from .config import GEMV_TUNABLES, QuantConfig, pmadd_params, pmadd_works, quant_config, set_quant_config
from .int4 import Int4Problem, Int4Weights, int4_gemv
from .int8 import Int8Problem, int8_matmul
from .params import pack_int4


@dataclass
class QuantTuneResult:
    config: QuantConfig
    gops: float | None
    error: str = ""
    gbs: float | None = None  # the int4_gemv stage's rate (gops is None there)

    @property
    def rate(self) -> float | None:
        return self.gops if self.gops is not None else self.gbs


def quant_candidates(rt: Runtime) -> list[QuantConfig]:
    base = quant_config(rt)
    keep = {k: v for k, v in base.params.items() if k in GEMV_TUNABLES}
    if rt.kind == "opencl-cpu":
        out = [QuantConfig("packed", {"MR": mr, "NV": nv, "LM": lm, **keep}, base.dot)
               for mr, nv, lm in itertools.product((4, 6, 8), (1, 2, 3), (1, 4))
               if mr * nv + nv + 1 <= 32]
        for mr, nb, lm in itertools.product((4, 6, 8), (2, 3, 4), (1, 4)):
            pm = pmadd_params(rt, {"MR": mr, "NB": nb, "LM": lm, **keep})
            if pm is not None and mr * nb + nb + 1 <= 32 and pmadd_works(rt, pm):
                out.append(QuantConfig("pmadd", pm, base.dot))
        return out
    info = rt.info
    out = []
    for bm, bn, bkw, tm, tn in itertools.product((64, 128), (64, 128), (4, 8, 16), (4, 8), (4, 8)):
        threads = (bm // tm) * (bn // tn)
        if not 64 <= threads <= min(256, info.max_work_group_size):
            continue
        if (bm * bkw // 4) % threads or (bn * bkw // 4) % threads or bkw < 4:
            continue
        if 2 * bkw * (bm + bn + 8) * 4 > info.local_mem_bytes:
            continue
        out.append(QuantConfig("tiled", {"BM": bm, "BN": bn, "BKW": bkw, "TM": tm, "TN": tn, **keep},
                               base.dot))
    return out


def gemv_candidates(rt: Runtime, base: QuantConfig) -> list[QuantConfig]:
    """``int4_gemv`` tunables over ``base`` (the GEMM's): see the module docstring."""
    keep = {k: v for k, v in base.params.items() if k not in GEMV_TUNABLES}
    if rt.kind == "opencl-cpu":
        return [QuantConfig(base.variant, {**keep, "GEMV_ROWS": 1, "ROWS": rows}, base.dot)
                for rows in (1, 2, 4, 8)]
    unpacks = (0, 1) if rt.info.fp_denormals else (0,)
    out = []
    for wg, rows, den in itertools.product((64, 128, 256), (4, 8, 16), unpacks):
        if wg <= rt.info.max_work_group_size and rows * wg * 4 <= rt.info.local_mem_bytes // 2:
            extra = {"UNPACK_DENORMAL": 1} if den else {}
            out.append(QuantConfig(base.variant, {**keep, "WG": wg, "ROWS": rows, **extra}, base.dot))
    return out


def _trial(rt: Runtime, cfg: QuantConfig, body: Callable[[], QuantTuneResult]) -> QuantTuneResult:
    """Run ``body`` with ``cfg`` in force; a kernel that does not build is a failed result."""
    set_quant_config(rt, cfg)
    try:
        return body()
    except KernelBuildError as exc:
        return QuantTuneResult(cfg, None, f"build failed: {exc.log.splitlines()[-1] if exc.log else exc}")
    finally:
        set_quant_config(rt, None)


def _evaluate_gemv(rt: Runtime, cfg: QuantConfig, size: int, repeat: int) -> QuantTuneResult:
    def body():
        rng = np.random.default_rng(2)
        n, k = 37, 333  # rows past any ROWS, a partial last word
        q = rng.integers(-8, 8, (n, k)).astype(np.int8)
        x = rng.standard_normal((2, k)).astype(np.float32)
        ref = x.astype(np.float64) @ q.T.astype(np.float64)
        got = int4_gemv(x, pack_int4(q), scales=np.ones(n, np.float32), rt=rt, k=k)
        if np.linalg.norm(got - ref) > 1e-5 * np.linalg.norm(ref):
            return QuantTuneResult(cfg, None, "wrong answer")
        w = Int4Weights(pack_int4(rng.integers(-8, 8, (size, size)).astype(np.int8)),
                        np.ones(size, np.float32))
        prob = Int4Problem(rng.standard_normal((1, size)).astype(np.float32), w, rt)
        t = rt.timeit(prob.enqueue, warmup=2, repeat=repeat, budget_s=2.0)
        return QuantTuneResult(cfg, None, gbs=w.packed.nbytes / t.median / 1e9)

    return _trial(rt, cfg, body)


def _evaluate(rt: Runtime, cfg: QuantConfig, size: int, repeat: int) -> QuantTuneResult:
    def body():
        rng = np.random.default_rng(1)
        m, n, k = 131, 77, 300
        a = rng.integers(-128, 128, (m, k)).astype(np.int8)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        if not np.array_equal(int8_matmul(a, b, rt=rt), a.astype(np.int64) @ b.astype(np.int64)):
            return QuantTuneResult(cfg, None, "wrong answer")
        a = rng.integers(-128, 128, (size, size)).astype(np.int8)
        t = rt.timeit(Int8Problem(a, a, rt).enqueue, warmup=1, repeat=repeat, budget_s=2.0)
        return QuantTuneResult(cfg, 2.0 * size ** 3 / t.median / 1e9)

    return _trial(rt, cfg, body)


def tune_quant(rt: Runtime | str | None = None, size: int | None = None, *, quick: bool = False,
               on_result: Callable[[QuantTuneResult, int, int], None] | None = None,
               record: bool = True, candidates: list[QuantConfig] | None = None) -> list[QuantTuneResult]:
    """Time every candidate on a ``size``-cubed int8 product, then the ``int4_gemv`` candidates
    on top of the best; record both bests. Returns the GEMM results best first, then the GEMV's."""
    rt = resolve_rt(rt)
    if rt.is_numpy:
        raise InputError("device", "the NumPy backend has no kernels to tune; pick an OpenCL device")
    if size is None:
        size = (1024 if quick else 4096) if rt.kind == "opencl-gpu" else (512 if quick else 1024)
    cands = quant_candidates(rt) if candidates is None else list(candidates)
    results = run_candidates(cands, lambda cfg: _evaluate(rt, cfg, size, 3 if quick else 7), "gops",
                             on_result=on_result)
    best = results[0] if results and results[0].gops else None
    if best is None:
        return results
    gemv_size = (4096 if quick else 16384) if rt.kind == "opencl-gpu" else (1024 if quick else 4096)
    gemv = run_candidates(gemv_candidates(rt, best.config),
                          lambda cfg: _evaluate_gemv(rt, cfg, gemv_size, 5 if quick else 20), "gbs",
                          on_result=on_result)
    params = dict(best.config.params)
    extra = {}
    if gemv and gemv[0].gbs:
        params = {**{k: v for k, v in params.items() if k not in GEMV_TUNABLES},
                  **{k: v for k, v in gemv[0].config.params.items() if k in GEMV_TUNABLES}}
        extra = {"gemv_gbs": round(gemv[0].gbs, 1), "gemv_size": gemv_size}
    if record:
        record_tuning("quant", rt.info, {"variant": best.config.variant, **params},
                      gops=round(best.gops, 1), size=size, dot=best.config.dot,
                      date=_dt.date.today().isoformat(), **extra)
        set_quant_config(rt, None)
    return results + gemv
