"""Dense basics on a runtime: ``matmul`` (tiled SGEMM).

Every op has one name for all backends; on the NumPy runtime it *is* the reference that the
OpenCL results are tested against (``matmul(a, b, rt=get_runtime("numpy"))``).

Inputs: NumPy arrays (any real dtype, converted once to C-contiguous float32, a copy) or
``pyopencl.array.Array`` already on the runtime's device (float32, C-contiguous, 2-D; no copy).
Device arrays in give a device array out, for chaining without transfers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DeviceMemoryError, InputError
from .runtime import Runtime, resolve_rt, tuned
from .validation import as_array

try:
    import pyopencl as cl
    import pyopencl.array as cla
except Exception:  # pragma: no cover - NumPy-only installs
    cl = cla = None

FLOAT = np.dtype(np.float32)


def _ceil_to(x: int, m: int) -> int:
    return -(-x // m) * m


@dataclass(frozen=True)
class GemmConfig:
    """Which ``gemm.cl`` variant runs and with which tunables.

    ``variant``: ``"tiled"`` (GPU), ``"packed"`` (CPU) or ``"direct"``. ``params``: the
    macros (BM, BN, BK, TM, TN for tiled; MR, NV for packed). ``lm``: work-group height of the
    packed kernel (row panels that share one B panel).
    """

    variant: str
    params: dict = field(default_factory=dict)
    lm: int = 4

    source: str = ""

    @classmethod
    def for_device(cls, rt: Runtime) -> "GemmConfig":
        variant, params, source = tuned("gemm", rt.info, "packed" if rt.kind == "opencl-cpu" else "tiled")
        lm = params.pop("LM", 4)
        return cls(variant, params, lm, source)

    def describe(self) -> str:
        items = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        extra = f", LM={self.lm}" if self.variant == "packed" else ""
        return f"{self.variant}({items}{extra})"


class GemmEngine:
    """Enqueues C = A B on device buffers with one configuration; cached per runtime.

    ``enqueue`` returns the events of every kernel it launched (pads, packs, product, crop) so
    that ``Runtime.timeit`` measures all of the device work of one product. Padded and packed
    copies live in scratch buffers kept between calls (allocating them per call cost more than
    the product at 1000^3 on an H100: drivers allocate device memory lazily, at first use).
    """

    def __init__(self, rt: Runtime, config: GemmConfig | None = None):
        self.rt = rt
        self.config = config or GemmConfig.for_device(rt)
        self.prog = rt.program("gemm", **self.config.params)
        self.variant = self.config.variant
        if self.variant == "tiled" and not self._tiled_fits():
            self.variant = "direct"  # the device cannot host this tile: stay correct, slower

    def scratch(self, name: str, nbytes: int) -> "cl.Buffer":
        """The runtime's scratch buffer ``gemm.<name>`` (:meth:`OpenCLRuntime.scratch`); callers
        hold ``rt.launch_lock`` from first use to last launch."""
        return self.rt.scratch(f"gemm.{name}", nbytes)

    # -- geometry -----------------------------------------------------------------------------
    def _p(self, name: str, default: int) -> int:
        return int(self.config.params.get(name, default))

    @property
    def tile(self) -> tuple[int, int, int]:
        """Granules that M, N and K are padded to: (BM, BN, BK), (MR, NR, 1) or (1, 1, 1)."""
        if self.variant == "tiled":
            return self._p("BM", 128), self._p("BN", 128), self._p("BK", 16)
        if self.variant == "packed":
            return self._p("MR", 8), 16 * self._p("NV", 2), 1
        return 1, 1, 1

    def _threads(self) -> tuple[int, int]:
        return self._p("BN", 128) // self._p("TN", 8), self._p("BM", 128) // self._p("TM", 8)

    def _tiled_fits(self) -> bool:
        bm, bn, bk = self.tile
        local_bytes = 2 * bk * (bm + bn) * 4
        nx, ny = self._threads()
        if local_bytes > self.rt.info.local_mem_bytes or nx * ny > self.rt.info.max_work_group_size:
            return False
        return self.prog.sgemm_tiled.work_group_info("WORK_GROUP_SIZE") >= nx * ny

    def uses_direct(self, m: int, n: int, k: int) -> bool:
        """Whether ``enqueue`` sends this shape to ``sgemm_direct``."""
        if self.variant != "tiled":
            return self.variant == "direct"
        bm, bn, _ = self.tile
        # Padding a thin or tiny product up to a full tile wastes more than the tile gains.
        return m * n * k <= 2**21 or m < bm // 2 or n < bn // 2

    def workspace_bytes(self, m: int, n: int, k: int) -> int:
        """Device bytes for temporaries (padded or packed copies) beside A, B and C."""
        if self.variant == "packed":
            mr, nr, _ = self.tile
            return 4 * k * (_ceil_to(m, mr) + _ceil_to(n, nr))
        if self.variant == "tiled" and not self.uses_direct(m, n, k):
            bm, bn, bk = self.tile
            mp, np_, kp = _ceil_to(m, bm), _ceil_to(n, bn), _ceil_to(k, bk)
            if (mp, np_, kp) != (m, n, k):
                return 4 * (mp * kp + kp * np_ + mp * np_)
        return 0

    # -- launch -------------------------------------------------------------------------------
    def _pad(self, src, dst, rows, cols, ld_src, ld_dst, rows_d, cols_d, wait_for=None):
        """dst (rows_d x cols_d) = src's top-left rows x cols, zero elsewhere (pads or crops)."""
        i32 = np.int32
        grid = (_ceil_to(cols_d, 16), _ceil_to(rows_d, 16))
        return self.prog.pad_copy(grid, (16, 16), src, dst, i32(rows), i32(cols), i32(ld_src),
                                  i32(ld_dst), i32(rows_d), i32(cols_d), wait_for=wait_for)

    def enqueue(self, a, b, c, m: int, n: int, k: int, dispatch: bool = True) -> list:
        """C (m x n) = A (m x k) B (k x n) on ``cl.Buffer``s; returns the launched events.

        ``dispatch=False`` runs the configured variant even where ``sgemm_direct`` would be
        picked (the tuner times the variant itself). Holds the runtime's launch lock throughout:
        the scratch buffers are shared by every call on this engine.

        The first launch waits on a gate opened once every launch is queued, so the device runs
        them back to back: otherwise it idled between them for the host's per-launch overhead
        (67 + 38 + 13 us around 89 us of kernels at 1000^3 on an H100).
        """
        with self.rt.launch_lock:
            gate = cl.UserEvent(self.rt.ctx)
            try:
                return self._enqueue(a, b, c, m, n, k, dispatch, [gate])
            finally:
                gate.set_status(cl.command_execution_status.COMPLETE)

    def _enqueue(self, a, b, c, m: int, n: int, k: int, dispatch: bool, gate: list) -> list:
        i32 = np.int32
        prog = self.prog
        if self.variant == "direct" or (dispatch and self.uses_direct(m, n, k)):
            g = (_ceil_to(n, 16), _ceil_to(m, 16))
            return [prog.sgemm_direct(g, (16, 16), a, b, c, i32(m), i32(n), i32(k), wait_for=gate)]

        if self.variant == "packed":
            mr, nr, _ = self.tile
            mp, np_ = _ceil_to(m, mr), _ceil_to(n, nr)
            ap = self.scratch("a", 4 * mp * k)
            bp = self.scratch("b", 4 * np_ * k)
            gm = mp // mr
            lm = next(x for x in (self.config.lm, 8, 4, 2, 1) if x <= gm and gm % x == 0)
            return [
                prog.pack_a((k, gm), None, a, ap, i32(m), i32(k), wait_for=gate),
                prog.pack_b((k, np_ // nr), None, b, bp, i32(n), i32(k)),
                prog.sgemm_packed((np_ // nr, gm), (1, lm), ap, bp, c, i32(m), i32(n), i32(k)),
            ]

        bm, bn, bk = self.tile
        mp, np_, kp = _ceil_to(m, bm), _ceil_to(n, bn), _ceil_to(k, bk)
        nx, ny = self._threads()
        events = []
        if (mp, np_, kp) == (m, n, k):
            ap, bp, cp = a, b, c
        else:
            ap = self.scratch("a", 4 * mp * kp)
            bp = self.scratch("b", 4 * kp * np_)
            cp = self.scratch("c", 4 * mp * np_)
            events.append(self._pad(a, ap, m, k, k, kp, mp, kp, wait_for=gate))
            gate = None
            events.append(self._pad(b, bp, k, n, n, np_, kp, np_))
        grid = (np_ // bn * nx, mp // bm * ny)
        events.append(prog.sgemm_tiled(grid, (nx, ny), ap, bp, cp, i32(mp), i32(np_), i32(kp),
                                       wait_for=gate))
        if cp is not c:
            events.append(self._pad(cp, c, m, n, np_, n, m, n))
        return events


def gemm_engine(rt: Runtime) -> GemmEngine:
    """The runtime's GEMM engine with its tuned configuration (built once, kept by the runtime)."""
    return rt.memo("gemm.engine", lambda: GemmEngine(rt))


def reset_gemm_engine(rt: Runtime) -> None:
    """Forget the engine, e.g. after ``workbench tune gemm`` recorded new tunables."""
    rt.forget("gemm.engine")


# -- matmul -----------------------------------------------------------------------------------
def _check_device_array(x, name: str, rt: Runtime):
    if x.dtype != FLOAT or x.ndim != 2 or not x.flags.c_contiguous:
        raise InputError(name, f"device arrays must be float32, 2-D, C-contiguous; got "
                               f"{x.dtype}, shape {x.shape}")
    if getattr(rt, "ctx", None) is not None and x.context != rt.ctx:
        raise InputError(name, f"device array lives on another context than {rt.name}")
    return x


def _shapes(a, b) -> tuple[int, int, int]:
    if a.ndim != 2:
        raise InputError("a", f"expected a 2-D matrix, got shape {a.shape}")
    if b.ndim != 2:
        raise InputError("b", f"expected a 2-D matrix, got shape {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise InputError("b", f"shapes {a.shape} (a) and {b.shape} (b) do not chain: "
                              f"a has {a.shape[1]} columns, b has {b.shape[0]} rows")
    return a.shape[0], b.shape[1], a.shape[1]


def matmul(a, b, rt: Runtime | str | None = None):
    """C = A B in float32.

    Args:
        a: (M, K) matrix. b: (K, N) matrix. NumPy arrays of any real dtype are converted once to
            C-contiguous float32; ``pyopencl.array.Array`` inputs must already be float32.
        rt: runtime (default: ``workbench.runtime.default()``).

    Returns:
        (M, N) float32 array: NumPy, or a device array when an input was a device array.

    Flops: 2 M N K. A matrix larger than the device's max allocation is processed in row and
    column chunks; one that cannot be chunked raises :class:`DeviceMemoryError`.
    """
    rt = resolve_rt(rt)
    on_device = cla is not None and (isinstance(a, cla.Array) or isinstance(b, cla.Array))
    if rt.is_numpy:
        a = a.get() if on_device and isinstance(a, cla.Array) else a
        b = b.get() if on_device and isinstance(b, cla.Array) else b
        a, b = as_array(a, "a"), as_array(b, "b")
        _shapes(a, b)
        return np.matmul(a, b)

    if on_device:
        a = (_check_device_array(a, "a", rt) if isinstance(a, cla.Array)
             else rt.to_device(as_array(a, "a"), "a"))
        b = (_check_device_array(b, "b", rt) if isinstance(b, cla.Array)
             else rt.to_device(as_array(b, "b"), "b"))
        m, n, k = _shapes(a, b)
        c = rt.empty((m, n), FLOAT, "c")
        if m and n:
            if k == 0:
                c.fill(0.0)
            else:
                gemm_engine(rt).enqueue(a.data, b.data, c.data, m, n, k)
        return c

    a, b = as_array(a, "a"), as_array(b, "b")
    m, n, k = _shapes(a, b)
    out = np.zeros((m, n), FLOAT)
    if m == 0 or n == 0 or k == 0:
        return out
    engine = gemm_engine(rt)
    mc, nc = _chunks(rt, engine, m, n, k)
    for j0 in range(0, n, nc):
        bj = b if nc >= n else np.ascontiguousarray(b[:, j0:j0 + nc])
        nj = bj.shape[1]
        db = rt.to_device(bj, "b")
        for i0 in range(0, m, mc):
            da = rt.to_device(a[i0:i0 + mc], "a")
            mi = da.shape[0]
            dc = rt.empty((mi, nj), FLOAT, "c")
            try:
                engine.enqueue(da.data, db.data, dc.data, mi, nj, k)
                out[i0:i0 + mi, j0:j0 + nj] = dc.get()
            except cl.MemoryError as exc:
                raise DeviceMemoryError("matmul workspace", 4 * (mi * k + k * nj + mi * nj),
                                        rt.info.global_mem_bytes, rt.name) from exc
    return out


def _chunks(rt: Runtime, engine: GemmEngine, m: int, n: int, k: int) -> tuple[int, int]:
    """Row and column chunk sizes so that every buffer fits the device's max allocation and all
    of them together fit in 90% of its global memory."""
    gm, gn, gk = engine.tile
    kp = _ceil_to(k, gk)
    limit = rt.max_alloc
    total = int(0.9 * rt.info.global_mem_bytes) or limit * 4
    nc = min(_ceil_to(n, gn), limit // (4 * kp) // gn * gn)
    if nc < 1:
        raise DeviceMemoryError("b (one column panel)", 4 * kp * gn, limit, rt.name)
    nc = min(nc, n)
    per_row = 4 * max(kp, _ceil_to(nc, gn))
    mc = min(_ceil_to(m, gm), limit // per_row // gm * gm)
    if mc < 1:
        raise DeviceMemoryError("a (one row panel)", per_row * gm, limit, rt.name)

    def fits(mc_: int) -> bool:
        return 4 * (mc_ * k + k * nc + mc_ * nc) + engine.workspace_bytes(mc_, nc, k) <= total

    while mc > gm and not fits(mc):
        mc = max(gm, mc // 2 // gm * gm)
    return min(mc, m), nc


def sgemm_timing(a: np.ndarray, b: np.ndarray, *, rt: Runtime | str | None = None, repeat: int = 5,
                 budget_s: float = 1.0, warmup: int = 1):
    """Timing of our SGEMM C = A B with the operands resident: device events of the GEMM
    engine's launches on OpenCL, the host clock of ``np.matmul`` on NumPy. The same-shape dense
    baseline that the quantized and sparse benchmarks compare against."""
    rt = resolve_rt(rt)
    a = np.ascontiguousarray(a, FLOAT)
    b = np.ascontiguousarray(b, FLOAT)
    (m, k), n = a.shape, b.shape[1]
    if rt.is_numpy:
        return rt.timeit(lambda: np.matmul(a, b), warmup=warmup, repeat=repeat, budget_s=budget_s)
    with rt.measure_lock, rt.launch_lock:  # measure before launch, everywhere: no lock cycle
        engine = gemm_engine(rt)
        da, db, dc = rt.to_device(a, "a"), rt.to_device(b, "b"), rt.empty((m, n), FLOAT, "c")
        return rt.timeit(lambda: engine.enqueue(da.data, db.data, dc.data, m, n, k), warmup=warmup,
                         repeat=repeat, budget_s=budget_s)


def matmul_profile(m: int, n: int, k: int, *, rt: Runtime | str | None = None, repeat: int = 5,
                   seed: int = 0):
    """Measure C = A B of the given shape on ``rt`` and return an
    :class:`~workbench.roofline.OpProfile`: flops = 2 m n k, bytes = 4 (m k + k n + m n) (each
    operand read once, C written once: the least traffic), seconds = median device time with the
    operands already on the device (host clock on the NumPy backend)."""
    from .roofline import OpProfile
    from .validation import positive_int

    m, n, k = positive_int(m, "m"), positive_int(n, "n"), positive_int(k, "k")
    rt = resolve_rt(rt)
    rng = np.random.default_rng(seed)
    a = rng.random((m, k), dtype=np.float32) - 0.5
    b = rng.random((k, n), dtype=np.float32) - 0.5
    t = sgemm_timing(a, b, rt=rt, repeat=repeat, budget_s=1.0)
    name = f"sgemm {m}" if m == n == k else f"sgemm {m}x{n}x{k}"
    return OpProfile(name, 2.0 * m * n * k, 4.0 * (m * k + k * n + m * n), t.median)


def matmul_sizes(rt: Runtime | str | None = None, quick: bool = False) -> list[int]:
    """Square SGEMM sizes worth placing on this device's roofline (small ones show the launch
    and memory-bound regime, large ones approach the compute roof)."""
    rt = resolve_rt(rt)
    if rt.kind == "opencl-gpu":
        return [128, 512, 2048] if quick else [128, 256, 512, 1024, 2048, 4096]
    return [32, 128, 512] if quick else [32, 64, 128, 256, 512, 1024]
