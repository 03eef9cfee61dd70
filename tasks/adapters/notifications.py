"""On-call messages: what failed, where to look, what to do, as Slack-compatible JSON.

Pure on purpose: the server-side `notify` flow and the embedded `on_failure` hook both gather a
`FailureReport` (see `tasks/adapters/oncall.py`) and hand it here, so every alert reads the
same and the wording is table-tested without any server. `send` is the one sender.
"""

from __future__ import annotations

import json
import re
import urllib.request
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

#: Where runbook links point unless $DRIFTLOOP_RUNBOOK_URL says otherwise (a rendered copy of
#: docs/runbook.md in the team's wiki or repository browser).
DEFAULT_RUNBOOK_URL = "docs/runbook.md"
MAX_LOG_LINES = 15
MAX_FIELD_CHARS = 1500


class FailureKind(StrEnum):
    """One runbook entry each (the value is the entry's anchor in docs/runbook.md)."""

    DATA_VALIDATION = "data-validation-failed"
    GATE_REJECTED = "gate-rejected"
    S3_UNREACHABLE = "s3-unreachable"
    MLFLOW_UNREACHABLE = "mlflow-unreachable"
    DRIFT_STORM = "drift-storm"
    INPUT_MISSING = "input-did-not-arrive"
    RETRAINS_FAILING = "retrains-keep-failing"
    STUCK_RUN = "stuck-run"
    RUN_UNRESPONSIVE = "run-stopped-responding"
    FLOW_FAILED = "flow-failed"


class FailureReport(BaseModel):
    """Everything an on-call person needs about one bad flow run, gathered once."""

    flow: str
    deployment: str | None = None
    flow_run_id: str
    flow_run_name: str
    state: str = Field(description="state name: Failed, Crashed, TimedOut, Late, Pending ...")
    state_message: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    failing_task: str | None = None
    exception_type: str | None = None
    exception_message: str | None = None
    log_lines: list[str] = Field(default_factory=list)
    prefect_url: str | None = None
    mlflow_url: str | None = None


_EXCEPTION_IN_MESSAGE = re.compile(
    r"encountered an exception:?\s*(?P<type>[A-Za-z_][\w.]*)\s*:\s*(?P<message>.*)", re.S
)


def parse_exception(state_message: str | None) -> tuple[str | None, str | None]:
    """Prefect puts 'Flow run encountered an exception: Type: message' in failed states."""
    if not state_message:
        return None, None
    found = _EXCEPTION_IN_MESSAGE.search(state_message)
    if not found:
        return None, state_message.strip() or None
    return found["type"].rsplit(".", 1)[-1], found["message"].strip()


_S3_MARKERS = (
    "s3 request",
    "s3://",
    "endpointconnectionerror",
    "could not connect to the endpoint",
)
_MLFLOW_MARKERS = ("mlflow", "tracking store", "registry")


def classify(report: FailureReport) -> FailureKind:
    """Map a report to its runbook entry; the most specific evidence wins."""
    state = report.state.lower()
    if state in ("late", "pending", "scheduled"):
        return FailureKind.STUCK_RUN
    exc = (report.exception_type or "").lower()
    text = " ".join(s.lower() for s in (report.exception_message or "", report.state_message) if s)
    if state == "crashed" and "no heartbeat" in text:  # driftloop-unresponsive-runs
        return FailureKind.RUN_UNRESPONSIVE
    if exc == "inputmissingerror" or "input did not arrive" in text:
        return FailureKind.INPUT_MISSING
    if exc == "retrainskeepfailing" or "retrains keep failing" in text:
        return FailureKind.RETRAINS_FAILING
    if exc == "datacontracterror" or "failed its data contract" in text:
        return FailureKind.DATA_VALIDATION
    if exc == "registryerror" or (
        any(m in text for m in _MLFLOW_MARKERS)
        and any(w in text for w in ("unreachable", "connection", "refused", "timed out"))
    ):
        return FailureKind.MLFLOW_UNREACHABLE
    if any(m in text for m in _S3_MARKERS) and exc in (
        "storageerror",
        "endpointconnectionerror",
        "connectionerror",
        "",
    ):
        return FailureKind.S3_UNREACHABLE
    if exc == "gaterejected":
        return FailureKind.GATE_REJECTED
    if state == "timedout" or "timed out" in text or "timeout" in exc:
        return FailureKind.STUCK_RUN
    return FailureKind.FLOW_FAILED


def runbook_link(kind: FailureKind, base: str = DEFAULT_RUNBOOK_URL) -> str:
    return f"{base}#{kind.value}"


def _clip(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt_params(parameters: dict[str, Any]) -> str:
    if not parameters:
        return "(defaults)"
    return _clip(json.dumps(parameters, sort_keys=True, default=str))


def _link(url: str | None, label: str) -> str:
    return f"<{url}|{label}>" if url else f"{label}: n/a"


def build_message(report: FailureReport, runbook_base: str = DEFAULT_RUNBOOK_URL) -> dict[str, Any]:
    """Slack-compatible webhook JSON: `text` for any receiver, `blocks` for Slack, plus the
    same facts as structured fields under `driftloop` for machines (and tests)."""
    kind = classify(report)
    runbook = runbook_link(kind, runbook_base)
    where = (report.deployment and f"{report.flow}/{report.deployment}") or report.flow
    headline = f"[driftloop] {report.state}: {where} run {report.flow_run_name} ({kind.value})"
    exception = (
        f"{report.exception_type or 'no exception'}: {report.exception_message or '-'}"
        if report.exception_type or report.exception_message
        else report.state_message or "-"
    )
    logs = report.log_lines[-MAX_LOG_LINES:]
    log_text = _clip("\n".join(logs)) if logs else "(no log lines recorded)"
    lines = [
        headline,
        f"Parameters: {_fmt_params(report.parameters)}",
        f"Failing task: {report.failing_task or 'n/a (the flow itself)'}",
        f"Exception: {_clip(exception)}",
        f"Prefect run: {report.prefect_url or 'n/a'}",
        f"MLflow run: {report.mlflow_url or 'n/a'}",
        f"Runbook: {runbook}",
        "Last log lines:",
        log_text,
    ]
    fields = [
        f"*Flow / deployment*\n{where}",
        f"*State*\n{report.state}",
        f"*Failing task*\n{report.failing_task or 'n/a'}",
        f"*Runbook*\n{_link(runbook, kind.value)}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(headline, 150)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*Exception*\n`{_clip(exception)}`"},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*Parameters*\n`{_fmt_params(report.parameters)}`"},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*Last log lines*\n```{log_text}```"},
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": _link(report.prefect_url, "Prefect run")},
                {"type": "mrkdwn", "text": _link(report.mlflow_url, "MLflow run")},
            ],
        },
    ]
    return {
        "text": "\n".join(lines),
        "blocks": blocks,
        "driftloop": {
            "kind": kind.value,
            "runbook": runbook,
            "flow": report.flow,
            "deployment": report.deployment,
            "flow_run_id": report.flow_run_id,
            "flow_run_name": report.flow_run_name,
            "state": report.state,
            "parameters": report.parameters,
            "failing_task": report.failing_task,
            "exception_type": report.exception_type,
            "exception_message": report.exception_message,
            "log_lines": logs,
            "prefect_url": report.prefect_url,
            "mlflow_url": report.mlflow_url,
        },
    }


def stuck_run_template(runbook_base: str = DEFAULT_RUNBOOK_URL, limit: str = "") -> str:
    """The Jinja payload a server-side CallWebhook renders for a Late/Pending run.

    Why a template: a stuck run often means no worker is alive, so no process of ours can
    gather a report; the Prefect server itself must send this one.
    """
    runbook = runbook_link(FailureKind.STUCK_RUN, runbook_base)
    text = (
        "[driftloop] {{ flow_run.state.name }} past " + limit + ": {{ flow.name }}/"
        "{{ deployment.name }} run {{ flow_run.name }} (stuck-run)\\n"
        "Parameters: {{ flow_run.parameters | tojson | replace('\"', \"'\") }}\\n"
        "Prefect run: {{ flow_run | ui_url }}\\n"
        f"Runbook: {runbook}"
    )
    return (
        '{"text": "' + text + '", "driftloop": {"kind": "stuck-run", '
        '"flow": "{{ flow.name }}", "deployment": "{{ deployment.name }}", '
        '"flow_run_id": "{{ flow_run.id }}", "flow_run_name": "{{ flow_run.name }}", '
        '"state": "{{ flow_run.state.name }}", '
        '"prefect_url": "{{ flow_run | ui_url }}", "runbook": "' + runbook + '"}}'
    )


def drift_storm_template(runbook_base: str = DEFAULT_RUNBOOK_URL, count: int = 3) -> str:
    """Server-side payload when drift events pile up faster than retraining can help."""
    runbook = runbook_link(FailureKind.DRIFT_STORM, runbook_base)
    return (
        '{"text": "[driftloop] drift storm: ' + str(count) + "+ drift events for "
        "{{ event.resource.id }}, latest window {{ event.payload.window_start }}.."
        "{{ event.payload.window_end }}, report {{ event.payload.report }}\\nRunbook: "
        + runbook
        + '", "driftloop": {"kind": "drift-storm", "runbook": "'
        + runbook
        + '"}}'
    )


def send(url: str, message: dict[str, Any], timeout: float = 10.0) -> int:
    """POST the message as JSON; returns the HTTP status (raises on a non-2xx answer)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(message, default=str).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status)
