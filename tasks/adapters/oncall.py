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

import asyncio
import json
import logging
import os
import re
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
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
#: A JSONL file for pages the webhook never took (default: under Prefect's home).
UNDELIVERED_ENV = "DRIFTLOOP_UNDELIVERED_PAGES"
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
    """The MLflow run this flow run logged (tag driftloop.flow_run_id), or None: a flow that
    logged no run (ingest, score, ...) gets no MLflow link rather than one to a list.

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
        return None
    runs = found.get("runs") or []
    if not runs:
        return None
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


#: Lines a worker or runner writes into every run's log: they say nothing about the failure.
_BOILERPLATE = re.compile(
    r"^\s*> Running \w+ step|submitted to infrastructure|submitting flow run|Opening process"
    r"|Completed submission of flow run|Running on worker id|Downloading flow code"
    r"|Beginning flow run|Created task run|Executing flow|Executing '.*' immediately"
    r"|Running hook '",
    re.I,
)
_INFRA_LOGGERS = ("prefect.workers", "prefect.flow_runs.worker", "prefect.flow_runs.runner")
MAX_LINE_CHARS = 400
_TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def own_log_lines(logs: list[Any], keep: int) -> list[str]:
    """The run's own last lines, oldest first: no worker boilerplate, and a traceback folded
    to its first and last line (the exception), so a page shows what happened, not a stack."""
    lines = []
    for lg in logs:
        if lg.name.startswith(_INFRA_LOGGERS) or _BOILERPLATE.search(lg.message):
            continue
        text = lg.message.strip()
        if "Traceback (most recent call last)" in text:
            parts = [p for p in text.splitlines() if p.strip()]
            head = parts[0].split("Traceback (most recent call last)")[0].strip() or parts[0]
            text = f"{head} ... {parts[-1].strip()}" if parts[-1] != head else head
        text = text if len(text) <= MAX_LINE_CHARS else text[: MAX_LINE_CHARS - 1] + "…"
        lines.append(f"{lg.timestamp:%H:%M:%S} {logging.getLevelName(lg.level)} {text}")
    return lines[-keep:]


async def _read_logs(client: Any, run_id: UUID, wait: float) -> list[Any]:
    """The run's logs, oldest first; waits up to `wait` s for the flow's own error or last line
    (`Finished in state ...`): logs travel in batches and may trail the state change."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    deadline = time.monotonic() + wait
    while True:
        newest = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])),
            sort=LogSort.TIMESTAMP_DESC,
            limit=200,
        )
        logs = list(reversed(newest))
        own_end = any(
            lg.task_run_id is None
            and (lg.level >= logging.ERROR or lg.message.startswith("Finished in state"))
            for lg in logs
        )
        if own_end or time.monotonic() >= deadline:
            return logs
        await asyncio.sleep(0.5)


async def current_state(flow_run_id: str) -> tuple[str, str] | None:
    """(state name, state type) of a run as the server has it now; None if it cannot say."""
    from prefect.client.orchestration import get_client

    try:
        async with get_client() as client:
            run = await client.read_flow_run(UUID(flow_run_id))
    except Exception:
        return None
    return (run.state.name, run.state.type.value) if run.state else None


async def collect_report(
    flow_run_id: UUID | str, log_lines: int = notifications.MAX_LOG_LINES, wait_for_logs: float = 8
) -> FailureReport:
    """Read the run, its flow and deployment, its failed task and own last logs from the API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    run_id = UUID(str(flow_run_id).rsplit(".", 1)[-1])
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        # A Late/Pending run has written nothing yet; a failing one (even if the server still
        # says Running, as in its own hook) is worth a short wait for its last lines.
        waiting = run.state is not None and run.state.type.value in ("SCHEDULED", "PENDING")
        logs = await _read_logs(client, run_id, 0 if waiting else wait_for_logs)
        run = await client.read_flow_run(run_id)  # its state as of now, after the wait
        flow = await client.read_flow(run.flow_id)
        deployment = await client.read_deployment(run.deployment_id) if run.deployment_id else None
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
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
        log_lines=own_log_lines(logs, log_lines),
        prefect_url=_ui_url(str(run.id)),
        mlflow_url=mlflow_run_url(parameters, str(run.id)),
        state_checked_at=f"{datetime.now(UTC):%H:%M:%S}",
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


def undelivered_path() -> Path:
    """Where pages the webhook would not take are kept: $DRIFTLOOP_UNDELIVERED_PAGES, else
    `undelivered-pages.jsonl` in Prefect's home (the stack's is `.stack/prefect/`)."""
    configured = os.environ.get(UNDELIVERED_ENV, "").strip()
    if configured:
        return Path(configured)
    from prefect.settings import get_current_settings

    return Path(get_current_settings().home) / "undelivered-pages.jsonl"


def record_undelivered(message: dict[str, Any], error: str) -> Path:
    """Append the page to the JSONL file (one object a line: when, why, the message)."""
    path = undelivered_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"at": datetime.now(UTC).isoformat(), "error": error, "message": message}
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry, default=str) + "\n")
    return path


def _still_stuck(state_type: str) -> bool:
    """Late is a SCHEDULED-type state; a run that is Running, or over, is not stuck."""
    return state_type in ("SCHEDULED", "PENDING")


async def deliver(
    report: FailureReport, sender: str, url: str | None = None
) -> dict[str, Any] | None:
    """Re-check the run's state, claim, build and send; the message, or None (no webhook,
    already sent, or no longer worth a page).

    A stuck-run page is dropped when the run is no longer Pending or Late (its failure, if any,
    pages through its own path); any other page carries the state the server holds now once
    that is final (a failure hook runs before its run's final state is stored).
    Sending retries with backoff; a page still undelivered is appended to `undelivered_path()`
    and logged as an error naming that file, so it is never silently lost.
    """
    now = await current_state(report.flow_run_id)
    if now is not None:
        name, kind = now
        if report.state.lower() in ("late", "pending", "scheduled") and not _still_stuck(kind):
            log.info("run %s is %s now, not stuck: no page", report.flow_run_id, name)
            return None
        final = kind in _TERMINAL or _still_stuck(kind)
        report = report.model_copy(
            update={
                "state": name if final else report.state,
                "state_checked_at": f"{datetime.now(UTC):%H:%M:%S}",
            }
        )
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
    # A stuck page has its own claim: the same run failing later still pages under its entry.
    stuck = message["driftloop"]["kind"] == notifications.FailureKind.STUCK_RUN
    claimed_by = await claim(report.flow_run_id + ("-stuck" if stuck else ""), sender)
    if claimed_by is not None:
        log.info("on-call already alerted by the %s for run %s", claimed_by, report.flow_run_id)
        return None
    message["driftloop"]["sent_by"] = sender
    try:
        await asyncio.to_thread(notifications.send, url, message)
    except notifications.UndeliveredError as err:
        path = record_undelivered(message, str(err))
        log.error(
            "on-call page NOT delivered (%s); kept in %s, send it by hand: %s", err, path, headline
        )
        message["driftloop"]["undelivered"] = str(path)
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
        report = run_coro_as_sync(collect_report(flow_run.id, wait_for_logs=3))
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
