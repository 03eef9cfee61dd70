"""On-call messages: what failed, where to look, what to do, as Slack-compatible JSON.

Pure on purpose: the server-side `notify` flow and the embedded `on_failure` hook both gather a
`FailureReport` (see `tasks/adapters/oncall.py`) and hand it here, so every alert reads the
same and the wording is table-tested without any server. `send` is the one sender.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


def _default_runbook_url() -> str:
    """A link a browser opens with nothing configured: the checkout's own docs/runbook.md as a
    file:// URL (set $DRIFTLOOP_RUNBOOK_URL to a rendered copy people reach from Slack)."""
    here = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
    return here.as_uri() if here.is_file() else "docs/runbook.md"


#: Where runbook links point unless $DRIFTLOOP_RUNBOOK_URL says otherwise.
DEFAULT_RUNBOOK_URL = _default_runbook_url()
MAX_LOG_LINES = 15
MAX_FIELD_CHARS = 1500


class FailureKind(StrEnum):
    """One runbook entry each (the value is the entry's anchor in docs/runbook.md)."""

    INPUT_MISSING = "input-did-not-arrive"
    UNREADABLE_INPUT = "unreadable-input"
    DATA_VALIDATION = "data-validation-failed"
    WINDOW_NOT_CURATED = "window-not-curated"
    S3_UNREACHABLE = "s3-unreachable"
    MLFLOW_UNREACHABLE = "mlflow-unreachable"
    RETRAINS_FAILING = "retrains-keep-failing"
    GATE_REJECTED = "gate-rejected"
    DRIFT_STORM = "drift-storm"
    STUCK_RUN = "stuck-run"
    TIMED_OUT = "timed-out"
    BAD_PARAMETERS = "bad-parameters"
    RUN_UNRESPONSIVE = "run-stopped-responding"
    CRASHED = "crashed"
    FLOW_FAILED = "flow-failed"


@dataclass(frozen=True)
class Route:
    """One row of the routing table: an exception (by dotted path; a report knows it by its
    class name), optionally only in one step or with a word in its message, to a runbook entry."""

    exception: str
    kind: FailureKind
    step: str | None = None  # prefix of the failing task run's name, e.g. "locate-raw-"
    contains: tuple[str, ...] = ()  # any of these words (lower case) in the message

    @property
    def name(self) -> str:
        return self.exception.rsplit(".", 1)[-1]

    def matches(self, exc_type: str, step: str | None, text: str) -> bool:
        if exc_type.lower() != self.name.lower():
            return False
        if self.step is not None and not (step or "").startswith(self.step):
            return False
        return not self.contains or any(word in text for word in self.contains)


_UNREACHABLE = ("unreachable", "connect", "refused", "timed out", "timeout")

#: THE routing table: the first matching row wins, so a step-specific row comes before the
#: general row for the same exception. Kinds without a row are decided by the run's state
#: (stuck, timed out, crashed, stopped responding) or sent by the server (drift storm).
ROUTES: tuple[Route, ...] = (
    Route("driftloop.tasks.core.days.InputMissingError", FailureKind.INPUT_MISSING),
    Route(
        "driftloop.tasks.adapters.storage.NotFoundError",
        FailureKind.INPUT_MISSING,
        step="locate-raw-",
    ),
    Route(
        "driftloop.tasks.adapters.storage.NotFoundError",
        FailureKind.INPUT_MISSING,
        step="digest-",
    ),
    Route(  # ingest's first step finds, digests and reads the day's raw file
        "driftloop.tasks.adapters.storage.NotFoundError",
        FailureKind.INPUT_MISSING,
        step="receive-",
    ),
    Route("driftloop.tasks.adapters.storage.UnreadableFileError", FailureKind.UNREADABLE_INPUT),
    Route("driftloop.tasks.core.contract.DataContractError", FailureKind.DATA_VALIDATION),
    Route("driftloop.tasks.common.MissingDataError", FailureKind.WINDOW_NOT_CURATED),
    Route("driftloop.tasks.adapters.storage.MissingBucketError", FailureKind.S3_UNREACHABLE),
    Route("driftloop.tasks.adapters.storage.S3Error", FailureKind.S3_UNREACHABLE),
    Route("botocore.exceptions.EndpointConnectionError", FailureKind.S3_UNREACHABLE),
    Route("botocore.exceptions.NoCredentialsError", FailureKind.S3_UNREACHABLE),
    Route(
        "driftloop.tasks.adapters.registry.RegistryError",
        FailureKind.MLFLOW_UNREACHABLE,
        contains=_UNREACHABLE,
    ),
    Route("driftloop.tasks.core.policy.RetrainsKeepFailing", FailureKind.RETRAINS_FAILING),
    Route("driftloop.configs.settings.ConfigError", FailureKind.BAD_PARAMETERS),
    Route("driftloop.tasks.core.days.ParameterError", FailureKind.BAD_PARAMETERS),
    Route("driftloop.tasks.core.training.ModelConfigError", FailureKind.BAD_PARAMETERS),
    Route("driftloop.tasks.core.search.SearchConfigError", FailureKind.BAD_PARAMETERS),
    Route("prefect.exceptions.ParameterTypeError", FailureKind.BAD_PARAMETERS),
    Route("prefect.exceptions.SignatureMismatchError", FailureKind.BAD_PARAMETERS),
    Route("pydantic_core.ValidationError", FailureKind.BAD_PARAMETERS),
)


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
    mlflow_url: str | None = Field(
        default=None, description="the MLflow run itself; None for flows that log no run"
    )
    state_checked_at: str | None = Field(
        default=None, description="when `state` was read from the server (UTC, HH:MM:SS)"
    )


_EXCEPTION_IN_MESSAGE = re.compile(
    r"(?:encountered an exception|failed with error):?\s*(?P<type>[A-Za-z_][\w.]*)\s*:\s*"
    r"(?P<message>.*)",
    re.S,
)


def parse_exception(state_message: str | None) -> tuple[str | None, str | None]:
    """Prefect puts 'Flow run encountered an exception: Type: message' in failed states (and
    'Validation of flow parameters failed with error: Type: message' for bad parameters)."""
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
_WAITING = ("late", "pending", "scheduled")
_BAD_PARAMETERS_TEXT = ("validation of flow parameters failed", "invalid parameters")


def route(exc_type: str | None, step: str | None, text: str = "") -> Route | None:
    """The routing table's row for an exception raised in a step, or None."""
    if not exc_type:
        return None
    lowered = text.lower()
    return next((r for r in ROUTES if r.matches(exc_type, step, lowered)), None)


def classify(report: FailureReport) -> FailureKind:
    """Map a report to its runbook entry: the run's state first (a stuck, timed-out or crashed
    run raised nothing of its own), then the routing table, then words in the message."""
    state = report.state.lower()
    if state in _WAITING:
        return FailureKind.STUCK_RUN
    text = " ".join(s.lower() for s in (report.exception_message or "", report.state_message) if s)
    if state == "timedout":
        return FailureKind.TIMED_OUT
    if state == "crashed":
        if "no heartbeat" in text:  # driftloop-unresponsive-runs
            return FailureKind.RUN_UNRESPONSIVE
        return FailureKind.CRASHED
    found = route(report.exception_type, report.failing_task, text)
    if found is not None:
        return found.kind
    exc = (report.exception_type or "").lower()
    if any(m in text for m in _BAD_PARAMETERS_TEXT):
        return FailureKind.BAD_PARAMETERS
    if "input did not arrive" in text:
        return FailureKind.INPUT_MISSING
    if any(m in text for m in _MLFLOW_MARKERS) and any(w in text for w in _UNREACHABLE):
        return FailureKind.MLFLOW_UNREACHABLE
    if any(m in text for m in _S3_MARKERS) and exc in ("storageerror", "connectionerror", ""):
        return FailureKind.S3_UNREACHABLE
    if exc == "gaterejected":
        return FailureKind.GATE_REJECTED
    if "timed out" in text or "timeout" in exc:
        return FailureKind.TIMED_OUT
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
    if report.exception_type:
        exception = f"{report.exception_type}: {report.exception_message or '-'}"
    else:
        exception = report.exception_message or report.state_message or "-"
    logs = report.log_lines[-MAX_LOG_LINES:]
    log_text = _clip("\n".join(logs)) if logs else "(no log lines recorded)"
    checked = f" (checked {report.state_checked_at} UTC)" if report.state_checked_at else ""
    lines = [
        headline,
        f"State now: {report.state}{checked}",
        f"Parameters: {_fmt_params(report.parameters)}",
        f"Failing task: {report.failing_task or 'n/a (the flow itself)'}",
        f"Exception: {_clip(exception)}",
        f"Prefect run: {report.prefect_url or 'n/a'}",
        *([f"MLflow run: {report.mlflow_url}"] if report.mlflow_url else []),
        f"Runbook: {runbook}",
        "Last log lines:",
        log_text,
    ]
    fields = [
        f"*Flow / deployment*\n{where}",
        f"*State now*\n{report.state}{checked}",
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
                *(
                    [{"type": "mrkdwn", "text": _link(report.mlflow_url, "MLflow run")}]
                    if report.mlflow_url
                    else []
                ),
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
            "state_checked_at": report.state_checked_at,
            "parameters": report.parameters,
            "failing_task": report.failing_task,
            "exception_type": report.exception_type,
            "exception_message": report.exception_message,
            "log_lines": logs,
            "prefect_url": report.prefect_url,
            "mlflow_url": report.mlflow_url,
        },
    }


def no_worker_template(runbook_base: str = DEFAULT_RUNBOOK_URL) -> str:
    """The Jinja payload the server itself posts when a work pool has no live worker.

    Why server-side: with no worker alive, no process of ours runs to page (a stuck run is
    paged by `notify`, which re-checks the run's state first; this covers the case where
    `notify` itself cannot run).
    """
    runbook = runbook_link(FailureKind.STUCK_RUN, runbook_base)
    text = (
        "[driftloop] no worker: work pool {{ event.resource['prefect.resource.name'] }} is "
        "{{ event.event.split('.')[-1] }} (no worker has polled it lately); runs on it stay "
        "Late until one is back. Start the worker (make up).\\n"
        f"Runbook: {runbook}"
    )
    return (
        '{"text": "' + text + '", "driftloop": {"kind": "stuck-run", '
        '"work_pool": "{{ event.resource[\'prefect.resource.name\'] }}", '
        '"state": "{{ event.event }}", "runbook": "' + runbook + '"}}'
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


class UndeliveredError(RuntimeError):
    """The webhook refused or did not answer every attempt; the message says the last error."""


def send(
    url: str,
    message: dict[str, Any],
    timeout: float = 10.0,
    attempts: int = 4,
    backoff: float = 1.0,
) -> int:
    """POST the message as JSON, retrying a failed attempt after backoff, 2x backoff, ...;
    returns the HTTP status, or raises UndeliveredError when no attempt got a 2xx answer.

    Why retry here: a webhook blip (a 5xx, a reset connection) must not cost a page; the
    caller records what still could not be delivered.
    """
    body = json.dumps(message, default=str).encode("utf-8")
    last: Exception | None = None
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status)
        except (urllib.error.URLError, OSError, ValueError) as err:
            last = err
    raise UndeliveredError(f"webhook {_redact(url)} failed {max(1, attempts)} times: {last}")


def _redact(url: str) -> str:
    """Scheme, host and port only: a webhook's path is its secret (Slack's token lives there)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/..." if parts.netloc else "(webhook)"
