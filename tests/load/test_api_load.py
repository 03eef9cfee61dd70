"""The servers' load test at a small size: lightweight clients against the default stack's
Prefect and MLflow servers (benchmarks/api_load.py; `make load-test` runs the full levels)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.load

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import api_load  # noqa: E402


def test_concurrent_clients_are_served_and_every_run_completes() -> None:
    """Every call of every client is answered without error, every flow run the clients
    created is Completed on the server, and the report names what saturates first."""
    home = Path(tempfile.mkdtemp(prefix="driftloop-load-"))  # embedded PostgreSQL: not 0700 roots
    result = api_load.measure([1, 4], 4.0, home)
    levels = result["levels"]
    errors = [e for level in levels for e in level.errors]
    assert not errors, errors[:5]
    assert result["created"] >= 4, "the clients finished too few flow runs to judge"
    assert result["states"] == {"COMPLETED": result["created"]}
    for level in levels:
        assert level.latency["prefect"] and level.latency["mlflow"], level.clients
    lines = api_load.report(levels)
    assert lines[-1].startswith("first to saturate: ")
