"""The on-call message: each failure kind gets its runbook entry, and every field is there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from driftloop.tasks.adapters.notifications import (
    FailureKind,
    FailureReport,
    build_message,
    classify,
    drift_storm_template,
    parse_exception,
    send,
    stuck_run_template,
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
            FailureKind.STUCK_RUN,
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
            FailureKind.FLOW_FAILED,
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
        assert f'<a id="{kind.value}"></a>' in text, f"docs/runbook.md lacks {kind.value}"


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
    assert "MLflow run: n/a" in message["text"]
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
        ("", (None, None)),
    ],
)
def test_parse_exception(state_message: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_exception(state_message) == expected


def test_server_templates_are_valid_json_once_rendered() -> None:
    """The server renders these with Jinja; with plain values they must be JSON."""
    from jinja2 import Environment

    env = Environment()
    env.filters["ui_url"] = lambda obj: "http://ui/run"
    flow_run = {"id": "1", "name": "train-a..b", "parameters": {"x": 1}, "state": {"name": "Late"}}
    stuck = env.from_string(stuck_run_template("rb", "15m")).render(
        flow_run=flow_run, flow={"name": "train"}, deployment={"name": "train"}
    )
    assert json.loads(stuck)["driftloop"]["runbook"] == "rb#stuck-run"
    storm = env.from_string(drift_storm_template("rb")).render(
        event={"resource": {"id": "driftloop.model.m"}, "payload": {"window_start": "a"}}
    )
    assert "drift storm" in json.loads(storm)["text"]


def test_send_posts_json(webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, got = webhook
    status = send(url, build_message(report()))
    assert status == 200 and got[0]["driftloop"]["flow_run_name"] == "ingest-2026-11-05"
