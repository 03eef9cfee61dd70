"""Thin Prefect tasks over the pure functions: retries on I/O only, caching decided per task.

Tasks that take DataFrames or models use `cache_policy=NONE`: hashing a large frame for a cache
key costs about a second per million rows and caching is not wanted for these steps anyway.
Clients (MLflow, boto3) are built inside the task bodies, never passed in.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.events import emit_event
from prefect.runtime import flow_run

from driftloop.configs.settings import DatasetSettings, ModelSettings, Settings
from driftloop.tasks.adapters import registry, storage
from driftloop.tasks.adapters.ledger import LedgerEntry
from driftloop.tasks.adapters.promotion import ledger_for, move_alias
from driftloop.tasks.adapters.registry import ModelVersionInfo
from driftloop.tasks.core.evaluation import (
    evaluation_figures,
    paired_bootstrap,
    score_metrics,
    slice_scores,
)
from driftloop.tasks.core.gate import (
    GateDecision,
    GateEvidence,
    Override,
    SmokeResult,
    decide_gate,
)
from driftloop.tasks.core.results import IngestSummary, RollbackSummary, TrainSummary
from driftloop.tasks.core.scoring import PredictionMeta, now_utc
from driftloop.tasks.core.search import (
    SearchData,
    SearchOutcome,
    TrialResult,
    carve_validation,
    choose_best,
    score_trial,
)
from driftloop.tasks.core.training import Split, fit_pipeline, model_input, split_frame

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from driftloop.tasks.adapters.drift import ColumnDrift, DriftDecision, DriftMeasurement
    from driftloop.tasks.adapters.partitions import Partition, PartitionKeys, PartitionOutcome
    from driftloop.tasks.adapters.streaming import StreamOutcome
    from driftloop.tasks.adapters.validation import ValidatedBatch
    from driftloop.tasks.core.monitoring import Assessment, Realised, ReferenceStats, WindowStats
    from driftloop.tasks.core.policy import InFlightRun, PolicyDecision


def is_transient(error: BaseException | None) -> bool:
    """A network blip worth retrying, anywhere in the cause chain; not a bad file or alias."""
    from botocore.exceptions import (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import Timeout

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
        raise ValueError(f"window end {end} is before its start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


# --- storage -------------------------------------------------------------------------------


@task(name="read-frame", task_run_name="read-{uri}", cache_policy=NONE, **IO_RETRIES)
def read_frame(uri: str) -> pd.DataFrame:
    return storage.read_frame(uri)


@task(name="locate-raw-batch", task_run_name="locate-raw-{dataset}-{day}", **IO_RETRIES)
def locate_raw(root: str, dataset: str, day: date) -> str:
    return storage.Lake(root, dataset).raw_any(day)


@task(name="read-window", cache_policy=NONE, **IO_RETRIES)
def read_window(uris: list[str]) -> pd.DataFrame:
    """Concatenate daily files; every missing day is named in one error."""
    missing = [uri for uri in uris if not storage.exists(uri)]
    if missing:
        raise MissingDataError(
            "these days have no data yet: " + ", ".join(missing) + ". Ingest (or score) them "
            "first, or choose a window that has data."
        )
    return pd.concat([storage.read_frame(uri) for uri in uris], ignore_index=True)


@task(name="write-text", task_run_name="write-{uri}", **IO_RETRIES)
def write_text(uri: str, text: str) -> str:
    return storage.write_text(uri, text)


# --- validation ----------------------------------------------------------------------------


@task(name="validate-batch", task_run_name="validate-{source}", cache_policy=NONE)
def validate_batch(
    raw: pd.DataFrame, dataset: DatasetSettings, source: str, with_target: bool
) -> ValidatedBatch:
    from driftloop.tasks.adapters.validation import validate_frame

    docs_dir = tempfile.mkdtemp(prefix="driftloop-data-docs-") if dataset.data_docs else None
    try:
        return validate_frame(
            raw, dataset, with_target=with_target, source=source, docs_dir=docs_dir
        )
    except BaseException:
        if docs_dir:
            shutil.rmtree(docs_dir, ignore_errors=True)
        raise


@task(
    name="store-validated",
    task_run_name="store-validated-{day}",
    cache_policy=NONE,
    **IO_RETRIES,
)
def store_validated(
    batch: ValidatedBatch, lake: storage.Lake, day: date, curated: bool
) -> IngestSummary:
    """Quarantine is always written (nothing is lost); curated only when the batch passed.

    The validation's Data Docs site, if one was built, is published under the lake's
    reports/data-docs/ and its local build folder removed.
    """
    run_id = current_run_id()
    quarantine_uri = None
    if len(batch.quarantine):
        quarantine = batch.quarantine.assign(_dq_run_id=run_id)
        quarantine_uri = storage.write_frame(quarantine, lake.quarantine(day, run_id))
    curated_uri = lake.curated(day)
    if curated and batch.result.success:
        storage.write_frame(batch.valid, curated_uri)
    data_docs_uri = None
    if batch.docs_dir:
        site = lake.data_docs(day, run_id)
        storage.upload_folder(batch.docs_dir, site)
        data_docs_uri = storage.join(site, "index.html")
        # removed only once uploaded: a retry of this task (transient S3 error) needs it
        shutil.rmtree(batch.docs_dir, ignore_errors=True)
    result = batch.result
    return IngestSummary(
        day=day,
        source=result.source,
        curated_uri=curated_uri,
        quarantine_uri=quarantine_uri,
        rows_in=result.rows_in,
        rows_valid=result.rows_valid,
        rows_quarantined=result.rows_quarantined,
        data_docs_uri=data_docs_uri,
    )


@task(name="publish-validation", cache_policy=NONE)
def publish_validation(
    batch: ValidatedBatch,
    dataset: str,
    quarantine_uri: str | None,
    data_docs_uri: str | None = None,
) -> None:
    """The markdown summary, and a link to the Data Docs site when one was built."""
    from prefect.artifacts import create_link_artifact

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
            link=data_docs_uri if "://" in data_docs_uri else f"file://{data_docs_uri}",
            link_text=f"Data Docs: {batch.result.source}",
            description="Great Expectations Data Docs for this validation",
        )


@task(name="enforce-contract", cache_policy=NONE)
def enforce_contract(batch: ValidatedBatch) -> None:
    """Fail the run, after quarantine is safely stored, when a blocking check failed."""
    from driftloop.tasks.adapters.validation import raise_for_result

    raise_for_result(batch.result)


# --- training ------------------------------------------------------------------------------


@task(name="split-window", cache_policy=NONE)
def split_window(frame: pd.DataFrame, settings: Settings) -> Split:
    return split_frame(frame, settings.dataset, settings.split)


@task(name="find-champion", **IO_RETRIES)
def find_champion(settings: Settings) -> ModelVersionInfo | None:
    registry.configure_tracking(settings.tracking, settings.registry)
    return registry.version_by_alias(settings.registry, settings.registry.champion_alias)


@task(name="fit-candidate", cache_policy=NONE)
def fit_candidate(split: Split, settings: Settings) -> Pipeline:
    return fit_pipeline(split, settings.dataset, settings.model)


def requested_override(allow_unvalidated: bool, reason: str | None) -> Override | None:
    """Checked before any task runs: an override without a reason is refused."""
    if not allow_unvalidated:
        return None
    if not reason or len(reason.strip()) < 3:
        raise ValueError(
            "allow_unvalidated needs override_reason: say why the gate may be bypassed "
            "(it is recorded with the model version and in the promotion ledger)"
        )
    import getpass

    return Override(reason=reason.strip(), requested_by=getpass.getuser())


@task(name="gather-evidence", cache_policy=NONE)
def gather_evidence(
    candidate: Pipeline,
    champion: ModelVersionInfo | None,
    split: Split,
    settings: Settings,
    override: Override | None,
) -> GateEvidence:
    """Candidate, champion and baseline scored on the very same held-out rows."""
    gate = settings.gate
    target_precision = gate.recall_at_precision
    y = split.y_test.to_numpy()
    p_candidate = candidate.predict_proba(split.x_test)[:, 1]
    p_champion = None
    if champion is not None:
        p_champion = registry.load_version(champion).predict_proba(split.x_test)[:, 1]
    baseline = None
    if gate.baseline is not None:
        model = ModelSettings(
            estimator=gate.baseline.estimator,
            params=gate.baseline.params,
            preprocessing=settings.model.preprocessing.model_copy(update={"scale_numeric": True}),
        )
        fitted = fit_pipeline(split, settings.dataset, model)
        baseline = score_metrics(
            y, fitted.predict_proba(split.x_test)[:, 1], min_precision=target_precision
        )
    improvement = None
    if p_champion is not None and gate.bootstrap.resamples > 0:
        improvement = paired_bootstrap(
            y,
            p_candidate,
            p_champion,
            gate.primary_metric,
            resamples=gate.bootstrap.resamples,
            confidence=gate.bootstrap.confidence,
            seed=gate.bootstrap.seed,
            min_precision=target_precision,
        )
    slices = slice_scores(
        split.x_test[gate.slices.columns],
        y,
        p_candidate,
        p_champion,
        gate.slices.metric,
        target_precision,
    )
    return GateEvidence(
        candidate=score_metrics(y, p_candidate, min_precision=target_precision),
        champion=None
        if p_champion is None
        else score_metrics(y, p_champion, min_precision=target_precision),
        champion_version=champion.version if champion else None,
        baseline=baseline,
        improvement=improvement,
        slices=slices,
        override=override,
    )


@task(name="track-candidate", cache_policy=NONE, **IO_RETRIES)
def track_candidate(
    *,
    settings: Settings,
    pipeline: Pipeline,
    split: Split,
    frame: pd.DataFrame,
    evidence: GateEvidence,
    lineage: dict[str, str],
    sources: list[str],
    run_id: str | None = None,
) -> tuple[str, str]:
    """One MLflow run: params, metrics vs champion and baseline, plots, data digest, model.

    With `run_id` (a search ran first) the candidate is logged into that open run.
    """
    experiment_id = registry.configure_tracking(settings.tracking, settings.registry)
    metrics = dict(evidence.candidate)
    for prefix, values in (("champion_", evidence.champion), ("baseline_", evidence.baseline)):
        metrics.update({f"{prefix}{k}": v for k, v in (values or {}).items()})
    for score in evidence.slices:
        value = "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in score.value)
        metrics[f"slice_{score.column}_{value}_{score.metric}"] = score.candidate
    params: dict[str, Any] = {
        "estimator": settings.model.estimator,
        **{f"model.{k}": v for k, v in settings.model.params.items()},
        "window": lineage["window"],
        "rows_train": len(split.x_train),
        "rows_test": len(split.x_test),
        "split": settings.split.strategy,
    }
    figures = evaluation_figures(split.y_test, pipeline.predict_proba(split.x_test)[:, 1])
    try:
        return registry.log_candidate(
            experiment_id=experiment_id,
            run_name=f"train-{lineage['window']}",
            pipeline=pipeline,
            input_example=split.x_train.head(50),
            params=params,
            metrics=metrics,
            figures=figures,
            tags=lineage,
            training_frame=frame,
            training_source=",".join(sources),
            target=settings.dataset.target,
            documents={"gate_evidence.json": evidence.model_dump(mode="json")},
            training_digest=lineage.get("data_digest"),
            run_id=run_id,
        )
    finally:
        import matplotlib.pyplot as plt

        for fig in figures.values():
            plt.close(fig)


@task(name="describe-lineage", **IO_RETRIES)
def describe_lineage(
    settings: Settings, window: str, trigger: str, sources: list[str], rows: int
) -> dict[str, str]:
    """What every model version must answer: from which data, code and config, and why."""
    digest = hashlib.sha256()
    for uri in sources:
        digest.update(storage.sha256_of(uri).encode())
    return {
        "window": window,
        "trigger": trigger,
        "data_digest": digest.hexdigest(),
        "data_location": ",".join(sources)[:5000],
        "validation": f"{rows} rows from {len(sources)} curated days (contract checked at "
        "ingest; rejected rows in quarantine)",
        "config_digest": settings.digest(),
        "code_version": code_version(),
        "flow_run_id": current_run_id(),
    }


def code_version() -> str:
    """The git commit of the running code, or 'unknown' outside a checkout."""
    import subprocess

    from driftloop.configs.settings import PROJECT_ROOT

    try:
        done = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


@task(name="register-candidate", cache_policy=NONE, **IO_RETRIES)
def register_candidate(
    settings: Settings, model_uri: str, frame: pd.DataFrame, lineage: dict[str, str]
) -> tuple[str, str]:
    """Register, record the model's file digest, keep the training snapshot as drift reference.

    Both are written before any alias can point at the version, so a champion never exists
    without its drift baseline or its integrity check. Returns (version, reference_uri).
    """
    registry.configure_tracking(settings.tracking, settings.registry)
    version = registry.register(model_uri, settings.registry, lineage)
    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    reference_uri = storage.write_frame(
        frame, lake.reference(settings.registry.model_name, version)
    )
    with registry.downloaded_model(model_uri) as local:
        model_sha256 = registry.artifact_digest(local)
    registry.set_version_tags(
        settings.registry,
        version,
        {"reference_uri": reference_uri, "model_sha256": model_sha256},
    )
    return version, reference_uri


@task(name="serving-smoke-check", cache_policy=NONE)
def smoke_check(
    evidence: GateEvidence, settings: Settings, version: str, split: Split
) -> GateEvidence:
    """Load the new version through the registry in a fresh process and predict a sample."""
    from driftloop.tasks.adapters.smoke import check_in_fresh_process

    result = check_in_fresh_process(
        f"models:/{settings.registry.model_name}/{version}",
        split.x_test.head(settings.gate.smoke_rows),
        settings.tracking.uri,
    )
    return evidence.model_copy(update={"smoke": result})


@task(name="judge-candidate", cache_policy=NONE)
def judge(evidence: GateEvidence, settings: Settings) -> GateDecision:
    return decide_gate(evidence, settings.gate)


@task(name="promote-or-park", cache_policy=NONE, **IO_RETRIES)
def promote(
    settings: Settings, decision: GateDecision, version: str, run_id: str
) -> LedgerEntry:
    """Champion if the gate passed, challenger if not; the move is recorded in the ledger."""
    reg = settings.registry
    registry.configure_tracking(settings.tracking, settings.registry)
    registry.log_run_document(run_id, decision.model_dump(mode="json"), "gate_decision.json")
    registry.set_version_tags(
        reg,
        version,
        {
            "gate_decision_id": decision.decision_id,
            "gate_passed": str(decision.passed).lower(),
            "gate_overridden": str(decision.overridden).lower(),
            "gate_reason": decision.reason[:500],
        },
    )
    alias = reg.champion_alias if decision.passed else reg.challenger_alias
    return move_alias(
        settings,
        alias=alias,
        to_version=version,
        kind="promotion" if decision.passed else "challenger",
        reason=decision.reason[:1000],
        flow_run_id=current_run_id(),
        mlflow_run_id=run_id,
        gate_decision_id=decision.decision_id,
        evidence=f"runs:/{run_id}/gate_decision.json",
    )


@task(name="publish-training", cache_policy=NONE)
def publish_training(
    summary: TrainSummary, decision: GateDecision, settings: Settings, lineage: dict[str, str]
) -> str:
    """The model card: a Prefect artifact and a file stored with the model's run."""
    card = model_card(summary, decision, settings, lineage)
    model_name = settings.registry.model_name
    registry.log_run_document(summary.run_id, card, "model_card.md")
    create_markdown_artifact(
        key=artifact_key("model-card", model_name), markdown=card, description=decision.reason
    )
    create_table_artifact(
        key=artifact_key("gate", model_name), table=decision.table(), description=decision.reason
    )
    return card


def model_card(
    summary: TrainSummary, decision: GateDecision, settings: Settings, lineage: dict[str, str]
) -> str:
    dataset = settings.dataset
    title = f"v{summary.version}" if summary.version else "(dry run: not registered)"
    lines = [
        f"# {settings.registry.model_name} {title}",
        "",
        f"**Alias:** `{summary.alias}` (champion before: {summary.champion_before or 'none'}, "
        f"after: {summary.champion_after or 'none'}). **Trigger:** {summary.trigger}.",
        "",
        "## Data",
        f"- window {summary.window}, {summary.rows} rows; {lineage['validation']}",
        f"- data digest `{lineage['data_digest'][:16]}`, location `{lineage['data_location']}`",
        f"- target `{dataset.target}`; features: {', '.join(dataset.feature_columns)}",
        "",
        "## Model",
        f"- `{settings.model.estimator}` with {settings.model.params}",
        f"- config digest `{lineage['config_digest']}`, code `{lineage['code_version'][:12]}`, "
        f"Prefect flow run `{lineage['flow_run_id']}`, MLflow run `{summary.run_id}`",
        "",
        "## Metrics on the held-out rows",
        "| metric | candidate | champion | baseline |",
        "|---|---|---|---|",
    ]
    ev = decision.evidence
    for metric, value in ev.candidate.items():
        champ = (ev.champion or {}).get(metric)
        base = (ev.baseline or {}).get(metric)
        lines.append(
            f"| {metric} | {value:.4f} | {'-' if champ is None else f'{champ:.4f}'} | "
            f"{'-' if base is None else f'{base:.4f}'} |"
        )
    if ev.slices:
        lines += ["", "## Slices", "| slice | rows | candidate | champion |", "|---|---|---|---|"]
        for sc in ev.slices:
            champ = "-" if sc.champion is None else f"{sc.champion:.4f}"
            lines.append(
                f"| {sc.column}={sc.value} | {sc.rows} | {sc.candidate:.4f} | {champ} |"
            )
    lines += ["", "## Gate", decision.markdown()]
    return "\n".join(lines)


# --- rollback ------------------------------------------------------------------------------


class RollbackError(RuntimeError):
    """There is nothing sound to roll back to; the message says what to choose instead."""


@task(name="choose-rollback-target", **IO_RETRIES)
def rollback_target(
    settings: Settings, current: ModelVersionInfo, to_version: str | None
) -> ModelVersionInfo:
    """A named version, or the champion that the current one replaced (from the ledger)."""
    if to_version is None:
        ledger = ledger_for(settings)
        moves = [
            e
            for e in ledger.committed(settings.registry.champion_alias)
            if e.to_version == current.version and e.from_version
        ]
        if not moves:
            raise RollbackError(
                f"the ledger has no champion before v{current.version} of "
                f"{settings.registry.model_name!r}: name the version to roll back to"
            )
        to_version = str(moves[-1].from_version)
    if to_version == current.version:
        raise RollbackError(f"v{to_version} is already the champion: nothing to roll back")
    target = registry.get_version(settings.registry, to_version)
    if not target.tag("reference_uri"):
        raise RollbackError(
            f"v{to_version} has no drift reference snapshot, so drift could not be checked "
            "against it: choose a version registered by the train flow"
        )
    return target


@task(name="serving-smoke-check", cache_policy=NONE)
def smoke_version(settings: Settings, target: ModelVersionInfo) -> SmokeResult:
    """The rollback target must load and predict on its own reference rows before it serves."""
    from driftloop.tasks.adapters.smoke import check_in_fresh_process

    reference = storage.read_frame(target.tag("reference_uri"))
    sample = model_input(reference.head(settings.gate.smoke_rows), settings.dataset)
    result = check_in_fresh_process(target.uri, sample, settings.tracking.uri)
    if not result.ok:
        raise RollbackError(
            f"v{target.version} failed the serving smoke check ({result.error}): not rolled "
            "back; choose another version"
        )
    return result


@task(name="move-champion-back", cache_policy=NONE, **IO_RETRIES)
def roll_back(
    settings: Settings,
    current: ModelVersionInfo,
    target: ModelVersionInfo,
    smoke: SmokeResult,
    reason: str,
) -> LedgerEntry:
    return move_alias(
        settings,
        alias=settings.registry.champion_alias,
        to_version=target.version,
        kind="rollback",
        reason=f"{reason} (from v{current.version}; smoke check "
        f"{smoke.latency_ms_per_1000:.1f} ms per 1000 rows)",
        flow_run_id=current_run_id(),
        mlflow_run_id=target.run_id,
    )


@task(name="publish-rollback", cache_policy=NONE)
def publish_rollback(summary: RollbackSummary, model_name: str) -> None:
    create_markdown_artifact(
        key=artifact_key("rollback", model_name),
        markdown=(
            f"## Rollback of {model_name}: v{summary.from_version} -> v{summary.to_version}\n\n"
            f"{summary.reason}\n\nDrift baseline now: `{summary.reference_uri}`; "
            f"ledger entry `{summary.ledger_entry}`."
        ),
    )


# --- scoring -------------------------------------------------------------------------------


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


@task(name="digest-input", **IO_RETRIES)
def digest(uri: str) -> str:
    return storage.sha256_of(uri)


@task(name="publish-scoring", cache_policy=NONE)
def publish_scoring(model_name: str, markdown: str) -> None:
    create_markdown_artifact(key=artifact_key("scoring", model_name), markdown=markdown)


# --- drift ---------------------------------------------------------------------------------


@task(name="measure-drift", cache_policy=NONE)
def measure(reference: pd.DataFrame, current: pd.DataFrame, settings: Settings) -> DriftMeasurement:
    from driftloop.tasks.adapters.drift import measure_drift

    return measure_drift(
        reference,
        current,
        numeric=settings.dataset.numeric_features,
        categorical=settings.dataset.categorical_features,
        settings=settings.drift,
    )


@task(name="decide-drift", cache_policy=NONE)
def decide(measurement: DriftMeasurement, settings: Settings) -> DriftDecision:
    from driftloop.tasks.adapters.drift import decide_drift

    return decide_drift(
        measurement.columns,
        reference_rows=measurement.reference_rows,
        current_rows=measurement.current_rows,
        settings=settings.drift,
    )


@task(name="publish-drift", cache_policy=NONE)
def publish_drift(
    decision: DriftDecision, columns: list[ColumnDrift], report_uri: str, model_name: str
) -> None:
    from prefect.artifacts import create_link_artifact

    from driftloop.tasks.adapters.drift import drift_markdown

    create_markdown_artifact(
        key=artifact_key("drift", model_name),
        markdown=drift_markdown(decision, columns, report_uri),
        description=decision.reason,
    )
    create_link_artifact(
        key=artifact_key("drift-report", model_name),
        link=report_uri if "://" in report_uri else f"file://{report_uri}",
        link_text="Evidently drift report",
    )


@task(name="announce-drift", task_run_name="announce-{event}-{model_name}")
def announce_drift(event: str, model_name: str, payload: dict[str, Any]) -> None:
    """The event a deployment trigger on the server turns into a `train` run."""
    emit_event(
        event=event,
        resource={"prefect.resource.id": f"driftloop.model.{model_name}"},
        payload=payload,
    )


# --- monitoring and retraining policy (issue 7) --------------------------------------------


def prediction_files(lake: storage.Lake, model: str, day: date) -> list[str]:
    """A day's predictions: one file, or the part-*.parquet files of a partitioned folder."""
    single = lake.predictions(model, day)
    if storage.exists(single):
        return [single]
    return storage.list_uris(lake.prediction_parts(model, day), ".parquet")


def frames_of(uris: list[str]) -> pd.DataFrame:
    return pd.concat([storage.read_frame(uri) for uri in uris], ignore_index=True)


@task(name="read-predictions", cache_policy=NONE, **IO_RETRIES)
def read_predictions(
    settings: Settings, days: list[date], required: bool = True
) -> pd.DataFrame | None:
    """The window's stored predictions (files or partitioned folders); every missing day named.

    With `required=False` a window with any missing day gives None (e.g. no previous window).
    """
    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    model = settings.registry.model_name
    found = {day: prediction_files(lake, model, day) for day in days}
    missing = [day for day, uris in found.items() if not uris]
    if missing:
        if not required:
            return None
        raise MissingDataError(
            "these days have no predictions yet: "
            + ", ".join(f"{lake.predictions(model, d)} (or {lake.prediction_parts(model, d)}/)"
                        for d in missing)
            + ". Score them first, or choose a window that has been scored."
        )  # fmt: skip
    return frames_of([uri for uris in found.values() for uri in uris])


@task(name="reference-statistics", **IO_RETRIES, cache_policy=NONE)
def reference_statistics(settings: Settings, champion: ModelVersionInfo) -> ReferenceStats:
    """The champion's baseline statistics: read if stored, else computed once and stored.

    Computed from the version's own reference snapshot, its scores on that snapshot (for
    prediction drift) and the held-out metrics of its MLflow run (for performance decay).
    """
    from driftloop.tasks.core.monitoring import ReferenceStats, window_stats

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
    scored = snapshot.assign(
        score=model.predict_proba(model_input(snapshot, settings.dataset))[:, 1]
    )
    stats = ReferenceStats(
        model_name=champion.name,
        version=champion.version,
        snapshot_uri=snapshot_uri,
        stats=window_stats(
            scored,
            numeric=settings.dataset.numeric_features,
            categorical=settings.dataset.categorical_features,
            quantiles=settings.drift.quantiles,
            score_column="score",
        ),
        metrics=registry.run_metrics(champion.run_id) if champion.run_id else {},
    )
    storage.write_text(uri, stats.model_dump_json())
    return stats


@task(name="summarise-window", cache_policy=NONE)
def summarise_window(frame: pd.DataFrame, settings: Settings) -> WindowStats:
    from driftloop.tasks.core.monitoring import window_stats
    from driftloop.tasks.core.scoring import SCORE_COLUMN

    return window_stats(
        frame,
        numeric=settings.dataset.numeric_features,
        categorical=settings.dataset.categorical_features,
        quantiles=settings.drift.quantiles,
        score_column=SCORE_COLUMN,
    )


@task(name="read-labels", cache_policy=NONE, **IO_RETRIES)
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


@task(name="realise-performance", cache_policy=NONE)
def realise(
    predictions: pd.DataFrame, labels: pd.DataFrame, settings: Settings, version: str
) -> Realised:
    """Realised metrics of the predictions this version made (decay is judged against its own
    registration metrics; rows an earlier champion scored are left out)."""
    from driftloop.tasks.core.monitoring import realised_performance
    from driftloop.tasks.core.scoring import SCORE_COLUMN

    return realised_performance(
        predictions,
        labels,
        dataset=settings.dataset,
        score_column=SCORE_COLUMN,
        slice_columns=settings.gate.slices.columns,
        min_slice_rows=settings.gate.slices.min_rows,
        min_precision=settings.gate.recall_at_precision,
        only_version=version,
    )


@task(name="count-quarantined", **IO_RETRIES)
def count_quarantined(settings: Settings, days: list[date]) -> int:
    """Rows the contract rejected on the window's days (the largest run per day: ingest and
    score both validate the same raw batch)."""
    import pyarrow.parquet as pq

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


@task(name="find-in-flight-training", **IO_RETRIES)
def find_in_flight(settings: Settings) -> list[InFlightRun]:
    """`train` runs Prefect reports as Running, Pending or Scheduled for this model.

    A run tagged `model:<name>` belongs to that model; an untagged run (e.g. started by the
    deployment trigger) counts for every model, because it might be ours.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    from driftloop.tasks.core.policy import InFlightRun

    policy = settings.policy
    if not policy.dedupe_in_flight:
        return []
    me = current_run_id()
    model_tag = model_run_tag(settings.registry.model_name)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[policy.train_flow])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(
                        any_=[StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED]
                    )
                )
            ),
        )
    out = []
    for run in runs:
        tags = set(run.tags or [])
        others = {t for t in tags if t.startswith("model:")}
        if str(run.id) == me or (others and model_tag not in others):
            continue
        out.append(
            InFlightRun(
                id=str(run.id),
                name=run.name,
                state=run.state_type.value if run.state_type else "UNKNOWN",
                expected_start=run.expected_start_time,
            )
        )
    return out


def model_run_tag(model_name: str) -> str:
    """The tag a retrain run carries so in-flight dedupe can tell models apart."""
    return f"model:{model_name}"


@task(name="read-drift-history", cache_policy=NONE, **IO_RETRIES)
def read_history(settings: Settings) -> pd.DataFrame:
    from driftloop.tasks.adapters import history

    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    return history.read(lake.drift_history(settings.registry.model_name))


@task(name="record-drift-check", cache_policy=NONE, **IO_RETRIES)
def record_check(settings: Settings, rows: pd.DataFrame, decision: PolicyDecision) -> str:
    """Append this check (scores, signals, decision) to the history; returns the record's URI."""
    from driftloop.tasks.adapters import history

    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    return history.append(lake.drift_history(settings.registry.model_name), rows, decision)


@task(name="plot-drift-history", cache_policy=NONE, **IO_RETRIES)
def plot_history(settings: Settings, frame: pd.DataFrame) -> str:
    from driftloop.tasks.adapters import history

    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    model = settings.registry.model_name
    png = history.plot_png(frame, f"{model}: drift and realised performance")
    return storage.write_bytes(
        lake.report("drift", f"{model}-history.png"), png, content_type="image/png"
    )


@task(name="publish-policy", cache_policy=NONE)
def publish_policy(
    settings: Settings,
    decision: PolicyDecision,
    assessment: Assessment,
    frame: pd.DataFrame,
    record_uri: str,
    plot_uri: str,
) -> None:
    """The decision record and the signals as artifacts, and links to the plot and record."""
    from prefect.artifacts import create_link_artifact

    from driftloop.tasks.adapters import history
    from driftloop.tasks.core.reporting import policy_markdown

    model = settings.registry.model_name
    create_markdown_artifact(
        key=artifact_key("retrain-decision", model),
        markdown=policy_markdown(decision, assessment, record_uri),
        description=decision.reason[:500],
    )
    create_markdown_artifact(
        key=artifact_key("drift-history", model),
        markdown=history.decisions_markdown(frame, plot_uri),
        description="drift scores, signals and decisions over time",
    )
    create_link_artifact(
        key=artifact_key("drift-history-plot", model),
        link=plot_uri if "://" in plot_uri else f"file://{plot_uri}",
        link_text="drift and realised metrics over time (PNG)",
    )


@task(name="assess-signals", cache_policy=NONE)
def assess_window(
    baseline: ReferenceStats,
    current: WindowStats,
    previous: WindowStats | None,
    realised: Realised | None,
    quarantined: int,
    settings: Settings,
) -> Assessment:
    from driftloop.tasks.core.monitoring import Quality, assess

    return assess(
        baseline,
        current,
        previous=previous,
        realised=realised,
        quality=Quality(rows_received=current.rows + quarantined, rows_quarantined=quarantined),
        settings=settings.drift,
        features=settings.dataset.feature_columns,
    )


@task(name="decide-retrain", cache_policy=NONE)
def decide_policy(
    settings: Settings,
    *,
    check_id: str,
    window_start: date,
    window_end: date,
    assessment: Assessment,
    history: pd.DataFrame,
    in_flight: list[InFlightRun],
    report_uri: str | None,
) -> PolicyDecision:
    from driftloop.tasks.adapters import history as drift_history
    from driftloop.tasks.core.policy import decide_retrain

    return decide_retrain(
        check_id=check_id,
        model_name=settings.registry.model_name,
        window_start=window_start,
        window_end=window_end,
        baseline_version=assessment.baseline_version,
        signals=assessment.signals,
        history=drift_history.records(history),
        in_flight=in_flight,
        new_rows=assessment.current_rows,
        policy=settings.policy,
        report_uri=report_uri,
    )


# --- scoring at scale: streaming and partitioned scoring (issue 6) -------------------------

_MODELS: dict[tuple[str, str, str], Pipeline] = {}
_MODELS_LOCK = threading.Lock()


def scoring_model(champion: ModelVersionInfo, settings: Settings) -> Pipeline:
    """The champion's pipeline, loaded once per process (per Dask worker), keyed by its URI.

    Why: partition tasks run on Dask workers; shipping the fitted model with every task (or
    loading it in every task) would cost more than scoring a partition.
    """
    key = (settings.tracking.uri, champion.uri, champion.tag("model_sha256"))
    with _MODELS_LOCK:
        if key not in _MODELS:
            registry.configure_tracking(settings.tracking, settings.registry)
            _MODELS.clear()  # one champion at a time per process
            _MODELS[key] = registry.load_version(champion)
        return _MODELS[key]


def prediction_meta(champion: ModelVersionInfo, source: str, input_digest: str) -> PredictionMeta:
    return PredictionMeta(
        model_name=champion.name,
        model_version=champion.version,
        model_run_id=champion.run_id,
        input_uri=source,
        input_digest=input_digest,
        scored_at=now_utc(),
    )


def _publish_docs(docs_dir: str | None, lake: storage.Lake, day: date, run_id: str) -> str | None:
    if not docs_dir:
        return None
    site = lake.data_docs(day, run_id)
    storage.upload_folder(docs_dir, site)
    shutil.rmtree(docs_dir, ignore_errors=True)
    return storage.join(site, "index.html")


@task(name="score-stream", task_run_name="score-stream-{source}", cache_policy=NONE, **IO_RETRIES)
def score_stream(
    champion: ModelVersionInfo,
    settings: Settings,
    source: str,
    input_digest: str,
    day: date,
    output_uri: str | None,
) -> StreamOutcome:
    """Validate, predict and write the input batch by batch (memory: one batch, any input size).

    Predictions appear at `output_uri` (None: dry run) only when the input passed its contract;
    the quarantine is always kept. Data Docs, if enabled, describe the first batch.
    """
    from driftloop.tasks.adapters.streaming import score_stream as stream

    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    run_id = current_run_id()
    docs_dir = None
    if settings.dataset.data_docs:
        docs_dir = tempfile.mkdtemp(prefix="driftloop-data-docs-")
    outcome = stream(
        source=source,
        model=scoring_model(champion, settings),
        dataset=settings.dataset,
        meta=prediction_meta(champion, source, input_digest),
        output_uri=output_uri,
        quarantine_uri=lake.quarantine(day, run_id),
        now=now_utc(),
        batch_rows=settings.scoring.batch_rows,
        chunk_rows=settings.storage.score_chunk_rows,
        prefetch_batches=settings.scoring.prefetch_batches,
        docs_dir=docs_dir,
        run_id=run_id,
    )
    docs_uri = _publish_docs(outcome.data_docs_dir, lake, day, run_id)
    return outcome.model_copy(update={"data_docs_dir": docs_uri})


@task(name="plan-partitions", task_run_name="plan-partitions-{source}", **IO_RETRIES)
def plan_partitions(source: str, settings: Settings) -> list[Partition]:
    from driftloop.tasks.adapters.partitions import plan

    return plan(source, settings.scoring.partition_row_groups)


@task(
    name="inspect-partition",
    task_run_name="inspect-partition-{part.index}",
    cache_policy=NONE,
    **IO_RETRIES,
)
def inspect_partition(part: Partition, settings: Settings, digest: str | None) -> PartitionKeys:
    from driftloop.tasks.adapters.partitions import inspect

    return inspect(part, settings.dataset, settings.scoring.batch_rows, digest)


@task(
    name="score-partition",
    task_run_name="score-partition-{part.index}",
    cache_policy=NONE,
    **IO_RETRIES,
)
def score_partition(
    part: Partition,
    champion: ModelVersionInfo,
    settings: Settings,
    keys: PartitionKeys,
    prior: dict[str, np.ndarray],
    day: date,
    run_id: str,
    dry_run: bool,
) -> PartitionOutcome:
    """One partition through the streaming scorer, on whichever worker runs it."""
    from driftloop.tasks.adapters.partitions import score_one

    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    return score_one(
        part,
        keys,
        prior,
        model=lambda: scoring_model(champion, settings),
        champion=champion,
        settings=settings,
        output_uri=None if dry_run else part.output_uri(lake, settings.registry.model_name, day),
        quarantine_uri=part.quarantine_uri(lake, day, run_id),
        meta=prediction_meta(champion, part.uri, keys.digest),
        run_id=run_id,
    )


@task(name="settle-partitions", cache_policy=NONE, **IO_RETRIES)
def settle_partitions(
    outcomes: list[PartitionOutcome], settings: Settings, day: date, source: str, passed: bool
) -> list[str]:
    """Exactly one file per partition: stale parts and crashed writes' temp files removed;
    all parts removed when the input as a whole failed its contract. Returns what was removed."""
    from driftloop.tasks.adapters.partitions import settle

    lake = storage.Lake(settings.storage.root, settings.dataset.name)
    folder = lake.prediction_parts(settings.registry.model_name, day)
    return settle(folder, outcomes, keep=passed)


# --- training: start-up cuts and hyperparameter search (issue 6) -----------------------------


@task(name="prewarm-smoke-check", cache_policy=NONE)
def prewarm_smoke_check(settings: Settings) -> None:
    """Start the smoke check's fresh interpreter now: its imports overlap tracking/registering."""
    from driftloop.tasks.adapters.smoke import prewarm

    prewarm(settings.tracking.uri)


@task(name="open-training-run", cache_policy=NONE, **IO_RETRIES)
def open_training_run(settings: Settings, window: str) -> str:
    """The MLflow training run, opened before the search so trials can nest under it.

    `track_candidate` resumes it and logs the candidate into it.
    """
    experiment_id = registry.configure_tracking(settings.tracking, settings.registry)
    return registry.open_run(experiment_id, f"train-{window}")


@task(name="carve-search-data", cache_policy=NONE)
def carve_search_data(split: Split, settings: Settings) -> SearchData:
    search = settings.model.search
    if search is None:
        raise ValueError("carve_search_data needs model.search")
    return carve_validation(split, search, search.seed)


@task(name="search-trial", task_run_name="search-trial-{index}", cache_policy=NONE)
def search_trial(
    index: int, params: dict[str, Any], data: SearchData, settings: Settings
) -> TrialResult:
    search = settings.model.search
    if search is None:
        raise ValueError("search_trial needs model.search")
    return score_trial(
        index,
        params,
        data,
        settings.dataset,
        settings.model,
        search.metric,
        settings.gate.recall_at_precision,
    )


def run_search(trials: list[dict[str, Any]], split: Split, settings: Settings) -> SearchOutcome:
    """Fan the trials out on the Dask cluster (config `dask`) and choose the best.

    The training rows go to the cluster once (as the result of `carve-search-data`); Dask moves
    them to each worker that runs a trial. A LocalCluster started here is stopped on return.
    """
    search = settings.model.search
    if search is None:
        raise ValueError("run_search needs model.search")
    from driftloop.tasks.adapters.scaleout import dask_task_runner

    with dask_task_runner(settings.dask) as runner:
        data = runner.submit(carve_search_data, {"split": split, "settings": settings})
        futures = [
            runner.submit(
                search_trial, {"index": i, "params": p, "data": data, "settings": settings}
            )
            for i, p in enumerate(trials)
        ]
        results = [future.result() for future in futures]
    return choose_best(results, search)


@task(name="track-search", cache_policy=NONE, **IO_RETRIES)
def track_search(settings: Settings, parent_run_id: str, outcome: SearchOutcome) -> None:
    """Each trial as a nested MLflow run; the trial table on the parent run and in Prefect."""
    registry.configure_tracking(settings.tracking, settings.registry)
    registry.log_nested_trials(parent_run_id, outcome)
    best = outcome.best
    create_table_artifact(
        key=artifact_key("search", settings.registry.model_name),
        table=outcome.table(),
        description=f"{len(outcome.trials)} trials ({outcome.strategy}); chosen: trial "
        f"{best.index} {best.params} with {outcome.metric} {best.value:.4f} on validation rows",
    )
