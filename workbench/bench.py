"""Benchmarks: ``workbench bench [--suite NAME] [--device D] [--json PATH] [--per-core]``.

Each result reports the median time over repeats with its min and max, GFLOP/s and GB/s, the
percentage of the device's *measured* ceiling, and the ratio to a reference measured in the same
run (see :mod:`workbench.references`): ``ratio`` = reference time / our time, so above 1 means
faster than the reference; ``ratio_min`` / ``ratio_max`` bound it from the two sides' ranges.

What a ratio compares is recorded with it, because a ratio is only fair when both sides do the
same work the same way:

* ``scope``: ``"device"`` (our kernels' device time from profiling events, operands already on
  the device, against the reference's resident-tensor time) or ``"call"`` (the whole public call
  on the host clock, transfers included, against the reference doing the same);
* ``threads`` / ``reference_threads``: on a CPU both sides run on the same number of threads
  (PoCL uses every compute unit; the host references are given as many, see
  :mod:`workbench.references`). ``--per-core`` runs ours on one PoCL worker thread
  (``POCL_MAX_PTHREAD_COUNT=1``) and the references on one thread, for the per-core column.

Suites are listed in :data:`SUITES` (module and generator names), imported when they run.
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
from .roofline import UNITS, Ceilings, get_ceilings, iter_ceilings, save_ceilings
from .runtime import Runtime, Timing, is_untuned, resolve_rt, tuning

# suite -> (module, generator functions taking a BenchContext); "roofline" is built in.
SUITES: dict[str, tuple[str, tuple[str, ...]]] = {
    "gemm": ("workbench.bench", ("bench_sgemm",)),
    "quant": ("workbench.quant.bench", ("bench_int8", "bench_int4")),
    "sparse": ("workbench.sparse.bench", ("bench_spmv", "bench_bsr")),
    "snn": ("workbench.snn.bench", ("bench_lif_network",)),
}
# the ceiling a result's rate is a percentage of: (Ceilings field, BenchResult rate attribute)
CEILING_RATES = {"fp32": ("fp32_gflops", "gflops"), "int8": ("int8_gops", "gflops"),
                 "bandwidth": ("bandwidth_gbs", "gbs")}


@dataclass
class BenchResult:
    """One benchmark measurement (times in seconds; see the module docstring)."""

    suite: str
    name: str
    params: dict = field(default_factory=dict)
    median_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    spread: float | None = None
    gflops: float | None = None
    gbs: float | None = None
    pct_of_ceiling: float | None = None
    ceiling: str | None = None
    reference: str = ""
    reference_s: float | None = None
    reference_min_s: float | None = None
    reference_max_s: float | None = None
    ratio: float | None = None
    ratio_min: float | None = None
    ratio_max: float | None = None
    scope: str = "device"
    threads: int | None = None
    reference_threads: int | None = None
    rel_error: float | None = None
    note: str = ""


@dataclass
class BenchContext:
    """What every suite gets: the runtime, its ceilings, the reference backend, the run's mode,
    and ``threads``: how many threads a host reference runs on (None on a GPU)."""

    rt: Runtime
    ceilings: Ceilings
    reference: str  # a references backend name
    quick: bool
    threads: int | None = None
    per_core: bool = False

    @property
    def our_threads(self) -> int | None:
        """Threads our side runs on: the compute units of a CPU device (or the NumPy backend's
        BLAS threads), None on a GPU."""
        if self.rt.kind == "opencl-gpu":
            return None
        return self.threads

    def result(self, suite: str, name: str, t: Timing, *, ref: Timing | None = None,
               reference: str = "", flops: float | None = None, nbytes: float | None = None,
               ceiling: str | None = None, params: dict | None = None, rel_error: float | None = None,
               note: str = "", scope: str = "device") -> BenchResult:
        """A :class:`BenchResult` from our timing and the reference's, the rates from ``flops``
        and ``nbytes``, the percentage of ``ceiling`` (a key of :data:`CEILING_RATES`)."""
        med = t.median
        r = BenchResult(suite, name, dict(params or {}), median_s=med, min_s=t.min, max_s=t.max,
                        spread=t.spread, gflops=None if flops is None else flops / med / 1e9,
                        gbs=None if nbytes is None else nbytes / med / 1e9, ceiling=ceiling,
                        reference=reference, scope=scope, threads=self.our_threads,
                        reference_threads=None if ref is None or self.reference != "numpy" else self.threads,
                        rel_error=rel_error, note=note)
        if ceiling is not None:
            cfield, rate = CEILING_RATES[ceiling]
            peak = getattr(self.ceilings, cfield)
            value = getattr(r, rate)
            r.pct_of_ceiling = None if not peak or value is None else 100.0 * value / peak
        if ref is not None:
            r.reference_s, r.reference_min_s, r.reference_max_s = ref.median, ref.min, ref.max
            r.ratio = ref.median / med
            r.ratio_min, r.ratio_max = ref.min / t.max, ref.max / t.min
        return r


BenchFn = Callable[[BenchContext], Iterator[BenchResult]]


def suites() -> list[str]:
    """Every suite name, ``roofline`` first."""
    return ["roofline", *SUITES]


def _suite_functions(name: str) -> list[BenchFn]:
    module, functions = SUITES[name]
    mod = importlib.import_module(module)  # an error here is a broken suite: let it show
    return [getattr(mod, fn) for fn in functions]


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
    per_core: bool = False
    threads: int | None = None
    tuning: dict = field(default_factory=dict)
    command: str = ""
    schema: int = 2  # workbench.report reads reports of this schema

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
            ("% ceiling", 17), ("x ref", 6), ("threads", 7), ("rel err", 8))


def _threads(r: BenchResult) -> str:
    if r.threads is None and r.reference_threads is None:
        return ""
    return f"{r.threads or '-'}/{r.reference_threads or '-'}"


def format_row(r: BenchResult) -> str:
    """One fixed-width line (so results can be printed as they arrive)."""
    med = "" if r.median_s is None else (
        f"{r.median_s * 1e3:.3f} ms" if r.median_s >= 1e-4 else f"{r.median_s * 1e6:.1f} us")
    pct = "" if r.pct_of_ceiling is None else f"{r.pct_of_ceiling:.0f}% {r.ceiling or ''}".strip()
    cells = (f"{r.suite}/{r.name}", med, _fmt(r.gflops, ",.1f"), _fmt(r.gbs, ",.1f"), pct,
             _fmt(r.ratio, ".2f"), _threads(r), _fmt(r.rel_error, ".1e"))
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                     for i, (c, (_, w)) in enumerate(zip(cells, _COLUMNS)))


def table_header() -> str:
    names = "  ".join(n.ljust(w) if i == 0 else n.rjust(w) for i, (n, w) in enumerate(_COLUMNS))
    return names + "\n" + "  ".join("-" * w for _, w in _COLUMNS)


def format_table(results: Iterable[BenchResult]) -> str:
    return "\n".join([table_header(), *(format_row(r) for r in results)])


def tuning_status(rt: Runtime) -> dict:
    """Where each kernel family's tunables come from on ``rt`` (``user``, ``shipped:...``,
    ``arch:...`` or ``default:...``) and whether any is the generic default."""
    if rt.is_numpy:
        return {}
    sources = {fam: tuning(fam, rt.info)["_source"] for fam in ("gemm", "quant")}
    return {"sources": sources, "untuned": sorted(f for f, s in sources.items() if is_untuned(s))}


def run_benchmarks(
    suite_names: Iterable[str] | None = None,
    rt: Runtime | str | None = None,
    *,
    quick: bool | None = None,
    on_result: Callable[[BenchResult], None] | None = None,
    per_core: bool = False,
) -> BenchReport:
    """Run the named suites (all when None) on ``rt``; the roofline suite runs first when asked
    for, so the others report percentages of freshly measured ceilings. ``per_core``: ours on a
    one-compute-unit sub-device of a CPU device, references on one thread."""
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
    if per_core:
        if rt.kind == "opencl-gpu":
            raise InputError("per_core", "per-core figures are for CPU devices")
        if rt.is_opencl and rt.info.compute_units != 1:
            # PoCL's device fission keeps every worker thread; its thread count is fixed when the
            # platform loads, so the CLI's --per-core sets POCL_MAX_PTHREAD_COUNT=1 first.
            raise InputError("per_core",
                             f"{rt.name} runs on {rt.info.compute_units} compute units; for per-core "
                                         "figures start the process with POCL_MAX_PTHREAD_COUNT=1 "
                                         "(`workbench bench --per-core` does)")
    backend = references.backend_for(rt)
    threads = None if rt.kind == "opencl-gpu" else (1 if per_core else (
        rt.info.compute_units if rt.is_opencl else references.host_threads(None)))
    results: list[BenchResult] = []

    def emit(r: BenchResult) -> None:
        results.append(r)
        if on_result is not None:
            on_result(r)

    ceilings = None
    if "roofline" in wanted:
        ceilings = _roofline_suite(rt, quick, backend, threads, emit)
    if ceilings is None:
        ceilings = get_ceilings(rt, quick=quick)
    ctx = BenchContext(rt, ceilings, backend, quick, threads, per_core)
    with references.blas_threads(threads if rt.is_numpy else None):  # the NumPy backend's own BLAS
        for s in wanted:
            if s == "roofline":
                continue
            for fn in _suite_functions(s):
                for r in fn(ctx):
                    emit(r)
    return BenchReport(
        device=rt.name, device_info=rt.info.as_row(), kind=rt.kind,
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        host=platform.node(), reference=references.describe(backend), quick=quick,
        ceilings=ceilings.as_dict(), results=results, per_core=per_core, threads=threads,
        tuning=tuning_status(rt),
    )


# -- suite: roofline --------------------------------------------------------------------------
def _roofline_suite(rt: Runtime, quick: bool, backend: str, threads: int | None, emit) -> Ceilings:
    """Measure the ceilings (saving them), one result per microbenchmark, then the same-run
    reference copy at the bandwidth buffer size, on as many threads as ours."""
    ceilings = None
    for reading, ceilings, _, _ in iter_ceilings(rt, quick):
        theory = ceilings.theoretical.get(reading.field)
        unit = UNITS[reading.field]
        timing = reading.timing
        emit(BenchResult(
            "roofline", reading.name, {"size": reading.size},
            median_s=timing.get("median_s"), min_s=timing.get("min_s"), max_s=timing.get("max_s"),
            spread=timing.get("spread"),
            gflops=reading.value if unit in ("GFLOP/s", "GOP/s") else None,
            gbs=reading.value if unit == "GB/s" else None,
            pct_of_ceiling=None if not theory else 100 * reading.value / theory,
            ceiling="theoretical" if theory else None,
            threads=None if rt.kind == "opencl-gpu" else threads,
            note=f"launch latency {reading.value:.1f} us" if reading.field == "launch_us" else "",
        ))
    ceilings.vendor = references.vendor_ceilings(backend, quick)
    for label, v in ceilings.vendor.items():
        emit(BenchResult("roofline", f"vendor roof: {label}", {"size": v["size"]},
                         gflops=v["value"], note=f"{v['value']:,.0f} {v['unit']}, same GPU, same run"))
    save_ceilings(ceilings)
    copies = [r for r in ceilings.readings if r["field"] == "bandwidth_gbs" and "copy" in r["name"]]
    best = max(copies, key=lambda r: r["value"])
    nbytes = int(round(best["value"] * 1e9 * best["timing"]["median_s"] / 2))
    t = references.copy(backend, nbytes, repeat=5 if quick else 15, budget_s=1.0 if quick else 3.0,
                        threads=threads)
    ctx = BenchContext(rt, ceilings, backend, quick, threads)
    bt = best["timing"]  # the reading keeps median, min and max of its repeats
    ours = Timing((bt["min_s"], bt["median_s"], bt["max_s"]), bt.get("source", "events"))
    ref_name = f"reference copy ({backend}" + (f", {threads} threads)" if backend == "numpy" else ")")
    emit(ctx.result("roofline", ref_name, t, nbytes=2 * nbytes, ceiling="bandwidth",
                    params={"bytes": nbytes}, note=f"our best: {best['name']} at {best['value']:.1f} GB/s"))
    mine = ctx.result("roofline", "best copy vs reference copy", ours, ref=t, nbytes=2 * nbytes,
                      ceiling="bandwidth", params={"bytes": nbytes, "copy": best["name"]}, reference=ref_name,
                      note=f"our best copy kernel: {best['name']}")
    emit(mine)
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
        if rt.is_numpy:
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
        ref_t, ref_c = references.matmul(ctx.reference, a, b, repeat=repeat, budget_s=budget,
                                         threads=ctx.threads)
        err = float(np.linalg.norm(c - ref_c) / max(np.linalg.norm(ref_c), 1e-30))
        yield ctx.result(
            "gemm", f"sgemm {m}x{n}x{k}", t, ref=ref_t, reference=references.describe(ctx.reference),
            flops=flops, nbytes=nbytes, ceiling="fp32", params={"m": m, "n": n, "k": k},
            rel_error=err, note=f"{note}; reference {ref_t.median * 1e3:.3f} ms "
                                f"({flops / ref_t.median / 1e9:,.0f} GFLOP/s)",
        )


def _ratios(reports: list[dict]) -> dict:
    """``(suite, name) -> (median ratio, lowest ratio_min, highest ratio_max)`` over ``reports``
    (one run, or a campaign's runs)."""
    seen: dict = {}
    for rep in reports:
        for r in rep.get("results", []):
            if r.get("ratio"):
                seen.setdefault((r["suite"], r["name"]), []).append(r)
    return {key: (float(np.median([r["ratio"] for r in rs])),
                  min(r.get("ratio_min", r["ratio"]) for r in rs),
                  max(r.get("ratio_max", r["ratio"]) for r in rs)) for key, rs in seen.items()}


def compare(old: dict | list[dict], new: dict | list[dict],
            tolerance: float = 0.10) -> tuple[list[str], bool]:
    """Each ratio's change from ``old`` to ``new`` (reports, or lists of a campaign's reports;
    matched by suite and name, medians over runs); returns printable lines and whether a ratio
    fell. A ratio *fell* when its median dropped by more than ``tolerance`` (a fraction) and the
    intervals separate: the new runs' highest ratio (``ratio_max``, best of ours against worst
    of the reference) is below the old runs' lowest. A drop inside the noise is shown as
    ``down?`` and does not fail."""
    before = _ratios(old if isinstance(old, list) else [old])
    after = _ratios(new if isinstance(new, list) else [new])
    lines, regressed = [], False
    for key, (ratio, lo, hi) in after.items():
        if key not in before:
            continue
        o_ratio, o_lo, o_hi = before[key]
        change = ratio / o_ratio - 1.0
        bad = change < -tolerance and hi < o_lo
        regressed |= bad
        mark = "FELL " if bad else "down?" if change < -tolerance else "     "
        lines.append(f"{mark} {key[0]}/{key[1]}: {o_ratio:.2f}x ({o_lo:.2f}-{o_hi:.2f}) -> {ratio:.2f}x "
                     f"({lo:.2f}-{hi:.2f}), {change:+.0%}")
    if not lines:
        lines.append("no ratio in common between the two reports")
    return lines, regressed


def load_reports(path) -> list[dict]:
    """The reports in ``path``: one ``workbench bench --json`` file, or every full-thread,
    non-quick one in a folder of them (a campaign under docs/results)."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        reps = [json.loads(f.read_text()) for f in sorted(path.glob("*.json"))]
        return [r for r in reps if r.get("results") is not None and not r.get("quick")
                and not r.get("per_core")]
    if not path.is_file():
        raise InputError("compare", f"no report at {path}")
    return [json.loads(path.read_text())]
