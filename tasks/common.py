"""Prefect tasks and helpers every flow shares: retries on I/O only, reading raw and curated
batches, the contract's verdict, the champion.

Tasks that take DataFrames or models use `cache_policy=NONE`: hashing a large frame for a cache
key is costly and caching is not wanted for these steps. Clients (MLflow, boto3) are built
inside the task bodies, never passed in.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.runtime import flow_run
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import Timeout

from driftloop.configs.settings import Settings
from driftloop.tasks.adapters import registry, storage
from driftloop.tasks.adapters.registry import ModelVersionInfo
from driftloop.tasks.core.contract import ValidatedBatch, raise_for_result
from driftloop.tasks.core.days import ParameterError
from driftloop.tasks.core.status import ChampionMove, CheckLine, LoopStatus, status_markdown


def is_transient(error: BaseException | None) -> bool:
    """A network blip worth retrying, anywhere in the cause chain; not a bad file or alias."""

    transient = (
        ConnectionError,
        TimeoutError,
        EndpointConnectionError,
        ConnectionClosedError,
        ConnectTimeoutError,
        ReadTimeoutError,
        RequestsConnectionError,
        Timeout,
    )
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, transient):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retrying a missing file or a bad batch only delays the alert."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        error = state.result(raise_on_failure=False)
    return is_transient(error if isinstance(error, BaseException) else None)


IO_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [1, 5, 15],
    "retry_condition_fn": retry_if_transient,
}


class MissingDataError(FileNotFoundError):
    """A window asks for days that were never ingested; the message lists them."""


def current_run_id() -> str:
    return str(flow_run.id or "local")


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    raw = "-".join(parts).lower()
    return "".join(ch if ch.isalnum() else "-" for ch in raw).strip("-")


def days_in(start: date, end: date) -> list[date]:
    if end < start:
        raise ParameterError(
            f"window end {end} is before its start {start}: swap them, or give the first day first"
        )
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


@task(name="read-frame", task_run_name="read-{uri}", cache_policy=NONE, **IO_RETRIES)
def read_frame(uri: str) -> pd.DataFrame:
    return storage.read_frame(uri)


@task(name="digest-input", task_run_name="digest-{uri}", **IO_RETRIES)
def digest(uri: str) -> str:
    """The input's sha256: what lineage, the day record and the repeat check know it by."""
    return storage.sha256_of(uri)


@task(name="locate-raw-batch", task_run_name="locate-raw-{dataset}-{day}", **IO_RETRIES)
def locate_raw(root: str, dataset: str, day: date, pattern: str | None = None) -> str:
    """The day's raw file: by `dataset.raw_pattern` when set, else raw/<dataset>/<day>.*"""
    return storage.Lake(root, dataset, pattern).raw_any(day)


@task(name="locate-curated-days", cache_policy=NONE, **IO_RETRIES)
def locate_curated(lake: storage.Lake, days: list[date]) -> list[str]:
    """The curated files of the window's days that exist: a day that was never ingested (an
    outage, a file that failed its contract) is skipped and named in the log."""
    found = {day: lake.curated(day) for day in days}
    present = [uri for uri in found.values() if storage.exists(uri)]
    missing = [str(day) for day, uri in found.items() if uri not in present]
    if not present:
        raise MissingDataError(
            f"none of the {len(days)} days {days[0]}..{days[-1]} has curated data under "
            f"{lake.root}: ingest them first (`driftloop ingest <day>`, or let the `process` "
            "deployment ingest every raw file that lands), or choose a window that has data."
        )
    if missing:
        get_run_logger().warning(
            "training window: %d of %d days have no curated data and are skipped: %s",
            len(missing),
            len(days),
            ", ".join(missing),
        )
    return present


@task(name="read-window", cache_policy=NONE, **IO_RETRIES)
def read_window(uris: list[str]) -> pd.DataFrame:
    """Concatenate the daily files `locate_curated` found (it has checked that they exist)."""
    return pd.concat([storage.read_frame(uri) for uri in uris], ignore_index=True)


def publish_validation(
    batch: ValidatedBatch,
    dataset: str,
    quarantine_uri: str | None,
    data_docs_uri: str | None = None,
) -> None:
    """The markdown summary, and a link to the Data Docs site when one was built."""

    text = batch.result.summary_markdown()
    if quarantine_uri:
        text += f"\n\nQuarantined rows (with reasons): `{quarantine_uri}`"
    if data_docs_uri:
        text += f"\n\nGreat Expectations Data Docs: `{data_docs_uri}`"
    create_markdown_artifact(
        key=artifact_key("validation", dataset), markdown=text, description="data contract"
    )
    if data_docs_uri:
        create_link_artifact(
            key=artifact_key("data-docs", dataset),
            link=storage.browser_link(data_docs_uri),
            link_text=f"Data Docs: {batch.result.source}",
            description="Great Expectations Data Docs for this validation",
        )


@task(name="enforce-contract", cache_policy=NONE)
def enforce_contract(
    batch: ValidatedBatch,
    dataset: str,
    quarantine_uri: str | None,
    data_docs_uri: str | None = None,
) -> None:
    """Publish the validation, then fail the run, after quarantine is safely stored, when a
    blocking check failed."""

    publish_validation(batch, dataset, quarantine_uri, data_docs_uri)
    raise_for_result(batch.result)


@task(name="find-champion", **IO_RETRIES)
def find_champion(settings: Settings) -> ModelVersionInfo | None:
    registry.configure_tracking(settings.tracking, settings.registry)
    return registry.version_by_alias(settings.registry, settings.registry.champion_alias)


@task(name="require-champion", **IO_RETRIES)
def require_champion(settings: Settings) -> ModelVersionInfo:
    name, alias = settings.registry.model_name, settings.registry.champion_alias
    champion = find_champion.fn(settings)
    if champion is None:
        raise registry.RegistryError(
            f"model {name!r} has no {alias!r} alias yet in {settings.tracking.uri}: run the "
            "train flow first (or the demo), then score again."
        )
    return champion


@task(name="publish-loop-status", cache_policy=NONE)
def publish_loop_status(settings: Settings) -> str | None:
    """Rewrite the dataset's loop status page (artifact `loop-status-<dataset>`).

    Why after every run: it is the page people open first, so it must say what the last run
    changed. It reads the registry, the promotion ledger, the drift history and the Prefect API;
    if one of them does not answer, the page waits for the next run instead of failing this one.
    """
    try:
        text = status_markdown(_loop_status(settings))
    except Exception as err:  # the page is a view; the run's outcome does not depend on it
        get_run_logger().warning("loop status page not updated: %s: %s", type(err).__name__, err)
        return None
    create_markdown_artifact(
        key=loop_status_key(settings.dataset.name),
        markdown=text,
        description=f"the loop of {settings.dataset.name}: champion, labels, drift, retrains",
    )
    return text


def loop_status_key(dataset: str) -> str:
    return artifact_key("loop-status", dataset)


def _loop_status(settings: Settings) -> LoopStatus:
    from datetime import UTC, datetime

    from driftloop.tasks.adapters import history as drift_history
    from driftloop.tasks.adapters.promotion import ledger_for

    model = settings.registry.model_name
    champion = find_champion.fn(settings)
    moves = [
        ChampionMove(
            version=e.to_version,
            kind=e.kind,
            at=e.settled_at or e.at,
            reason=e.reason,
            evidence=e.evidence,
        )
        for e in ledger_for(settings).entries()
        if e.status == "committed"
    ]
    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    frame = drift_history.read(lake.drift_history(model))
    checks, realised, realised_window = [], {}, ""
    for check_id, rows in frame.groupby("check_id", sort=False):
        decision = rows[rows["kind"] == "decision"]
        if decision.empty:
            continue
        made = drift_history.decisions(decision)[0]
        signals = rows[(rows["kind"] == "signal") & rows["breached"].astype(bool)]
        checks.append(
            CheckLine(
                checked_at=pd.Timestamp(decision["checked_at"].iloc[0]).to_pydatetime(),
                window=f"{made.window_start}..{made.window_end}",
                rule=made.rule,
                retrain=made.retrain,
                reason=made.reason,
                breached=list(signals["name"]),
            )
        )
        metrics = rows[(rows["kind"] == "metric") & ~rows["name"].str.contains(":")]
        if not metrics.empty:
            realised = dict(zip(metrics["name"], metrics["value"].astype(float), strict=True))
            realised_window = f"{made.window_start}..{made.window_end} (check {check_id})"
    checks.sort(key=lambda c: c.checked_at)
    return LoopStatus(
        model=model,
        dataset=settings.dataset.name,
        now=datetime.now(UTC),
        champion=champion.version if champion else None,
        moves=sorted(moves, key=lambda m: m.at),
        checks=checks,
        realised=realised,
        realised_window=realised_window,
        waiting=_waiting_for_approval(),
    )


def _waiting_for_approval() -> list[str]:
    """Runs paused for a person (the approval form of `train`), with their link."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.settings import get_current_settings

    ui = get_current_settings().ui_url
    with get_client(sync_client=True) as client:
        paused = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            ),
            limit=20,
        )
    return [
        f"{r.name}: {r.state.message if r.state and r.state.message else 'paused for input'}"
        + (f" ({ui}/runs/flow-run/{r.id})" if ui else "")
        for r in paused
    ]
