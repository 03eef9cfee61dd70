"""The on-call automations as the Prefect server accepts and stores them.

A stuck run is paged by `notify` (a RunDeployment action: it re-reads the run's state first);
only the no-worker alert is posted by the server itself. Applied twice (as `make up` reruns),
the second time without the webhook in the shell, nothing is lost or duplicated.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from driftloop.deployments import automations
from driftloop.flows.notify import notify

pytestmark = pytest.mark.usefixtures("prefect_backend")

NAMES = {
    automations.ON_CALL,
    automations.UNRESPONSIVE,
    automations.STUCK,
    automations.NO_WORKER,
    automations.DRIFT_STORM,
}


def test_automations_are_stored_and_survive_a_rerun_without_the_webhook(
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.utilities.asyncutils import run_coro_as_sync

    url, _ = webhook

    async def scenario() -> dict[str, list[Any]]:
        async with get_client() as client:
            flow_id = await client.create_flow(notify)
            await client.create_deployment(flow_id=flow_id, name="notify")
        first = await automations.apply(url, timedelta(minutes=5), "file:///rb.md")
        second = await automations.apply(None, timedelta(minutes=5), "file:///rb.md")
        assert set(first) == set(second) == NAMES
        async with get_client() as client:
            stored = {n: await client.read_automations_by_name(n) for n in NAMES}
            for found in stored.values():
                for automation in found:
                    await client.delete_automation(automation.id)
        return stored

    stored = run_coro_as_sync(scenario())
    assert stored is not None
    assert all(len(found) == 1 for found in stored.values()), "one of each, after two runs"
    (stuck,) = stored[automations.STUCK]
    assert [a.type for a in stuck.actions] == ["run-deployment"]
    (no_worker,) = stored[automations.NO_WORKER]
    assert [a.type for a in no_worker.actions] == ["call-webhook"]
    assert "file:///rb.md#stuck-run" in no_worker.actions[0].payload


def test_a_drift_storm_is_paged_by_the_server_under_its_entry(
    webhook: tuple[str, list[dict[str, Any]]], wait_for: Any
) -> None:
    """Three drift events for one model: the server's own automation posts `drift-storm`."""
    from prefect.client.orchestration import get_client
    from prefect.utilities.asyncutils import run_coro_as_sync

    from driftloop.tasks.check_drift import announce_drift

    url, got = webhook

    async def setup() -> None:
        async with get_client() as client:
            flow_id = await client.create_flow(notify)
            await client.create_deployment(flow_id=flow_id, name="notify")
        await automations.apply(url, timedelta(minutes=5), "file:///rb.md")

    async def teardown() -> None:
        async with get_client() as client:
            for name in NAMES:
                for automation in await client.read_automations_by_name(name):
                    await client.delete_automation(automation.id)

    run_coro_as_sync(setup())
    try:
        for i in range(automations.DRIFT_STORM_COUNT):
            announce_drift(
                "driftloop.drift.detected",
                "storm-model",
                {"window_start": f"2026-11-0{i + 1}", "window_end": f"2026-11-0{i + 2}",
                 "report": f"reports/drift/storm-model-{i}.html"},
            )  # fmt: skip
        wait_for(lambda: got, 90, interval=1, what="the drift-storm page")
    finally:
        run_coro_as_sync(teardown())
    (page,) = got
    assert page["driftloop"]["kind"] == "drift-storm"
    assert page["driftloop"]["runbook"] == "file:///rb.md#drift-storm"
    assert "driftloop.model.storm-model" in page["text"]
