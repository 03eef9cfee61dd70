"""The benchmark scripts run (at a tiny size): a benchmark nobody can run is worthless.

Only that the script works and prints its report is checked; timings are never asserted.
"""

from __future__ import annotations

from collections.abc import Callable

Run = Callable[..., str]


def test_validation_benchmark_runs_at_a_tiny_size(run_benchmark: Run) -> None:
    out = run_benchmark("validation.py", "--rows", "300", "--reps", "1", "--scenario", "corrupt")
    assert "300 rows x 20 columns" in out
    assert "quarantined" in out
    assert "validate_frame / bare GE, SUMMARY" in out
    assert "Data Docs add" in out


def test_drift_benchmark_runs_at_a_tiny_size(run_benchmark: Run) -> None:
    out = run_benchmark("drift.py", "--rows", "2000", "--scenarios", "covariate_shift")
    assert "2,000 current vs 2,000 reference rows" in out
    assert "| covariate_shift |" in out
    assert "Same decision and drifted columns: 1 of 1 scenarios" in out


def test_drift_window_benchmark_runs_at_a_tiny_size(run_benchmark: Run) -> None:
    out = run_benchmark("drift_window.py", "--rows", "3000", "6000")
    assert "| driftloop |" in out and "| bare |" in out and "peak ratio" in out


def test_scoring_benchmark_runs_at_a_tiny_size(run_benchmark: Run, tmp_path) -> None:
    out = run_benchmark(
        "scoring.py", "--sizes", "1500", "--reps", "1", "--train-rows", "600",
        "--batch-rows", "500", "--workdir", str(tmp_path),
    )  # fmt: skip
    assert "machine:" in out
    assert "| 1,500 | 1 |" in out
    assert "throughput ratio driftloop/bare" in out
    assert "validate" in out and "predict" in out


def test_scale_out_benchmark_runs_at_a_tiny_size(run_benchmark: Run, tmp_path) -> None:
    out = run_benchmark(
        "scale_out.py", "--rows", "1200", "--partitions", "2", "--reps", "1",
        "--train-rows", "600", "--warmup", "0", "--workdir", str(tmp_path),
    )  # fmt: skip
    assert "1,200 rows in 2 partitions" in out
    assert "| 1 |" in out and "| 2 |" in out
    assert "speed-up vs 1 worker" in out
