"""Shared test set-up.

The environment is set at import, before any test module imports Prefect (which reads its
settings at import time): Prefect's home in a temporary folder, telemetry off, no API URL
inherited from the developer's shell.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

_TEST_HOME = Path(tempfile.mkdtemp(prefix="driftloop-tests-"))
os.environ["PREFECT_HOME"] = str(_TEST_HOME / "prefect")
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_PROFILE", None)
os.environ.pop("DRIFTLOOP_PROFILE", None)
os.environ.pop("DRIFTLOOP_DATASET", None)
# CLI commands in tests get a temporary server each (no shared server on the project's port);
# tests/integration/test_local_server.py turns the shared one on in a folder of its own.
os.environ["DRIFTLOOP_LOCAL_SERVER"] = "off"

from driftloop.flows.cli import quiet_environment  # noqa: E402

quiet_environment()

# Hypothesis draws the same examples on every run (CI included), so a failure seen once can be
# reproduced by running the test again; `HYPOTHESIS_PROFILE=explore` draws new ones locally.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("driftloop", derandomize=True, print_blob=True, database=None)
_hypothesis_settings.register_profile("explore", print_blob=True)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "driftloop"))


def _wait_for(
    predicate: Callable[[], Any],
    timeout: float,
    interval: float = 0.5,
    what: str = "the condition",
    detail: Callable[[], str] | None = None,
) -> Any:
    """Poll `predicate` until it returns something truthy, and return that.

    Raises AssertionError naming `what` (and `detail()`, e.g. a server's last log lines) when
    `timeout` seconds pass first. The predicate is always tried once more at the deadline, so a
    slow machine that got there at the last moment passes; its exceptions propagate."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(interval, remaining))
    message = f"timed out after {timeout:g} s waiting for {what}"
    if detail is not None:
        message += f"\n{detail()}"
    raise AssertionError(message)


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., Any]:
    """`wait_for(predicate, timeout, interval=0.5, what=..., detail=None)`: the predicate's first
    truthy value, or an AssertionError naming what never happened.

    Why a fixture: tests wait on the state or event a user would see (a run Completed, a message
    received), never for a fixed time; one helper keeps the deadline and the message uniform."""
    return _wait_for


@pytest.fixture(scope="session")
def prefect_backend() -> Iterator[None]:
    """One Prefect test server for the whole session (it takes ~15 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    from driftloop.flows.cli import embedded_runs

    with prefect_test_harness(server_startup_timeout=180), embedded_runs():
        yield


@dataclass(frozen=True)
class Workspace:
    """An isolated lake and MLflow store for one test."""

    root: Path

    @property
    def lake_root(self) -> str:
        return str(self.root / "lake")

    @property
    def overrides(self) -> dict[str, Any]:
        return {
            "storage.root": self.lake_root,
            "tracking.uri": f"sqlite:///{self.root / 'mlflow.db'}",
            "tracking.artifact_location": str(self.root / "mlartifacts"),
        }

    def settings(self, **extra: Any) -> Any:
        from driftloop.configs.settings import load_settings

        return load_settings("local", {**self.overrides, **extra})


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


@pytest.fixture(scope="session")
def workspace_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Workspace]:
    """For module-scoped fixtures that share one trained workspace between tests."""
    return lambda name: Workspace(tmp_path_factory.mktemp(name))


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 in server mode on 127.0.0.1: a real HTTP endpoint boto3 (and every process
    started by the test) talks to. Yields the endpoint; the environment is restored afterwards."""
    from moto.server import ThreadedMotoServer

    from driftloop.tasks.adapters import storage

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            env.delenv(name, raising=False)
        storage.clear_client_cache()
        try:
            yield endpoint
        finally:
            storage.clear_client_cache()
            server.stop()


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A new, empty bucket for one test, as an s3:// root."""
    import boto3

    name = f"driftloop-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return f"s3://{name}"


@contextmanager
def _webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A tiny HTTP server on 127.0.0.1 standing where Slack's webhook would be."""
    received: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(url, messages received) for one test."""
    with _webhook_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def shared_webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(url, messages received), kept for a whole module (e.g. a running stack's automation)."""
    with _webhook_receiver() as receiver:
        yield receiver


def _run_benchmark(script: str, *args: str) -> str:
    import subprocess
    import sys

    from driftloop.configs.settings import PROJECT_ROOT

    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def run_benchmark() -> Callable[..., str]:
    """Run `benchmarks/<script>` with arguments in a fresh interpreter; its stdout.

    Why a fixture: each benchmark's tiny-size test needs only to know that the script runs and
    prints its report (timings are never asserted)."""
    return _run_benchmark


@pytest.fixture(scope="session")
def silent_mlflow() -> Iterator[str]:
    """The URL of an "MLflow server" that accepts connections and never answers: a run given
    it as `tracking.uri` hangs there, as a run on an unresponsive tracking server would."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        yield f"http://127.0.0.1:{silent.getsockname()[1]}"
    finally:
        silent.close()


@pytest.fixture(scope="session")
def ui_webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(url, messages received) of the webhook `ui_stack`'s on-call alerts post to."""
    with _webhook_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def ui_stack(
    tmp_path_factory: pytest.TempPathFactory, ui_webhook: tuple[str, list[dict[str, Any]]]
) -> Iterator[Any]:
    """The one shared small stack of the e2e and browser tests, from deployments/stack.py as
    `make up` builds it: a Prefect server on the embedded PostgreSQL, the deployments of
    prefect.yaml, the on-call automations posting to `ui_webhook`, the report server for its
    local lake and a process worker. MLflow is a SQLite store in the stack's folder (no MLflow
    server: the flows reach it as the demo does); `rollback` times out after 3 s.

    Why one for the session: each start costs a server start-up; tests tell their runs
    apart by id (the webhook's messages too). Runs that must not touch the shared lake pass
    their own `storage.root` in `overrides`."""
    from driftloop.deployments.stack import Stack, StackConfig, free_port

    home = tmp_path_factory.mktemp("ui-stack")
    config = StackConfig(
        home=home,
        prefect_port=free_port(),
        reports_port=free_port(),
        mlflow_url=f"sqlite:///{home / 'mlflow.db'}",  # not started: a store, not a server
        overrides={
            "storage.root": str(home / "lake"),
            "tracking.artifact_location": str(home / "mlartifacts"),
            **UI_STACK_SETTINGS,
        },
        worker_poll_seconds=1,
        webhook_url=ui_webhook[0],
        env={"DRIFTLOOP_TIMEOUT_ROLLBACK": "3", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
    )
    stack = Stack(config)
    try:
        stack.start_prefect()
        stack.deploy()
        stack.apply_automations()
        stack.start_reports()
        stack.start_worker()
        yield stack
    finally:
        stack.down()


#: The loop's settings on `ui_stack`: small days, v1 after three, every check renders its
#: report and every validation its Data Docs (the links the browser tests open).
UI_STACK_SETTINGS: dict[str, Any] = {
    "process.bootstrap_days": 3,
    "drift.window_days": 1,
    "drift.min_rows": 300,
    "drift.report": "always",
    "dataset.data_docs": "always",
}


def stack_api(stack: Any, coro_fn: Any, *args: Any) -> Any:
    """Run `coro_fn(client, *args)` against `stack`'s API, as the UI would call it."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def call() -> Any:
        with temporary_settings(updates={PREFECT_API_URL: stack.config.api_url}):
            async with get_client() as client:
                return await coro_fn(client, *args)

    return asyncio.run(call())


@pytest.fixture(scope="session")
def on_stack() -> Callable[..., Any]:
    """`on_stack(stack, coro_fn, *args)`: `coro_fn(client, *args)` against that stack's API."""
    return stack_api
