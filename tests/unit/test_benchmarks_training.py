"""The training and search benchmarks run (at a tiny size) and print their reports.

Only that each script works and reports is checked; timings are never asserted. Each spawns
fresh interpreters (and the search one a Dask LocalCluster twice), so they take about a
minute together on 2 cores: they are marked e2e (`make test` runs them, `make test-fast` not).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_backend")]


def api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "the prefect_backend fixture provides a server"
    return str(url)


def test_training_benchmark_runs_at_a_tiny_size(run_benchmark: Callable[..., str]) -> None:
    out = run_benchmark(
        "training.py", "--sizes", "600", "--models", "logreg", "--reps", "1",
        "--startup-reps", "1", "--prefect-api-url", api_url(),
    )  # fmt: skip
    assert "both sides, each in a fresh interpreter" in out
    assert "import driftloop.flows.train" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("600"))
    assert "logreg" in row and "x " in row and "flow" in row and "bare" in row


def test_search_benchmark_runs_at_a_tiny_size(run_benchmark: Callable[..., str]) -> None:
    out = run_benchmark(
        "search.py", "--rows", "1500", "--trials", "2", "--reps", "1",
        "--prefect-api-url", api_url(),
    )  # fmt: skip
    assert "2 trials of HistGradientBoostingClassifier" in out
    for label in ("dask, 1 worker", "dask, 2 workers", "in-process loop"):
        assert label in out
    assert "speed-up 2 workers vs 1:" in out
    assert "every variant chose the same trial" in out
