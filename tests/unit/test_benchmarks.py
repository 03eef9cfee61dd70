"""The benchmark scripts run (at a tiny size): a benchmark nobody can run is worthless.

Only that the script works and prints its report is checked; timings are never asserted.
"""

from __future__ import annotations

import subprocess
import sys

from driftloop.configs.settings import PROJECT_ROOT


def test_validation_benchmark_runs_at_a_tiny_size() -> None:
    script = PROJECT_ROOT / "benchmarks" / "validation.py"
    done = subprocess.run(
        [sys.executable, str(script), "--rows", "300", "--reps", "1", "--scenario", "corrupt"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "300 rows x 20 columns" in out
    assert "quarantined" in out
    assert "validate_frame / bare GE, SUMMARY" in out
    assert "Data Docs add" in out


def test_drift_benchmark_runs_at_a_tiny_size() -> None:
    script = PROJECT_ROOT / "benchmarks" / "drift.py"
    done = subprocess.run(
        [sys.executable, str(script), "--rows", "2000", "--scenarios", "covariate_shift"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "2,000 current vs 2,000 reference rows" in out
    assert "| covariate_shift |" in out
    assert "Same decision and drifted columns: 1 of 1 scenarios" in out
