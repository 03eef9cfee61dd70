"""Each failure kind, induced for real, pages once under its own runbook entry.

The flows run on the session's Prefect test server with their own failure hook sending to a
local webhook receiver (embedded mode has no automation). Each test checks the page names the
right entry, exactly once, that the entry's heading is where the link points, and that the page
stands alone: the run's state as the server has it and its own log lines, not the worker's.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest

from driftloop.data.generate import generate_day
from driftloop.flows.ingest import ingest
from driftloop.flows.train import train
from driftloop.tasks.adapters import storage

pytestmark = pytest.mark.usefixtures("prefect_backend")

DAY = date(2026, 11, 5)


@pytest.fixture
def pages(
    webhook: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> list[dict[str, Any]]:
    url, got = webhook
    monkeypatch.setenv("DRIFTLOOP_WEBHOOK_URL", url)
    monkeypatch.setenv("DRIFTLOOP_NOTIFY_FROM_HOOK", "1")
    monkeypatch.delenv("DRIFTLOOP_RUNBOOK_URL", raising=False)
    return got


def the_page(pages: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The one page sent, checked to name `kind` and to link a heading that exists."""
    assert len(pages) == 1, [p["driftloop"]["kind"] for p in pages]
    (page,) = pages
    facts = page["driftloop"]
    assert facts["kind"] == kind, page["text"]
    link = urlsplit(facts["runbook"])
    assert link.scheme == "file" and link.fragment == kind, facts["runbook"]
    runbook = Path(url2pathname(link.path)).read_text(encoding="utf-8")
    assert f'<a id="{kind}"></a>\n## ' in runbook, "the link lands on the entry's heading"
    assert f"Runbook: {facts['runbook']}" in page["text"]
    assert "no exception" not in page["text"]
    for line in facts["log_lines"]:
        assert "submitted to infrastructure" not in line and "> Running" not in line
        assert "Traceback" not in line and '  File "' not in line, "tracebacks are folded"
    return page


def test_a_corrupt_file_pages_unreadable_input(workspace, pages) -> None:
    lake = storage.Lake(workspace.lake_root, "loans")
    raw = Path(lake.raw(DAY))
    raw.parent.mkdir(parents=True)
    storage.write_frame(generate_day(DAY, 50), str(raw))
    raw.write_bytes(raw.read_bytes()[:-40])  # cut off: the footer is gone
    before = raw.read_bytes()
    with pytest.raises(storage.UnreadableFileError):
        ingest(DAY, overrides=workspace.overrides)
    page = the_page(pages, "unreadable-input")
    text = page["text"]
    assert "State now: Failed" in text
    assert "write it again" not in text and "deliver a corrected file" in text
    assert "MLflow run" not in text, "ingest logs no MLflow run"
    assert page["driftloop"]["log_lines"], "the run's own last lines"
    assert raw.read_bytes() == before


def test_a_day_that_never_arrived_pages_input_missing(workspace, pages) -> None:
    with pytest.raises(storage.NotFoundError):
        ingest(DAY, overrides=workspace.overrides)
    page = the_page(pages, "input-did-not-arrive")
    assert page["driftloop"]["failing_task"].startswith("receive-")


def test_a_broken_contract_pages_data_validation(workspace, pages) -> None:
    from driftloop.tasks.core.contract import DataContractError

    lake = storage.Lake(workspace.lake_root, "loans")
    storage.write_frame(generate_day(DAY, 300).assign(age=5), lake.raw(DAY))
    with pytest.raises(DataContractError):
        ingest(DAY, overrides=workspace.overrides)
    the_page(pages, "data-validation-failed")


def test_a_window_never_ingested_pages_window_not_curated(workspace, pages) -> None:
    from driftloop.tasks.common import MissingDataError

    with pytest.raises(MissingDataError):
        train(date(2026, 11, 1), date(2026, 11, 3), overrides=workspace.overrides)
    the_page(pages, "window-not-curated")


def test_an_unknown_config_key_pages_bad_parameters(workspace, pages) -> None:
    from driftloop.configs.settings import ConfigError

    with pytest.raises(ConfigError):
        ingest(DAY, overrides={**workspace.overrides, "dataset.no_such_key": 1})
    page = the_page(pages, "bad-parameters")
    assert "no_such_key" in page["text"]


def test_a_missing_bucket_pages_s3_unreachable(s3_server, pages) -> None:
    root = "s3://driftloop-no-such-bucket/lake"
    with pytest.raises(storage.MissingBucketError):
        ingest(DAY, overrides={"storage.root": root})
    page = the_page(pages, "s3-unreachable")
    assert "driftloop-no-such-bucket" in page["text"]


def test_a_run_past_its_timeout_pages_timed_out(workspace, pages) -> None:
    lake = storage.Lake(workspace.lake_root, "loans")
    storage.write_frame(generate_day(DAY, 300), lake.raw(DAY))
    with pytest.raises(Exception, match=r"(?i)timed out|timeout"):
        ingest.with_options(timeout_seconds=0.05)(DAY, overrides=workspace.overrides)
    page = the_page(pages, "timed-out")
    assert page["driftloop"]["state"] == "TimedOut"


def _late_run(parameters: dict[str, Any]) -> str:
    """A pipeline run left Late on the server (no worker took it)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Late
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def create() -> str:
        async with get_client() as client:
            run = await client.create_flow_run(ingest, parameters=parameters, state=Late())
            return str(run.id)

    return run_coro_as_sync(create())


def test_a_stuck_run_is_paged_once_and_a_finished_one_never(workspace, pages) -> None:
    """What the stuck-run automation runs: `notify` re-reads the state before paging."""
    from prefect.client.orchestration import get_client
    from prefect.states import Failed
    from prefect.utilities.asyncutils import run_coro_as_sync

    from driftloop.flows.notify import notify
    from driftloop.tasks.adapters.oncall import collect_report, deliver

    params = {"day": str(DAY), "overrides": workspace.overrides}
    stuck = _late_run(params)
    run_coro_as_sync(notify(f"prefect.flow-run.{stuck}"))
    run_coro_as_sync(notify(f"prefect.flow-run.{stuck}"))  # the automation firing twice
    page = the_page(pages, "stuck-run")
    assert page["driftloop"]["state"] == "Late" and "State now: Late" in page["text"]

    moved_on = _late_run(params)
    report = run_coro_as_sync(collect_report(moved_on))  # gathered while it was Late ...
    assert report is not None and report.state == "Late"

    async def fail() -> None:  # ... and the run fails before the page goes out
        async with get_client() as client:
            await client.set_flow_run_state(moved_on, Failed(message="boom"), force=True)

    run_coro_as_sync(fail())
    assert run_coro_as_sync(deliver(report, "notify automation")) is None
    assert len(pages) == 1, "a run that is no longer Pending or Late is not paged as stuck"


def test_a_page_the_webhook_will_not_take_is_kept_and_named(
    workspace, tmp_path, monkeypatch, caplog
) -> None:
    import json
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed again: nothing listens there
    kept = tmp_path / "undelivered.jsonl"
    monkeypatch.setenv("DRIFTLOOP_WEBHOOK_URL", f"http://127.0.0.1:{port}/hook")
    monkeypatch.setenv("DRIFTLOOP_UNDELIVERED_PAGES", str(kept))
    monkeypatch.setenv("DRIFTLOOP_NOTIFY_FROM_HOOK", "1")
    with caplog.at_level("ERROR", logger="driftloop.oncall"), pytest.raises(storage.NotFoundError):
        ingest(DAY, overrides=workspace.overrides)
    (entry,) = [json.loads(line) for line in kept.read_text().splitlines()]
    assert entry["message"]["driftloop"]["kind"] == "input-did-not-arrive"
    assert f"127.0.0.1:{port}" in entry["error"] and "failed 4 times" in entry["error"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("NOT delivered" in e and str(kept) in e for e in errors), errors


def test_a_day_that_is_not_a_date_pages_bad_parameters_with_its_error(workspace, pages) -> None:
    """A run created with day "2026-13-45" (say, through the API): on-call reads the
    parameter error, never "no exception"."""
    with pytest.raises(Exception, match=r"2026-13-45|day"):
        ingest("2026-13-45", overrides=workspace.overrides)  # type: ignore[arg-type]
    facts = the_page(pages, "bad-parameters")["driftloop"]
    assert facts["exception_type"] == "ParameterTypeError"
    assert "day: Input should be a valid date" in facts["exception_message"]
    assert facts["parameters"]["day"] == "2026-13-45"


def test_mlflow_down_pages_mlflow_unreachable(workspace, pages, monkeypatch) -> None:
    import socket
    from datetime import timedelta

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    lake = storage.Lake(workspace.lake_root, "loans")
    days = [DAY + timedelta(days=i) for i in range(3)]
    monkeypatch.setenv("DRIFTLOOP_NOTIFY_FROM_HOOK", "0")  # the ingests are not the point
    for day in days:
        storage.write_frame(generate_day(day, 400), lake.raw(day))
        ingest(day, overrides=workspace.overrides)
    monkeypatch.setenv("DRIFTLOOP_NOTIFY_FROM_HOOK", "1")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # nothing listens there once closed
    down = {**workspace.overrides, "tracking.uri": f"http://127.0.0.1:{port}"}
    with pytest.raises(Exception, match=f"127.0.0.1:{port}"):
        train(days[0], days[-1], overrides=down)
    page = the_page(pages, "mlflow-unreachable")
    assert f"127.0.0.1:{port}" in page["text"]
    assert "MLflow run" not in page["text"], "no run was logged: no MLflow link"


def test_a_killed_run_pages_crashed_through_notify(workspace, pages) -> None:
    """A killed process runs no hook: the server marks the run Crashed and its automation runs
    `notify` (here called as the automation calls it, twice), which pages `crashed` once."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed
    from prefect.utilities.asyncutils import run_coro_as_sync

    from driftloop.flows.notify import notify

    killed = _late_run({"day": str(DAY), "overrides": workspace.overrides})

    async def crash() -> None:
        async with get_client() as client:
            message = "Flow run infrastructure exited with non-zero status code -9."
            await client.set_flow_run_state(killed, Crashed(message=message), force=True)

    run_coro_as_sync(crash())
    run_coro_as_sync(notify(f"prefect.flow-run.{killed}"))
    run_coro_as_sync(notify(f"prefect.flow-run.{killed}"))
    page = the_page(pages, "crashed")
    assert page["driftloop"]["sent_by"] == "notify automation"
    assert "State now: Crashed" in page["text"] and "status code -9" in page["text"]


def test_a_window_ending_before_it_starts_pages_bad_parameters(workspace, pages) -> None:
    from driftloop.tasks.core.days import ParameterError

    with pytest.raises(ParameterError, match="before its start"):
        train(date(2026, 11, 3), date(2026, 11, 1), overrides=workspace.overrides)
    page = the_page(pages, "bad-parameters")
    assert "swap them" in page["text"]
