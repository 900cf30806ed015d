"""workbench.quant: conventions, calibrators, integer kernels on every backend, quantized models."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import data, nn, quant
from workbench.errors import InputError
from workbench.quant.int8 import MAX_K, MAX_K_ZERO_POINT

from .conftest import rel_error

RNG = np.random.default_rng(0)


# -- conventions ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", range(2, 9))
def test_grid_conventions(bits):
    assert quant.qrange(bits, True) == (-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1)
    assert quant.qrange(bits, False) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    x = RNG.standard_normal(1000).astype(np.float32)
    for symmetric in (True, False):
        p = quant.calibrate(x, "minmax", bits=bits, symmetric=symmetric)
        q = quant.quantize(x, p, rt="numpy")
        assert q.min() >= p.qmin and q.max() <= p.qmax
        assert p.qmin <= int(p.zero_point) <= p.qmax
        # zero is exactly representable; min-max keeps the error under half a step
        assert quant.dequantize(quant.quantize(np.zeros(1), p), p)[0] == 0.0
        err = np.abs(quant.fake_quantize(x, p) - x)
        assert err.max() <= 0.5 * float(p.scale) * (1 + 1e-5)


def test_rounding_is_half_to_even():
    p = quant.calibrate(np.array([-127.0, 127.0]), "minmax", bits=8)  # scale 1
    assert float(p.scale) == 1.0
    q = quant.quantize(np.array([0.5, 1.5, 2.5, -0.5, -1.5]), p, rt="numpy")
    np.testing.assert_array_equal(q, [0, 2, 2, 0, -2])


def test_all_zero_channel_gets_unit_scale():
    w = np.zeros((4, 3), np.float32)
    w[:, 1] = [1, -2, 3, 0]
    p = quant.calibrate(w, "minmax", bits=8, axis=1)
    assert p.scale[0] == 1.0 and p.scale[2] == 1.0
    np.testing.assert_allclose(quant.fake_quantize(w, p), w, atol=3 / 127)


# -- calibrators ----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", quant.METHODS)
@pytest.mark.parametrize("symmetric", [True, False])
def test_calibrators_clip_within_range(method, symmetric):
    x = RNG.standard_normal(20000).astype(np.float32)
    x[:5] *= 30  # outliers
    p = quant.calibrate(x, method, bits=8, symmetric=symmetric, percentile=99.9)
    assert p.method == method and p.per_channel is False
    lo, hi = float(p.lo), float(p.hi)
    amax = float(np.abs(x).max())
    if method == "minmax":  # the whole range, exactly
        assert (lo, hi) == ((-amax, amax) if symmetric else (float(x.min()), float(x.max())))
    elif method == "percentile":
        expect = np.percentile(np.abs(x), 99.9) if symmetric else np.percentile(x, 99.9)
        assert hi == pytest.approx(expect, rel=1e-6)
    elif method == "mse":  # no clipping fraction on the grid does better than the one chosen
        err = quant.quantization_error(x, p)
        for frac in (0.5, 0.8, 1.25):
            other = quant.calibrate(np.clip(x, lo * frac, hi * frac), "minmax", bits=8, symmetric=symmetric)
            assert err <= quant.quantization_error(x, other) * 1.001
    if method in ("percentile", "kl"):  # the outliers (0.025% of the values) are clipped
        assert hi < 0.5 * x.max()


def test_mse_beats_minmax_with_outliers_and_kl_finds_the_bulk():
    x = RNG.standard_normal(50000).astype(np.float32)
    x[:20] *= 40
    errs = {m: quant.quantization_error(x, quant.calibrate(x, m, bits=4)) for m in quant.METHODS}
    assert errs["mse"] <= min(errs.values()) + 1e-12
    assert errs["mse"] < errs["minmax"]


def _entropy_threshold(values, levels=128, bins=2048):
    """TensorRT's entropy calibration (Migacz, "8-bit inference with TensorRT", 2017) written
    again, independently of ours, with the merge convention our docstring states: P = the first
    i bins with the outliers added to bin i - 1; Q = the same i bins (without the outliers),
    bin j merged into level floor(j L / i), each level spread evenly over its nonzero bins;
    KL(P || Q) from SciPy; the threshold is the centre of the best bin."""
    from scipy.stats import entropy

    hist, edges = np.histogram(values, bins=bins, range=(0.0, float(values.max())))
    hist = hist.astype(np.float64)
    best, best_i = np.inf, bins
    for i in range(levels, bins + 1):
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        q = np.zeros(i)
        # floor(j L / i) == lev exactly for j in [ceil(lev i / L), ceil((lev + 1) i / L))
        bounds = [-(-lev * i // levels) for lev in range(levels + 1)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            part = hist[a:b]
            used = part > 0
            if used.any():
                q[a:b][used] = part.sum() / used.sum()
        if np.any((p > 0) & (q == 0)):
            continue  # KL(P || Q) is infinite for this candidate
        kl = entropy(p, q)
        if kl < best:
            best, best_i = kl, i
    return (best_i + 0.5) * (edges[1] - edges[0])


@pytest.mark.parametrize("dist", ["normal", "laplace", "relu"])
def test_kl_threshold_agrees_with_an_independent_entropy_calibration(dist):
    rng = np.random.default_rng(4)
    x = {"normal": rng.standard_normal(60000), "laplace": rng.laplace(size=60000),
         "relu": np.maximum(rng.standard_normal(60000), 0)}[dist].astype(np.float32)
    x[:30] *= 12  # a few outliers, as activations have
    ours = float(quant.calibrate(x, "kl", bits=8).hi)
    ref = _entropy_threshold(np.abs(x).astype(np.float64))
    assert ours == pytest.approx(ref, rel=0.01), (ours, ref)
    assert ours < 0.5 * np.abs(x).max()  # the outliers are clipped


def test_kl_folds_outliers_into_last_bin():
    # All mass in the first half of the range except one outlier: the threshold lands near the
    # bulk's edge, not at the outlier.
    x = np.concatenate([RNG.uniform(0, 1, 10000), [10.0]]).astype(np.float32)
    t = quant.calibrate(x, "kl", bits=8, symmetric=False).hi
    assert 0.9 <= float(t) <= 1.5


@pytest.mark.parametrize("method", quant.METHODS)
def test_per_channel_error_not_above_per_tensor(method):
    w = RNG.standard_normal((64, 32)).astype(np.float32) * np.linspace(0.1, 3, 32, dtype=np.float32)
    for bits in (4, 8):
        pc = quant.calibrate(w, method, bits=bits, axis=1)
        pt = quant.calibrate(w, method, bits=bits)
        assert pc.scale.shape == (32,)
        assert quant.quantization_error(w, pc) <= quant.quantization_error(w, pt) * 1.0001


@pytest.mark.parametrize("kwargs, arg", [
    (dict(x=np.array([1.0, np.nan])), "x"),
    (dict(x=np.array([1.0, np.inf])), "x"),
    (dict(x=np.zeros(0)), "x"),
    (dict(x=np.ones(4), bits=1), "bits"),
    (dict(x=np.ones(4), bits=9), "bits"),
    (dict(x=np.ones(4), bits=4.0), "bits"),
    (dict(x=np.ones((2, 3)), axis=2), "axis"),
    (dict(x=np.ones((2, 3)), axis=-3), "axis"),
    (dict(x=np.ones(4), method="entropy"), "method"),
    (dict(x=np.ones(4), method="percentile", percentile=0), "percentile"),
    (dict(x=np.ones(4), method="percentile", percentile=100.5), "percentile"),
])
def test_calibrate_bad_input(kwargs, arg):
    with pytest.raises(InputError) as info:
        quant.calibrate(**kwargs)
    assert info.value.argument == arg


# -- elementwise ops on every backend ------------------------------------------------------------
@pytest.mark.parametrize("axis", [None, 0, 1])
@pytest.mark.parametrize("symmetric", [True, False])
def test_quantize_ops_match_reference(cl_runtime, axis, symmetric):
    x = (RNG.standard_normal((37, 29)) * 3).astype(np.float32)
    p = quant.calibrate(x, "mse", bits=5, symmetric=symmetric, axis=axis)
    q_ref = quant.quantize(x, p, rt="numpy")
    np.testing.assert_array_equal(quant.quantize(x, p, rt=cl_runtime), q_ref)
    np.testing.assert_array_equal(quant.dequantize(q_ref, p, rt=cl_runtime),
                                  quant.dequantize(q_ref, p, rt="numpy"))
    np.testing.assert_array_equal(quant.fake_quantize(x, p, rt=cl_runtime),
                                  quant.fake_quantize(x, p, rt="numpy"))


@pytest.mark.parametrize("axis", [None, 1])
def test_quantize_reference_follows_the_conventions(axis):
    """The NumPy reference against the conventions written out by hand (float32 division, round
    half to even, clamp): q = clamp(rint(x / s) + z, qmin, qmax), x^ = (q - z) s."""
    x = (RNG.standard_normal((37, 29)) * 3).astype(np.float32)
    p = quant.calibrate(x, "minmax", bits=5, symmetric=False, axis=axis)
    s = np.asarray(p.scale, np.float32)  # (29,) per output channel (axis 1) broadcasts over rows
    z = np.asarray(p.zero_point, np.float64)
    q = np.clip(np.rint(x / s).astype(np.float64) + z, p.qmin, p.qmax)
    assert len(np.unique(q)) > 16  # the grid is used, not collapsed
    np.testing.assert_array_equal(quant.quantize(x, p, rt="numpy").astype(np.float64), q)
    np.testing.assert_allclose(quant.dequantize(q.astype(np.int8), p, rt="numpy"), (q - z) * s, rtol=1e-6)


@pytest.mark.parametrize("k", [1, 2, 7, 64])
def test_pack_int4_round_trip(runtime, k):
    q = RNG.integers(-8, 8, (5, k)).astype(np.int8)
    packed = quant.pack_int4(q, rt=runtime)
    assert packed.shape == (5, (k + 1) // 2) and packed.dtype == np.uint8
    if runtime.is_opencl:  # on NumPy this would compare the reference with itself
        np.testing.assert_array_equal(packed, quant.pack_int4(q, rt="numpy"))
    np.testing.assert_array_equal(quant.unpack_int4(packed, k, rt=runtime), q)


def test_pack_int4_layout():
    # element 0 -> low nibble, element 1 -> high nibble, two's complement, odd length padded
    np.testing.assert_array_equal(quant.pack_int4(np.array([1, -1, -8], np.int8)), [0xF1, 0x08])
    with pytest.raises(InputError, match="q"):
        quant.pack_int4(np.array([8]))
    with pytest.raises(InputError, match="k"):
        quant.unpack_int4(np.zeros(2, np.uint8), k=5)


# -- integer kernels ---------------------------------------------------------------------------------
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (5, 7, 3), (33, 17, 65), (130, 129, 200), (64, 48, 1500)])
def test_int8_matmul_is_exact(runtime, m, n, k):
    a = RNG.integers(-128, 128, (m, k)).astype(np.int8)
    b = RNG.integers(-128, 128, (k, n)).astype(np.int8)
    ref = a.astype(np.int64) @ b.astype(np.int64)
    c = quant.int8_matmul(a, b, rt=runtime)
    assert c.dtype == np.int32 and c.shape == (m, n)
    np.testing.assert_array_equal(c, ref)


def test_int8_matmul_extremes_exact(runtime):
    k = 3000  # several exact FP32 blocks on the CPU path, sums beyond 2^24
    a = np.full((9, k), -128, np.int8)
    b = np.full((k, 20), -128, np.int8)
    b[::3] = 127
    np.testing.assert_array_equal(quant.int8_matmul(a, b, rt=runtime),
                                  a.astype(np.int64) @ b.astype(np.int64))


@pytest.mark.parametrize("out_scale", [None, 0.37])
def test_int8_matmul_fused_epilogue_matches_reference(runtime, out_scale):
    m, n, k = 50, 70, 90
    a = RNG.integers(-128, 128, (m, k)).astype(np.int8)
    b = RNG.integers(-127, 128, (k, n)).astype(np.int8)
    kw = dict(zero_point_a=-7, scale_a=0.013, scale_b=RNG.uniform(0.001, 0.01, n).astype(np.float32),
              bias=RNG.standard_normal(n).astype(np.float32), relu=True, out_scale=out_scale,
              out_zero_point=3 if out_scale else 0)
    ref = quant.int8_matmul(a, b, rt="numpy", **kw)
    got = quant.int8_matmul(a, b, rt=runtime, **kw)
    assert got.dtype == ref.dtype == (np.int8 if out_scale else np.float32)
    np.testing.assert_array_equal(got, ref)
    # and the float epilogue is what it says
    if out_scale is None:
        acc = a.astype(np.int64) @ b.astype(np.int64) - (-7) * b.astype(np.int64).sum(0)
        expect = np.maximum(acc * 0.013 * kw["scale_b"] + kw["bias"], 0)
        assert rel_error(got, expect) < 1e-6


@pytest.mark.parametrize("m, n, k", [(1, 10, 77), (3, 130, 64), (1, 300, 1000)])
def test_int4_gemv_matches_reference(runtime, m, n, k):
    q = RNG.integers(-8, 8, (n, k)).astype(np.int8)
    scales = RNG.uniform(0.01, 0.1, n).astype(np.float32)
    x = RNG.standard_normal((m, k)).astype(np.float32)
    bias = RNG.standard_normal(n).astype(np.float32)
    packed = quant.pack_int4(q)
    expect = x.astype(np.float64) @ (q * scales[:, None]).T.astype(np.float64) + bias
    y = quant.int4_gemv(x, packed, scales=scales, rt=runtime, k=k, bias=bias)
    assert y.shape == (m, n) and rel_error(y, expect) < 1e-5
    y1 = quant.int4_gemv(x[0], packed, scales=scales, rt=runtime, k=k)
    assert y1.shape == (n,)


GEMV_PATHS = {
    "rows": {"GEMV_ROWS": 1, "ROWS": 4},
    "reduce-magic": {"WG": 64, "ROWS": 8},
    "reduce-subnormal": {"WG": 64, "ROWS": 8, "UNPACK_DENORMAL": 1},
    "reduce-subnormal-small": {"WG": 32, "ROWS": 2, "UNPACK_DENORMAL": 1},
}


@pytest.mark.parametrize("path", sorted(GEMV_PATHS))
@pytest.mark.parametrize("magnitude", [1.0, 1e-30, 1e30])
def test_every_int4_gemv_path_matches_reference(cl_runtime, path, magnitude):
    from workbench.quant.config import QuantConfig, quant_config, set_quant_config

    base = quant_config(cl_runtime)
    keep = {k: v for k, v in base.params.items() if k not in ("WG", "ROWS", "GEMV_ROWS", "UNPACK_DENORMAL")}
    set_quant_config(cl_runtime, QuantConfig(base.variant, {**keep, **GEMV_PATHS[path]}, base.dot))
    try:
        if "UNPACK_DENORMAL" in GEMV_PATHS[path] and not cl_runtime.info.fp_denormals:
            pytest.skip("device has no subnormal floats")
        m, n, k = 4, 37, 333  # rows past N, a partial last word, several rows of x
        q = RNG.integers(-8, 8, (n, k)).astype(np.int8)
        scales = RNG.uniform(0.01, 0.1, n).astype(np.float32)
        x = (RNG.standard_normal((m, k)) * magnitude).astype(np.float32)
        x[1] = 0.0  # an all-zero row
        x[3] = np.abs(x[3]) + magnitude  # all positive: the 8 sum x correction is large
        expect = x.astype(np.float64) @ (q * scales[:, None]).T.astype(np.float64)
        y = quant.int4_gemv(x, quant.pack_int4(q), scales=scales, rt=cl_runtime, k=k)
        assert np.all(y[1] == 0.0)
        assert rel_error(y, expect) < 1e-5
    finally:
        set_quant_config(cl_runtime, None)


def test_int4_weights_take_an_eighth_of_float32():
    n, k = 256, 512
    w = quant.Int4Weights(quant.pack_int4(RNG.integers(-8, 8, (n, k)).astype(np.int8)), np.ones(n))
    assert w.packed.nbytes * 8 == 4 * n * k
    assert w.nbytes == 4 * n * k // 8 + 4 * n


def test_integer_kernels_bad_input():
    a = np.zeros((2, 3), np.int8)
    with pytest.raises(InputError, match="a"):
        quant.int8_matmul(a.astype(np.float32), np.zeros((3, 2), np.int8))
    with pytest.raises(InputError, match="b"):
        quant.int8_matmul(a, np.zeros((4, 2), np.int8))
    with pytest.raises(InputError, match="a"):
        quant.int8_matmul(np.array([[300]]), np.zeros((1, 1), np.int8))
    with pytest.raises(InputError) as info:
        quant.int8_matmul(np.zeros((1, MAX_K + 1), np.int8), np.zeros((MAX_K + 1, 1), np.int8))
    assert "overflow" in str(info.value)
    with pytest.raises(InputError, match="scale_b"):
        quant.int8_matmul(a, np.zeros((3, 2), np.int8), scale_a=0.1)
    with pytest.raises(InputError, match="x"):
        quant.int4_gemv(np.zeros(5), np.zeros((2, 2), np.uint8), scales=np.ones(2))
    with pytest.raises(InputError, match="scales"):
        quant.int4_gemv(np.zeros(4), np.zeros((2, 2), np.uint8), scales=np.ones(3))


# -- quantized models ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained():
    ds = data.digits()
    models = {}
    for make, epochs in ((nn.MLP, 20), (nn.ConvNet, 12), (nn.AttentionNet, 10)):
        m = make()
        nn.train(m, ds, epochs=epochs, rt="numpy")
        models[m.kind] = m
    return ds, models


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["MLP", "ConvNet"])
def test_int8_per_channel_ptq_within_half_a_point(trained, kind):
    ds, models = trained
    model = models[kind]
    base = nn.evaluate(model, ds.x_test, ds.y_test)
    qm = quant.quantize_model(model, ds.x_train[:512], method="minmax", bits=8, per_channel=True)
    assert all(r.kernel == "int8_matmul" for r in qm.layers)
    # the integer model is not the float one under another name
    assert not np.array_equal(qm.forward(ds.x_test[:32]), model.forward(ds.x_test[:32], "numpy"))
    assert qm.evaluate(ds.x_test, ds.y_test) >= base - 0.005
    assert qm.nbytes < 0.3 * qm.float_nbytes


def test_quantized_model_runs_the_integer_path_bit_exact(trained, cl_runtime, monkeypatch):
    """The integer path ran, not only a label: with the float product made to fail, every model
    still runs; INT8 outputs equal the NumPy integer reference bit for bit and differ from the
    float model's (which rounding to a grid must change)."""
    import workbench.nn.layers as layers

    ds, models = trained
    x = ds.x_test[:64]
    for model in models.values():
        float_out = model.forward(x, "numpy")
        qm = quant.quantize_model(model, ds.x_train[:256], method="mse", bits=8)
        q4 = quant.quantize_model(model, ds.x_train[:256], method="mse", bits=4)
        ref8, ref4 = qm.forward(x, "numpy"), q4.forward(x, "numpy")
        assert {r.kernel for r in q4.layers} == {"int4_gemv"}
        with monkeypatch.context() as m:
            m.setattr(layers, "matmul", lambda *a,
                      **k: (_ for _ in ()).throw(AssertionError("float product ran")))
            out8, out4 = qm.forward(x, cl_runtime), q4.forward(x, cl_runtime)
        np.testing.assert_array_equal(out8, ref8)
        assert rel_error(out4, ref4) < 1e-5
        assert rel_error(ref8, float_out) > 1e-4 and rel_error(ref4, float_out) > 1e-3


def test_per_channel_layer_error_not_above_per_tensor(trained):
    ds, models = trained
    for model in models.values():
        for bits in (4, 8):
            pc = quant.quantize_model(model, ds.x_train[:256], method="minmax", bits=bits, per_channel=True)
            pt = quant.quantize_model(model, ds.x_train[:256], method="minmax", bits=bits, per_channel=False)
            for a, b in zip(pc.layers, pt.layers):
                assert a.weight_mse <= b.weight_mse * 1.0001, (model.kind, a.name, bits)


@pytest.mark.slow
def test_qat_recovers_int4_within_one_and_a_half_points(trained):
    ds, models = trained
    for kind in ("MLP", "ConvNet"):
        model = models[kind]
        base = nn.evaluate(model, ds.x_test, ds.y_test)
        steps = []
        qm = quant.qat_train(model, ds, bits=4, method="mse", epochs=3, on_step=steps.append, rt="numpy")
        assert steps and qm.evaluate(ds.x_test, ds.y_test) >= base - 0.015
        assert all(r.bits == 4 for r in qm.layers)


def test_mixed_precision_respects_budget_and_ranks_layers_on_held_out_rows(monkeypatch):
    import workbench.quant.model as qmodel

    digits = data.digits()
    rest, val = digits.split_validation(300, seed=1)
    assert rest.x_train.shape[0] + val[0].shape[0] == digits.x_train.shape[0]
    model = nn.MLP()
    nn.train(model, rest, epochs=20, rt="numpy")
    seen, real = [], qmodel.layer_sensitivity

    def spy(m, x, y, *args, **kwargs):
        seen.append(x)
        return real(m, x, y, *args, **kwargs)

    monkeypatch.setattr(qmodel, "layer_sensitivity", spy)
    res = quant.mixed_precision(model, rest, validation=val, candidate_bits=(4, 8), budget=0.2, rt="numpy")
    assert np.array_equal(seen[0], val[0])  # the layers were ranked on the held-out rows
    assert res.nbytes <= res.budget == int(0.2 * model.nbytes())
    assert set(res.allocation.values()) <= {4, 8}
    assert res.model.bits == res.allocation
    assert 0.9 <= res.accuracy <= 1.0
    loose = quant.mixed_precision(model, rest, validation=val, candidate_bits=(4, 8), budget=1.0, rt="numpy")
    assert set(loose.allocation.values()) == {8}
    with pytest.raises(InputError, match="budget"):
        quant.mixed_precision(model, rest, validation=val, candidate_bits=(4, 8), budget=100)
    with pytest.raises(InputError, match="validation"):
        quant.mixed_precision(model, rest, validation=None, candidate_bits=(4, 8))
    with pytest.raises(InputError, match="size"):
        digits.split_validation(digits.x_train.shape[0])


def test_quantize_model_bad_input(trained):
    ds, models = trained
    model = models["MLP"]
    with pytest.raises(InputError, match="method"):
        quant.quantize_model(model, ds.x_train[:10], method="median")
    with pytest.raises(InputError, match="bits"):
        quant.quantize_model(model, ds.x_train[:10], bits=12)
    with pytest.raises(InputError, match="bits"):
        quant.quantize_model(model, ds.x_train[:10], bits={"7": 4})
    with pytest.raises(InputError, match="calib_x"):
        quant.quantize_model(model, np.zeros((0, 64)))
    with pytest.raises(InputError, match="calib_x"):
        quant.quantize_model(model, np.full((3, 64), np.inf))


def test_int4_prepare_x_on_the_device_matches_its_reference(cl_runtime):
    """The subnormal unpack's operand, scaled and summed on the device, against the NumPy
    reference (subnormal_prescale): the same scaled values bit for bit, sums within rounding."""
    from workbench.quant.config import QuantConfig, quant_config, set_quant_config
    from workbench.quant.int4 import Int4Problem, Int4Weights, subnormal_prescale

    if not cl_runtime.info.fp_denormals:
        pytest.skip("device has no subnormal floats")
    base = quant_config(cl_runtime)
    keep = {k: v for k, v in base.params.items() if k not in ("WG", "ROWS", "GEMV_ROWS", "UNPACK_DENORMAL")}
    set_quant_config(cl_runtime, QuantConfig(base.variant, {**keep, "WG": 64, "ROWS": 4,
                                                            "UNPACK_DENORMAL": 1},
                                             base.dot))
    try:
        k = 1000
        x = np.stack([RNG.standard_normal(k) * 1e-30, RNG.standard_normal(k) + 3.0, np.zeros(k),
                      RNG.standard_normal(k) * 1e30]).astype(np.float32)
        w = Int4Weights(quant.pack_int4(RNG.integers(-8, 8, (5, k)).astype(np.int8)), np.ones(5, np.float32),
                        k=k)
        prob = Int4Problem(x, w, cl_runtime)
        prob.run().get()
        scaled, info = subnormal_prescale(x, w.kq)
        np.testing.assert_array_equal(prob.xp.get(), scaled)
        got = prob.info.get()
        np.testing.assert_array_equal(got[:, 1], info[:, 1])
        np.testing.assert_allclose(got[:, 0], info[:, 0], rtol=1e-6, atol=0)
    finally:
        set_quant_config(cl_runtime, None)


def test_int4_gemv_adds_the_weights_bias_and_a_call_bias(runtime):
    q = RNG.integers(-8, 8, (9, 40)).astype(np.int8)
    own, extra = RNG.standard_normal(9).astype(np.float32), RNG.standard_normal(9).astype(np.float32)
    w = quant.prepare_int4(quant.pack_int4(q), np.full(9, 0.1, np.float32), bias=own)
    x = RNG.standard_normal((2, 40)).astype(np.float32)
    plain = x.astype(np.float64) @ (0.1 * q.T.astype(np.float64))
    assert rel_error(quant.int4_gemv(x, w, rt=runtime), plain + own) < 1e-5
    assert rel_error(quant.int4_gemv(x, w, rt=runtime, bias=extra), plain + own + extra) < 1e-5


def test_int8_overflow_bound_counts_the_zero_point(runtime):
    """With z_a = -128 and a = 127, each term (a - z_a) b = 255 * 127: K = 70,000 would wrap the
    int32 sum (it returned -2.0e9 for 2.27e9), so it is refused; at the bound it is exact."""
    k = MAX_K_ZERO_POINT
    a = np.full((1, k), 127, np.int8)
    b = np.full((k, 1), -128, np.int8)
    got = quant.int8_matmul(a, b, rt=runtime, zero_point_a=-128, scale_a=1.0, scale_b=1.0)
    assert float(got[0, 0]) == float(np.float32(255 * -128 * k))
    with pytest.raises(InputError) as err:
        quant.int8_matmul(np.full((1, 70_000), 127, np.int8), np.full((70_000, 1), 127, np.int8), rt=runtime,
                          zero_point_a=-128, scale_a=1.0, scale_b=1.0)
    assert err.value.argument == "zero_point_a"


@pytest.mark.parametrize("variant", ["tiled", "packed", "pmadd"])
def test_every_int8_gemm_variant_is_exact_where_it_builds(cl_runtime, variant):
    """Each kernel variant on this device, whatever the tuning table picks by default (the GPU's
    tiled kernel also runs on a CPU device, so CI checks it too)."""
    from workbench.quant.config import QuantConfig, pmadd_params, pmadd_works, quant_config, set_quant_config

    base = quant_config(cl_runtime)
    params = {"tiled": {"BM": 128, "BN": 128, "BKW": 8, "TM": 8, "TN": 8},
              "packed": {"MR": 8, "NV": 2, "LM": 4}, "pmadd": {"MR": 4, "NB": 3, "LM": 4}}[variant]
    if variant == "pmadd":
        params = pmadd_params(cl_runtime, params)
        if params is None or not pmadd_works(cl_runtime, params):
            pytest.skip("i8gemm_pmadd needs a PoCL CPU device on an x86 host with AVX2 whose "
                        "compiler takes the inline assembly")
    set_quant_config(cl_runtime, QuantConfig(variant, params, base.dot))
    try:
        for m, n, k in [(1, 1, 1), (37, 70, 129), (130, 65, 2100)]:
            a = RNG.integers(-128, 128, (m, k)).astype(np.int8)
            b = RNG.integers(-128, 128, (k, n)).astype(np.int8)
            np.testing.assert_array_equal(quant.int8_matmul(a, b, rt=cl_runtime),
                                          a.astype(np.int64) @ b.astype(np.int64))
            kw = dict(zero_point_a=5, scale_a=0.02, scale_b=np.full(n, 0.003, np.float32), relu=True)
            np.testing.assert_array_equal(quant.int8_matmul(a, b, rt=cl_runtime, **kw),
                                          quant.int8_matmul(a, b, rt="numpy", **kw))
    finally:
        set_quant_config(cl_runtime, None)


def test_the_calibrator_that_ran_is_recorded():
    """Per-channel kl on a small layer falls back to min-max: the result says so, channel by
    channel, instead of calling min-max entropy calibration."""
    w = RNG.standard_normal((64, 10)).astype(np.float32)  # 64 values a channel: below 16 per level at 8 bits
    p = quant.calibrate(w, "kl", bits=8, axis=1)
    assert p.method == "kl" and p.calibrator == "kl->minmax"
    big = RNG.standard_normal(20000).astype(np.float32)
    assert quant.calibrate(big, "kl", bits=8).calibrator == "kl"
    mixed = np.concatenate([RNG.standard_normal((4096, 1)),
                            RNG.standard_normal((4096, 1))[:64].repeat(64, 0)], 1)
    mixed[64:, 1] = 0.0
    assert quant.calibrate(mixed.astype(np.float32), "minmax", axis=1).calibrator == "minmax"


def test_the_subsample_does_not_alias_with_columns():
    """A row-major (rows, 9) im2col input: the kl/mse searches see every column about equally."""
    from workbench.quant.calibrate import MAX_SAMPLES, subsample

    rows, k = 32768, 9
    x = np.tile(np.arange(k, dtype=np.float64), rows)  # element i belongs to column i % 9
    counts = np.bincount(subsample(x).astype(int), minlength=k)
    assert counts.min() > 0.9 * MAX_SAMPLES / k  # an evenly spaced subset gave 1 to 9,363
