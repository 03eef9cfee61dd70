"""The flows' image, run the way a data engineer deploys it: a Docker-type work pool.

The image is built from the Containerfile (deployments/container/build-local.sh: the same
script `make image` runs; here a debootstrap'ed Debian base and a host-filled wheelhouse, since
no registry or index is reachable from a build). Then `deployments/stack.py` starts the stack
on 127.0.0.1 with DRIFTLOOP_WORK_POOL_TYPE=docker: Prefect server, MLflow server (artifacts in
S3 on moto's server mode), a prefect-docker worker, the deployments from prefect.yaml. With
podman the worker's Docker API is `podman system service` on a socket of this test; its
containers need runc and explicit ulimits here, which the pool's job variables carry
(`container_create_kwargs`). `ingest`, `train` and `score` runs are created through the API as
the UI's Run button does; each runs in a container of the image, and the lake, the registry
and the predictions (carrying the champion's version) are checked from outside.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from driftloop.data.generate import generate_day, labels_of
from driftloop.deployments.stack import IMAGE_CODE_DIR, StackConfig, free_port, running
from driftloop.tasks.adapters import storage
from driftloop.tasks.adapters.registry import TAG_PREFIX

pytestmark = pytest.mark.containers

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "deployments" / "container" / "build-local.sh"
IMAGE = os.environ.get("DRIFTLOOP_IMAGE", "localhost/driftloop:dev")
DAYS = [date(2026, 11, 1) + timedelta(days=i) for i in range(3)]
ROWS = 1500
# What this sandbox's podman needs to start a container (crun and default ulimits are refused).
PODMAN_CREATE = {
    "runtime": "runc",
    "ulimits": [
        {"Name": "nofile", "Soft": 1024, "Hard": 1024},
        {"Name": "nproc", "Soft": 1024, "Hard": 1024},
    ],
}


def _engine() -> str | None:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    ):
        return "docker"
    return "podman" if shutil.which("podman") else None


@pytest.fixture(scope="module")
def engine() -> str:
    found = _engine()
    if found is None:
        pytest.skip("neither a docker engine nor podman is here (make system-deps installs podman)")
    return found


@pytest.fixture(scope="module")
def image(engine: str) -> str:
    """The image, built from the Containerfile (cached layers when nothing changed)."""
    env = {"PYTHON": sys.executable, **os.environ, "ENGINE": engine, "DRIFTLOOP_IMAGE": IMAGE}
    done = subprocess.run([str(BUILD)], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (
        f"image build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return IMAGE


@pytest.fixture(scope="module")
def docker_host(engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The Docker API the worker talks to: the engine's own, or `podman system service`."""
    if engine == "docker":
        yield {}
        return
    sock = tmp_path_factory.mktemp("podman") / "docker.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert service.poll() is None, "podman system service exited"
            assert time.monotonic() < deadline, "podman system service did not open its socket"
            time.sleep(0.2)
        yield {"DOCKER_HOST": f"unix://{sock}"}
    finally:
        service.terminate()
        service.wait(timeout=30)


@pytest.fixture(scope="module")
def bucket(s3_server: str) -> str:
    import boto3

    name = f"driftloop-containers-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return name


def _api(config: StackConfig, coro_fn: Any, *args: Any) -> Any:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def call() -> Any:
        with temporary_settings(updates={PREFECT_API_URL: config.api_url}):
            async with get_client() as client:
                return await coro_fn(client, *args)

    return asyncio.run(call())


async def _start(client: Any, name: str, parameters: dict[str, Any]) -> Any:
    deployment = await client.read_deployment_by_name(name)
    return (await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)).id


async def _read(client: Any, run_id: Any) -> Any:
    return await client.read_flow_run(run_id)


def test_ingest_train_and_score_run_in_the_image_on_a_docker_pool(
    engine: str,
    image: str,
    docker_host: dict[str, str],
    bucket: str,
    s3_server: str,
    tmp_path_factory: pytest.TempPathFactory,
    wait_for: Any,
    workers: list[str],
) -> None:
    import docker
    from mlflow import MlflowClient

    lake_root = f"s3://{bucket}/lake"
    model = "loans-containers"
    config = StackConfig(
        home=tmp_path_factory.mktemp("stack-docker"),
        prefect_port=free_port(),
        mlflow_port=free_port(),
        database="sqlite",  # a handful of runs: no need for the embedded PostgreSQL here
        mlflow_artifacts=f"s3://{bucket}/mlflow",
        profile="prod",
        overrides={"storage.root": lake_root, "registry.model_name": model},
        worker_poll_seconds=1,
        work_pool_type="docker",
        image=image,
        docker_job_variables={"container_create_kwargs": PODMAN_CREATE}
        if engine == "podman"
        else {},
        env=docker_host,
    )
    workers.append(f"driftloop-worker-{config.prefect_port}")  # the stack's worker name
    lake = storage.Lake(lake_root, "loans")
    for day in DAYS:
        frame = generate_day(day, ROWS, scenario="none", seed=1)
        storage.write_frame(frame, lake.raw(day))
        storage.write_frame(labels_of(frame), lake.labels(day))

    with running(config) as stack:

        def final(runs: list[Any], timeout: float) -> dict[Any, Any]:
            seen: dict[Any, Any] = {}

            def done() -> dict[Any, Any] | None:
                seen.update({rid: _api(config, _read, rid) for rid in runs})
                return seen if all(r.state and r.state.is_final() for r in seen.values()) else None

            return wait_for(
                done,
                timeout,
                interval=1,
                what="the container runs to finish",
                detail=lambda: (
                    f"{[(r.name, r.state) for r in seen.values()]}\n"
                    f"worker log:\n{stack.worker.tail(80)}"
                ),
            )

        def completed(runs: dict[Any, Any]) -> None:
            for run in runs.values():
                assert run.state.is_completed(), f"{run.name}: {run.state}\n{stack.worker.tail(80)}"

        ingests = [_api(config, _start, "ingest/ingest", {"day": str(d)}) for d in DAYS]
        ingested = final(ingests, 300)
        completed(ingested)
        for day in DAYS:
            assert storage.read_frame(lake.curated(day)).shape[0] > 0, f"curated {day} in S3"

        trained = final(
            [
                _api(
                    config,
                    _start,
                    "train/train",
                    {"window_start": str(DAYS[0]), "window_end": str(DAYS[-1])},
                )
            ],
            300,
        )
        completed(trained)
        client = MlflowClient(tracking_uri=config.tracking_url, registry_uri=config.tracking_url)
        champion = client.get_model_version_by_alias(model, "champion")

        (scored,) = final(
            [_api(config, _start, "score/score", {"day": str(DAYS[-1])})], 300
        ).values()
        completed({scored.id: scored})

        predictions = storage.read_frame(lake.predictions(model, DAYS[-1]))
        assert len(predictions) > 0
        assert set(predictions["model_version"].astype(str)) == {champion.version}

        # Every run ran in a container of the image, as its non-root user, and exited cleanly.
        engine_api = docker.from_env(environment={**os.environ, **docker_host})
        for run in [*ingested.values(), *trained.values(), scored]:
            container_id = str(run.infrastructure_pid).rsplit(":", 1)[-1]
            container = engine_api.containers.get(container_id)
            assert image in container.image.tags, (run.name, container.image.tags)
            assert container.attrs["Config"]["User"] == "10001", "the image's non-root user"
            assert container.attrs["State"]["ExitCode"] == 0
            assert container.attrs["Config"]["WorkingDir"] == "/data"
        assert IMAGE_CODE_DIR in (config.home / "prefect.docker.yaml").read_text()
        # The model trained in the image records the commit the image was built from.
        image_env = dict(
            item.split("=", 1) for item in engine_api.images.get(image).attrs["Config"]["Env"]
        )
        built_from = image_env["DRIFTLOOP_CODE_VERSION"]
        assert built_from != "unknown" and champion.tags[TAG_PREFIX + "code_version"] == built_from


@pytest.fixture
def workers(docker_host: dict[str, str]) -> Iterator[list[str]]:
    """The pool keeps finished containers (for their logs): those of the workers the test names
    here are removed after it."""
    names: list[str] = []
    yield names
    import docker

    engine_api = docker.from_env(environment={**os.environ, **docker_host})
    for name in names:
        label = f"io.prefect.worker-name={name}"
        for container in engine_api.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
