"""The production topology on this machine, left to run the loop by itself.

Real processes on 127.0.0.1 and free ports, all started by `deployments/stack.py` (the module
`make up` uses) and stopped at the end, also on failure: a Prefect server (its database in the
stack's own embedded PostgreSQL, as `make up` starts it, and again in a PostgreSQL server run by
the operator), a process worker, an MLflow server (PostgreSQL backend when
reachable) with its artifacts in S3 on moto's server mode, the deployments from
`deployments/prefect.yaml` and the on-call automations; the webhook receiver is a tiny HTTP
server here. The unattended part only places files in the lake: the server's scheduler starts
`process`, the drift event starts `train`. Then a run is created through the API as the UI's
"Run" button does, with custom parameters. Last, twenty runs at once check that the default
stack loses no event under load.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from driftloop.data.generate import generate_day, labels_of
from driftloop.deployments.stack import (
    Stack,
    StackConfig,
    drop_database,
    free_port,
    postgres_reachable,
    running,
)
from driftloop.tasks.adapters import day_states, storage
from driftloop.tasks.adapters.ledger import Ledger

pytestmark = pytest.mark.e2e

DAYS = [date(2026, 11, 1) + timedelta(days=i) for i in range(10)]
BAD_DAY = DAYS[3]  # every row breaks the contract: the day fails, the days after it go on
SHIFT_FROM = DAYS[5]  # covariate shift: the drift check decides to retrain a day or two later
OUTAGE = DAYS[8:]  # land while the worker is down; caught up in order when it is back
ROWS = 1500
UNATTENDED = {  # the loop's settings on this stack (everything else is the prod profile)
    "process.bootstrap_days": 3,
    "drift.window_days": 3,
    "drift.min_rows": 500,
    "policy.min_new_rows": 1000,
}
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


@pytest.fixture(scope="module", params=["default", "postgresql"])
def stack(
    request: pytest.FixtureRequest,
    s3: tuple[str, str],
    shared_webhook: tuple[str, list[dict[str, Any]]],
    mlflow_server: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """One stack per variant, shared by this module's tests: `default` is what `make up`
    starts (its own embedded PostgreSQL), `postgresql` a server the operator runs."""
    variant = request.param
    db = None
    if variant == "postgresql":
        reason = postgres_reachable()
        if reason:
            pytest.skip(f"Prefect-on-PostgreSQL variant skipped: {reason}")
        db = PG.format(driver="asyncpg", name=f"driftloop_e2e_prefect_{uuid.uuid4().hex[:8]}")
    _endpoint, bucket = s3
    config = StackConfig(
        home=tmp_path_factory.mktemp(f"stack-{variant}"),
        prefect_port=free_port(),
        prefect_db_url=db,
        mlflow_url=mlflow_server,
        profile="prod",
        overrides={
            "storage.root": f"s3://{bucket}/{variant}/lake",
            "registry.model_name": f"loans-{variant}",
            "registry.experiment": f"driftloop-e2e-{variant}",
            **UNATTENDED,
        },
        worker_poll_seconds=1,
        process_interval=30,
        heartbeat_seconds=30,  # the outage's dead process run is Crashed ~2.5 min later
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


async def _pause(client: Any, deployment_id: Any, scheduled_id: Any, pause: bool) -> None:
    """Pause (or resume) one deployment, and the first schedule of another, as the UI does."""
    await (client.pause_deployment if pause else client.resume_deployment)(deployment_id)
    (schedule, *_) = (await client.read_deployment(scheduled_id)).schedules
    await client.update_deployment_schedule(scheduled_id, schedule.id, active=not pause)


async def _latest_artifact(client: Any, key: str) -> Any:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    found = await client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
        sort="CREATED_DESC",
        limit=1,
    )
    return found[0] if found else None


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


def land(root: str, days: list[date]) -> None:
    """What the producers do: a raw file per day, and the day's labels beside it."""
    lake = storage.Lake(root, "loans")
    for day in days:
        scenario = "covariate_shift" if day >= SHIFT_FROM else "none"
        frame = generate_day(day, ROWS, scenario=scenario, drift_start=SHIFT_FROM, seed=1)
        if day == BAD_DAY:
            frame = frame.assign(age=5)
        storage.write_frame(frame, lake.raw(day))
        storage.write_frame(labels_of(frame), lake.labels(day))


def day_stages(root: str) -> dict[date, dict[str, str]]:
    states = day_states.read_states(storage.Lake(root, "loans"))
    return {d: {k: r.status for k, r in s.stages.items()} for d, s in states.items()}


async def _runs_named(client: Any, names: list[str]) -> list[Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    return await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=names))
    )


# ------------------------------------------------------------------------------ the test


def test_the_loop_runs_unattended_and_alerts_on_failure(
    stack: Stack,
    s3: tuple[str, str],
    shared_webhook: tuple[str, list[dict[str, Any]]],
    wait_for: Wait,
) -> None:
    from mlflow import MlflowClient

    cfg = stack.config
    lake_root = cfg.overrides["storage.root"]
    model = cfg.overrides["registry.model_name"]

    # Deployments as declared; `process` on its interval; deploying again changes nothing.
    deployments = api(stack, _deployments)
    assert {"process", "ingest", "train", "score", "check_drift", "notify"} <= set(deployments)
    (schedule,) = deployments["process"].schedules
    assert schedule.schedule.interval.total_seconds() == cfg.process_interval
    assert schedule.schedule.timezone == "UTC"
    limit = deployments["train"].global_concurrency_limit
    assert limit is not None and limit.limit == 1, "one training at a time"
    automations_before = api(stack, _automation_names)
    assert "driftloop-on-call" in automations_before
    assert "driftloop-drift-storm" in automations_before
    assert "driftloop-unresponsive-runs" in automations_before
    if cfg.prefect_db_url is None:  # once is enough: this is about prefect.yaml, not the DB
        # An operator paused `score` (a deployment) and `process`'s schedule: deploying again
        # keeps both paused (then they are resumed for the rest of the test).
        api(stack, _pause, deployments["score"].id, deployments["process"].id, True)
        stack.deploy()
        again = api(stack, _deployments)
        assert again["score"].paused, "a paused deployment stays paused"
        assert not again["process"].schedules[0].active, "a paused schedule stays paused"
        api(stack, _pause, deployments["score"].id, deployments["process"].id, False)
        assert {n: d.id for n, d in again.items()} == {n: d.id for n, d in deployments.items()}
        assert api(stack, _automation_names) == automations_before
        # ... and from a shell without $DRIFTLOOP_WEBHOOK_URL, the stored webhook's alerts stay
        Stack(replace(cfg, webhook_url=None)).apply_automations()
        assert api(stack, _automation_names) == automations_before

    # Unattended: files land, the scheduler's `process` runs do every day once, v1 is trained
    # once three days are curated, the corrupt day fails alone, the shift makes the drift check
    # decide to retrain, and its event makes the `train` deployment promote v2.
    client = MlflowClient(tracking_uri=cfg.tracking_url, registry_uri=cfg.tracking_url)
    land(lake_root, DAYS[:8])

    def champion_is(version: str) -> Any:
        try:
            found = client.get_model_version_by_alias(model, "champion")
        except Exception:  # no champion yet
            return None
        return found if found.version == version else None

    def progress() -> str:
        trains = [(r.name, r.state_name) for r in api(stack, _deployment_runs, train_id)]
        return (
            f"days: {day_stages(lake_root)}\ntrain runs: {trains}\n"
            f"worker:\n{stack.worker.tail(80)}\nserver:\n{stack.prefect.tail(30)}"
        )

    train_id = deployments["train"].id
    wait_for(lambda: champion_is("2"), 600, interval=2, what="v2 promoted", detail=progress)
    done = {"ingest": "done", "score": "done", "check": "done"}
    wait_for(
        lambda: all(day_stages(lake_root).get(d) == done for d in DAYS[4:8]),
        120,
        interval=2,
        what="days 5-8 done",
        detail=progress,
    )
    trained = [r for r in api(stack, _deployment_runs, train_id)]
    assert len(trained) == 1, "one drift-triggered training"
    assert trained[0].state.is_completed(), trained[0].state
    assert trained[0].parameters["trigger"].startswith("drift:")
    assert trained[0].parameters["window_end"] in {str(d) for d in DAYS[5:8]}

    # An outage: the worker is down while two days land; back up, they are caught up in order,
    # each once, and scored by the new champion.
    stack.worker.stop()
    stopped = datetime.now(UTC)
    land(lake_root, OUTAGE)
    stack.start_worker()
    wait_for(
        lambda: all(day_stages(lake_root).get(d) == done for d in OUTAGE),
        480,
        interval=2,
        what="the outage days caught up",
        detail=progress,
    )
    # A process run the outage killed mid-day is Crashed for its missing heartbeats, not left
    # Running for ever.
    process_id = deployments["process"].id
    before_outage = [
        r
        for r in api(stack, _deployment_runs, process_id)
        if r.start_time is not None and r.start_time < stopped
    ]
    left_running = [r.name for r in before_outage if not r.state.is_final()]
    assert not left_running, f"runs the outage killed are still Running: {left_running}"
    stages = day_stages(lake_root)
    assert (
        stages[DAYS[0]]
        == stages[DAYS[1]]
        == {
            "ingest": "done",
            "score": "skipped",
            "check": "skipped",
        }
    ), "ingested before v1 existed"
    assert stages[BAD_DAY] == {"ingest": "failed"}
    lake = storage.Lake(lake_root, "loans")
    for day in OUTAGE:
        predictions = storage.read_frame(lake.predictions(model, day))
        assert set(predictions["model_version"].astype(str)) == {"2"}, day
    ingested = [r.name for r in api(stack, _runs_named, [f"ingest-{d}" for d in DAYS])]
    scored = [r.name for r in api(stack, _runs_named, [f"score-{d}" for d in DAYS])]
    assert sorted(ingested) == sorted(f"ingest-{d}" for d in DAYS), "each day ingested once"
    assert sorted(scored) == sorted(f"score-{d}" for d in DAYS[2:] if d != BAD_DAY)
    moves = [(e.kind, e.to_version) for e in Ledger(lake_root, model).entries()]
    assert moves[:1] == [("promotion", "1")] and ("promotion", "2") in moves, moves
    assert champion_is("2"), "the ledger and the registry agree"
    # The loop status page, rewritten by the runs on the worker, names the new champion.
    page = api(stack, _latest_artifact, "loop-status-loans")
    assert page is not None and "**v2** since " in page.data, page
    assert "## Drift checks this week" in page.data and "RETRAIN" in page.data

    # The corrupt day produced one on-call message with everything needed to act on it.
    _url, received = shared_webhook
    (bad,) = [r.id for r in api(stack, _runs_named, [f"ingest-{BAD_DAY}"])]
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
            return False
        return all(r.state and r.state.is_final() for r in for_bad)

    wait_for(
        notify_settled,
        60,
        interval=1,
        what="the notify runs for the failed run to finish",
        detail=lambda: f"notify runs: {[(r.name, r.state) for r in for_bad]}",
    )
    mine = pages()
    assert len(mine) == 1, f"on-call is paged once per failed run, got {len(mine)}"
    facts = mine[0]["driftloop"]
    assert facts["sent_by"] in ("failure hook", "notify automation")
    assert facts["flow"] == "ingest"
    assert facts["parameters"]["day"] == str(BAD_DAY)
    assert facts["failing_task"].startswith("enforce-contract")
    assert facts["exception_type"] == "DataContractError"
    assert "failed its data contract" in facts["exception_message"]
    assert facts["log_lines"], "the last log lines"
    assert facts["prefect_url"] == f"{cfg.prefect_url}/runs/flow-run/{bad}"
    assert facts["runbook"].endswith("runbook.md#data-validation-failed")
    assert mine[0]["text"].startswith("[driftloop] Failed: ingest")

    # "Run" on train with custom parameters, as the UI's form sends them (a dry run: the
    # champion stays); the candidate's MLflow run and model land in S3 through the server.
    run = api(
        stack,
        _run,
        train_id,
        {
            "window_start": str(DAYS[4]),
            "window_end": str(DAYS[9]),
            "trigger": "ui",
            "hyperparameters": {"max_iter": 40},
            "dry_run": True,
        },
    )
    by_hand = wait_final(wait_for, stack, [run])[run]
    assert by_hand.state.is_completed(), by_hand.state
    assert by_hand.name == f"train-{DAYS[4]}..{DAYS[9]}"
    (mlrun,) = client.search_runs(
        [client.get_experiment_by_name(cfg.overrides["registry.experiment"]).experiment_id],
        filter_string="tags.`driftloop.trigger` = 'ui'",
    )
    assert mlrun.data.params["model.max_iter"] == "40", "the form's hyperparameters were used"
    assert champion_is("2"), "a dry run moves no alias"
    _endpoint, bucket = s3
    import boto3

    keys = [
        o["Key"]
        for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    assert any(k.startswith("mlflow/") and k.endswith("MLmodel") for k in keys)


# ------------------------------------------------------------------------------ load

LOAD_RUNS = 20


async def _start_runs(client: Any, deployment_id: Any, count: int) -> list[Any]:
    runs = await asyncio.gather(
        *(client.create_flow_run_from_deployment(deployment_id) for _ in range(count))
    )
    return [r.id for r in runs]


async def _state_events(client: Any, run_ids: list[Any]) -> dict[str, set[str]]:
    """{run id: the state events the server stored for it} (Running and Completed only)."""
    body: dict[str, Any] = {
        "filter": {
            "resource": {"id": [f"prefect.flow-run.{r}" for r in run_ids]},
            "event": {"name": ["prefect.flow-run.Running", "prefect.flow-run.Completed"]},
        },
        "limit": 50,
    }
    found: dict[str, set[str]] = {str(r): set() for r in run_ids}
    page = (await client._client.post("/events/filter", json=body)).json()
    while True:
        for event in page["events"]:
            run = event["resource"]["prefect.resource.id"].removeprefix("prefect.flow-run.")
            found.setdefault(run, set()).add(event["event"].rsplit(".", 1)[-1])
        if not page.get("next_page"):
            return found
        page = (await client._client.get(page["next_page"])).json()


def test_twenty_runs_at_once_lose_no_event(
    stack: Stack, shared_webhook: tuple[str, list[dict[str, Any]]], wait_for: Wait
) -> None:
    """What made SQLite a poor default: under a handful of concurrent runs its server dropped
    events ("database is locked", then the dead-letter queue), so a page went missing or a
    finished run was reported stuck."""
    if stack.config.prefect_db_url is not None:
        pytest.skip("the load test is about the default stack `make up` starts")
    process_id = api(stack, _deployments)["process"].id
    runs = api(stack, _start_runs, process_id, LOAD_RUNS)
    finished = wait_final(wait_for, stack, runs, timeout=600)
    assert all(r.state.is_completed() for r in finished.values()), [
        (r.name, r.state.name) for r in finished.values()
    ]

    events: dict[str, set[str]] = {}

    def all_stored() -> bool:
        events.update(api(stack, _state_events, runs))
        return all(events.get(str(r)) == {"Running", "Completed"} for r in runs)

    wait_for(
        all_stored,
        90,
        interval=3,
        what="every run's Running and Completed events in the event store",
        detail=lambda: f"{events}\nserver:\n{stack.prefect.tail(40)}",
    )
    dead = stack.config.home / "prefect" / "dlq"
    assert not (dead.exists() and any(dead.iterdir())), f"dead-lettered events in {dead}"
    assert "database is locked" not in stack.prefect.tail(100_000)
    _url, received = shared_webhook
    stuck = [m for m in received if "stuck-run" in json.dumps(m)]
    assert not stuck, f"stuck-run alerts for runs that finished: {stuck}"
