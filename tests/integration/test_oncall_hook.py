"""A failing flow's own hook sends the on-call message; the automation's `notify` then stays quiet.

Embedded mode has no automation, so the hook is the only path there; on a server both paths try
and the run is claimed once on the server, so on-call gets exactly one message.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import pytest

from driftloop.data.generate import generate_day
from driftloop.flows.ingest import ingest
from driftloop.flows.notify import notify
from driftloop.tasks.adapters import storage
from driftloop.tasks.core.contract import DataContractError

pytestmark = pytest.mark.usefixtures("prefect_backend")

DAY = date(2026, 11, 5)


@pytest.fixture
def receiver(
    webhook: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> list[dict[str, Any]]:
    """The messages a flow's own failure hook sends to the configured webhook."""
    url, got = webhook
    monkeypatch.setenv("DRIFTLOOP_WEBHOOK_URL", url)
    monkeypatch.setenv("DRIFTLOOP_NOTIFY_FROM_HOOK", "1")
    return got


def test_failed_flow_hook_sends_the_on_call_message(workspace, receiver) -> None:
    lake = storage.Lake(workspace.lake_root, "loans")
    storage.write_frame(generate_day(DAY, 300).assign(age=5), lake.raw(DAY))
    with pytest.raises(DataContractError):
        ingest(DAY, overrides=workspace.overrides)
    (message,) = receiver
    facts = message["driftloop"]
    assert facts["sent_by"] == "failure hook"
    assert (facts["flow"], facts["deployment"], facts["state"]) == ("ingest", None, "Failed")
    assert facts["parameters"]["day"] == str(DAY)
    assert facts["failing_task"].startswith("enforce-contract")
    assert facts["exception_type"] == "DataContractError"
    assert facts["kind"] == "data-validation-failed"
    assert facts["runbook"].endswith("#data-validation-failed")


def test_hook_stays_quiet_when_the_server_alerts(workspace, receiver, monkeypatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_NOTIFY_FROM_HOOK", "0")
    lake = storage.Lake(workspace.lake_root, "loans")
    storage.write_frame(generate_day(DAY, 300).assign(age=5), lake.raw(DAY))
    with pytest.raises(DataContractError):
        ingest(DAY, overrides=workspace.overrides)
    assert receiver == []


def test_notify_after_the_hook_sends_nothing_more(workspace, receiver) -> None:
    from prefect.client.orchestration import get_client
    from prefect.utilities.asyncutils import run_coro_as_sync

    lake = storage.Lake(workspace.lake_root, "loans")
    storage.write_frame(generate_day(DAY, 300).assign(age=5), lake.raw(DAY))
    with pytest.raises(DataContractError):
        ingest(DAY, overrides=workspace.overrides)
    assert len(receiver) == 1

    run_id = receiver[0]["driftloop"]["flow_run_id"]

    async def read(run: str) -> Any:
        async with get_client() as client:
            return await client.read_flow_run(UUID(run))

    failed = run_coro_as_sync(read(run_id))
    assert failed.name == f"ingest-{DAY}" and failed.state.is_failed()
    # What the server automation runs for the same failure: it finds the run already alerted.
    assert run_coro_as_sync(notify(f"prefect.flow-run.{run_id}")) is None
    assert len(receiver) == 1, "on-call is paged once per failed run"
