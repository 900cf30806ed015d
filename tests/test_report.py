"""workbench report: tables from raw JSON, medians with ranges, and --check on the repository."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench import report
from workbench.bench import compare


def _report(ratio: float, median: float, per_core: bool = False, quick: bool = False) -> dict:
    return {
        "schema": 2, "device": "Test GPU", "kind": "opencl-gpu", "date": "2026-12-03T10:00:00+00:00",
        "reference": "torch on the same GPU", "quick": quick, "per_core": per_core, "threads": None,
        "device_info": {"driver_version": "1.0", "compute_units": 4},
        "tuning": {"sources": {"gemm": "arch:sm_90 (H100)"}},
        "command": "workbench bench --json x.json",
        "ceilings": {"bandwidth_gbs": 100.0 * ratio, "fp32_gflops": 1000.0,
                     "theoretical": {"fp32_gflops": 2000.0},
                     "noisy": [], "vendor": {"INT8 tensor cores": {"value": 5000.0, "unit": "GOP/s"}}},
        "results": [{"suite": "gemm", "name": "sgemm 1024x1024x1024", "median_s": median,
                     "gflops": 2.0 / median,
                     "pct_of_ceiling": 50.0, "ceiling": "fp32", "ratio": ratio, "reference": "cuBLAS",
                     "threads": None, "reference_threads": None}],
    }


def _campaign(tmp_path, ratios, **kw):
    folder = tmp_path / "results" / "testgpu-2026-12-03"
    folder.mkdir(parents=True)
    for i, r in enumerate(ratios):
        (folder / f"bench-{i}.json").write_text(json.dumps(_report(r, 0.001 * (i + 1), **kw)))
    return tmp_path / "results"


def test_tables_give_medians_with_ranges_over_runs(tmp_path):
    (c,) = report.load_campaigns(_campaign(tmp_path, [0.9, 1.2, 1.0]))
    table = report.suite_table(c, "gemm")
    assert "1.00x (0.90x-1.20x)" in table  # median over runs, then min-max
    assert "| 3 |" in table and "cuBLAS" in table and "GPU" in table
    ceilings = report.ceilings_table(c)
    assert "100 (90-120) GB/s" in ceilings and "| 1,000 GFLOP/s |" in ceilings
    assert "vendor roof: INT8 tensor cores" in ceilings
    assert "sgemm 1024x1024x1024" in report.headline_table([c])


def test_quick_and_old_reports_make_no_table(tmp_path):
    results = _campaign(tmp_path, [1.0], quick=True)
    (results / "old").mkdir()
    (results / "old" / "a.json").write_text(json.dumps({"device": "x", "results": []}))  # schema 1
    assert report.load_campaigns(results) == []


def test_per_core_runs_are_their_own_column(tmp_path):
    results = _campaign(tmp_path, [1.0, 1.1, 1.2])
    folder = results / "testgpu-2026-12-03"
    for i, r in enumerate([0.5, 0.6, 0.7]):
        (folder / f"core-{i}.json").write_text(json.dumps(_report(r, 0.002, per_core=True)))
    (c,) = report.load_campaigns(results)
    table = report.suite_table(c, "gemm")
    assert "x ref per core" in table and "0.60x (0.50x-0.70x)" in table and "1.10x (1.00x-1.20x)" in table


def test_check_fails_when_a_document_differs_from_the_json(tmp_path):
    results = _campaign(tmp_path, [1.0, 1.0, 1.0])
    root = results.parent
    (root / "docs").mkdir()
    (root / "docs" / "results").symlink_to(results)
    text = "intro\n<!-- report:begin headline -->\nhand-typed 9.99x\n<!-- report:end headline -->\nend\n"
    (root / "README.md").write_text(text)
    (root / "docs" / "benchmarks.md").write_text("<!-- report:begin campaigns -->\n<!-- report:end "
                                                 "campaigns -->\n")
    ok, messages = report.run(check=True, root=root)
    assert not ok and any("README.md: differs" in m for m in messages)
    assert (root / "README.md").read_text() == text  # --check writes nothing
    ok, _ = report.run(root=root)
    assert "9.99x" not in (root / "README.md").read_text()
    assert report.run(check=True, root=root)[0]


def test_unknown_block_is_an_error():
    with pytest.raises(Exception, match="unknown block"):
        report.render("<!-- report:begin nope -->\n<!-- report:end nope -->", {"headline": ""})


def test_the_repository_tables_match_the_raw_json():
    ok, messages = report.run(check=True)
    assert ok, "\n".join(messages)


def test_compare_flags_a_ratio_that_fell_beyond_the_noise():
    def rep(**ratios):  # name -> (ratio, ratio_min, ratio_max)
        return {"results": [{"suite": "gemm", "name": k, "ratio": r, "ratio_min": lo, "ratio_max": hi}
                            for k, (r, lo, hi) in ratios.items()]}

    old = rep(a=(1.0, 0.95, 1.05), b=(2.0, 1.9, 2.1))
    lines, regressed = compare(old, rep(a=(0.85, 0.8, 0.9), b=(2.1, 2.0, 2.2)))
    assert regressed and any(line.startswith("FELL  gemm/a") for line in lines)
    assert not any(line.startswith("FELL") and "gemm/b" in line for line in lines)
    assert not compare(old, rep(a=(0.95, 0.9, 1.0)))[1]  # within 10%
    noisy, regressed = compare(old, rep(a=(0.85, 0.6, 1.2)))  # 15% down, but the intervals overlap
    assert not regressed and noisy[0].startswith("down?")
    # a campaign: medians over runs, the widest interval
    runs = [rep(a=(1.0, 0.95, 1.05)), rep(a=(1.2, 1.1, 1.3)), rep(a=(0.9, 0.85, 0.95))]
    assert compare(runs, rep(a=(0.7, 0.65, 0.75)))[1] and not compare(runs, rep(a=(0.95, 0.9, 1.0)))[1]


def test_an_accuracy_study_is_a_table_of_mean_sd_and_range(tmp_path):
    results = tmp_path / "results"
    (results / "dc").mkdir(parents=True)
    runs = [{"seed": s, "seconds": 1.0, "train_accuracy": t, "validation_accuracy": t - 0.01,
             "test_accuracy": t - 0.02} for s, t in enumerate((0.90, 0.92, 0.88))]
    summary = {m: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)), "min": min(v), "max": max(v),
                   "n": 3} for m, v in (("train_accuracy", [0.90, 0.92, 0.88]),
                                        ("validation_accuracy", [0.89, 0.91, 0.87]),
                                        ("test_accuracy", [0.88, 0.90, 0.86]))}
    study = {"kind": report.STUDY_KIND, "device": "dev", "runs": runs, "summary": summary, "command": "cmd",
             "params": {"n_neurons": 4, "epochs": 1, "training_images": 10, "validation_images": 2,
                        "test_images": 3}}
    (results / "dc" / "study.json").write_text(json.dumps(study))
    table = report.studies_table(report.load_studies(results))
    assert "| dc | dev | 4 x 1 | 10 / 2 / 3 | 3 | 0.880 +- 0.020 (0.860-0.900) |" in table
    assert report.load_campaigns(results) == []  # a study is no benchmark campaign
