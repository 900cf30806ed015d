"""Quantized models: post-training quantization on the integer kernels, quantization-aware
training, and per-layer mixed precision.

Every Dense and Conv2d layer (the attention block's projections included) becomes one of:

* **W{b}A8** for ``bits`` 5..8: weights on a b-bit symmetric grid stored as int8, activations
  quantized per tensor to 8 bits (asymmetric, calibrated on ``calib_x``), product on
  :func:`~workbench.quant.int8_matmul`'s kernel with the fused float epilogue.
* **W{b}** weight-only for ``bits`` 2..4: weights packed two per byte (int4 nibbles), float
  activations, product on :func:`~workbench.quant.int4_gemv`.
* float32 for ``bits = 32`` (mixed precision's "keep this layer").

Sizes count what is stored: int8 or packed int4 weights, float32 scales (and int32 zero points
for activations), float32 biases, and every parameter left in float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Callable

import numpy as np

from ..errors import InputError
from ..nn.training import cross_entropy, evaluate, measure_latency, train  # noqa: F401 (measure_latency: re-exported)
from ..runtime import Runtime, resolve_rt
from ..validation import as_array, choice
from .calibrate import METHODS, calibrate
from .int4 import Int4Weights, int4_gemv
from .int8 import Int8Weights, int8_linear
from .params import QuantParams, check_bits, fake_quantize, pack_int4, quantize

FLOAT_BITS = 32


def _check_layer_bits(bits) -> int:
    if bits == FLOAT_BITS:
        return FLOAT_BITS
    return check_bits(bits)


def linear_nbytes(k: int, n: int, bits: int) -> int:
    """Stored bytes of a (K, N) linear layer with bias at ``bits``: float32 weights and bias at
    32; else int8 (5..8 bits) or packed int4 (2..4) weights, N float32 scales, N float32 biases,
    and an activation scale and zero point (8 bytes) on the int8 path."""
    if bits == FLOAT_BITS:
        return 4 * (k * n + n)
    weights = n * ((k + 1) // 2) if bits <= 4 else k * n
    return weights + 8 * n + (8 if bits > 4 else 0)


class QuantizedLinear:
    """The integer replacement of one linear layer's product and bias (see the module doc)."""

    def __init__(self, name: str, w: np.ndarray, bias: np.ndarray, wparams: QuantParams,
                 act: QuantParams | None):
        self.name = name
        self.k, self.n = w.shape
        self.bits = wparams.bits
        self.wparams, self.act = wparams, act
        self.bias = np.ascontiguousarray(bias, np.float32)
        q = quantize(w, wparams, rt="numpy")  # (K, N) int8 on the b-bit grid
        self.scale_w = np.ascontiguousarray(np.broadcast_to(wparams.scale, (self.n,)), np.float32)
        self.w_hat = (q.astype(np.float32) * self.scale_w).astype(np.float32)
        self.weight_mse = float(np.mean((self.w_hat.astype(np.float64) - w) ** 2))
        if act is not None:
            self.w8, self.w4 = Int8Weights(q), None
        else:
            self.w8, self.w4 = None, Int4Weights(pack_int4(np.ascontiguousarray(q.T), rt="numpy"),
                                                 self.scale_w, k=self.k, bias=self.bias)

    @property
    def kernel(self) -> str:
        return "int8_matmul" if self.w8 is not None else "int4_gemv"

    @property
    def nbytes(self) -> int:
        return linear_nbytes(self.k, self.n, self.bits)

    def __call__(self, x2: np.ndarray, rt: Runtime) -> np.ndarray:
        if self.w8 is not None:
            return int8_linear(x2, self.act, self.w8, self.scale_w, bias=self.bias, rt=rt, owner=self)
        return int4_gemv(x2, self.w4, rt=rt)


@dataclass
class LayerReport:
    name: str
    kind: str
    shape: tuple[int, int]  # (K, N) of the product
    bits: int
    kernel: str
    nbytes: int
    weight_mse: float
    calibrator: str = ""  # the weights' calibrator that ran, e.g. "kl->minmax" (see QuantParams)


class QuantizedModel:
    """A float model's copy whose linear layers run on integer kernels.

    ``forward``/``predict``/``evaluate`` work like the float model's; ``layers`` describes each
    linear layer; ``nbytes`` is the stored size; ``float_nbytes`` the float32 original's.
    """

    def __init__(self, model, reports: list[LayerReport], method: str, per_channel: bool):
        self.model = model
        self.layers = reports
        self.method, self.per_channel = method, per_channel
        self.float_nbytes = model.nbytes()
        linear_params = sum(r.shape[0] * r.shape[1] + r.shape[1] for r in reports)
        self.nbytes = 4 * (model.n_params() - linear_params) + sum(r.nbytes for r in reports)

    @property
    def bits(self) -> dict[str, int]:
        return {r.name: r.bits for r in self.layers}

    def forward(self, x, rt: Runtime | str | None = None) -> np.ndarray:
        return self.model.forward(x, rt)

    __call__ = forward

    def predict(self, x, rt: Runtime | str | None = None, batch_size: int = 512) -> np.ndarray:
        return self.model.predict(x, rt, batch_size)

    def evaluate(self, x, y, rt: Runtime | str | None = None) -> float:
        return evaluate(self.model, x, y, rt=rt)

    def __repr__(self) -> str:
        bits = sorted(set(self.bits.values()))
        return (f"QuantizedModel({self.model.kind}, {self.method}, bits={bits}, "
                f"{'per-channel' if self.per_channel else 'per-tensor'}, {self.nbytes:,} bytes "
                f"vs {self.float_nbytes:,} float32)")


class _Recorder:
    """Stands in for ``layer.product`` during calibration: float product, inputs kept."""

    def __init__(self, layer):
        self.layer, self.inputs = layer, []

    def __call__(self, x2, rt):
        self.inputs.append(x2)
        from ..ops import matmul

        return matmul(x2, self.layer.weight_matrix(), rt) + self.layer.bias


def layer_inputs(model, calib_x, rt: Runtime | str | None = None) -> dict[str, np.ndarray]:
    """The (rows, K) input matrix of every linear layer's product on ``calib_x``."""
    recorders = {}
    for name, layer in model.linear_layers():
        recorders[name] = layer.product = _Recorder(layer)
    try:
        model.forward(calib_x, rt)
    finally:
        for _, layer in model.linear_layers():
            layer.product = None
    return {name: np.concatenate(r.inputs) for name, r in recorders.items()}


def _bits_for(bits, names: list[str]) -> dict[str, int]:
    if isinstance(bits, dict):
        unknown = sorted(set(bits) - set(names))
        if unknown:
            raise InputError("bits", f"no linear layers named {unknown}; layers: {names}")
        return {n: _check_layer_bits(bits.get(n, 8)) for n in names}
    b = _check_layer_bits(bits)
    return {n: b for n in names}


def quantize_model(model, calib_x, *, method: str = "minmax", bits=8, per_channel: bool = True,
                   rt: Runtime | str | None = None, act_method: str | None = None) -> QuantizedModel:
    """Post-training quantization of every linear layer of ``model`` (which is left unchanged).

    Args:
        calib_x: (n, features) calibration inputs (a few hundred training rows suffice).
        method: weight calibrator (``"minmax"``, ``"percentile"``, ``"kl"``, ``"mse"``);
            ``act_method`` the activations' (default: the same).
        bits: 2..8 for every layer, or ``{layer name: bits}`` (32 keeps a layer in float).
        per_channel: one weight scale per output channel, else one per tensor.

    Returns a :class:`QuantizedModel` that runs on the integer kernels of ``rt``.
    """
    choice(method, "method", METHODS)
    act_method = act_method or method
    choice(act_method, "act_method", METHODS)
    calib_x = as_array(calib_x, "calib_x", ndim=2, finite=True)
    if calib_x.shape[0] == 0:
        raise InputError("calib_x", "no calibration rows")
    qmodel = model.copy()
    names = [n for n, _ in qmodel.linear_layers()]
    layer_bits = _bits_for(bits, names)
    inputs = layer_inputs(qmodel, calib_x, "numpy")
    reports = []
    for name, layer in qmodel.linear_layers():
        w = layer.weight_matrix()
        b = layer_bits[name]
        if b == FLOAT_BITS:
            reports.append(LayerReport(name, layer.kind, w.shape, b, "sgemm", linear_nbytes(*w.shape, b),
                                       0.0))
            continue
        wparams = calibrate(w, method, bits=b, symmetric=True, axis=1 if per_channel else None)
        act = calibrate(inputs[name], act_method, bits=8, symmetric=False) if b > 4 else None
        ql = layer.product = QuantizedLinear(name, w, layer.bias, wparams, act)
        reports.append(LayerReport(name, layer.kind, w.shape, b, ql.kernel, ql.nbytes, ql.weight_mse,
                                   wparams.calibrator))
    return QuantizedModel(qmodel, reports, method, per_channel)


# -- quantization-aware training ---------------------------------------------------------------
class FakeQuant:
    """``layer.fake_quant`` hook: fake-quantized weights (and optionally activations) with the
    straight-through estimator. ``recalibrate`` refreshes the weight range from the current
    weights (and the activation range from recorded inputs)."""

    def __init__(self, method: str, bits: int, per_channel: bool, act_bits: int | None):
        self.method, self.bits, self.per_channel, self.act_bits = method, bits, per_channel, act_bits
        self.wparams: QuantParams | None = None
        self.aparams: QuantParams | None = None

    def recalibrate(self, w: np.ndarray, x: np.ndarray | None = None) -> None:
        self.wparams = calibrate(w, self.method, bits=self.bits, axis=1 if self.per_channel else None)
        if self.act_bits is not None and x is not None:
            self.aparams = calibrate(x, self.method, bits=self.act_bits, symmetric=False)

    def weight(self, w):
        if self.wparams is None:
            self.recalibrate(w)
        return fake_quantize(w, self.wparams, rt="numpy", return_mask=True)

    def activation(self, x):
        if self.aparams is None:
            return x, None
        return fake_quantize(x, self.aparams, rt="numpy", return_mask=True)


def qat_train(model, data, *, bits: int = 4, method: str = "mse", per_channel: bool = True,
              epochs: int = 5, lr: float = 2e-4, batch_size: int = 32, calib_size: int = 512,
              on_step: Callable[[dict], object] | None = None, seed: int = 0,
              rt: Runtime | str | None = None) -> QuantizedModel:
    """Quantization-aware fine-tuning, then :func:`quantize_model` with the same settings.

    A copy of ``model`` trains with every linear layer's weights fake-quantized to ``bits``
    (and its inputs to 8 bits when ``bits > 4``, as the integer kernels will see them); the
    backward pass uses the straight-through estimator (gradient 1 inside the clipping range, 0
    outside). Ranges are re-calibrated with ``method`` at the start of every epoch. ``on_step``
    receives :func:`~workbench.nn.train`'s records. Returns the quantized fine-tuned model.
    """
    bits = check_bits(bits)
    choice(method, "method", METHODS)
    act_bits = 8 if bits > 4 else None
    rt = resolve_rt(rt)
    student = model.copy()
    hooks = {}
    for name, layer in student.linear_layers():
        hooks[name] = layer.fake_quant = FakeQuant(method, bits, per_channel, act_bits)
    calib = as_array(data.x_train, "data.x_train", ndim=2, finite=True)[:calib_size]

    def recalibrate():
        for _, layer in student.linear_layers():
            layer.fake_quant = None
        inputs = layer_inputs(student, calib, "numpy") if act_bits else {}
        for name, layer in student.linear_layers():
            hooks[name].recalibrate(layer.weight_matrix(), inputs.get(name))
            layer.fake_quant = hooks[name]

    for epoch in range(int(epochs)):
        recalibrate()

        def step(record, epoch=epoch):
            if on_step is not None:
                return on_step({**record, "epoch": epoch})

        done = train(student, data, epochs=1, lr=lr, batch_size=batch_size, on_step=step,
                     seed=seed + epoch, rt=rt)
        if not done:
            break
    for _, layer in student.linear_layers():
        layer.fake_quant = None
    return quantize_model(student, calib, method=method, bits=bits, per_channel=per_channel, rt=rt)


# -- mixed precision -------------------------------------------------------------------------------
@dataclass
class MixedPrecisionResult:
    """``allocation``: bits per linear layer; ``accuracy`` of the quantized model on the test
    split; ``nbytes`` its size; ``budget`` in bytes; ``sensitivity[layer][bits]``: validation loss
    increase with only that layer quantized; ``model``: the :class:`QuantizedModel`."""

    allocation: dict[str, int]
    accuracy: float
    nbytes: int
    budget: int
    float_accuracy: float
    float_nbytes: int
    sensitivity: dict[str, dict[int, float]] = field(default_factory=dict)
    model: QuantizedModel | None = None


def _loss(model, x, y, rt) -> float:
    return cross_entropy(model.forward(x, rt), y)[0]


def layer_sensitivity(model, x, y, candidate_bits, *, method: str = "mse", per_channel: bool = True,
                      rt: Runtime | str | None = None) -> dict[str, dict[int, float]]:
    """Loss increase on (x, y) when one layer's weights alone are fake-quantized to each bits."""
    base = _loss(model, x, y, rt)
    out: dict[str, dict[int, float]] = {}
    for name, layer in model.linear_layers():
        out[name] = {}
        for b in candidate_bits:
            if b == FLOAT_BITS:
                out[name][b] = 0.0
                continue
            layer.fake_quant = FakeQuant(method, b, per_channel, None)
            try:
                out[name][b] = max(_loss(model, x, y, rt) - base, 0.0)
            finally:
                layer.fake_quant = None
    return out


def mixed_precision(model, data, *, validation, candidate_bits=(4, 8, 32), budget=0.2, method: str = "mse",
                    per_channel: bool = True, rt: Runtime | str | None = None) -> MixedPrecisionResult:
    """Per-layer bit allocation under a size budget, from per-layer sensitivity.

    Sensitivity is measured on ``validation = (x_val, y_val)``: held-out rows the model did not
    train on (``data.split_validation(n)`` carves them before training); rows it trained on
    would rank layers by how well they memorized, not by what quantization costs. The test split
    is only used for the final accuracy. The allocation minimizes the summed sensitivities subject to
    ``size <= budget`` (bytes, or a fraction of the float32 size when ``budget <= 1``): exactly
    by enumeration when there are at most 50,000 allocations, else greedily (lower the layer whose
    next step down costs least loss per byte saved). Raises :class:`InputError` when even the
    smallest allocation exceeds the budget.
    """
    rt = resolve_rt(rt)
    cands = sorted({_check_layer_bits(b) for b in candidate_bits})
    if not cands:
        raise InputError("candidate_bits", "expected at least one bit width")
    float_nbytes = model.nbytes()
    if isinstance(budget, bool) or not isinstance(budget, (int, float, np.number)) or budget <= 0:
        raise InputError("budget", f"expected bytes or a fraction of the float size, got {budget!r}")
    budget_bytes = int(budget * float_nbytes) if budget <= 1 else int(budget)
    if not isinstance(validation, (tuple, list)) or len(validation) != 2:
        raise InputError("validation", "expected (x_val, y_val): held-out rows, e.g. from "
                                       "data.split_validation(400) before training")
    xv = as_array(validation[0], "validation", ndim=2, finite=True)
    yv = np.asarray(validation[1])
    if xv.shape[0] == 0 or yv.shape != (xv.shape[0],):
        raise InputError("validation", f"expected x (n, features) and y (n,) with n > 0, got {xv.shape} "
                                       f"and {yv.shape}")
    sens = layer_sensitivity(model, xv, yv, cands, method=method, per_channel=per_channel, rt=rt)
    layers = model.linear_layers()
    names = [n for n, _ in layers]
    shapes = {n: l.weight_matrix().shape for n, l in layers}
    other = 4 * (model.n_params() - sum(k * n + n for k, n in shapes.values()))

    def size(alloc: dict[str, int]) -> int:
        return other + sum(linear_nbytes(*shapes[name], b) for name, b in alloc.items())

    smallest = {n: cands[0] for n in names}
    if size(smallest) > budget_bytes:
        raise InputError("budget", f"{budget_bytes:,} bytes is below the smallest allocation "
                                   f"({size(smallest):,} bytes at {cands[0]} bits everywhere)")
    if len(cands) ** len(names) <= 50_000:
        best, best_cost = smallest, np.inf
        for combo in product(cands, repeat=len(names)):
            alloc = dict(zip(names, combo))
            if size(alloc) <= budget_bytes:
                cost = sum(sens[n][b] for n, b in alloc.items())
                if cost < best_cost - 1e-12 or (abs(cost - best_cost) <= 1e-12 and size(alloc) < size(best)):
                    best, best_cost = alloc, cost
        alloc = best
    else:
        alloc = {n: cands[-1] for n in names}
        while size(alloc) > budget_bytes:
            options = []
            for n in names:
                i = cands.index(alloc[n])
                if i == 0:
                    continue
                trial = {**alloc, n: cands[i - 1]}
                saved = size(alloc) - size(trial)
                options.append(((sens[n][cands[i - 1]] - sens[n][alloc[n]]) / max(saved, 1), n, trial))
            alloc = min(options, key=lambda o: o[0])[2]
    calib = as_array(data.x_train, "data.x_train", ndim=2, finite=True)[:512]  # calibration: training rows
    qm = quantize_model(model, calib, method=method, bits=alloc, per_channel=per_channel, rt=rt)
    return MixedPrecisionResult(
        allocation=alloc, accuracy=qm.evaluate(data.x_test, data.y_test, rt), nbytes=qm.nbytes,
        budget=budget_bytes, float_accuracy=evaluate(model, data.x_test, data.y_test, rt=rt),
        float_nbytes=float_nbytes, sensitivity=sens, model=qm)
