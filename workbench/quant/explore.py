"""What the quantization UIs show, as pure functions: per-layer histograms with every
calibrator's clipping threshold, per-layer error, and the method x bits x granularity grid.

The widget, the dashboard page and the tutorial all call these; the grid is a generator that
writes each finished point to the store (run kind ``"quant-grid"``), so a UI streams from it and a
killed job keeps its points.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np

from ..nn.training import evaluate
from ..runtime import Runtime, resolve_rt
from ..store import resolve_store
from .calibrate import METHODS, calibrate, quantization_error
from .model import layer_inputs, measure_latency, quantize_model

GRID_KIND = "quant-grid"


@dataclass
class LayerCalibration:
    """One linear layer: histogram of its weights (``edges`` (B+1,), ``counts`` (B,)), each
    method's symmetric threshold ``T`` and the weight MSE at ``bits`` per tensor and per channel,
    and the same for the layer's input activations (asymmetric range ``(lo, hi)``)."""

    name: str
    kind: str
    shape: tuple[int, int]
    edges: np.ndarray
    counts: np.ndarray
    thresholds: dict[str, float]
    error_per_tensor: dict[str, float]
    error_per_channel: dict[str, float]
    act_edges: np.ndarray
    act_counts: np.ndarray
    act_ranges: dict[str, tuple[float, float]]


def calibration_report(model, calib_x, *, bits: int = 8, bins: int = 80,
                       percentile: float = 99.9) -> list[LayerCalibration]:
    """Per-layer calibration view of ``model`` on ``calib_x`` for the four methods."""
    inputs = layer_inputs(model, calib_x, "numpy")
    out = []
    for name, layer in model.linear_layers():
        w = layer.weight_matrix()
        counts, edges = np.histogram(w, bins=bins)
        thr, ept, epc = {}, {}, {}
        for m in METHODS:
            pt = calibrate(w, m, bits=bits, percentile=percentile)
            pc = calibrate(w, m, bits=bits, axis=1, percentile=percentile)
            thr[m] = float(pt.hi)
            ept[m] = quantization_error(w, pt)
            epc[m] = quantization_error(w, pc)
        x = inputs[name]
        acounts, aedges = np.histogram(x, bins=bins)
        aranges = {}
        for m in METHODS:
            p = calibrate(x, m, bits=8, symmetric=False, percentile=percentile)
            aranges[m] = (float(p.lo), float(p.hi))
        out.append(LayerCalibration(name, layer.kind, w.shape, edges, counts, thr, ept, epc,
                                    aedges, acounts, aranges))
    return out


@dataclass
class GridPoint:
    """One cell of the grid: accuracy on the test split, stored size, and the forward-pass
    latency over the test split of the quantized and the float model on ``device``."""

    method: str
    bits: int
    per_channel: bool
    accuracy: float
    float_accuracy: float
    nbytes: int
    float_nbytes: int
    latency_s: float
    float_latency_s: float
    kernel: str
    device: str
    calibrators: str = ""  # what ran per layer where it is not the method asked for ("kl->minmax" ...)

    @property
    def speedup(self) -> float:
        return self.float_latency_s / self.latency_s if self.latency_s else float("nan")

    def as_row(self) -> dict:
        return {**asdict(self), "speedup": self.speedup}


def grid_cells(methods=METHODS, bits=(8, 4), per_channel=(True, False)) -> list[tuple]:
    return list(itertools.product(bits, per_channel, methods))


def iter_grid(model, data, *, methods=METHODS, bits=(8, 4), per_channel=(True, False),
              rt: Runtime | str | None = None, store=None, calib_size: int = 512,
              model_name: str = "", cells: list[tuple] | None = None) -> Iterator[GridPoint]:
    """Quantize ``model`` for every (bits, per_channel, method), evaluate, time, yield, store
    (None: the default store; False: none; run kind ``"quant-grid"``, ending ``finished``,
    ``stopped`` when the generator is closed, or ``failed``). ``cells`` replaces the product
    of ``bits``, ``per_channel`` and ``methods``."""
    rt = resolve_rt(rt)
    store = resolve_store(store)
    if store is None:
        yield from _grid_points(model, data, rt, calib_size, cells or grid_cells(methods, bits, per_channel),
                                None)
        return
    with store.run(GRID_KIND, {"model": model_name or model.kind}, device=rt) as run:
        yield from _grid_points(model, data, rt, calib_size, cells or grid_cells(methods, bits, per_channel),
                                run)


def _grid_points(model, data, rt: Runtime, calib_size: int, cells, run) -> Iterator[GridPoint]:
    calib = data.x_train[:calib_size]
    x_lat = data.x_test
    float_acc = evaluate(model, data.x_test, data.y_test, rt=rt)
    float_lat = measure_latency(model, x_lat, rt=rt)
    for step, (b, pc, m) in enumerate(cells):
        qm = quantize_model(model, calib, method=m, bits=b, per_channel=pc, rt=rt)
        point = GridPoint(m, b, pc, qm.evaluate(data.x_test, data.y_test, rt), float_acc, qm.nbytes,
                          qm.float_nbytes, measure_latency(qm, x_lat, rt=rt), float_lat,
                          qm.layers[0].kernel, rt.name, _calibrators(qm, m))
        if run is not None:
            numbers = {k: float(v) for k, v in point.as_row().items() if isinstance(v, (bool, int, float))}
            run.log(step, **numbers, method=m, calibrators=point.calibrators)
        yield point


def _calibrators(qm, method: str) -> str:
    """"" when every layer ran ``method``, else e.g. ``"kl->minmax in 2 of 3 layers"``."""
    fell = [r for r in qm.layers if r.calibrator and r.calibrator != method]
    if not fell:
        return ""
    kinds = sorted({r.calibrator.split(" (")[0] for r in fell})
    return f"{', '.join(kinds)} in {len(fell)} of {len(qm.layers)} layers"


def load_grid(rt: Runtime | str | None = None, store=None) -> list[GridPoint]:
    """The points of the latest grid run on ``rt``'s device (finished or not)."""
    rt = resolve_rt(rt)
    store = resolve_store(store)
    runs = [] if store is None else store.runs(GRID_KIND, device=rt)
    if not runs:
        return []
    latest = max(runs, key=lambda r: r["id"])
    out = []
    for v in store.metrics(latest["id"]):
        method = v["method"] if isinstance(v.get("method"), str) else METHODS[int(v["method_index"])]
        out.append(GridPoint(method, int(v["bits"]), bool(v["per_channel"]),
                             v["accuracy"], v["float_accuracy"], int(v["nbytes"]), int(v["float_nbytes"]),
                             v["latency_s"], v["float_latency_s"],
                             "int8_matmul" if int(v["bits"]) > 4 else "int4_gemv", rt.name,
                             v.get("calibrators") if isinstance(v.get("calibrators"), str) else ""))
    return out
