"""The on-call message: each failure kind gets its runbook entry, and every field is there."""

from __future__ import annotations

import importlib
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from driftloop.tasks.adapters.notifications import (
    DEFAULT_RUNBOOK_URL,
    ROUTES,
    FailureKind,
    FailureReport,
    UndeliveredError,
    build_message,
    classify,
    drift_storm_template,
    no_worker_template,
    parse_exception,
    send,
)

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"


def report(**changes: Any) -> FailureReport:
    base = FailureReport(
        flow="ingest",
        deployment="ingest",
        flow_run_id="0f6c",
        flow_run_name="ingest-2026-11-05",
        state="Failed",
        state_message="Flow run encountered an exception: DataContractError: Batch x failed",
        parameters={"day": "2026-11-05", "profile": "prod"},
        failing_task="enforce-contract",
        exception_type="DataContractError",
        exception_message="Batch s3://b/raw/loans/2026-11-05.parquet failed its data contract",
        log_lines=[f"line {i}" for i in range(30)],
        prefect_url="http://127.0.0.1:4200/runs/flow-run/0f6c",
        mlflow_url="http://127.0.0.1:5000/#/experiments/1/runs/abc",
    )
    return base.model_copy(update=changes)


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({}, FailureKind.DATA_VALIDATION),
        (
            {
                "exception_type": "RegistryError",
                "exception_message": "MLflow tracking store http://x is unreachable",
            },
            FailureKind.MLFLOW_UNREACHABLE,
        ),
        (
            {
                "exception_type": "StorageError",
                "exception_message": "S3 request for s3://b/k failed against http://h: "
                "Could not connect to the endpoint URL",
            },
            FailureKind.S3_UNREACHABLE,
        ),
        (
            {"exception_type": "GateRejected", "exception_message": "worse"},
            FailureKind.GATE_REJECTED,
        ),
        (
            {"state": "TimedOut", "exception_type": None, "exception_message": None},
            FailureKind.TIMED_OUT,
        ),
        (
            {
                "exception_type": "UnreadableFileError",
                "exception_message": "/l/raw/loans/2026-11-05.parquet is not a readable parquet",
            },
            FailureKind.UNREADABLE_INPUT,
        ),
        (
            {
                "failing_task": "locate-raw-loans-2026-11-05",
                "exception_type": "NotFoundError",
                "exception_message": "no raw loans data for 2026-11-05",
            },
            FailureKind.INPUT_MISSING,
        ),
        (
            {
                "failing_task": "read-frame",
                "exception_type": "NotFoundError",
                "exception_message": "s3://b/x does not exist",
            },
            FailureKind.FLOW_FAILED,
        ),
        (
            {
                "failing_task": None,
                "exception_type": None,
                "exception_message": None,
                "state_message": "Validation of flow parameters failed with error: day",
            },
            FailureKind.BAD_PARAMETERS,
        ),
        (
            {
                "exception_type": "RegistryError",
                "exception_message": "model m does not match the digest recorded",
            },
            FailureKind.FLOW_FAILED,
        ),
        ({"state": "Late", "exception_type": None}, FailureKind.STUCK_RUN),
        (
            {"exception_type": "ValueError", "exception_message": "window end before start"},
            FailureKind.FLOW_FAILED,
        ),
        (
            {
                "state": "Crashed",
                "exception_type": None,
                "exception_message": None,
                "state_message": "Flow run infrastructure exited with non-zero status code -9.",
            },
            FailureKind.CRASHED,
        ),
        (
            {
                "state": "Crashed",
                "exception_type": None,
                "exception_message": None,
                "state_message": "No heartbeat for 3 min: its process is gone (worker or "
                "machine stopped).",
            },
            FailureKind.RUN_UNRESPONSIVE,
        ),
    ],
)
def test_each_failure_maps_to_its_runbook_entry(changes: dict[str, Any], kind: FailureKind) -> None:
    got = report(**changes)
    assert classify(got) is kind
    message = build_message(got, "https://wiki/runbook")
    assert message["driftloop"]["runbook"] == f"https://wiki/runbook#{kind.value}"
    assert f"#{kind.value}" in message["text"]


def test_every_kind_has_a_runbook_entry() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    for kind in FailureKind:
        assert f'<a id="{kind.value}"></a>\n## ' in text, f"docs/runbook.md lacks {kind.value}"
        assert f"(`{kind.value}`)" in text, f"the heading of {kind.value} names its kind"


@pytest.mark.parametrize("row", ROUTES, ids=lambda r: f"{r.name}-{r.step or ''}")
def test_every_route_names_a_real_exception_and_classifies_to_its_entry(row: Any) -> None:
    module, name = row.exception.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type) and issubclass(cls, BaseException), row.exception
    got = report(
        exception_type=cls.__name__,
        failing_task=f"{row.step}x" if row.step else "some-step",
        exception_message=f"failed: {row.contains[0]}" if row.contains else "failed",
        state_message="",
    )
    assert classify(got) is row.kind


def test_routes_cover_the_failure_kinds_raised_by_code() -> None:
    """Kinds decided by state or sent by the server need no row; every other kind has one."""
    by_state = {
        FailureKind.STUCK_RUN,
        FailureKind.TIMED_OUT,
        FailureKind.CRASHED,
        FailureKind.RUN_UNRESPONSIVE,
        FailureKind.DRIFT_STORM,
        FailureKind.GATE_REJECTED,
        FailureKind.FLOW_FAILED,
    }
    assert set(FailureKind) - by_state <= {r.kind for r in ROUTES}


def test_messages_never_tell_on_call_to_rewrite_raw_input() -> None:
    """Raw input is immutable (runbook): no storage message says 'write it again'."""
    source = (Path(__file__).resolve().parents[2] / "tasks/adapters/storage.py").read_text()
    assert "write it again" not in source and "write the file again" not in source


def test_the_default_runbook_link_opens_in_a_browser() -> None:
    """Without $DRIFTLOOP_RUNBOOK_URL the link is this checkout's runbook as a file:// URL."""
    assert RUNBOOK.as_uri() == DEFAULT_RUNBOOK_URL
    link = build_message(report())["driftloop"]["runbook"]
    assert link == f"{RUNBOOK.as_uri()}#data-validation-failed"


def test_message_carries_what_on_call_needs() -> None:
    message = build_message(report())
    text = message["text"]
    for needle in (
        "ingest/ingest",
        "ingest-2026-11-05",
        '"day": "2026-11-05"',
        "enforce-contract",
        "DataContractError: Batch s3://b/raw/loans/2026-11-05.parquet failed",
        "http://127.0.0.1:4200/runs/flow-run/0f6c",
        "http://127.0.0.1:5000/#/experiments/1/runs/abc",
        "docs/runbook.md#data-validation-failed",
        "State now: Failed",
        "line 29",
    ):
        assert needle in text, needle
    assert "line 0\n" not in text, "only the last log lines"
    assert json.loads(json.dumps(message))["blocks"][0]["type"] == "header"
    assert message["driftloop"]["failing_task"] == "enforce-contract"


def test_missing_facts_are_said_not_invented() -> None:
    message = build_message(
        report(deployment=None, failing_task=None, mlflow_url=None, prefect_url=None, log_lines=[])
    )
    assert "Failing task: n/a" in message["text"]
    assert "MLflow run" not in message["text"], "no MLflow link for a flow without a run"
    assert "no exception" not in message["text"]
    assert "(no log lines recorded)" in message["text"]
    assert message["text"].startswith("[driftloop] Failed: ingest run")


@pytest.mark.parametrize(
    ("state_message", "expected"),
    [
        (
            "Flow run encountered an exception: DataContractError: bad rows",
            ("DataContractError", "bad rows"),
        ),
        (
            "Task run encountered an exception botocore.exceptions.EndpointConnectionError: no",
            ("EndpointConnectionError", "no"),
        ),
        ("Run timed out after 60 seconds", (None, "Run timed out after 60 seconds")),
        (
            "Validation of flow parameters failed with error: ParameterTypeError: bad day",
            ("ParameterTypeError", "bad day"),
        ),
        ("", (None, None)),
    ],
)
def test_parse_exception(state_message: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_exception(state_message) == expected


def test_server_templates_are_valid_json_once_rendered() -> None:
    """The server renders these with Jinja; with plain values they must be JSON."""
    from jinja2 import Environment

    env = Environment()
    pool = env.from_string(no_worker_template("rb")).render(
        event={
            "event": "prefect.work-pool.not-ready",
            "resource": {"prefect.resource.name": "driftloop-process"},
        }
    )
    parsed = json.loads(pool)
    assert parsed["driftloop"]["runbook"] == "rb#stuck-run"
    assert "work pool driftloop-process is not-ready" in parsed["text"]
    storm = env.from_string(drift_storm_template("rb")).render(
        event={"resource": {"id": "driftloop.model.m"}, "payload": {"window_start": "a"}}
    )
    assert "drift storm" in json.loads(storm)["text"]


def test_send_posts_json(webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, got = webhook
    status = send(url, build_message(report()))
    assert status == 200 and got[0]["driftloop"]["flow_run_name"] == "ingest-2026-11-05"


def test_send_retries_a_failing_webhook_until_it_takes_the_page() -> None:
    """A real receiver answering 503 twice, then 200: the page arrives once."""
    calls: list[int] = []
    got: list[dict[str, Any]] = []

    class Flaky(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            calls.append(1)
            if len(calls) <= 2:
                self.send_response(503)
            else:
                got.append(json.loads(body))
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        assert send(url, build_message(report()), backoff=0.05) == 200
    finally:
        server.shutdown()
    assert len(calls) == 3 and len(got) == 1


def test_send_to_a_webhook_that_is_down_raises_after_its_attempts() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_port
    server.server_close()  # nothing listens there now
    with pytest.raises(UndeliveredError, match=f"127.0.0.1:{port}/... failed 3 times"):
        send(f"http://127.0.0.1:{port}/secret-path", build_message(report()), 2, 3, 0.01)


def test_stuck_runs_go_through_notify_and_only_no_worker_is_paged_by_the_server() -> None:
    """A stuck run is paged by `notify` (which re-checks its state); the server posts by itself
    only when no worker is alive, and only with a stored webhook."""
    from uuid import uuid4

    from prefect.events.actions import CallWebhook, RunDeployment

    from driftloop.deployments.automations import NO_WORKER, STUCK, build_automations

    notify_id = uuid4()
    without = {a.name: a for a in build_automations(notify_id, None, timedelta(minutes=5), "rb")}
    assert isinstance(without[STUCK].actions[0], RunDeployment)
    assert without[STUCK].actions[0].deployment_id == notify_id
    assert NO_WORKER not in without
    with_hook = {a.name: a for a in build_automations(notify_id, uuid4(), timedelta(5), "rb")}
    assert isinstance(with_hook[NO_WORKER].actions[0], CallWebhook)


def test_log_lines_are_the_runs_own_with_tracebacks_folded() -> None:
    """Worker boilerplate goes; a traceback keeps its first line and the exception line."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from driftloop.tasks.adapters.oncall import own_log_lines

    at = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)

    def log(name: str, message: str, level: int = 20) -> SimpleNamespace:
        return SimpleNamespace(name=name, message=message, level=level, timestamp=at)

    logs = [
        log("prefect.flow_runs.worker", "Worker 'P' submitting flow run 'x'"),
        log("prefect.flow_runs", " > Running set_working_directory step..."),
        log("prefect.flow_runs.worker", "Flow run 'ingest-x' submitted to infrastructure"),
        log("prefect.flow_runs", "Opening process..."),
        log("prefect.task_runs", "read 300 rows from /l/raw/loans/2026-11-05.parquet"),
        log(
            "prefect.flow_runs",
            "Encountered exception during execution: UnreadableFileError('bad')\n"
            'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
            "    raise X\ndriftloop.tasks.adapters.storage.UnreadableFileError: bad",
            40,
        ),
    ]
    lines = own_log_lines(logs, 15)
    assert lines == [
        "21:00:00 INFO read 300 rows from /l/raw/loans/2026-11-05.parquet",
        "21:00:00 ERROR Encountered exception during execution: UnreadableFileError('bad') ... "
        "driftloop.tasks.adapters.storage.UnreadableFileError: bad",
    ]
    assert own_log_lines(logs, 1) == lines[-1:]
