"""The production topology on this machine, driven exactly as users drive it.

Real processes on 127.0.0.1 and free ports, all started by `deployments/stack.py` (the module
`make up` uses) and stopped at the end, also on failure: a Prefect server (its database in
PostgreSQL, and again on SQLite), a process worker, an MLflow server (PostgreSQL backend when
reachable) with its artifacts in S3 on moto's server mode, the deployments from
`deployments/prefect.yaml` and the on-call automations. Runs are created through the API as the
UI's "Run" button does, with custom parameters; the webhook receiver is a tiny HTTP server here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftloop.data.generate import generate_day
from driftloop.deployments.stack import (
    PREFECT_YAML,
    Stack,
    StackConfig,
    drop_database,
    free_port,
    postgres_reachable,
    running,
)
from driftloop.tasks.adapters import storage

pytestmark = pytest.mark.e2e

DAY1, DAY2, BAD_DAY = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
ROWS = 1500
PG = "postgresql+{driver}://postgres@127.0.0.1:5432/{name}"
Wait = Callable[..., Any]  # tests/conftest.py's wait_for fixture


@pytest.fixture(scope="module")
def s3(s3_server: str) -> tuple[str, str]:
    """moto's S3 server and a bucket; every process the stack starts inherits the endpoint."""
    import boto3

    bucket = f"driftloop-e2e-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return s3_server, bucket


@pytest.fixture(scope="module")
def mlflow_server(s3: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One MLflow server for both Prefect variants (PostgreSQL backend when reachable)."""
    _endpoint, bucket = s3
    backend = None
    if postgres_reachable() is None:
        backend = PG.format(driver="psycopg", name=f"driftloop_e2e_mlflow_{uuid.uuid4().hex[:8]}")
    config = StackConfig(
        home=tmp_path_factory.mktemp("mlflow-stack"),
        mlflow_port=free_port(),
        mlflow_backend_uri=backend,
        mlflow_artifacts=f"s3://{bucket}/mlflow",
    )
    stack = Stack(config)
    try:
        stack.start_mlflow()
        yield config.tracking_url
    finally:
        stack.mlflow.stop()
        if backend:
            drop_database(backend)


@pytest.fixture(params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest,
    s3: tuple[str, str],
    shared_webhook: tuple[str, list[dict[str, Any]]],
    mlflow_server: str,
    tmp_path: Path,
) -> Iterator[Stack]:
    variant = request.param
    db = None
    if variant == "postgresql":
        reason = postgres_reachable()
        if reason:
            pytest.skip(f"Prefect-on-PostgreSQL variant skipped: {reason}")
        db = PG.format(driver="asyncpg", name=f"driftloop_e2e_prefect_{uuid.uuid4().hex[:8]}")
    _endpoint, bucket = s3
    config = StackConfig(
        home=tmp_path / "stack",
        prefect_port=free_port(),
        prefect_db_url=db,
        mlflow_url=mlflow_server,
        profile="prod",
        overrides={
            "storage.root": f"s3://{bucket}/{variant}/lake",
            "registry.model_name": f"loans-{variant}",
            "registry.experiment": f"driftloop-e2e-{variant}",
        },
        worker_poll_seconds=1,
        webhook_url=shared_webhook[0],
    )
    try:
        with running(config) as started:
            yield started
    finally:
        if db:
            drop_database(db)


# ------------------------------------------------------------------------------ helpers


def api(stack: Stack, coro_fn: Any, *args: Any) -> Any:
    """Run `coro_fn(client, *args)` against this stack's API (as the UI would call it)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def call() -> Any:
        with temporary_settings(updates={PREFECT_API_URL: stack.config.api_url}):
            async with get_client() as client:
                return await coro_fn(client, *args)

    return asyncio.run(call())


async def _deployments(client: Any) -> dict[str, Any]:
    return {d.name: d for d in await client.read_deployments()}


async def _run(client: Any, deployment_id: Any, parameters: dict[str, Any]) -> Any:
    return (await client.create_flow_run_from_deployment(deployment_id, parameters=parameters)).id


async def _read(client: Any, run_id: Any) -> Any:
    return await client.read_flow_run(run_id)


async def _deployment_runs(client: Any, deployment_id: Any) -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return await client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    )


async def _automation_names(client: Any) -> list[str]:
    return sorted(a.name for a in await client.read_automations())


def wait_final(
    wait_for: Wait, stack: Stack, run_ids: list[Any], timeout: float = 150
) -> dict[Any, Any]:
    """The runs, once every one is in a final state (Completed, Failed, Crashed, ...)."""
    seen: dict[Any, Any] = {}

    def finished() -> dict[Any, Any] | None:
        seen.update({rid: api(stack, _read, rid) for rid in run_ids})
        return dict(seen) if all(r.state and r.state.is_final() for r in seen.values()) else None

    def states() -> str:
        names = {r.name: r.state.name if r.state else None for r in seen.values()}
        return f"states: {names}\nworker log:\n{stack.worker.tail(60)}"

    return wait_for(finished, timeout, interval=1, what="the runs to finish", detail=states)


def emit(stack: Stack, event: str, resource: str, payload: dict[str, Any]) -> None:
    import httpx

    body = [
        {
            "id": str(uuid.uuid4()),
            "occurred": datetime.now(UTC).isoformat(),
            "event": event,
            "resource": {"prefect.resource.id": resource},
            "payload": payload,
        }
    ]
    httpx.post(f"{stack.config.api_url}/events", json=body, timeout=10).raise_for_status()


def write_batches(root: str) -> None:
    lake = storage.Lake(root, "loans")
    for day in (DAY1, DAY2):
        storage.write_frame(generate_day(day, ROWS, seed=1), lake.raw(day))
    corrupt = generate_day(BAD_DAY, ROWS, seed=1).assign(age=5)  # every row breaks the contract
    storage.write_frame(corrupt, lake.raw(BAD_DAY))


# ------------------------------------------------------------------------------ the test


def test_stack_trains_retrains_on_drift_and_alerts_on_failure(
    stack: Stack,
    s3: tuple[str, str],
    shared_webhook: tuple[str, list[dict[str, Any]]],
    wait_for: Wait,
) -> None:
    from mlflow import MlflowClient

    cfg = stack.config
    lake_root = cfg.overrides["storage.root"]
    model = cfg.overrides["registry.model_name"]
    write_batches(lake_root)

    # Deployments as declared, schedules with cron + timezone; deploying again changes nothing.
    declared = {d["name"]: d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]}
    deployments = api(stack, _deployments)
    assert {"ingest", "train", "score", "check_drift", "notify"} <= set(deployments)
    for name in ("score", "check_drift"):
        (schedule,) = deployments[name].schedules
        want = declared[name]["schedules"][0]
        assert (schedule.schedule.cron, schedule.schedule.timezone) == (
            want["cron"],
            want["timezone"],
        )
    train_limit = deployments["train"].global_concurrency_limit
    assert train_limit is not None and train_limit.limit == 1, "one training at a time"
    assert deployments["train"].concurrency_options.collision_strategy.value == "ENQUEUE"
    automations_before = api(stack, _automation_names)
    assert "driftloop-on-call" in automations_before
    assert "driftloop-drift-storm" in automations_before
    if cfg.prefect_db_url is None:  # once is enough: this is about prefect.yaml, not the DB
        stack.deploy()
    assert {n: d.id for n, d in api(stack, _deployments).items()} == {
        n: d.id for n, d in deployments.items()
    }
    assert api(stack, _automation_names) == automations_before

    # The server's scheduler turns the cron schedules into upcoming runs (a broken scheduler,
    # e.g. on an incompatible SQLAlchemy, leaves them empty and nothing ever runs on time).
    wait_for(
        lambda: [
            r
            for r in api(stack, _deployment_runs, deployments["score"].id)
            if r.state and r.state.is_scheduled()
        ],
        60,
        interval=1,
        what="scheduled score runs from the server's scheduler",
        detail=lambda: f"server log:\n{stack.prefect.tail(40)}",
    )

    # Raw batches on S3 are ingested; a corrupt one fails (and must page on-call).
    ingest_id = deployments["ingest"].id
    good = [api(stack, _run, ingest_id, {"day": str(d)}) for d in (DAY1, DAY2)]
    bad = api(stack, _run, ingest_id, {"day": str(BAD_DAY)})
    runs = wait_final(wait_for, stack, [*good, bad])
    assert all(runs[r].state.is_completed() for r in good), [runs[r].state for r in good]
    assert runs[bad].state.is_failed()

    # "Run" on train with custom parameters, as the UI's form sends them.
    train_id = deployments["train"].id
    run = api(
        stack,
        _run,
        train_id,
        {
            "window_start": str(DAY1),
            "window_end": str(DAY2),
            "trigger": "ui",
            "hyperparameters": {"max_iter": 40},
        },
    )
    trained = wait_final(wait_for, stack, [run])[run]
    assert trained.state.is_completed(), trained.state
    assert trained.name == f"train-{DAY1}..{DAY2}"
    client = MlflowClient(tracking_uri=cfg.tracking_url, registry_uri=cfg.tracking_url)
    champion = client.get_model_version_by_alias(model, "champion")
    assert champion.version == "1"
    mlrun = client.get_run(champion.run_id)
    assert mlrun.data.params["model.max_iter"] == "40", "the form's hyperparameters were used"
    assert mlrun.data.tags["driftloop.trigger"] == "ui"
    _endpoint, bucket = s3
    import boto3

    keys = [
        o["Key"]
        for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    model_id = champion.source.rsplit("/", 1)[-1]
    assert any(k.startswith("mlflow/") and model_id in k for k in keys), (model_id, keys[:20])
    assert any(k.startswith("mlflow/") and k.endswith("MLmodel") for k in keys)

    # Scoring and the drift check run from S3 and write back to S3.
    score = api(stack, _run, deployments["score"].id, {"day": str(DAY2)})

    # A drift event (as check_drift emits it) makes the trigger start `train` on its window.
    report = f"{lake_root}/reports/drift/{model}-{DAY2}.html"
    decision = f"{lake_root}/monitoring/{model}/decisions/check-e2e.json"
    emit(
        stack,
        "driftloop.drift.detected",
        f"driftloop.model.{model}",
        {
            "model": model,
            "window_start": str(DAY1),
            "window_end": str(DAY2),
            "report": report,
            "decision": decision,
        },
    )
    triggered = wait_for(
        lambda: [
            r for r in api(stack, _deployment_runs, train_id) if r.parameters.get("trigger") != "ui"
        ],
        60,
        interval=1,
        what="the drift trigger to create a train run",
        detail=lambda: f"server log:\n{stack.prefect.tail(40)}",
    )
    params = triggered[0].parameters
    assert (params["window_start"], params["window_end"]) == (str(DAY1), str(DAY2))
    assert params["trigger"] == f"drift:{decision} report:{report}"

    scored = wait_final(wait_for, stack, [score])[score]
    assert scored.state.is_completed(), scored.state
    drift = api(
        stack, _run, deployments["check_drift"].id, {"window_end": str(DAY2), "window_days": 1}
    )
    checked = wait_final(wait_for, stack, [drift])[drift]
    assert checked.state.is_completed(), checked.state
    assert storage.exists(f"{lake_root}/predictions/{model}/{DAY2}.parquet")
    assert storage.exists(report)

    # The failed ingest produced one on-call message with everything needed to act on it.
    _url, received = shared_webhook
    notify_id = deployments["notify"].id

    def pages() -> list[dict[str, Any]]:
        return [m for m in received if m.get("driftloop", {}).get("flow_run_id") == str(bad)]

    def why_no_page() -> str:
        notify_runs = [
            (r.name, r.state.name if r.state else None, r.state.message if r.state else None)
            for r in api(stack, _deployment_runs, notify_id)
        ]
        return (
            f"failed run {bad} ({api(stack, _read, bad).state}); got {received};\n"
            f"notify runs: {notify_runs}\nworker:\n{stack.worker.tail(60)}\n"
            f"server:\n{stack.prefect.tail(60)}"
        )

    wait_for(pages, 90, interval=1, what="the on-call message", detail=why_no_page)

    # Both the run's own failure hook and the automation's `notify` try; one claims the run.
    for_bad: list[Any] = []

    def notify_settled() -> bool:
        for_bad[:] = [
            r
            for r in api(stack, _deployment_runs, notify_id)
            if str(bad) in str(r.parameters.get("flow_run"))
        ]
        if not for_bad:
            # SQLite: the trigger may have lost the event; the hook covered it
            return cfg.prefect_db_url is None
        return all(r.state and r.state.is_final() for r in for_bad)

    wait_for(
        notify_settled,
        60,
        interval=1,
        what="the notify runs for the failed run to finish",
        detail=lambda: f"notify runs: {[(r.name, r.state) for r in for_bad]}",
    )
    if cfg.prefect_db_url:  # on PostgreSQL the automation path must have fired
        assert for_bad and all(r.state.is_completed() for r in for_bad), for_bad
    mine = pages()
    assert len(mine) == 1, f"on-call is paged once per failed run, got {len(mine)}"
    facts = mine[0]["driftloop"]
    assert facts["sent_by"] in ("failure hook", "notify automation")
    assert (facts["flow"], facts["deployment"]) == ("ingest", "ingest")
    assert facts["parameters"]["day"] == str(BAD_DAY)
    assert facts["failing_task"].startswith("enforce-contract")
    assert facts["exception_type"] == "DataContractError"
    assert "failed its data contract" in facts["exception_message"]
    assert facts["log_lines"], "the last log lines"
    assert facts["prefect_url"] == f"{cfg.prefect_url}/runs/flow-run/{bad}"
    assert facts["mlflow_url"].startswith(cfg.tracking_url)
    assert facts["runbook"].endswith("runbook.md#data-validation-failed")
    assert mine[0]["text"].startswith("[driftloop] Failed: ingest/ingest")
