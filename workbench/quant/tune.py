"""``workbench tune quant``: search ``quant.cl``'s int8 GEMM tunables on the current device.

GPU candidates vary the tiled kernel's BM, BN, BKW, TM, TN within the device's work-group and
local-memory limits; CPU candidates vary the packed kernel's MR, NV, LM. Each is built, checked
for an exact answer on a padded-edge shape, and timed (device events) on a square product; the
best is recorded in ``$WORKBENCH_HOME/tuning/quant.json`` for this device.
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
from .kernels import (Int8Problem, QuantConfig, _pmadd_params, int8_matmul, pmadd_works, quant_config,
                      set_quant_config)


@dataclass
class QuantTuneResult:
    config: QuantConfig
    gops: float | None
    error: str = ""


def quant_candidates(rt: Runtime) -> list[QuantConfig]:
    base = quant_config(rt)
    keep = {k: v for k, v in base.params.items() if k in ("WG", "ROWS")}
    if rt.kind == "opencl-cpu":
        keep.update({k: v for k, v in base.params.items() if k == "GEMV_ROWS"})
        out = [QuantConfig("packed", {"MR": mr, "NV": nv, "LM": lm, **keep}, base.dot)
               for mr, nv, lm in itertools.product((4, 6, 8), (1, 2, 3), (1, 4))
               if mr * nv + nv + 1 <= 32]
        for mr, nb, lm in itertools.product((4, 6, 8), (2, 3, 4), (1, 4)):
            pm = _pmadd_params(rt, {"MR": mr, "NB": nb, "LM": lm, **keep})
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
        out.append(QuantConfig("tiled", {"BM": bm, "BN": bn, "BKW": bkw, "TM": tm, "TN": tn, **keep}, base.dot))
    return out


def _evaluate(rt: Runtime, cfg: QuantConfig, size: int, repeat: int) -> QuantTuneResult:
    set_quant_config(rt, cfg)
    rng = np.random.default_rng(1)
    try:
        m, n, k = 131, 77, 300
        a = rng.integers(-128, 128, (m, k)).astype(np.int8)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        if not np.array_equal(int8_matmul(a, b, rt), a.astype(np.int64) @ b.astype(np.int64)):
            return QuantTuneResult(cfg, None, "wrong answer")
        a = rng.integers(-128, 128, (size, size)).astype(np.int8)
        prob = Int8Problem(a, a, rt)
        t = rt.timeit(prob.enqueue, warmup=1, repeat=repeat, budget_s=2.0)
        return QuantTuneResult(cfg, 2.0 * size ** 3 / t.median / 1e9)
    except KernelBuildError as exc:
        return QuantTuneResult(cfg, None, f"build failed: {exc.log.splitlines()[-1] if exc.log else exc}")
    finally:
        set_quant_config(rt, None)


def tune_quant(rt: Runtime | str | None = None, size: int | None = None, quick: bool = False,
               on_result: Callable[[QuantTuneResult, int, int], None] | None = None,
               record: bool = True, candidates: list[QuantConfig] | None = None) -> list[QuantTuneResult]:
    """Time every candidate on a ``size``-cubed int8 product; record the best. Best first."""
    rt = resolve_rt(rt)
    if rt.kind == "numpy":
        raise InputError("device", "the NumPy backend has no kernels to tune; pick an OpenCL device")
    if size is None:
        size = (1024 if quick else 4096) if rt.kind == "opencl-gpu" else (512 if quick else 1024)
    cands = quant_candidates(rt) if candidates is None else list(candidates)
    results = run_candidates(cands, lambda cfg: _evaluate(rt, cfg, size, 3 if quick else 7), "gops",
                             on_result)
    best = results[0] if results and results[0].gops else None
    if record and best is not None:
        record_tuning("quant", rt.info, {"variant": best.config.variant, **best.config.params},
                      gops=round(best.gops, 1), size=size, dot=best.config.dot,
                      date=_dt.date.today().isoformat())
        set_quant_config(rt, None)
    return results
