"""Pruning: masks survive training, structured pruning shrinks models exactly, the schedule."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import data, nn, sparse
from workbench.errors import InputError
from workbench.store import Store


@pytest.fixture(scope="module")
def digits():
    return data.digits()


@pytest.fixture(scope="module")
def trained_mlp(digits):
    m = nn.MLP()
    nn.train(m, digits, epochs=20, rt="numpy")
    return m


def test_polynomial_schedule_is_zhu_and_gupta():
    t = np.arange(0, 11)
    s = sparse.polynomial_schedule(t, 0.0, final_sparsity=0.9, start_step=0, n_steps=5, interval=2)
    expect = 0.9 + (0.0 - 0.9) * (1 - np.clip(t / 10, 0, 1)) ** 3
    np.testing.assert_allclose(s, expect)
    assert s[0] == 0.0 and s[-1] == pytest.approx(0.9) and np.all(np.diff(s) >= 0)
    assert sparse.polynomial_schedule(20, 0.1, final_sparsity=0.8, start_step=0,
                                      n_steps=5) == pytest.approx(0.8)


def test_magnitude_and_global_pruning_hit_the_sparsity(trained_mlp):
    m = trained_mlp.copy()
    per = sparse.magnitude_prune(m, 0.7)
    assert all(v == pytest.approx(0.7, abs=1e-3) for v in per.values())
    w0 = m.layers[0].weight
    kept = np.abs(w0[w0 != 0])
    trained = np.sort(np.abs(trained_mlp.layers[0].weight).ravel())
    assert kept.min() >= trained[int(0.7 * w0.size) - 1]
    g = trained_mlp.copy()
    per_g = sparse.global_magnitude_prune(g, 0.8)
    assert sparse.model_sparsity(g)["total"] == pytest.approx(0.8, abs=1e-3)
    assert len(set(round(v, 3) for v in per_g.values())) > 1  # one threshold: layers differ


def test_masks_survive_fine_tuning_and_save(trained_mlp, digits, tmp_path):
    m = trained_mlp.copy()
    sparse.global_magnitude_prune(m, 0.9)
    nn.train(m, digits, epochs=2, rt="numpy")
    assert sparse.model_sparsity(m)["total"] >= 0.9 - 1e-3
    path = nn.save(m, tmp_path / "pruned.npz")
    back = nn.load(path)
    assert back.layers[0].prune_mask is not None
    np.testing.assert_array_equal(back.predict(digits.x_test, "numpy"), m.predict(digits.x_test, "numpy"))
    assert m.copy().layers[0].prune_mask is not None


def test_structured_pruning_builds_smaller_equivalent_models(trained_mlp, digits):
    small = sparse.prune_channels(trained_mlp, 0.5)
    assert small.config()["sizes"] == [64, 64, 10] and small.n_params() < trained_mlp.n_params()
    # removing zero-score units changes nothing: zero a unit's outgoing weights, prune it away
    m = trained_mlp.copy()
    m.layers[2].weight[:3] = 0.0
    cut = sparse.prune_channels(m, 3 / 128)
    np.testing.assert_allclose(cut.forward(digits.x_test[:20], "numpy"),
                               m.forward(digits.x_test[:20], "numpy"),
                               rtol=1e-5, atol=1e-5)

    conv = nn.ConvNet(seed=1)
    conv.layers[1].weight[[0, 5]] = 0.0  # two dead filters of the first conv
    pruned = sparse.prune_filters(conv, 2 / 16, layers=["1"])
    assert pruned.config()["channels"] == [14, 32]
    np.testing.assert_allclose(pruned.forward(digits.x_test[:10], "numpy"),
                               conv.forward(digits.x_test[:10], "numpy"),
                               rtol=1e-5, atol=1e-5)
    both = sparse.prune_filters(conv, 0.5)
    assert both.config()["channels"] == [8, 16]
    assert both.forward(digits.x_test[:4], "numpy").shape == (4, 10)

    att = nn.AttentionNet(seed=2)
    mha = att.layers[3]
    mha.o.weight[8:16] = 0.0  # head 1 sends nothing
    fewer = sparse.prune_heads(att, heads=[1])
    assert fewer.config()["heads"] == 3 and fewer.layers[3].q.weight.shape == (32, 24)
    np.testing.assert_allclose(fewer.forward(digits.x_test[:6], "numpy"),
                               att.forward(digits.x_test[:6], "numpy"),
                               rtol=1e-5, atol=1e-5)
    assert sparse.prune_heads(att, 0.5).config()["heads"] == 2


def test_gradual_pruner_streams_stores_stops_and_resumes(trained_mlp, digits, tmp_path):
    store = Store(tmp_path / "wb.db")
    g = sparse.GradualPruner(trained_mlp.copy(), digits, final_sparsity=0.9, n_steps=4, finetune_epochs=1,
                             rt="numpy", store=store, latency_batch=8)
    seen = []
    for point in g.run():
        seen.append(point)
        if point.step == 2:
            g.stop()
    assert [p.step for p in seen] == [0, 1, 2] and not g.done
    assert store.runs("prune")[0]["status"] == "stopped"
    rest = list(g.run())
    assert [p.step for p in rest] == [3, 4] and g.done
    assert rest[-1].sparsity == pytest.approx(0.9, abs=1e-3)
    assert set(rest[-1].latency_s) == {"dense", "csr", "bsr"}
    rows = store.metrics(g.run_id_)
    assert {r["step"] for r in rows} == {0, 1, 2, 3, 4}


def test_a_stop_inside_fine_tuning_resumes_that_step_and_a_failure_is_stored(trained_mlp, digits, tmp_path,
                                                                             monkeypatch):
    import workbench.nn as nn_mod

    store = Store(tmp_path / "wb.db")
    g = sparse.GradualPruner(trained_mlp.copy(), digits, final_sparsity=0.5, n_steps=2, finetune_epochs=3,
                             rt="numpy", store=store, latency=False)
    calls, real = [], nn_mod.train

    def train(model, data, epochs, **kw):
        calls.append(epochs)
        if len(calls) == 1:  # Stop arrives as the first epoch of step 1's fine-tuning ends
            inner = kw["on_step"]

            def on_step(rec):
                ok = inner(rec)
                if rec.get("end_of_epoch"):
                    g.stop()
                return ok

            kw["on_step"] = on_step
        return real(model, data, epochs=epochs, **kw)

    monkeypatch.setattr(nn_mod, "train", train)
    assert [p.step for p in g.run()] == [0] and store.runs("prune")[0]["status"] == "stopped"
    assert [p.step for p in g.run()] == [1, 2] and g.done
    assert calls == [3, 2, 3]  # step 1 went on with its 2 remaining epochs, not pruned again
    assert store.runs("prune")[0]["status"] == "finished"

    bad = sparse.GradualPruner(trained_mlp.copy(), digits, n_steps=2, finetune_epochs=0, rt="numpy",
                               store=store,
                               latency=False)
    monkeypatch.setattr(bad, "_measure", lambda step,
                        target: (_ for _ in ()).throw(RuntimeError("device lost")))
    with pytest.raises(RuntimeError):
        bad.fit()
    rec = store.runs("prune")[0]
    assert rec["status"] == "failed" and "device lost" in rec["error"]  # not "running" forever


@pytest.mark.slow
def test_gradual_pruning_to_ninety_percent_keeps_the_mlp_within_a_point(trained_mlp, digits):
    dense = nn.evaluate(trained_mlp, digits.x_test, digits.y_test, rt="numpy")
    g = sparse.GradualPruner(trained_mlp.copy(), digits, final_sparsity=0.9, rt="numpy", latency=False).fit()
    last = g.history_[-1]
    assert last.sparsity == pytest.approx(0.9, abs=1e-3)
    assert last.accuracy >= dense - 0.01


@pytest.mark.parametrize("bad, arg", [
    (lambda m: sparse.magnitude_prune(m, 1.0), "sparsity"),
    (lambda m: sparse.global_magnitude_prune(m, -0.1), "sparsity"),
    (lambda m: sparse.magnitude_prune(m, 0.5, layers=["7"]), "layers"),
    (lambda m: sparse.prune_channels(m, 1.5), "amount"),
    (lambda m: sparse.prune_channels(m, 0.0, 0.5), "layers"),  # arguments swapped
    (lambda m: sparse.prune_channels(m, 0.5, "2"), "layers"),  # the output layer
    (lambda m: sparse.prune_filters(m, 0.5), "model"),
    (lambda m: sparse.prune_heads(m, 0.5), "model"),
    (lambda m: sparse.polynomial_schedule(1, 0.0, final_sparsity=0.9, n_steps=0), "n_steps"),
    (lambda m: sparse.GradualPruner(m, None, scope="rows"), "scope"),
])
def test_pruning_bad_input(trained_mlp, bad, arg):
    with pytest.raises(InputError) as err:
        bad(trained_mlp.copy())
    assert err.value.argument == arg


@pytest.mark.parametrize("fmt", ["csr", "bsr", "auto"])
def test_pruned_models_run_on_sparse_kernels(runtime, digits, fmt):
    m = nn.ConvNet(seed=0)
    sparse.global_magnitude_prune(m, 0.8)
    ref = m.forward(digits.x_test[:16], "numpy")
    chosen = sparse.sparsify(m, fmt, rt=runtime, batch=16)
    assert set(chosen.values()) <= {"dense", "csr", "bsr"}
    if fmt != "auto":
        assert set(chosen.values()) == {fmt}
    got = m.forward(digits.x_test[:16], runtime)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    sparse.densify(m)
    assert all(l.product is None for _, l in m.linear_layers())


def test_choose_format_explains_and_sweep_finds_crossover(runtime):
    rng = np.random.default_rng(0)
    dense_w = rng.standard_normal((256, 256)).astype(np.float32)
    c = sparse.choose_format(dense_w, runtime, n=32)
    assert c.format in ("dense", "csr", "bsr") and "us" in c.reason and len(c.measured_s) == 2
    very = dense_w * (rng.random((256, 256)) > 0.995)
    model_only = sparse.choose_format(very, runtime, n=32, measure=False)
    assert model_only.format != "dense" and model_only.measured_s == {}
    sweep = sparse.crossover_sweep(128, 128, 16, rt=runtime, sparsities=(0.0, 0.9, 0.99), repeat=2)
    assert len(sweep["points"]) == 3 and set(sweep["crossover"]) == {"csr", "bsr"}
    for v in sweep["crossover"].values():
        assert v is None or 0.0 <= v <= 0.99


def test_dynamic_sparse_activations_switch_and_fall_back(runtime):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    dyn = sparse.DynamicSparseActivations(w, runtime, threshold=0.5)
    x_dense = rng.standard_normal((8, 64)).astype(np.float32)
    x_sparse = x_dense * (rng.random((8, 64)) > 0.9)
    for x in (x_dense, x_sparse, x_dense, x_sparse):
        np.testing.assert_allclose(dyn(x), x @ w, rtol=1e-4, atol=1e-4)
    paths = [p for _, p, _ in dyn.history_]
    assert paths[0] == "dense" and paths[1] == "sparse"
    with pytest.raises(InputError):
        dyn(np.ones((2, 3)))


@pytest.mark.slow
def test_gradual_pruning_to_ninety_percent_keeps_the_convnet_within_a_point(digits):
    cnn = nn.ConvNet(seed=0)
    nn.train(cnn, digits, epochs=20, rt="numpy")
    dense = nn.evaluate(cnn, digits.x_test, digits.y_test, rt="numpy")
    g = sparse.GradualPruner(cnn, digits, final_sparsity=0.9, finetune_epochs=8, lr=3e-3, rt="numpy",
                             latency=False).fit()
    last = g.history_[-1]
    assert last.sparsity == pytest.approx(0.9, abs=1e-3)
    assert last.accuracy >= dense - 0.01


@pytest.mark.slow
def test_half_the_filters_stay_within_two_points_and_halve_the_weights(digits):
    cnn = nn.ConvNet(seed=0)
    nn.train(cnn, digits, epochs=20, rt="numpy")
    dense = nn.evaluate(cnn, digits.x_test, digits.y_test, rt="numpy")
    thin = sparse.prune_filters(cnn, 0.5)
    nn.train(thin, digits, epochs=10, lr=3e-3, rt="numpy", seed=1)
    assert nn.evaluate(thin, digits.x_test, digits.y_test, rt="numpy") >= dense - 0.02
    # fewer flops by construction (speed itself is measured in tutorial 03 and the notes, not here)
    assert thin.channels == [8, 16] and thin.nbytes() < cnn.nbytes() / 2


def test_a_crossover_waits_for_the_ranges_to_separate():
    from workbench.sparse.choose import crossover_sparsity

    def pt(s, dense, bsr):  # (median, lo, hi) each
        return {"sparsity": s, "dense": dense[0], "dense_lo": dense[1], "dense_hi": dense[2],
                "bsr": bsr[0], "bsr_lo": bsr[1], "bsr_hi": bsr[2]}

    clear = [pt(0.5, (1.0, 0.9, 1.1), (2.0, 1.9, 2.1)), pt(0.9, (1.0, 0.9, 1.1), (0.5, 0.45, 0.55))]
    assert crossover_sparsity(clear, "bsr") == pytest.approx(0.5 + 0.4 * (2.0 - 1.0) / (2.0 - 0.5))
    # the medians cross, but dense swung 0.6-2.0: no point is faster beyond the noise
    noisy = [pt(0.5, (1.0, 0.6, 2.0), (1.2, 1.1, 1.3)), pt(0.9, (1.0, 0.6, 2.0), (0.8, 0.7, 0.9))]
    assert crossover_sparsity(noisy, "bsr") is None
    # a tie before the first separated point: that point, not an interpolation
    tie = [pt(0.5, (1.0, 0.8, 1.2), (1.1, 0.9, 1.3)), pt(0.9, (1.0, 0.9, 1.1), (0.5, 0.45, 0.55))]
    assert crossover_sparsity(tie, "bsr") == 0.9
    # medians only (no ranges): interpolated where the ratio crosses 1
    plain = [{"sparsity": 0.5, "dense": 1.0, "bsr": 2.0}, {"sparsity": 0.9, "dense": 1.0, "bsr": 0.5}]
    assert crossover_sparsity(plain, "bsr") == pytest.approx(0.5 + 0.4 / 1.5)


def test_pruning_steps_keep_their_latency_ranges(tmp_path, digits):
    from workbench.store import Store

    store = Store(tmp_path / "s.db")
    m = nn.MLP()
    nn.train(m, digits, epochs=2, rt="numpy")
    g = sparse.GradualPruner(m, digits, final_sparsity=0.5, n_steps=1, finetune_epochs=0, rt="numpy",
                             store=store)
    steps = list(g.run())
    lo, hi = steps[-1].latency_range_s["bsr"]
    assert lo <= steps[-1].latency_s["bsr"] <= hi
    (run, stored), = sparse.load_prune_runs("numpy", store)
    assert stored[-1].latency_range_s["bsr"] == pytest.approx((lo, hi))
