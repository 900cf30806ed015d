"""Registered benchmarks: ``workbench bench [--suite NAME] [--device D] [--json PATH]``.

Each result reports the median time (device events for our kernels, with inputs already on the
device), GFLOP/s and GB/s, the percentage of the device's *measured* ceiling, and the ratio to a
reference measured in the same run (see :mod:`workbench.references`): ``ratio`` = reference time
/ our time, so above 1 means faster than the reference.

Capability packages add suites with :func:`register` in a module listed in ``SUITE_MODULES``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib
import json
import platform
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from . import config, references
from .errors import InputError
from .roofline import Ceilings, UNITS, get_ceilings, iter_ceilings, save_ceilings
from .runtime import Runtime, resolve_rt

# Modules that register suites of later capabilities; imported when present.
SUITE_MODULES: tuple[str, ...] = ("workbench.quant.bench", "workbench.sparse.bench", "workbench.snn.bench")


@dataclass
class BenchResult:
    """One benchmark measurement (times in seconds)."""

    suite: str
    name: str
    params: dict = field(default_factory=dict)
    median_s: float | None = None
    spread: float | None = None
    gflops: float | None = None
    gbs: float | None = None
    pct_of_ceiling: float | None = None
    ceiling: str | None = None
    reference_s: float | None = None
    ratio: float | None = None
    rel_error: float | None = None
    note: str = ""


@dataclass
class BenchContext:
    rt: Runtime
    ceilings: Ceilings
    reference: str  # a references backend name
    quick: bool


BenchFn = Callable[[BenchContext], Iterator[BenchResult]]
_SUITES: dict[str, list[tuple[str, BenchFn]]] = {}


def register(suite: str, name: str) -> Callable[[BenchFn], BenchFn]:
    """Decorator: add a benchmark generator to ``suite``."""

    def deco(fn: BenchFn) -> BenchFn:
        _SUITES.setdefault(suite, []).append((name, fn))
        return fn

    return deco


def suites() -> list[str]:
    for mod in SUITE_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError:
            pass
    return ["roofline", *_SUITES]


@dataclass
class BenchReport:
    device: str
    device_info: dict
    kind: str
    date: str
    host: str
    reference: str
    quick: bool
    ceilings: dict
    results: list[BenchResult]

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["results"] = [dataclasses.asdict(r) for r in self.results]
        return d

    def write_json(self, path: str) -> None:
        with open(path, "w") as fh:
            json.dump(self.as_dict(), fh, indent=2)

    def table(self) -> str:
        return format_table(self.results)


def _fmt(v, spec: str) -> str:
    return "" if v is None else format(v, spec)


_COLUMNS = (("benchmark", 46), ("median", 11), ("GFLOP/s", 10), ("GB/s", 9),
            ("% ceiling", 17), ("x ref", 6), ("rel err", 8))


def format_row(r: BenchResult) -> str:
    """One fixed-width line (so results can be printed as they arrive)."""
    med = "" if r.median_s is None else (
        f"{r.median_s * 1e3:.3f} ms" if r.median_s >= 1e-4 else f"{r.median_s * 1e6:.1f} us")
    pct = "" if r.pct_of_ceiling is None else f"{r.pct_of_ceiling:.0f}% {r.ceiling or ''}".strip()
    cells = (f"{r.suite}/{r.name}", med, _fmt(r.gflops, ",.1f"), _fmt(r.gbs, ",.1f"), pct,
             _fmt(r.ratio, ".2f"), _fmt(r.rel_error, ".1e"))
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                     for i, (c, (_, w)) in enumerate(zip(cells, _COLUMNS)))


def table_header() -> str:
    names = "  ".join(n.ljust(w) if i == 0 else n.rjust(w) for i, (n, w) in enumerate(_COLUMNS))
    return names + "\n" + "  ".join("-" * w for _, w in _COLUMNS)


def format_table(results: Iterable[BenchResult]) -> str:
    return "\n".join([table_header(), *(format_row(r) for r in results)])


def run_benchmarks(
    suite_names: Iterable[str] | None = None,
    rt: Runtime | str | None = None,
    quick: bool | None = None,
    on_result: Callable[[BenchResult], None] | None = None,
) -> BenchReport:
    """Run the named suites (all when None) on ``rt``; the roofline suite runs first when asked
    for, so the others report percentages of freshly measured ceilings."""
    rt = resolve_rt(rt)
    quick = config.quick() if quick is None else quick
    known = suites()
    wanted = list(known) if not suite_names else list(dict.fromkeys(suite_names))
    for s in wanted:
        if s not in known:
            raise InputError("suite", f"unknown suite {s!r}; known: {', '.join(known)}")
    if "roofline" in wanted:
        wanted.remove("roofline")
        wanted.insert(0, "roofline")
    backend = references.backend_for(rt)
    results: list[BenchResult] = []

    def emit(r: BenchResult) -> None:
        results.append(r)
        if on_result is not None:
            on_result(r)

    ceilings = None
    if "roofline" in wanted:
        ceilings = _roofline_suite(rt, quick, backend, emit)
    if ceilings is None:
        ceilings = get_ceilings(rt, quick=quick)
    ctx = BenchContext(rt, ceilings, backend, quick)
    for s in wanted:
        if s == "roofline":
            continue
        for _, fn in _SUITES[s]:
            for r in fn(ctx):
                emit(r)
    return BenchReport(
        device=rt.name, device_info=rt.info.as_row(), kind=rt.kind,
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        host=platform.node(), reference=references.describe(backend), quick=quick,
        ceilings=ceilings.as_dict(), results=results,
    )


# -- suite: roofline --------------------------------------------------------------------------
def _roofline_suite(rt: Runtime, quick: bool, backend: str, emit) -> Ceilings:
    """Measure the ceilings (saving them), one result per microbenchmark, then the same-run
    reference copy at the bandwidth buffer size."""
    ceilings = None
    for reading, ceilings, _, _ in iter_ceilings(rt, quick):
        theory = ceilings.theoretical.get(reading.field)
        unit = UNITS[reading.field]
        emit(BenchResult(
            "roofline", reading.name, {"size": reading.size},
            median_s=reading.timing.get("median_s"), spread=reading.timing.get("spread"),
            gflops=reading.value if unit in ("GFLOP/s", "GOP/s") else None,
            gbs=reading.value if unit == "GB/s" else None,
            pct_of_ceiling=None if not theory else 100 * reading.value / theory,
            ceiling="theoretical" if theory else None,
            note=f"launch latency {reading.value:.1f} us" if reading.field == "launch_us" else "",
        ))
    save_ceilings(ceilings)
    copies = [r for r in ceilings.readings if r["field"] == "bandwidth_gbs" and "copy" in r["name"]]
    best = max(copies, key=lambda r: r["value"])
    nbytes = int(round(best["value"] * 1e9 * best["timing"]["median_s"] / 2))
    t = references.copy(backend, nbytes, repeat=5 if quick else 15, budget_s=1.0 if quick else 3.0)
    emit(BenchResult(
        "roofline", f"reference copy ({backend})", {"bytes": nbytes},
        median_s=t.median, spread=t.spread, gbs=2 * nbytes / t.median / 1e9,
        pct_of_ceiling=100 * (2 * nbytes / t.median / 1e9) / ceilings.bandwidth_gbs,
        ceiling="bandwidth", note=f"our best: {best['name']} at {best['value']:.1f} GB/s",
    ))
    emit(BenchResult(
        "roofline", f"{best['name']} vs reference copy", {"bytes": nbytes},
        median_s=best["timing"]["median_s"], gbs=best["value"],
        pct_of_ceiling=100 * best["value"] / ceilings.bandwidth_gbs, ceiling="bandwidth",
        reference_s=t.median, ratio=t.median / best["timing"]["median_s"],
    ))
    return ceilings


# -- suite: gemm ------------------------------------------------------------------------------
def gemm_shapes(rt: Runtime, quick: bool) -> list[tuple[int, int, int]]:
    if rt.kind == "opencl-gpu":
        sizes = [1024, 2048] if quick else [1024, 2048, 4096, 8192]
        odd = [(3000, 3000, 3000)] if not quick else [(1000, 1000, 1000)]
    else:
        sizes = [256, 512] if quick else [256, 512, 1024, 2048]
        odd = [(1000, 1000, 1000)] if not quick else [(300, 200, 100)]
    return [(n, n, n) for n in sizes] + odd


@register("gemm", "sgemm")
def bench_sgemm(ctx: BenchContext) -> Iterator[BenchResult]:
    from .ops import gemm_engine, matmul

    rt = ctx.rt
    rng = np.random.default_rng(0)
    for m, n, k in gemm_shapes(rt, ctx.quick):
        a = rng.random((m, k), dtype=np.float32) - 0.5
        b = rng.random((k, n), dtype=np.float32) - 0.5
        flops = 2.0 * m * n * k
        nbytes = 4.0 * (m * k + k * n + m * n)
        repeat, budget = (3, 1.0) if ctx.quick else (10, 3.0)
        if rt.kind == "numpy":
            t = rt.timeit(lambda: matmul(a, b, rt), repeat=repeat, budget_s=budget)
            c = matmul(a, b, rt)
            note = "numpy backend"
        else:
            engine = gemm_engine(rt)
            da, db = rt.to_device(a, "a"), rt.to_device(b, "b")
            dc = rt.empty((m, n), np.float32, "c")
            t = rt.timeit(lambda: engine.enqueue(da.data, db.data, dc.data, m, n, k),
                          warmup=1, repeat=repeat, budget_s=budget)
            c = dc.get()
            note = engine.config.describe() if not engine.uses_direct(m, n, k) else "direct"
            del da, db, dc
        ref_t, ref_c = references.matmul(ctx.reference, a, b, repeat=repeat, budget_s=budget)
        err = float(np.linalg.norm(c - ref_c) / max(np.linalg.norm(ref_c), 1e-30))
        yield BenchResult(
            "gemm", f"sgemm {m}x{n}x{k}", {"m": m, "n": n, "k": k},
            median_s=t.median, spread=t.spread, gflops=flops / t.median / 1e9,
            gbs=nbytes / t.median / 1e9,
            pct_of_ceiling=100 * flops / t.median / 1e9 / ctx.ceilings.fp32_gflops,
            ceiling="fp32", reference_s=ref_t.median, ratio=ref_t.median / t.median,
            rel_error=err, note=f"{note}; reference {ref_t.median * 1e3:.3f} ms "
                                f"({flops / ref_t.median / 1e9:,.0f} GFLOP/s)",
        )
