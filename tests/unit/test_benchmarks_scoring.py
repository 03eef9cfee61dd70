"""The scoring benchmarks run at a tiny size and print their report (timings never asserted)."""

from __future__ import annotations

import subprocess
import sys

from driftloop.configs.settings import PROJECT_ROOT


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_scoring_benchmark_runs_at_a_tiny_size(tmp_path) -> None:
    out = run(
        "scoring.py", "--sizes", "1500", "--reps", "1", "--train-rows", "600",
        "--batch-rows", "500", "--workdir", str(tmp_path),
    )  # fmt: skip
    assert "machine:" in out
    assert "| 1,500 | 1 |" in out
    assert "throughput ratio driftloop/bare" in out
    assert "validate" in out and "predict" in out


def test_scale_out_benchmark_runs_at_a_tiny_size(tmp_path) -> None:
    out = run(
        "scale_out.py", "--rows", "1200", "--partitions", "2", "--reps", "1",
        "--train-rows", "600", "--warmup", "0", "--workdir", str(tmp_path),
    )  # fmt: skip
    assert "1,200 rows in 2 partitions" in out
    assert "| 1 |" in out and "| 2 |" in out
    assert "speed-up vs 1 worker" in out
