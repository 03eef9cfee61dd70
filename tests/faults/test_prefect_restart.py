"""The Prefect server restarts while a flow run is going: the run ends in a final state
(Completed, or Crashed/Failed), never left Running. A real `prefect server` subprocess on
127.0.0.1 (SQLite in a temporary PREFECT_HOME), stopped and started again on the same port and
database while a driftloop ingest runs in its own process against it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from driftloop.data.generate import generate_day
from driftloop.tasks.adapters import storage

pytestmark = pytest.mark.faults

DAY = date(2026, 11, 7)
FINAL = {"COMPLETED", "CRASHED", "FAILED"}
CHILD = """
import json, sys
from datetime import date
from driftloop.flows.ingest import ingest
ingest(date.fromisoformat(sys.argv[1]), overrides=json.loads(sys.argv[2]))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _api(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"{url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read() or b"null")


def _healthy(url: str) -> bool:
    try:
        return _api(url, "/health") is True
    except OSError:
        return False


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.3)


class PrefectServer:
    """`prefect server start` on a fixed port and home, so a restart keeps both."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
        }
        self.env.pop("PREFECT_API_URL", None)

    def start(self) -> None:
        log = (self.home / "server.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(self.port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        _wait(lambda: _healthy(self.url) or self.process.poll() is not None, 180, self.url)  # type: ignore[union-attr]
        assert self.process.poll() is None, (self.home / "server.log").read_text()[-3000:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrefectServer]:
    home = tmp_path / "prefect"
    home.mkdir()
    prefect = PrefectServer(home)
    prefect.start()
    try:
        yield prefect
    finally:
        prefect.stop()


def test_a_server_restart_mid_run_leaves_the_run_in_a_final_state(server, tmp_path) -> None:
    lake_root = str(tmp_path / "lake")
    storage.write_frame(
        generate_day(DAY, 150_000, seed=1), storage.Lake(lake_root, "loans").raw(DAY)
    )
    overrides = {
        "storage.root": lake_root,
        "tracking.uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "tracking.artifact_location": str(tmp_path / "mlartifacts"),
    }
    env = {**server.env, "PREFECT_API_URL": server.url}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, DAY.isoformat(), json.dumps(overrides)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def running() -> str | None:
            assert child.poll() is None, "the run ended before the restart"
            runs = _api(server.url, "/flow_runs/filter", {"limit": 5})
            return next((r["id"] for r in runs if r["state_type"] == "RUNNING"), None)

        run_id = _wait(running, 120, "a Running flow run")
        server.stop()
        alive_through_restart = child.poll() is None
        server.start()
        child.wait(300)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    output = child.stdout.read().decode(errors="replace")[-3000:]  # type: ignore[union-attr]
    child.stdout.close()  # type: ignore[union-attr]
    state = _wait(
        lambda: (s := _api(server.url, f"/flow_runs/{run_id}")["state_type"]) in FINAL and s,
        120,
        f"flow run {run_id} to reach a final state (child said:\n{output})",
    )
    assert alive_through_restart, "the run ended before the server went away"
    if child.returncode == 0:
        assert state == "COMPLETED", output
        assert storage.exists(storage.Lake(lake_root, "loans").curated(DAY))
