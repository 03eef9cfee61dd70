"""The CLI's shared local server: started by the first command, reused, stopped when idle.

Real processes end to end: `driftloop ingest` as a user runs it (no PREFECT_API_URL), a Prefect
server on the embedded PostgreSQL, the idle watcher. In a folder and port of the test's own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from driftloop.data.generate import write_batches
from driftloop.deployments.stack import Stack, StackConfig, free_port

pytestmark = pytest.mark.e2e
START = date(2025, 1, 1)


def _flow_runs(api_url: str) -> list[dict]:
    import httpx

    reply = httpx.post(f"{api_url}/flow_runs/filter", json={}, timeout=30)
    reply.raise_for_status()
    return reply.json()


@pytest.fixture
def home() -> Iterator[Path]:
    """Outside pytest's own temporary root, which pytest keeps private (0700) and which the
    embedded PostgreSQL's system user (when we are root) must be able to traverse."""
    folder = Path(tempfile.mkdtemp(prefix="driftloop-local-server-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_commands_share_one_local_server_that_stops_when_idle(home: Path, wait_for: Any) -> None:
    tmp_path = home
    lake = tmp_path / "lake"
    write_batches(str(lake), "loans", START, 2, 500, fmt="csv")
    env = {
        **os.environ,
        "DRIFTLOOP_LOCAL_SERVER": "on",
        "DRIFTLOOP_LOCAL_SERVER_IDLE_MINUTES": "0.5",
        "DRIFTLOOP_STACK_HOME": str(tmp_path / "stack"),
        "DRIFTLOOP_PREFECT_PORT": str(free_port()),
        "DRIFTLOOP_REPORTS_PORT": str(free_port()),
        "DRIFTLOOP_OVERRIDES": json.dumps(
            {
                "storage.root": str(lake),
                "storage.raw_format": "csv",
                "tracking.uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                "tracking.artifact_location": str(tmp_path / "artifacts"),
            }
        ),
    }
    env.pop("PREFECT_API_URL", None)
    config = StackConfig.from_env({k: v for k, v in env.items() if k.startswith("DRIFTLOOP_")})
    stack = Stack(config)
    cli = [str(Path(sys.executable).with_name("driftloop")), "ingest"]
    try:
        pids = []
        for day in (START, START + timedelta(days=1)):
            done = subprocess.run(
                [*cli, str(day)], env=env, capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, done.stderr[-3000:]
            assert json.loads(done.stdout)["rows_valid"] == 500
            pids.append(stack.prefect.pid())
        assert pids[0] is not None and pids[0] == pids[1], "the second command reused the server"
        runs = _flow_runs(config.api_url)
        assert sorted(r["name"] for r in runs) == ["ingest-2025-01-01", "ingest-2025-01-02"]
        assert {r["state_type"] for r in runs} == {"COMPLETED"}
        # the lake's reports are served beside it, so the runs' links open from its UI
        assert stack.reports.pid() is not None and stack.reports_healthy()
        served = (config.home / "pids" / "reports.dir").read_text()
        assert served == str(lake / "reports"), served
        # idle for 30 s with nothing running: the watcher stops the server and its database,
        # then logs why (its line may land a moment after the processes are gone)
        wait_for(
            lambda: (
                stack.prefect.pid() is None
                and stack.postgres.pid() is None
                and stack.reports.pid() is None
                and "stopped after" in stack.idle_watch.tail()
            ),
            timeout=120,
            what="the idle watcher to stop the local server and say so",
            detail=lambda: stack.idle_watch.tail(),
        )
    finally:
        stack.down()
