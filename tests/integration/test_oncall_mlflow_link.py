"""The on-call message's MLflow link opens the run itself, and only when there is one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftloop.tasks.adapters.oncall import mlflow_run_url


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 with a SQLite backend."""
    home: Path = tmp_path_factory.mktemp("mlflow-link")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    with (home / "server.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
             str(port), "--workers", "1", "--backend-store-uri",
             f"sqlite:///{home / 'mlflow.db'}", "--artifacts-destination", str(home / "a")],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while not _healthy(url):
                assert process.poll() is None, (home / "server.log").read_text()[-3000:]
                assert time.monotonic() < deadline, f"no MLflow server on {url} after 180 s"
                time.sleep(0.5)
            yield url
        finally:
            process.terminate()
            process.wait(30)


def test_the_link_is_the_run_and_absent_without_one(mlflow_server: str) -> None:
    from mlflow import MlflowClient

    from driftloop.configs.settings import load_settings

    experiment = load_settings("local").registry.experiment
    client = MlflowClient(tracking_uri=mlflow_server)
    exp_id = client.create_experiment(experiment)
    run = client.create_run(exp_id, tags={"driftloop.flow_run_id": "flow-run-1"})
    parameters = {"overrides": {"tracking.uri": mlflow_server}}

    link = mlflow_run_url(parameters, "flow-run-1")

    assert link == f"{mlflow_server}/#/experiments/{exp_id}/runs/{run.info.run_id}"
    run_id = link.rsplit("/", 1)[-1]  # what the link opens, through MLflow's REST API
    with urllib.request.urlopen(f"{mlflow_server}/api/2.0/mlflow/runs/get?run_id={run_id}") as r:
        tags = {t["key"]: t["value"] for t in json.loads(r.read())["run"]["data"]["tags"]}
    assert tags["driftloop.flow_run_id"] == "flow-run-1"
    assert mlflow_run_url(parameters, "flow-run-without-mlflow") is None
