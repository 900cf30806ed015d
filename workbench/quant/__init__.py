"""Quantization on OpenCL with real integer kernels.

Calibrate (:func:`calibrate`: minmax, percentile, kl, mse; per tensor or per channel), quantize
(:func:`quantize`, :func:`dequantize`, :func:`fake_quantize`, :func:`pack_int4`,
:func:`unpack_int4`), multiply in integers (:func:`int8_matmul`, :func:`int4_gemv`), and compress
whole models (:func:`quantize_model`, :func:`qat_train`, :func:`mixed_precision`). Conventions:
:mod:`workbench.quant.params`.
"""

from .calibrate import METHODS, calibrate, quantization_error
from .int4 import Int4Weights, int4_gemv, prepare_int4
from .int8 import Int8Weights, int8_matmul, prepare_int8
from .params import QuantParams, dequantize, fake_quantize, pack_int4, qrange, quantize, unpack_int4

__all__ = [
    "METHODS", "Int4Weights", "Int8Weights", "QuantParams", "calibrate", "dequantize",
    "fake_quantize", "int4_gemv", "int8_matmul", "pack_int4", "prepare_int4", "prepare_int8",
    "qrange", "quantization_error", "quantize", "unpack_int4",
]
from .model import (
    LayerReport,
    MixedPrecisionResult,
    QuantizedLinear,
    QuantizedModel,
    layer_sensitivity,
    measure_latency,
    mixed_precision,
    qat_train,
    quantize_model,
)

__all__ += [
    "LayerReport", "MixedPrecisionResult", "QuantizedLinear", "QuantizedModel", "layer_sensitivity",
    "measure_latency", "mixed_precision", "qat_train", "quantize_model",
]
