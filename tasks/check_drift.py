"""Prefect tasks of the `check_drift` flow: read the window's predictions and labels, the
baseline's statistics, assess the signals, decide with the policy, record and announce.

A check is a handful of tasks, one per step a person would name (read, assess, report, decide,
record, publish), not one per function: every task run costs API calls and events, and a
backfill runs a check per day. The functions they group stay plain and separately tested.
Tasks that take DataFrames use `cache_policy=NONE`: hashing a large frame for a cache key is
costly and caching is not wanted here. Clients (MLflow, boto3) are built inside the task
bodies, never passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.events import emit_event

from driftloop.configs.settings import Settings
from driftloop.tasks.adapters import history as drift_history
from driftloop.tasks.adapters import registry, storage
from driftloop.tasks.adapters.drift import DriftMeasurement, measure_drift
from driftloop.tasks.adapters.prefect_runs import in_flight_runs
from driftloop.tasks.adapters.promotion import ledger_for
from driftloop.tasks.adapters.registry import ModelVersionInfo
from driftloop.tasks.common import IO_RETRIES, MissingDataError, artifact_key, current_run_id
from driftloop.tasks.core import drift_report
from driftloop.tasks.core.monitoring import (
    Assessment,
    Quality,
    Realised,
    ReferenceStats,
    WindowStats,
    assess,
    realised_performance,
    settings_stats,
)
from driftloop.tasks.core.policy import InFlightRun, PolicyDecision, decide_retrain, model_run_tag
from driftloop.tasks.core.reporting import policy_markdown
from driftloop.tasks.core.scoring import SCORE_COLUMN, output_columns, predict_scores


def measure(reference: pd.DataFrame, current: pd.DataFrame, settings: Settings) -> DriftMeasurement:
    return measure_drift(
        reference,
        current,
        numeric=settings.dataset.monitored_numeric,
        categorical=settings.dataset.monitored_categorical,
        settings=settings.drift,
    )


def detail_report_uri(report_uri: str) -> str:
    """Where Evidently's report of a check goes: beside its drift report."""
    return report_uri.removesuffix(".html") + ".evidently.html"


@task(name="write-drift-report", task_run_name="write-{uri}", cache_policy=NONE, **IO_RETRIES)
def write_report(
    settings: Settings,
    assessment: Assessment,
    decision: PolicyDecision,
    baseline: ReferenceStats,
    uri: str,
) -> str:
    """The drift report people open, from the statistics the decision used (milliseconds: no
    Evidently); it links Evidently's report, rendered later, when `drift.evidently_report`."""
    if assessment.window is None:
        raise ValueError("the assessment carries no window statistics to report")
    detail = None
    if settings.drift.evidently_report:
        detail_uri = detail_report_uri(uri)
        detail = (
            storage.browser_link(detail_uri)
            if storage.is_s3(detail_uri)
            else detail_uri.rsplit("/", 1)[-1]  # beside it, wherever it is served from
        )
    page = drift_report.render_html(
        assessment,
        decision,
        baseline.stats,
        assessment.window,
        detail_link=detail,
        sample_size=settings.drift.sample_size,
        written=datetime.now(UTC),
    )
    return storage.write_text(uri, page)


@task(name="render-evidently-report", task_run_name="render-{uri}", cache_policy=NONE, **IO_RETRIES)
def render_detail_report(
    snapshot_uri: str, current: pd.DataFrame, settings: Settings, uri: str
) -> str:
    """Evidently's per-column report: the champion's reference snapshot vs the window."""
    measurement = measure(storage.read_frame(snapshot_uri), current, settings)
    return storage.write_text(uri, measurement.html)


@dataclass(frozen=True)
class WindowInputs:
    """What a check reads: the baseline, the window's (and the previous window's) predictions,
    the delayed labels that arrived and the rows the contract quarantined."""

    baseline: ReferenceStats
    current: pd.DataFrame
    previous: pd.DataFrame | None
    labels: pd.DataFrame | None
    quarantined: int


@task(name="read-drift-window", cache_policy=NONE, **IO_RETRIES)
def read_window(
    settings: Settings,
    champion: ModelVersionInfo,
    days: list[date],
    previous_days: list[date],
    labels: str | None,
) -> WindowInputs:
    return WindowInputs(
        baseline=reference_statistics(settings, champion),
        current=read_predictions(settings, days),
        previous=read_predictions(settings, previous_days, required=False),
        labels=read_labels(settings, days, labels),
        quarantined=count_quarantined(settings, days),
    )


@task(name="announce-drift", task_run_name="announce-{event}-{model_name}")
def announce_drift(event: str, model_name: str, payload: dict[str, Any]) -> None:
    """The event a deployment trigger on the server turns into a `train` run."""
    emit_event(
        event=event,
        resource={"prefect.resource.id": f"driftloop.model.{model_name}"},
        payload=payload,
    )


def prediction_files(lake: storage.Lake, model: str, day: date) -> list[str]:
    """A day's predictions: one file, or the part-*.parquet files of a partitioned folder."""
    single = lake.predictions(model, day)
    if storage.exists(single):
        return [single]
    return storage.list_uris(lake.prediction_parts(model, day), ".parquet")


def frames_of(uris: list[str]) -> pd.DataFrame:
    return pd.concat([storage.read_frame(uri) for uri in uris], ignore_index=True)


def read_predictions(
    settings: Settings, days: list[date], required: bool = True
) -> pd.DataFrame | None:
    """The stored predictions of the window's days that were scored (files or partitioned
    folders). A partial window is read as it is and its missing days are logged: the signals
    judge it when it holds `drift.min_rows` rows. No scored day at all is an error, or None
    with `required=False` (e.g. no previous window yet)."""
    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    model = settings.registry.model_name
    found = {day: prediction_files(lake, model, day) for day in days}
    missing = [str(day) for day, uris in found.items() if not uris]
    if len(missing) == len(days):
        if not required:
            return None
        raise MissingDataError(
            f"none of the days {days[0]}..{days[-1]} has predictions under "
            f"{lake.predictions(model, days[0]).rsplit('/', 1)[0]}: score them first (the "
            "`process` deployment scores every day that lands), or choose a window that has "
            "been scored."
        )
    if missing:
        get_run_logger().warning(
            "partial window: %d of %d days have no predictions and are left out: %s",
            len(missing),
            len(days),
            ", ".join(missing),
        )
    return frames_of([uri for uris in found.values() for uri in uris])


def reference_statistics(settings: Settings, champion: ModelVersionInfo) -> ReferenceStats:
    """The champion's baseline statistics: read if stored, else computed once and stored.

    Computed from the version's own reference snapshot, its scores on that snapshot (for
    prediction drift) and the held-out metrics of its MLflow run (for performance decay).
    """
    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    uri = lake.reference_stats(champion.name, champion.version)
    if storage.exists(uri):
        return ReferenceStats.model_validate_json(storage.read_bytes(uri))
    snapshot_uri = champion.tag("reference_uri")
    if not snapshot_uri:
        raise registry.RegistryError(
            f"v{champion.version} of {champion.name!r} has no reference_uri tag, so it has no "
            "drift baseline: register versions through the train flow"
        )
    registry.configure_tracking(settings.tracking, settings.registry)
    snapshot = storage.read_frame(snapshot_uri)
    model = registry.load_version(champion)
    outputs = predict_scores(model, snapshot, settings.dataset, max(len(snapshot), 1))
    scored = snapshot.assign(
        **{name: column.to_numpy(zero_copy_only=False) for name, column in
           output_columns(outputs).items()}
    )  # fmt: skip
    stats = ReferenceStats(
        model_name=champion.name,
        version=champion.version,
        snapshot_uri=snapshot_uri,
        stats=settings_stats(scored, settings),
        metrics=registry.run_metrics(champion.run_id) if champion.run_id else {},
    )
    storage.write_text(uri, stats.model_dump_json())
    return stats


def summarise_window(frame: pd.DataFrame, settings: Settings) -> WindowStats:
    return settings_stats(frame, settings, SCORE_COLUMN)


def read_labels(settings: Settings, days: list[date], source: str | None) -> pd.DataFrame | None:
    """Delayed labels: `source` (a file or a folder of files), else the lake's labels/<day>."""
    if source:
        uris = [source] if storage.exists(source) else storage.list_uris(source)
        if not uris:
            raise MissingDataError(f"labels source {source} holds no .parquet or .csv file")
    else:
        lake = storage.Lake(settings.storage.root, settings.dataset.name)
        uris = [uri for uri in (lake.labels(d) for d in days) if storage.exists(uri)]
    return frames_of(uris) if uris else None


def realise(
    predictions: pd.DataFrame, labels: pd.DataFrame, settings: Settings, version: str
) -> Realised:
    """Realised metrics of the predictions this version made (decay is judged against its own
    registration metrics; rows an earlier champion scored are left out)."""

    return realised_performance(
        predictions,
        labels,
        dataset=settings.dataset,
        score_column=SCORE_COLUMN,
        slice_columns=settings.gate.slices.columns,
        min_slice_rows=settings.gate.slices.min_rows,
        min_precision=settings.gate.recall_at_precision,
        only_version=version,
        slice_metric=settings.gate.slices.metric,
    )


def count_quarantined(settings: Settings, days: list[date]) -> int:
    """Rows the contract rejected on the window's days (the largest run per day: ingest and
    score both validate the same raw batch)."""

    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    total = 0
    for day in days:
        counts = []
        for uri in storage.list_uris(lake.quarantine_day(day), ".parquet"):
            if storage.is_s3(uri):
                counts.append(len(storage.read_frame(uri)))
            else:
                counts.append(pq.ParquetFile(uri).metadata.num_rows)
        total += max(counts, default=0)
    return total


def find_in_flight(settings: Settings) -> list[InFlightRun]:
    """Training runs already under way for this model: the policy does not start another."""
    policy = settings.policy
    if not policy.dedupe_in_flight:
        return []
    tag = model_run_tag(settings.registry.model_name)
    return in_flight_runs(policy.train_flow, tag, exclude=current_run_id())


def read_history(settings: Settings) -> pd.DataFrame:
    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    return drift_history.read(lake.drift_history(settings.registry.model_name))


@task(name="record-drift-check", cache_policy=NONE, **IO_RETRIES)
def record_check(
    settings: Settings, rows: pd.DataFrame, decision: PolicyDecision, history: pd.DataFrame
) -> tuple[str, pd.DataFrame]:
    """Append this check (scores, signals, decision) to the history the decision was made on;
    returns the record's URI and the history with it (not read again: a backfill's history
    grows by a file a day)."""

    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    uri = drift_history.append(lake.drift_history(settings.registry.model_name), rows, decision)
    return uri, drift_history.combine([history, rows])


def plot_history(settings: Settings, frame: pd.DataFrame) -> str:
    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    model = settings.registry.model_name
    png = drift_history.plot_png(frame, f"{model}: drift and realised performance")
    return storage.write_bytes(
        lake.report("drift", f"{model}-history.png"), png, content_type="image/png"
    )


@task(name="publish-policy", cache_policy=NONE, **IO_RETRIES)
def publish_policy(
    settings: Settings,
    decision: PolicyDecision,
    assessment: Assessment,
    frame: pd.DataFrame,
    record_uri: str,
    plot: bool,
) -> str | None:
    """The decision record and the signals as artifacts; with `plot`, the history plot too
    (returns its URI)."""

    model = settings.registry.model_name
    plot_uri = plot_history(settings, frame) if plot else None
    create_markdown_artifact(
        key=artifact_key("retrain-decision", model),
        markdown=policy_markdown(decision, assessment, record_uri),
        description=decision.reason[:500],
    )
    create_markdown_artifact(
        key=artifact_key("drift-history", model),
        markdown=drift_history.decisions_markdown(frame, plot_uri),
        description="drift scores, signals and decisions over time",
    )
    if plot_uri:
        create_link_artifact(
            key=artifact_key("drift-history-plot", model),
            link=storage.browser_link(plot_uri),
            link_text="drift and realised metrics over time (PNG)",
        )
    if decision.report_uri:
        create_link_artifact(
            key=artifact_key("drift-report", model),
            link=storage.browser_link(decision.report_uri),
            link_text=f"drift report, window ending {decision.window_end} (HTML)",
            description="presigned for 7 days on S3",
        )
    return plot_uri


@task(name="assess-signals", cache_policy=NONE)
def assess_window(inputs: WindowInputs, settings: Settings, version: str) -> Assessment:
    """Every signal of the window against the baseline (realised decay only where labels
    arrived for predictions this version made)."""
    current = summarise_window(inputs.current, settings)
    return assess(
        inputs.baseline,
        current,
        previous=None if inputs.previous is None else summarise_window(inputs.previous, settings),
        realised=None
        if inputs.labels is None
        else realise(inputs.current, inputs.labels, settings, version),
        quality=Quality(
            rows_received=current.rows + inputs.quarantined, rows_quarantined=inputs.quarantined
        ),
        settings=settings.drift,
        features=settings.policy_columns,
        reported=settings.reported_columns,
    )


@task(name="decide-retrain", cache_policy=NONE, **IO_RETRIES)
def decide_policy(
    settings: Settings,
    *,
    check_id: str,
    window_start: date,
    window_end: date,
    assessment: Assessment,
    checked_at: datetime,
) -> tuple[PolicyDecision, pd.DataFrame]:
    """The policy's decision, from the drift history, the training runs in flight and what
    became of earlier retrains (the promotion ledger); with the history it read."""
    history = read_history(settings)
    decision = decide_retrain(
        check_id=check_id,
        model_name=settings.registry.model_name,
        window_start=window_start,
        window_end=window_end,
        baseline_version=assessment.baseline_version,
        signals=assessment.signals,
        history=drift_history.records(history),
        in_flight=find_in_flight(settings),
        new_rows=assessment.current_rows,
        policy=settings.policy,
        outcomes=ledger_for(settings).retrain_outcomes(),
        now=checked_at,
    )
    return decision, history
