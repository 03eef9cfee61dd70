"""Gather a `FailureReport` for one flow run from the Prefect API (and MLflow), then send it.

Two independent paths alert on-call, and exactly one of them sends per run:
- the flows' own `on_failure`/`on_crashed` hook, in the failing process, right away;
- the `notify` flow, run by a server automation for every failed, crashed or timed-out
  pipeline run: it also covers what no hook sees (a killed process, a run that timed out).
Either path may miss a run (a hook dies with its process; on a busy SQLite server Prefect's
trigger service can drop an event with "database is locked"), so both try, and each first
claims the run on the Prefect server (`claim`): the second one to arrive stays quiet.
Nothing here may raise out of a hook: a broken alert must never hide the original failure.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
import urllib.request
from typing import Any
from uuid import UUID

from driftloop.tasks.adapters import notifications
from driftloop.tasks.adapters.notifications import FailureReport

WEBHOOK_ENV = "DRIFTLOOP_WEBHOOK_URL"
WEBHOOK_SECRET_BLOCK = "driftloop-oncall-webhook"
RUNBOOK_ENV = "DRIFTLOOP_RUNBOOK_URL"
#: "0": the flows' failure hook never sends (only the server automation does); otherwise it does.
HOOK_ENV = "DRIFTLOOP_NOTIFY_FROM_HOOK"
#: One Prefect Variable per alerted run, named CLAIM_PREFIX + run id; its value says who sent.
CLAIM_PREFIX = "oncall-sent-"
PIPELINE_FLOWS = ("process", "ingest", "train", "score", "check_drift", "rollback")

log = logging.getLogger("driftloop.oncall")


def webhook_url() -> str | None:
    """The webhook URL from the environment, else from the Prefect Secret block (never git)."""
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if url:
        return url
    try:
        from prefect.blocks.system import Secret

        value = Secret.load(WEBHOOK_SECRET_BLOCK, _sync=True).get()  # type: ignore[call-arg]
    except Exception:  # no server, no block: nothing configured
        return None
    return str(value).strip() or None


def runbook_base() -> str:
    return os.environ.get(RUNBOOK_ENV, "").strip() or notifications.DEFAULT_RUNBOOK_URL


def _ui_url(flow_run_id: str) -> str | None:
    from prefect.settings import get_current_settings

    ui = get_current_settings().ui_url
    return f"{str(ui).rstrip('/')}/runs/flow-run/{flow_run_id}" if ui else None


def mlflow_run_url(
    parameters: dict[str, Any], flow_run_id: str, timeout: float = 5.0
) -> str | None:
    """The MLflow run this flow run logged (tag driftloop.flow_run_id), else its experiment.

    Plain REST with a short timeout: MLflow being down is one of the failures we report on,
    and MLflow's own client would retry for minutes first.
    """
    try:
        from driftloop.configs.settings import load_settings

        settings = load_settings(parameters.get("profile"), parameters.get("overrides"))
    except Exception:
        return None
    base = settings.tracking.uri.rstrip("/")
    if not base.startswith(("http://", "https://")):
        return None
    try:
        exp = _get_json(
            f"{base}/api/2.0/mlflow/experiments/get-by-name?"
            + urllib.parse.urlencode({"experiment_name": settings.registry.experiment}),
            timeout,
        )["experiment"]
        found = _post_json(
            f"{base}/api/2.0/mlflow/runs/search",
            {
                "experiment_ids": [exp["experiment_id"]],
                "filter": f"tags.`driftloop.flow_run_id` = '{flow_run_id}'",
                "max_results": 1,
            },
            timeout,
        )
    except Exception:
        return f"{base}/#/experiments"
    runs = found.get("runs") or []
    if not runs:
        return f"{base}/#/experiments/{exp['experiment_id']}"
    return f"{base}/#/experiments/{exp['experiment_id']}/runs/{runs[0]['info']['run_id']}"


def _get_json(url: str, timeout: float) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def _post_json(url: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


async def collect_report(flow_run_id: UUID | str, log_lines: int = 20) -> FailureReport:
    """Read the run, its flow and deployment, its failed task and last logs from the API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.client.schemas.sorting import LogSort

    run_id = UUID(str(flow_run_id).rsplit(".", 1)[-1])
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        flow = await client.read_flow(run.flow_id)
        deployment = await client.read_deployment(run.deployment_id) if run.deployment_id else None
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])),
            sort=LogSort.TIMESTAMP_DESC,
            limit=log_lines,
        )
    failed = sorted(
        (t for t in tasks if t.state and t.state.type.value in ("FAILED", "CRASHED")),
        key=lambda t: t.end_time or t.expected_start_time or run.start_time or 0,
    )
    state = run.state
    state_message = (state.message or "") if state else ""
    source_message = failed[-1].state.message if failed and failed[-1].state else state_message
    exc_type, exc_message = notifications.parse_exception(source_message or state_message)
    parameters = dict(run.parameters or {})
    return FailureReport(
        flow=flow.name,
        deployment=deployment.name if deployment else None,
        flow_run_id=str(run.id),
        flow_run_name=run.name,
        state=state.name if state else "Unknown",
        state_message=state_message,
        parameters=parameters,
        failing_task=failed[-1].name if failed else None,
        exception_type=exc_type,
        exception_message=exc_message,
        log_lines=[f"{lg.timestamp:%H:%M:%S} {lg.message}" for lg in reversed(logs)],
        prefect_url=_ui_url(str(run.id)),
        mlflow_url=mlflow_run_url(parameters, str(run.id)),
    )


async def claim(flow_run_id: str, sender: str) -> str | None:
    """Claim the right to alert for one run: None if ours, else who already claimed it.

    Variable names are unique on the server, so creating one is an atomic test-and-set shared by
    every process that talks to that server. If the server cannot be asked, send anyway: a
    duplicate page is better than none.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import VariableCreate
    from prefect.exceptions import ObjectAlreadyExists

    name = f"{CLAIM_PREFIX}{flow_run_id}"
    try:
        async with get_client() as client:
            try:
                await client.create_variable(VariableCreate(name=name, value=sender))
            except ObjectAlreadyExists:
                existing = await client.read_variable_by_name(name)
                return str(existing.value) if existing else "another sender"
    except Exception:
        log.warning("driftloop: could not claim the on-call alert for %s; sending", flow_run_id)
    return None


async def deliver(
    report: FailureReport, sender: str, url: str | None = None
) -> dict[str, Any] | None:
    """Claim, build and send; the message, or None (no webhook, or already sent)."""
    url = url or webhook_url()
    message = notifications.build_message(report, runbook_base())
    headline = message["text"].splitlines()[0]
    if not url:
        log.warning(
            "no on-call webhook configured ($%s or Secret %r): %s",
            WEBHOOK_ENV,
            WEBHOOK_SECRET_BLOCK,
            headline,
        )
        return None
    claimed_by = await claim(report.flow_run_id, sender)
    if claimed_by is not None:
        log.info("on-call already alerted by the %s for run %s", claimed_by, report.flow_run_id)
        return None
    message["driftloop"]["sent_by"] = sender
    notifications.send(url, message)
    return message


def hook_should_send() -> bool:
    return os.environ.get(HOOK_ENV, "").strip() != "0"


def on_failure_hook(flow: Any, flow_run: Any, state: Any) -> None:
    """Alert from the failing process itself, unless the automation's `notify` got there first."""
    try:
        if not hook_should_send():
            return
        from prefect.logging.handlers import APILogHandler
        from prefect.utilities.asyncutils import run_coro_as_sync

        # The run's own last lines are still in this process's log queue: ship them first, so
        # the report reads them from the API (a subflow has no worker lines to fall back on).
        APILogHandler().flush()
        report = run_coro_as_sync(collect_report(flow_run.id))
        if report is None:  # run_coro_as_sync's type allows it; collect_report never returns it
            raise RuntimeError(f"no failure report for flow run {flow_run.id}")
        # The run's own final state may not be stored yet when the hook runs.
        if state is not None:
            exc_type, exc_message = notifications.parse_exception(state.message)
            report = report.model_copy(
                update={
                    "state": state.name,
                    "state_message": state.message or report.state_message,
                    "exception_type": report.exception_type or exc_type,
                    "exception_message": report.exception_message or exc_message,
                }
            )
        run_coro_as_sync(deliver(report, "failure hook"))
    except Exception:
        log.exception("driftloop: could not send the on-call notification")
