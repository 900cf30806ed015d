"""Benchmarks report time, rates, % of ceiling and the same-run reference ratio; the tuner
finds, checks and records tunables."""

from __future__ import annotations

import json

import pytest

from workbench import bench, references
from workbench.errors import InputError
from workbench.ops import GemmConfig, GemmEngine, gemm_engine, reset_gemm_engine
from workbench.runtime import tuning
from workbench.tune import gemm_candidates, tune_gemm


def test_gemm_suite_against_the_reference(runtime, tmp_path):
    seen = []
    report = bench.run_benchmarks(["gemm"], runtime, quick=True, on_result=seen.append)
    assert report.results == seen and len(seen) == len(bench.gemm_shapes(runtime, True))
    for r in report.results:
        assert r.median_s > 0 and r.gflops > 0 and r.pct_of_ceiling > 0
        assert r.reference_s > 0
        assert r.rel_error < 1e-5
    # NumPy without a CUDA torch (CI); torch on the same GPU where it has one (the lent H100)
    assert ("NumPy" if references.backend_for(runtime) == "numpy" else "torch") in report.reference
    path = tmp_path / "b.json"
    report.write_json(str(path))
    data = json.loads(path.read_text())
    assert data["device"] == runtime.name and data["results"][0]["suite"] == "gemm"
    assert data["ceilings"]["fp32_gflops"] > 0
    table = report.table()
    assert "gemm/sgemm 256x256x256" in table or runtime.kind == "numpy" or "gemm/sgemm" in table


def test_roofline_suite_measures_and_compares_a_copy(runtime):
    report = bench.run_benchmarks(["roofline"], runtime, quick=True)
    names = [r.name for r in report.results]
    assert any(n.startswith("reference copy") for n in names)
    cmp = [r for r in report.results if r.name.endswith("vs reference copy")]
    assert len(cmp) == 1 and cmp[0].ratio > 0 and cmp[0].gbs > 0


def test_unknown_suite():
    with pytest.raises(InputError, match="roofline"):
        bench.run_benchmarks(["nope"], "numpy", quick=True)


def test_reference_backend_is_numpy_without_cuda(runtime):
    same_gpu = (runtime.kind == "opencl-gpu" and "nvidia" in runtime.info.vendor.lower()
                and references._torch_cuda() is not None)
    assert references.backend_for(runtime) == ("torch-cuda" if same_gpu else "numpy")


def test_tuner_checks_times_and_records(cl_runtime):
    assert gemm_candidates(cl_runtime)  # something to search on every device
    cands = [GemmConfig("direct"),
             GemmConfig("tiled", {"BM": 64, "BN": 64, "BK": 16, "TM": 4, "TN": 4})
             if cl_runtime.kind == "opencl-gpu" else GemmConfig("packed", {"MR": 4, "NV": 1}, 1)]
    try:
        results = tune_gemm(cl_runtime, size=128, quick=True, candidates=cands)
        assert all(r.gflops for r in results)
        assert results[0].gflops >= results[1].gflops
        t = tuning("gemm", cl_runtime.info)
        assert t["_source"] == "user" and t["variant"] == results[0].config.variant
        assert gemm_engine(cl_runtime).config.variant == results[0].config.variant
    finally:
        reset_gemm_engine(cl_runtime)


def test_tuner_rejects_a_wrong_kernel(cl_runtime, monkeypatch):
    cfg = GemmConfig("direct")
    real = GemmEngine.enqueue

    def broken(self, a, b, c, m, n, k, dispatch=True):
        return real(self, a, b, c, m, n, max(1, k - 1), dispatch)  # drops a term of the sum

    monkeypatch.setattr(GemmEngine, "enqueue", broken)
    (res,) = tune_gemm(cl_runtime, size=64, quick=True, candidates=[cfg], record=False)
    assert res.gflops is None and "wrong answer" in res.error


def test_tuning_numpy_is_an_input_error():
    with pytest.raises(InputError, match="NumPy"):
        tune_gemm("numpy")


def test_quant_tuner_records_the_best_gemm_and_gemv(cl_runtime):
    from workbench.quant.config import quant_config, set_quant_config
    from workbench.quant.tune import gemv_candidates, quant_candidates, tune_quant

    cands = quant_candidates(cl_runtime)[:2]
    try:
        results = tune_quant(cl_runtime, size=128, quick=True, candidates=cands)
        gemm = [r for r in results if r.gbs is None]
        gemv = [r for r in results if r.gbs is not None]
        assert len(gemm) == 2 and all(r.gops for r in gemm)
        assert len(gemv) == len(gemv_candidates(cl_runtime, gemm[0].config)) and gemv[0].gbs >= gemv[-1].gbs
        t = tuning("quant", cl_runtime.info)
        assert t["_source"] == "user" and t["ROWS"] == gemv[0].config.params["ROWS"]
        set_quant_config(cl_runtime, None)
        assert quant_config(cl_runtime).params["ROWS"] == gemv[0].config.params["ROWS"]
    finally:
        set_quant_config(cl_runtime, None)
