"""Which ``kernels/quant.cl`` variant runs on a device, with which tunables and dot path.

:func:`quant_config` reads ``kernels/quant.tuning.json`` (through the one tuning reader,
:func:`workbench.runtime.tuned`), checks what the device can do, and keeps the result on the
runtime (:meth:`Runtime.memo`):

* ``variant`` ``"tiled"`` (GPUs), ``"pmadd"`` (PoCL on an x86 host with AVX2: ``vpmaddwd``
  through inline assembly, probed in a child process) or ``"packed"`` (any CPU, exact FP32 FMA
  blocks), with the GEMM's macros;
* int4_gemv's macros (``WG``, ``ROWS``, ``GEMV_ROWS``, ``UNPACK_DENORMAL``, the last only where
  the device has subnormal floats);
* the int8 dot path: the first of :func:`workbench.runtime.capabilities.dot4_paths` (dp4a,
  ``cl_khr_integer_dot_product`` or plain) with which ``quant.cl`` builds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field

from .. import config
from ..errors import KernelBuildError
from ..runtime import Runtime, tuned
from ..runtime.capabilities import dot4_defines, dot4_paths

BUILD_OPTIONS = ("-cl-fp32-correctly-rounded-divide-sqrt",)
GEMV_TUNABLES = ("WG", "ROWS", "GEMV_ROWS", "UNPACK_DENORMAL")  # int4_gemv's; the rest are the GEMM's
_MEMO_KEY = "quant.config"


@dataclass
class QuantConfig:
    """The int8 GEMM variant, its macros (and int4_gemv's), and the dot-product path."""

    variant: str
    params: dict = field(default_factory=dict)
    dot: str = "plain"
    source: str = ""

    def describe(self) -> str:
        items = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.variant}({items}), dot={self.dot}"


def build(rt: Runtime, dot: str, params: dict):
    """``quant.cl`` built with ``params`` and the dot path ``dot``."""
    return rt.program("quant", options=BUILD_OPTIONS, **{**params, **dot4_defines(dot)})


def pmadd_params(rt: Runtime, params: dict) -> dict | None:
    """Macros of the inline-assembly x86 kernel, or None where it cannot run (not a PoCL CPU
    device on an x86 host with AVX2)."""
    platform_name = rt.info.platform.lower()
    pocl = "pocl" in platform_name or "portable computing language" in platform_name
    if rt.kind != "opencl-cpu" or not pocl or "avx2" not in rt.info.host_isa:
        return None
    return {**params, "USE_X86_PMADDWD": 1}


_PROBE = r"""
import json, sys
import numpy as np
from workbench.quant.config import QuantConfig, set_quant_config
from workbench.quant.int8 import int8_matmul
from workbench.runtime import get_runtime
rt = get_runtime(sys.argv[1])
set_quant_config(rt, QuantConfig("pmadd", json.loads(sys.argv[2]), "plain"))
rng = np.random.default_rng(0)
a = rng.integers(-128, 128, (9, 70)).astype(np.int8)
b = rng.integers(-128, 128, (70, 20)).astype(np.int8)
exact = np.array_equal(int8_matmul(a, b, rt=rt), a.astype(np.int64) @ b.astype(np.int64))
print("exact" if exact else "wrong")
"""


def pmadd_works(rt: Runtime, params: dict) -> bool:
    """Whether ``i8gemm_pmadd`` with the macros ``params`` runs correctly on ``rt``, probed once
    per device, driver and macros in a child process and remembered in
    ``$WORKBENCH_HOME/tuning/quant-probe.json``: inline assembly is outside what OpenCL promises,
    and one PoCL build (5.0 with LLVM assertions) aborts the whole process when it compiles the
    kernel at launch, which no ``try`` could catch."""
    path = config.home() / "tuning" / "quant-probe.json"
    key = f"{rt.info.key}|pmadd|{json.dumps(params, sort_keys=True)}"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        try:
            out = subprocess.run([sys.executable, "-c", _PROBE, rt.info.id, json.dumps(params)],
                                 capture_output=True, text=True, timeout=180)
            known[key] = out.returncode == 0 and out.stdout.strip().endswith("exact")
        except (OSError, subprocess.SubprocessError):
            known[key] = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
            tmp.replace(path)
        except OSError:
            pass  # a read-only home: probe again next time
    return bool(known[key])


def _make_config(rt: Runtime) -> QuantConfig:
    variant, params, source = tuned("quant", rt.info, "packed" if rt.kind == "opencl-cpu" else "tiled")
    if variant == "pmadd":
        pm = pmadd_params(rt, params)
        if pm is not None and not pmadd_works(rt, pm):
            pm = None
        if pm is not None:
            try:
                build(rt, "plain", pm)
                params = pm
            except KernelBuildError:
                pm = None
        if pm is None:
            variant = "packed"  # the portable CPU kernel
    if params.get("UNPACK_DENORMAL") and not rt.info.fp_denormals:
        params.pop("UNPACK_DENORMAL")  # int4_gemv's subnormal unpack needs CL_FP_DENORM
    forced = params.pop("DOT", None)  # a tuning entry may pin the plain path (0)
    for dot in (dot4_paths(rt) if forced != 0 else ("plain",)):
        try:
            build(rt, dot, params)
        except KernelBuildError:
            if dot == "plain":
                raise
            continue  # the probe kernel built, quant.cl does not: try the next path
        return QuantConfig(variant, params, dot, source)
    raise AssertionError("unreachable: the plain path either builds or raises")


def quant_config(rt: Runtime) -> QuantConfig:
    """The runtime's configuration (built once per runtime; :func:`set_quant_config` overrides)."""
    return rt.memo(_MEMO_KEY, lambda: _make_config(rt))


def set_quant_config(rt: Runtime, cfg: QuantConfig | None) -> None:
    """Override (or with None, forget) the configuration, e.g. while tuning."""
    rt.forget(_MEMO_KEY)
    if cfg is not None:
        rt.memo(_MEMO_KEY, lambda: cfg)


def quant_program(rt: Runtime):
    """``quant.cl`` built for the runtime's configuration (kept with it: every call of the
    integer ops asks for it, and a GEMV's host time is counted in microseconds)."""
    cfg = quant_config(rt)
    key = ("quant.program", cfg.dot, tuple(sorted(cfg.params.items())))
    return rt.memo(key, lambda: build(rt, cfg.dot, cfg.params))
