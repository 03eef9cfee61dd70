"""What the Prefect server itself does with driftloop's deployments, on a real server.

The shared small stack (`ui_stack` in tests/conftest.py: a Prefect server, the deployments
from `prefect.yaml`, a process worker). A run given the `silent_mlflow` address as its
tracking URI hangs there, as a run on an unresponsive tracking server would. Cheap next to
tests/e2e/test_stack.py: no MLflow server, no data.
"""

from __future__ import annotations

from typing import Any

import pytest

from driftloop.deployments.stack import Stack

pytestmark = pytest.mark.e2e


def test_a_hung_run_ends_timed_out(
    ui_stack: Stack, silent_mlflow: str, wait_for: Any, on_stack: Any
) -> None:
    async def start(client: Any) -> Any:
        deployment = await client.read_deployment_by_name("rollback/rollback")
        return await client.create_flow_run_from_deployment(
            deployment.id,
            parameters={"reason": "timeout test", "overrides": {"tracking.uri": silent_mlflow}},
        )

    async def read(client: Any, run_id: Any) -> Any:
        return await client.read_flow_run(run_id)

    run = on_stack(ui_stack, start)
    ended = wait_for(
        lambda: (r := on_stack(ui_stack, read, run.id)).state.is_final() and r,
        120,
        interval=1,
        what="the hung rollback run to end",
        detail=lambda: ui_stack.worker.tail(60),
    )
    assert ended.state.name == "TimedOut", (ended.state, ui_stack.worker.tail(40))
    assert "exceeded timeout of 3" in (ended.state.message or "")


def test_bad_parameters_are_refused_when_the_run_is_created(
    ui_stack: Stack,
    on_stack: Any,
) -> None:
    from prefect.exceptions import PrefectHTTPStatusError

    async def create(client: Any, name: str, parameters: dict[str, Any]) -> Any:
        from datetime import UTC, datetime, timedelta

        from prefect.states import Scheduled

        deployment = await client.read_deployment_by_name(name)
        later = Scheduled(scheduled_time=datetime.now(UTC) + timedelta(days=1))  # never runs here
        return await client.create_flow_run_from_deployment(
            deployment.id, parameters=parameters, state=later
        )

    with pytest.raises(PrefectHTTPStatusError, match="2026-13-45"):
        on_stack(ui_stack, create, "ingest/ingest", {"day": "2026-13-45"})
    with pytest.raises(PrefectHTTPStatusError, match="staging"):
        on_stack(ui_stack, create, "ingest/ingest", {"day": "2026-11-05", "profile": "staging"})
    # the system's own value (the drift trigger's `trigger`) is not in the form, yet accepted
    run = on_stack(
        ui_stack,
        create,
        "train/train",
        {"window_start": "2026-11-01", "window_end": "2026-11-05", "trigger": "drift:x"},
    )
    assert run.parameters["trigger"] == "drift:x"

    async def schema(client: Any) -> dict[str, Any]:
        return (await client.read_deployment_by_name("train/train")).parameter_openapi_schema

    properties = on_stack(ui_stack, schema)["properties"]
    assert "trigger" not in properties, "the form has no field for it"


def test_a_second_deploy_keeps_the_schedule_and_its_pause(ui_stack: Stack, on_stack: Any) -> None:
    async def process(client: Any) -> Any:
        return await client.read_deployment_by_name("process/process")

    async def pause(client: Any, deployment_id: Any, schedule_id: Any, active: bool) -> None:
        await client.update_deployment_schedule(deployment_id, schedule_id, active=active)

    before = on_stack(ui_stack, process)
    (schedule,) = before.schedules
    assert schedule.schedule.timezone == "UTC"
    on_stack(ui_stack, pause, before.id, schedule.id, False)
    ui_stack.deploy()
    (after,) = on_stack(ui_stack, process).schedules
    assert after.id == schedule.id, "the same schedule, not a new one"
    assert not after.active, "a paused schedule stays paused"
    on_stack(ui_stack, pause, before.id, schedule.id, True)
