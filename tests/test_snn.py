"""Spiking networks: the LIF neuron against its analytic solution, the OpenCL engine against the
NumPy reference on a network that uses every feature, STDP's window, encoders, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from workbench import snn
from workbench.errors import InputError
from workbench.runtime import get_runtime
from workbench.snn.rng import uniform

from .conftest import OPENCL_IDS

ZERO = snn.LIFParams(tau_m=20.0, v_rest=0.0, v_reset=0.0, v_th=15.0, t_ref=2.0, r_m=10.0, dt=0.1)


# -- the neuron -----------------------------------------------------------------------------------
@pytest.mark.parametrize("params",
                         [ZERO, snn.LIFParams(dt=0.1), snn.LIFParams(tau_m=10.0, t_ref=5.0, dt=0.25)])
def test_lif_matches_the_analytic_first_spike_and_intervals(runtime, params):
    """Constant input I: first spike at t* = tau ln(R I / (R I - v_th)), then every t_ref + t*,
    each within one dt (the issue's target), on every backend."""
    currents = np.array([1.6, 2.0, 3.0, 5.0, 12.0])
    net = snn.SNNNetwork()
    net.add(snn.LIFLayer(currents.size, params, bias=currents))
    rec = snn.simulate(net, duration=400.0, rt=runtime)
    for i, trains in enumerate(rec.spike_trains()):
        first = params.time_to_threshold(currents[i])
        if params.v_rest == 0:  # the issue's form
            drive = params.r_m * currents[i]
            assert first == pytest.approx(params.tau_m * math.log(drive / (drive - params.v_th)))
        assert trains.size > 3
        assert 0 <= trains[0] - first < params.dt
        isi = np.diff(trains)
        assert np.all(np.abs(isi - params.interspike_interval(currents[i])) < params.dt)


def test_lif_below_threshold_never_fires_and_relaxes_to_v_inf(runtime):
    p = snn.LIFParams(dt=0.5)
    net = snn.SNNNetwork()
    net.add(snn.LIFLayer(3, p, bias=[0.0, 1.0, 1.49], name="exc"))
    sim = net.simulator(runtime, record_v={"exc": [0, 1, 2]})
    rec = sim.run(2000)
    assert rec.times.size == 0
    v_inf = p.v_rest + p.r_m * np.array([0.0, 1.0, 1.49])
    np.testing.assert_allclose(sim.state("exc")["v"], v_inf, atol=1e-3)
    # exact integration: v(t) = v_inf + (v0 - v_inf) exp(-t / tau)
    t = (np.arange(1, 2001) * p.dt)[:, None]
    expect = v_inf + (p.v_rest - v_inf) * np.exp(-t / p.tau_m)
    np.testing.assert_allclose(rec.v["exc"][1], expect, atol=1e-3)


def test_refractory_period_holds_the_reset(runtime):
    p = snn.LIFParams(t_ref=5.0, dt=0.1)
    net = snn.SNNNetwork()
    net.add(snn.LIFLayer(1, p, bias=10.0, name="exc"))
    rec = net.simulator(runtime, record_v={"exc": [0]}).run(500)
    assert np.diff(rec.times).min() >= p.t_ref
    first = int(round(rec.times[0] / p.dt)) - 1  # the step of the first spike
    held = rec.v["exc"][1][first:first + p.ref_steps + 1, 0]
    np.testing.assert_array_equal(held, p.v_reset)


# -- the OpenCL engine against the NumPy reference --------------------------------------------------
def _everything_network():
    """Poisson and spike-array inputs, dense multiplicative STDP, CSR recurrence with
    per-synapse delays, additive STDP on CSR, an adaptive threshold."""
    rng = np.random.default_rng(0)
    p = snn.LIFParams(dt=0.5)
    net = snn.SNNNetwork()
    inp = net.add(snn.PoissonGroup(40, rates=rng.uniform(5, 60, 40), seed=3, name="inp"))
    src = net.add(snn.SpikeSource(snn.rate_encode(rng.uniform(0, 1, 10), 100, dt=0.5, max_rate=80, seed=2),
                                  loop=True, name="src"))
    exc = net.add(snn.LIFLayer(30, p, bias=rng.uniform(0.5, 1.6, 30), theta_plus=0.5, tau_theta=50.0,
                               name="exc"))
    net.connect(inp, exc, rng.uniform(0, 3, (40, 30)), delay=1.0,
                plasticity=snn.STDP(a_plus=0.02, a_minus=0.021, w_max=3.0, rule="multiplicative"))
    rec = sp.random(30, 30, density=0.2, random_state=1, format="csr")
    rec.data = rec.data * 2 - 1.0
    net.connect(exc, exc, rec, delay=rng.integers(1, 5, rec.nnz) * 0.5)
    s2 = sp.random(10, 30, density=0.5, random_state=2, format="csr")
    net.connect(src, exc, s2 * 2, plasticity=snn.STDP(a_plus=0.05, a_minus=0.04, w_max=2.0, trace="nearest"))
    return net


@pytest.mark.parametrize("clock", [True, False], ids=["clock", "scalar-args"])
@pytest.mark.parametrize("device",
                         OPENCL_IDS or [pytest.param(None, marks=pytest.mark.skip("no OpenCL device"))])
def test_opencl_engine_matches_the_numpy_reference(device, clock):
    """Both ways of passing the step to the kernels (a device step counter and tables, the
    default; or scalar arguments set before each launch) give the reference's spikes."""
    out = {}
    for dev in ("numpy", device):
        net = _everything_network()
        sim = net.simulator(get_runtime(dev), record_v={"exc": [0, 5, 29]}, chunk_steps=150,
                            tunables={"CLOCK": int(clock)})
        if dev == device:
            assert sim.engine.clock is clock  # the per-engine setting reached the engine
        rec = sim.run(400)
        out[dev] = rec, [sim.weights(c) for c in net.projections], sim.state("exc")
    (ra, wa, sa), (rb, wb, sb) = out["numpy"], out[device]
    assert ra.times.size > 500
    np.testing.assert_array_equal(ra.ids, rb.ids)
    np.testing.assert_array_equal(ra.times, rb.times)
    np.testing.assert_array_equal(ra.counts, rb.counts)
    np.testing.assert_array_equal(ra.step_counts, rb.step_counts)
    for a, b in zip(wa, wb):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(ra.v["exc"][1], rb.v["exc"][1], atol=1e-4)
    np.testing.assert_allclose(sa["theta"], sb["theta"], atol=1e-5)
    assert not np.allclose(wa[0], _everything_network().projections[0].dense)  # STDP did act


def test_chunked_run_equals_one_chunk(runtime):
    recs = [_everything_network().simulator(runtime, chunk_steps=c).run(300) for c in (7, 300)]
    np.testing.assert_array_equal(recs[0].times, recs[1].times)
    np.testing.assert_array_equal(recs[0].ids, recs[1].ids)
    assert recs[0].steps == 300 and recs[0].duration == pytest.approx(150.0)


def test_record_false_keeps_counts_and_rates(runtime):
    a = _everything_network().simulator(runtime).run(200)
    b = _everything_network().simulator(runtime, record=False).run(200)
    assert b.times.size == 0
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_allclose(b.rates("exc"), a.counts[50:] / 0.1)  # inp 40, src 10, exc 30
    np.testing.assert_array_equal(a.step_counts, b.step_counts)


def test_poisson_group_draws_what_rate_encode_draws(runtime):
    x = np.linspace(0, 1, 50)
    net = snn.SNNNetwork(dt=1.0)
    net.add(snn.PoissonGroup(50, rates=x * 200.0, seed=7, name="p"))
    rec = net.simulator(runtime).run(300)
    enc = snn.rate_encode(x, 300, dt=1.0, max_rate=200.0, seed=7)
    steps, ids = np.nonzero(enc)
    np.testing.assert_array_equal(rec.ids, ids)
    np.testing.assert_allclose(rec.times, (steps + 1) * 1.0)


def test_delays_arrive_that_many_steps_later(runtime):
    p = snn.LIFParams(dt=0.5)
    spikes = np.zeros((40, 1), bool)
    spikes[2] = True
    net = snn.SNNNetwork()
    src = net.add(snn.SpikeSource(spikes, name="src"))
    post = net.add(snn.LIFLayer(3, p, name="post"))
    net.connect(src, post, sp.csr_matrix(np.array([[1.0, 2.0, 3.0]])), delay=np.array([0.5, 1.5, 5.0]))
    rec = net.simulator(runtime, record_v={"post": [0, 1, 2]}).run(40)
    v = rec.v["post"][1] - p.v_rest
    jumps = [int(np.argmax(v[:, j] > 0)) for j in range(3)]
    assert jumps == [3, 5, 12]  # spike at step 2, delays of 1, 3 and 10 steps
    np.testing.assert_allclose(v[jumps, [0, 1, 2]], [1.0, 2.0, 3.0], rtol=1e-5)


def test_live_parameter_changes_match_between_backends(runtime):
    def run(rt):
        net = _everything_network()
        sim = net.simulator(rt)
        a = sim.run(100)
        sim.set_params("exc", v_th=-45.0, tau_m=30.0)
        sim.set_rates("inp", 5.0)
        sim.set_scale(net.projections[1], 2.0)
        b = sim.run(100)
        return a, b

    a0, b0 = run(get_runtime("numpy"))
    if runtime.is_opencl:  # on NumPy this would compare the reference with itself
        a1, b1 = run(runtime)
        np.testing.assert_array_equal(b0.ids, b1.ids)
    assert b0.t0 == pytest.approx(50.0) and b0.times.min() > 50.0
    assert b0.counts[:40].sum() < a0.counts[:40].sum()  # 5 Hz instead of 5-60 Hz


# -- STDP ------------------------------------------------------------------------------------------
def _pair_weight_change(runtime, rule: snn.STDP, pre_step: int, post_step: int, w0: float = 0.5) -> float:
    """One pre spike and one post spike (forced by a strong extra input) at the given steps."""
    n_steps = max(pre_step, post_step) + 5
    p = snn.LIFParams(dt=1.0, t_ref=0.0)
    pre_sp = np.zeros((n_steps, 1), bool)
    pre_sp[pre_step] = True
    drive = np.zeros((n_steps, 1), bool)
    drive[post_step - 1] = True  # one-step delay: the post neuron fires at post_step
    net = snn.SNNNetwork()
    pre = net.add(snn.SpikeSource(pre_sp, name="pre"))
    kick = net.add(snn.SpikeSource(drive, name="kick"))
    post = net.add(snn.LIFLayer(1, p, name="post"))
    plastic = net.connect(pre, post, [[w0]], plasticity=rule)
    net.connect(kick, post, [[100.0]])
    sim = net.simulator(runtime)
    rec = sim.run(n_steps)
    assert rec.population("post").times.tolist() == [post_step + 1.0]
    return float(sim.weights(plastic)[0, 0]) - w0


@pytest.mark.parametrize("delta", [-30, -12, -3, -1, 0, 1, 4, 15, 40])
def test_stdp_pair_follows_the_window(runtime, delta):
    rule = snn.STDP(a_plus=0.01, a_minus=0.012, tau_plus=16.8, tau_minus=33.7)
    pre_step = 50
    dw = _pair_weight_change(runtime, rule, pre_step, pre_step + delta)
    # float32 weights near 0.5: one ulp is 6e-8
    assert dw == pytest.approx(float(rule.window(delta * 1.0)), rel=1e-5, abs=2e-7)


def test_multiplicative_stdp_is_soft_bounded(runtime):
    rule = snn.STDP(a_plus=0.5, a_minus=0.5, w_max=1.0, rule="multiplicative")
    up = _pair_weight_change(runtime, rule, 10, 12, w0=0.9)
    assert up == pytest.approx(0.5 * math.exp(-2 / 20) * (1.0 - 0.9), abs=2e-7)
    down = _pair_weight_change(runtime, rule, 12, 10, w0=0.2)
    assert down == pytest.approx(-0.5 * math.exp(-2 / 20) * 0.2, abs=2e-7)


def test_stdp_rule_checks_its_arguments():
    with pytest.raises(InputError, match="tau_plus"):
        snn.STDP(tau_plus=0)
    with pytest.raises(InputError, match="w_max"):
        snn.STDP(w_min=1.0, w_max=1.0)
    with pytest.raises(InputError, match="rule"):
        snn.STDP(rule="triplet")
    with pytest.raises(InputError, match="a_minus"):
        snn.STDP(a_minus=-1)


# -- encoders --------------------------------------------------------------------------------------
def test_rng_is_uniform_and_seeded():
    u = uniform(1, 0, np.arange(200_000, dtype=np.uint32))
    assert u.dtype == np.float32 and 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005
    assert not np.array_equal(u, uniform(2, 0, np.arange(200_000, dtype=np.uint32)))


def test_rate_encode_fires_at_the_asked_rate():
    x = np.array([0.0, 0.25, 0.5, 1.0])
    s = snn.rate_encode(x, 20_000, dt=1.0, max_rate=100.0, seed=3)
    assert s.shape == (20_000, 4) and s.dtype == bool
    rates = s.mean(0) * 1000.0
    np.testing.assert_allclose(rates, x * 100.0, atol=3.0)
    np.testing.assert_array_equal(s, snn.rate_encode(x, 20_000, dt=1.0, max_rate=100.0, seed=3))
    assert not np.array_equal(s, snn.rate_encode(x, 20_000, dt=1.0, max_rate=100.0, seed=4))
    assert snn.rate_encode(np.ones((2, 3)), 5).shape == (5, 2, 3)


def test_latency_encode_fires_once_earlier_for_brighter():
    x = np.array([0.0, 0.2, 0.5, 1.0])
    s = snn.latency_encode(x, 100, dt=0.5, tau=5.0, threshold=0.01)
    assert s.sum(0).tolist() == [0, 1, 1, 1]
    t = np.argmax(s, 0)[1:] * 0.5
    expect = 5.0 * np.log(x[1:] / (x[1:] - 0.01))
    assert np.all(np.abs(t - expect) < 0.5) and np.all(np.diff(t) <= 0)
    lin = snn.latency_encode(x, 11, dt=1.0, method="linear")
    assert np.argmax(lin[:, 3]) == 0 and np.argmax(lin[:, 2]) == 5


def test_phase_encode_carries_the_bits():
    x = np.array([0.0, 1.0, 0.5, 0.3])
    s = snn.phase_encode(x, 16, bits=8)
    weights = 2.0 ** -(np.arange(8) + 1)
    decoded = (s[:8] * weights[:, None]).sum(0) * 256 / 255
    np.testing.assert_allclose(decoded, x, atol=1 / 255)
    np.testing.assert_array_equal(s[:8], s[8:])  # periodic


def test_population_encode_peaks_at_the_nearest_field():
    x = np.array([0.0, 0.5, 0.9])
    s = snn.population_encode(x, 5000, n_fields=11, dt=1.0, max_rate=200.0, seed=0)
    assert s.shape == (5000, 3, 11)
    peaks = s.sum(0).argmax(1)
    assert peaks.tolist() == [0, 5, 9]


@pytest.mark.parametrize("call, argument", [
    (lambda: snn.rate_encode([0.5], 10, dt=1.0, max_rate=2000.0), "max_rate"),
    (lambda: snn.rate_encode([np.nan], 10), "x"),
    (lambda: snn.rate_encode([1.5], 10), "x"),
    (lambda: snn.rate_encode([0.5], 0), "n_steps"),
    (lambda: snn.rate_encode([0.5], 10, dt=0), "dt"),
    (lambda: snn.latency_encode([0.5], 10, tau=-1), "tau"),
    (lambda: snn.latency_encode([0.5], 10, method="exp"), "method"),
    (lambda: snn.phase_encode([0.5], 10, bits=0), "bits"),
    (lambda: snn.population_encode([0.5], 10, sigma=0), "sigma"),
    (lambda: snn.population_encode([0.5], 10, lo=1, hi=0), "hi"),
])
def test_encoders_reject_bad_input(call, argument):
    with pytest.raises(InputError) as err:
        call()
    assert err.value.argument == argument


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, argument", [
    ({"tau_m": 0}, "tau_m"), ({"tau_m": -5}, "tau_m"), ({"dt": 0}, "dt"), ({"dt": -0.1}, "dt"),
    ({"dt": 20.0}, "dt"), ({"dt": 25.0}, "dt"), ({"t_ref": -1}, "t_ref"), ({"r_m": 0}, "r_m"),
    ({"v_reset": -50.0}, "v_reset"), ({"v_th": float("nan")}, "v_th"), ({"tau_m": "fast"}, "tau_m"),
])
def test_lif_params_reject_bad_values(kwargs, argument):
    with pytest.raises(InputError) as err:
        snn.LIFParams(**kwargs)
    assert err.value.argument == argument


def test_network_rejects_bad_input():
    net = snn.SNNNetwork()
    a = net.add(snn.LIFLayer(4, name="a"))
    b = net.add(snn.LIFLayer(3, name="b"))
    src = net.add(snn.PoissonGroup(2, rates=5.0, name="src"))
    cases = [
        (lambda: net.connect(a, b, np.ones((3, 4))), "weights"),
        (lambda: net.connect(a, b, np.full((4, 3), np.nan)), "weights"),
        (lambda: net.connect(a, b, sp.random(3, 3, density=0.5, format="csr")), "weights"),
        (lambda: net.connect(a, src, np.ones((4, 2))), "post"),
        (lambda: net.connect(a, snn.LIFLayer(3), np.ones((4, 3))), "post"),
        (lambda: net.connect(a, b, np.ones((4, 3)), delay=0.01), "delay"),
        (lambda: net.connect(a, b, np.ones((4, 3)), delay=np.ones(12)), "delay"),
        (lambda: net.connect(a, b, np.ones((4, 3)), plasticity=snn.STDP(w_max=0.5)), "weights"),
        (lambda: net.connect(a, b, np.ones((4, 3)), plasticity="hebb"), "plasticity"),
        (lambda: net.add(snn.LIFLayer(2, snn.LIFParams(dt=0.5))), "params"),
        (lambda: net.add(snn.LIFLayer(2, name="a")), "name"),
        (lambda: snn.LIFLayer(3, bias=[1.0, 2.0]), "bias"),
        (lambda: snn.LIFLayer(3, bias=[1.0, np.inf, 2.0]), "bias"),
        (lambda: snn.LIFLayer(0), "n"),
        (lambda: snn.PoissonGroup(2, rates=-1.0), "rates"),
        (lambda: snn.SpikeSource(np.ones(5)), "spikes"),
        (lambda: snn.simulate(net), "n_steps"),
        (lambda: snn.simulate(net, duration=-1.0), "duration"),
        (lambda: net.simulator(record_v={"a": [7]}), "record_v"),
    ]
    for call, argument in cases:
        with pytest.raises(InputError) as err:
            call()
        assert err.value.argument == argument, (argument, err.value)


def test_rates_above_one_per_step_are_refused(runtime):
    net = snn.SNNNetwork(dt=1.0)
    g = net.add(snn.PoissonGroup(2, rates=2000.0, name="g"))
    with pytest.raises(InputError) as err:
        net.simulator(runtime)
    assert err.value.argument == "rates"
    g.rates = np.asarray(10.0)
    sim = net.simulator(runtime)
    with pytest.raises(InputError, match="rates"):
        sim.set_rates("g", 5000.0)
    assert float(g.rates) == 10.0


# -- applications ----------------------------------------------------------------------------------
def test_image_classifier_learns_digits_quickly():
    """A small, fast configuration: well above chance (0.1) after one pass over 400 images."""
    from workbench.data import digits

    d = digits(scale="unit")
    seen = []
    clf = snn.SNNImageClassifier(n_neurons=100, epochs=1, seed=0, rt="numpy")
    clf.fit(d.x_train[:400], on_step=lambda info: seen.append(info["image"]), report_every=100)
    assert seen == [100, 200, 300, 400]
    clf.assign_labels(d.x_train[:400], d.y_train[:400])
    acc = clf.score(d.x_test[:150], d.y_test[:150])
    assert acc > 0.5, acc
    assert clf.weights_.shape == (64, 100) and np.all(clf.weights_ >= 0) and np.all(clf.weights_ <= 1)
    np.testing.assert_allclose(clf.weights_.sum(0), 16.0, rtol=0.05)  # the normalization
    assert clf.theta_.min() >= 0 and clf.theta_.max() > 0


@pytest.mark.slow
def test_image_classifier_reaches_85_percent_on_digits():
    """The issue's target: >= 85% test accuracy with at most 400 excitatory neurons (the
    default recipe: 400 neurons, 3 epochs; ~55 s on the NumPy engine)."""
    from workbench.data import digits

    d = digits(scale="unit")
    clf = snn.SNNImageClassifier(seed=0, rt="numpy").fit(d.x_train, d.y_train)
    assert clf.n_neurons <= 400
    assert clf.score(d.x_test, d.y_test) >= 0.85


def test_image_classifier_rejects_bad_input():
    clf = snn.SNNImageClassifier(n_neurons=10, epochs=1)
    with pytest.raises(InputError) as err:
        clf.fit(np.full((5, 4), 2.0))
    assert err.value.argument == "x"
    with pytest.raises(InputError) as err:
        snn.SNNImageClassifier(max_rate=900.0).fit(np.zeros((2, 4)))
    assert err.value.argument == "max_rate"
    with pytest.raises(InputError):
        clf.predict(np.zeros((2, 4)))
    clf.fit(np.random.default_rng(0).random((5, 4)))
    with pytest.raises(InputError) as err:
        clf.assign_labels(np.zeros((5, 4)), [0, 1])
    assert err.value.argument == "y"


def test_time_series_predictor_beats_persistence_on_mackey_glass():
    from workbench.data import mackey_glass

    u = mackey_glass(1300)
    m = snn.SNNTimeSeriesPredictor(n_neurons=200, horizon=1, seed=0, rt="numpy").fit(u[:1000])
    test = u[900:]
    nrmse = m.score(test)
    truth = test[m.washout + 1:]
    persistence = np.sqrt(np.mean((test[m.washout:-1] - truth) ** 2)) / truth.std()
    assert nrmse < 0.8 * persistence, (nrmse, persistence)
    assert m.predict(test).shape == test.shape


def test_time_series_predictor_rejects_bad_input():
    with pytest.raises(InputError) as err:
        snn.SNNTimeSeriesPredictor().fit([1.0, np.nan, 2.0])
    assert err.value.argument == "series"
    with pytest.raises(InputError) as err:
        snn.SNNTimeSeriesPredictor(leak=1.0).fit(np.sin(np.arange(300.0)))
    assert err.value.argument == "leak"
    with pytest.raises(InputError):
        snn.SNNTimeSeriesPredictor().predict(np.arange(10.0))


# -- benchmarks ------------------------------------------------------------------------------------
def test_benchmark_network_throughput_and_roofline_point(runtime):
    from workbench.bench import suites
    from workbench.snn.bench import benchmark_network, lif_profile, throughput
    from workbench.snn.brian2_reference import PARAMS, network_arrays

    assert "snn" in suites()
    # Without synaptic input every neuron follows the analytic LIF solution from its v0: spike
    # times t1 = tau ln((v_inf - v0) / (v_inf - v_th)), then every t_ref + tau ln((v_inf - v_reset)
    # / (v_inf - v_th)). throughput() times the same window (steps 10-110: 1-11 ms) on every
    # repeat, so its spike count is that window's.
    n, p = 5000, PARAMS
    a = network_arrays(n, 20, seed=0)
    v_inf = p["v_rest"] + p["r_m"] * a["bias"]
    with np.errstate(invalid="ignore"):  # v_inf below threshold: never fires (NaN compares False)
        t1 = p["tau_m"] * np.log((v_inf - a["v0"]) / (v_inf - p["v_th"]))
        period = p["t_ref"] + p["tau_m"] * np.log((v_inf - p["v_reset"]) / (v_inf - p["v_th"]))
    spikes_at = t1[:, None] + period[:, None] * np.arange(5)
    window = int(((spikes_at >= 1.0) & (spikes_at < 11.0)).sum())
    silent = throughput(benchmark_network(n, 20, weight=0.0), 100, rt=runtime, repeat=3, budget_s=2.0)
    assert silent["spikes"] == pytest.approx(window, rel=0.02), (silent["spikes"], window)
    net = benchmark_network(n, 20)
    res = throughput(net, 100, rt=runtime, repeat=3, budget_s=2.0)
    assert res["spikes"] > 1.1 * silent["spikes"]  # the 0.1 mV synapses excite
    if runtime.is_opencl:  # the same spikes as the reference engine
        assert res["spikes"] == throughput(benchmark_network(n, 20), 100, rt="numpy", repeat=3)["spikes"]
    # CSR merges the few duplicate random targets (summing their weights): ~20 per neuron
    synapses = net.projections[0].n_synapses
    assert 0.99 * 100_000 < synapses <= 100_000
    assert res["events"] == pytest.approx(res["spikes"] * synapses / 5000)
    assert lif_profile(res).seconds == res["seconds"] > 0


def test_benchmark_network_matches_its_brian2_description():
    from workbench.snn.brian2_reference import PARAMS, network_arrays

    a = network_arrays(1000, 20, seed=0)
    assert a["indices"].size == 20_000 and np.all(np.diff(a["indptr"]) == 20)
    assert 1.4 <= a["bias"].min() and a["bias"].max() <= 1.8
    assert PARAMS["dt"] == 0.1


# -- the live network (the Spikes page and SpikeRasterPanel) ------------------------------------------
def test_live_network_matches_the_reference_and_takes_knobs_while_running(runtime):
    """Same spikes as the NumPy reference on every backend; knobs change the running network
    between chunks (less inhibition: higher rates) and are in force from the next chunk on."""
    from workbench.snn.live import LiveNetwork

    def run(rt):
        live = LiveNetwork(n_exc=400, n_inh=100, n_input=400, rt=rt, seed=3)
        out = []
        for c in live.run(400.0, chunk=50.0, pace=None):
            out.append(c)
            if c.index == 3:
                live.set(inhibition=0.4, input_rate=30.0)
        return out

    ours = run(runtime)
    assert [c.index for c in ours] == list(range(8))
    if runtime.is_opencl:  # on NumPy this would compare the reference with itself
        for a, b in zip(ours, run("numpy")):
            np.testing.assert_array_equal(a.record.ids, b.record.ids)
            np.testing.assert_array_equal(a.record.times, b.record.times)
    assert ours[3].knobs["inhibition"] == 1.0 and ours[4].knobs["inhibition"] == 0.4
    before = np.mean([c.rates["excitatory"] for c in ours[1:4]])
    after = np.mean([c.rates["excitatory"] for c in ours[5:]])
    assert 2 < before < 60 and after > 2 * before, (before, after)
    assert ours[-1].t_ms == pytest.approx(400.0)
    assert set(ours[0].record.v) == {"network"} and ours[0].record.v["network"][1].shape == (500, 3)


def test_live_network_threshold_and_tau_knobs_reach_the_layer():
    from workbench.snn.live import LiveNetwork

    live = LiveNetwork(n_exc=80, n_inh=20, n_input=80, rt="numpy")
    gen = live.run(100.0, chunk=10.0, pace=None)
    next(gen)
    live.set(v_th=-55.0, tau_m=10.0)
    c = next(gen)
    gen.close()
    assert c.knobs["v_th"] == -55.0 and live.layer.params.v_th == -55.0 and live.layer.params.tau_m == 10.0


def test_live_network_store_record_is_consistent_when_stopped_and_continued(tmp_path):
    from workbench.snn.live import SNN_KIND, LiveNetwork, load_snn_runs
    from workbench.store import Store

    store = Store(tmp_path / "s.db")
    live = LiveNetwork(n_exc=80, n_inh=20, n_input=80, rt="numpy", store=store)
    seen = []
    for c in live.run(200.0, chunk=20.0, pace=None):
        seen.append(c)
        if c.index == 2:
            live.stop()  # from the consumer; any thread may
    assert len(seen) == 3
    run = store.runs(SNN_KIND)[0]
    assert run["status"] == "stopped" and run["params"]["n_exc"] == 80
    rows = store.metrics(run["id"])
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert rows[-1]["t_ms"] == pytest.approx(60.0)
    assert rows[1]["rate_excitatory"] == pytest.approx(seen[1].rates["excitatory"])
    gen = live.run(100.0, chunk=20.0, pace=None)  # Continue: the same run goes on
    next(gen)
    assert store.runs(SNN_KIND)[0]["status"] == "running"
    gen.close()  # a consumer that goes away also leaves it stopped
    assert store.runs(SNN_KIND)[0]["status"] == "stopped"
    assert list(live.run(40.0, chunk=20.0, pace=None))[-1].t_ms == pytest.approx(120.0)
    (stored, chunks), = load_snn_runs("numpy", store)
    assert stored["status"] == "finished" and [r["step"] for r in chunks] == [0, 1, 2, 3, 4, 5]
    assert chunks[-1]["t_ms"] == pytest.approx(120.0)
    assert load_snn_runs("numpy", Store(tmp_path / "other.db")) == []


def test_live_network_paces_to_real_time():
    import time

    from workbench.snn.live import LiveNetwork

    live = LiveNetwork(n_exc=80, n_inh=20, n_input=80, rt="numpy")
    t0 = time.perf_counter()
    list(live.run(300.0, chunk=50.0, pace=1.0))
    assert time.perf_counter() - t0 >= 0.29  # a lower bound only: never a speed assertion


def test_live_network_rejects_bad_input():
    from workbench.snn.live import LiveNetwork

    live = LiveNetwork(n_exc=8, n_inh=2, n_input=8, rt="numpy")
    for kwargs, arg in (({"v_th": -70.0}, "v_th"), ({"tau_m": 0.0}, "tau_m"),
                        ({"input_rate": float("nan")}, "input_rate"),
                        ({"gain": 1.0}, "gain")):
        with pytest.raises(InputError) as err:
            live.set(**kwargs)
        assert err.value.argument == arg
    for kwargs, arg in (({"duration": 0.0}, "duration"), ({"chunk": -1.0}, "chunk"), ({"pace": 0.0}, "pace")):
        with pytest.raises(InputError) as err:
            next(live.run(**kwargs))
        assert err.value.argument == arg
    for kwargs, arg in (({"n_exc": 0}, "n_exc"), ({"inhibition": 9.0}, "inhibition"),
                        ({"trace_neurons": 99}, "trace_neurons"),
                        ({"g": -1.0}, "g")):
        with pytest.raises(InputError) as err:
            LiveNetwork(**{"n_exc": 8, "n_inh": 2, "n_input": 8, "rt": "numpy", **kwargs})
        assert err.value.argument == arg


def test_image_classifier_logs_to_the_store_and_stops(tmp_path):
    from workbench.data import digits
    from workbench.snn.classifier import TRAIN_KIND
    from workbench.store import Store

    d = digits(scale="unit")
    store = Store(tmp_path / "s.db")
    clf = snn.SNNImageClassifier(n_neurons=20, epochs=1, rt="numpy")
    clf.fit(d.x_train[:60], d.y_train[:60], report_every=20, store=store,
            validation=(d.x_test[:30], d.y_test[:30]))
    run = store.runs(TRAIN_KIND)[0]
    assert run["status"] == "finished" and run["params"]["n_neurons"] == 20 and run["params"]["images"] == 60
    rows = store.metrics(run["id"])
    assert [r["step"] for r in rows] == [20, 40, 60]  # the accuracies join the last report's row
    assert rows[-1]["validation_accuracy"] == pytest.approx(clf.score(d.x_test[:30], d.y_test[:30]))
    assert 0 <= rows[-1]["train_accuracy"] <= 1 and rows[0]["spikes"] > 0

    def stop_at_30(info):
        if info["image"] == 30:
            clf.stop()  # as the dashboard's Stop does, from another thread

    clf.fit(d.x_train[:60], d.y_train[:60], on_step=stop_at_30, report_every=10, store=store)
    run = store.runs(TRAIN_KIND)[0]
    assert run["status"] == "stopped" and len(clf.history_) == 30
    assert [r["step"] for r in store.metrics(run["id"])] == [10, 20, 30]  # no labels for a stopped run
    with pytest.raises(InputError) as err:
        clf.fit(d.x_train[:10], validation=(d.x_test, d.y_test))
    assert err.value.argument == "validation"


def test_engine_tunables_come_from_the_table_and_bad_ones_are_refused():
    from workbench.runtime.kernels import tuning

    net = snn.SNNNetwork()
    net.add(snn.LIFLayer(10, bias=1.6))
    for bad in ({"CLOK": 0}, [("CLOCK", 0)]):
        with pytest.raises(InputError, match="tunables"):
            net.simulator("numpy", tunables=bad)
    for dev in OPENCL_IDS:
        rt = get_runtime(dev)
        with pytest.raises(InputError, match="tunables"):
            net.simulator(rt, tunables={"BLOCK": 0})
        if rt.kind != "opencl-gpu":  # a GPU-only tunable on a CPU is refused, not ignored
            with pytest.raises(InputError, match="WG and VEC apply to GPUs"):
                net.simulator(rt, tunables={"WG": 64})
        shipped = tuning("lif", rt.info)
        sim = net.simulator(rt, tunables={"SPREAD": 2})
        assert sim.engine.block == shipped["BLOCK"] and sim.engine.clock is bool(shipped["CLOCK"])
        assert sim.engine.tunables["SPREAD"] == 2
        counts = sim.run(1000).counts  # 100 ms: each neuron reaches threshold after about 55 ms
        assert counts.sum() >= 10
        np.testing.assert_array_equal(counts, net.simulator("numpy").run(1000).counts)
