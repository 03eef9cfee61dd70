"""The MLflow tracking server goes away during training (the candidate's artifacts) and during
registration (between creating the version and recording its digest): a real `mlflow server`
subprocess behind a cuttable proxy, real Prefect, the lake in a local folder.

Promise (docs/reliability.md): the run fails naming the server; the champion alias, the
ledger, the champion's file digest and its drift reference never disagree; a rerun completes
and promotes. A version left without its digest is never loaded (driftloop refuses it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from driftloop.data.generate import generate_day
from driftloop.flows.ingest import ingest
from driftloop.flows.train import train
from driftloop.tasks.adapters import registry, storage
from driftloop.tasks.adapters.ledger import Ledger

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("prefect_backend")]

START = date(2026, 11, 1)
ROWS = 1200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 (SQLite backend, artifacts served by the server)."""
    home = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    log = (home / "server.log").open("w")
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
         "--serve-artifacts", "--artifacts-destination", str(home / "artifacts")],
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
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def tracking(mlflow_server: str) -> Iterator[Any]:
    """The MLflow server behind a cuttable proxy; MLflow's client gives up after one retry so
    an outage fails the step in seconds (Prefect's task retries still apply)."""
    from conftest_proxy import CutProxy  # type: ignore[import-not-found]

    host, port = mlflow_server.removeprefix("http://").split(":")
    proxy = CutProxy((host, int(port)))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        env.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        env.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        yield proxy
    proxy.go_away()


@pytest.fixture(scope="module")
def loop(tracking, tmp_path_factory) -> dict[str, Any]:
    """Three curated days in a local lake and v1 champion trained on the first two."""
    root = tmp_path_factory.mktemp("mlflow-outage")
    overrides = {
        "storage.root": str(root / "lake"),
        "tracking.uri": tracking.endpoint,
        "tracking.artifact_location": None,
    }
    lake = storage.Lake(overrides["storage.root"], "loans")
    for i in range(3):
        day = START + timedelta(days=i)
        storage.write_frame(generate_day(day, ROWS, seed=i), lake.raw(day))
        ingest(day, overrides=overrides)
    first = train(START, START + timedelta(days=1), overrides=overrides)
    assert first.promoted and first.version == "1", first.gate_reason
    return {"overrides": overrides, "root": overrides["storage.root"]}


def assert_consistent(loop: dict[str, Any]) -> str:
    """Registry, alias, ledger and drift reference agree; returns the champion's version."""
    from driftloop.configs.settings import load_settings

    settings = load_settings("local", loop["overrides"])
    registry.configure_tracking(settings.tracking, settings.registry)
    champion = registry.version_by_alias(settings.registry, "champion")
    assert champion is not None
    ledger = Ledger(loop["root"], settings.registry.model_name)
    latest = ledger.previous("champion")
    assert latest is not None and latest.to_version == champion.version, (latest, champion)
    assert not [e for e in ledger.entries() if e.status == "pending"], "a move left pending"
    assert champion.tag("model_sha256"), "the champion has no file digest"
    reference = champion.tag("reference_uri")
    assert reference and storage.exists(reference), f"drift reference {reference!r} missing"
    registry.load_version(champion)  # the digest matches the files it serves
    from mlflow import MlflowClient

    name = settings.registry.model_name
    for mv in MlflowClient().search_model_versions(f"name='{name}'"):
        info = registry.ModelVersionInfo(
            name=name, version=str(mv.version), run_id=mv.run_id or "", source=mv.source or "",
            tags=dict(mv.tags or {}),
        )  # fmt: skip
        if not info.tag("model_sha256"):  # a registration cut short: never served
            assert not mv.aliases, f"version {mv.version} has no digest but aliases {mv.aliases}"
            with pytest.raises(registry.RegistryError, match="carries no"):
                registry.load_version(info)
    return champion.version


@pytest.mark.parametrize(
    ("when", "marker"),
    [
        ("training", b"PUT /api/2.0/mlflow-artifacts/artifacts/"),
        ("registration", b"POST /api/2.0/mlflow/model-versions/set-tag"),
    ],
)
def test_mlflow_gone_mid_train_keeps_registry_alias_ledger_and_reference_in_step(
    loop, tracking, when: str, marker: bytes
) -> None:
    overrides = loop["overrides"]
    before = assert_consistent(loop)
    tracking.cut_on(marker)
    try:
        with pytest.raises(Exception) as failed:
            train(START, START + timedelta(days=2), overrides=overrides)
        assert tracking.cut_requests, f"the proxy never saw the {when} request: nothing cut"
        assert tracking.endpoint.removeprefix("http://") in str(failed.value), failed.value
    finally:
        tracking.cut_on(None)
        tracking.restore()
    assert assert_consistent(loop) == before, "the champion moved during a failed run"

    rerun = train(START, START + timedelta(days=2), overrides=overrides)
    assert rerun.version is not None
    assert assert_consistent(loop) == (rerun.version if rerun.promoted else before)
