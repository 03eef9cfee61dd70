"""Prefect tasks of the `train` flow: split, fit, gather the gate's evidence, track, register,
promote; and the hyperparameter search's trials.

Tasks that take DataFrames or models use `cache_policy=NONE`: hashing a large frame for a cache
key is costly and caching is not wanted for these steps. Clients (MLflow, boto3) are built
inside the task bodies, never passed in.
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from driftloop.configs.settings import Settings
from driftloop.tasks.adapters import registry, storage
from driftloop.tasks.adapters.ledger import LedgerEntry
from driftloop.tasks.adapters.promotion import move_alias
from driftloop.tasks.adapters.registry import ModelVersionInfo
from driftloop.tasks.adapters.scaleout import dask_task_runner
from driftloop.tasks.adapters.smoke import check_in_fresh_process, prewarm
from driftloop.tasks.adapters.source_control import code_version
from driftloop.tasks.common import IO_RETRIES, artifact_key, current_run_id
from driftloop.tasks.core.days import ParameterError
from driftloop.tasks.core.evaluation import evaluation_figures
from driftloop.tasks.core.evidence import measure_evidence
from driftloop.tasks.core.gate import GateDecision, GateEvidence, Override, decide_gate
from driftloop.tasks.core.lineage import lineage_record, model_card, tracking_record
from driftloop.tasks.core.results import TrainSummary
from driftloop.tasks.core.search import (
    SearchData,
    SearchOutcome,
    TrialResult,
    carve_validation,
    choose_best,
    score_trial,
)
from driftloop.tasks.core.targets import predict_output
from driftloop.tasks.core.training import Split, fit_pipeline, split_frame
from driftloop.tasks.core.windows import parse_window

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


@task(name="split-window", cache_policy=NONE)
def split_window(
    frame: pd.DataFrame, settings: Settings, champion: ModelVersionInfo | None
) -> Split:
    """Hold out the rows the gate judges on: with `out_of_time`, days after the champion's."""
    trained_on = None if champion is None else parse_window(champion.tag("window"))
    champion_end = None if trained_on is None else trained_on[1]
    return split_frame(frame, settings.dataset, settings.split, champion_end=champion_end)


@task(name="fit-candidate", cache_policy=NONE)
def fit_candidate(split: Split, settings: Settings) -> Pipeline:
    return fit_pipeline(split, settings.dataset, settings.model)


def requested_override(allow_unvalidated: bool, reason: str | None) -> Override | None:
    """Checked before any task runs: an override without a reason is refused."""
    if not allow_unvalidated:
        return None
    if not reason or len(reason.strip()) < 3:
        raise ParameterError(
            "allow_unvalidated needs override_reason: say why the gate may be bypassed "
            "(it is recorded with the model version and in the promotion ledger)"
        )

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
    champion_model = None if champion is None else registry.load_version(champion)
    return measure_evidence(
        candidate,
        champion_model,
        split,
        settings,
        champion_version=champion.version if champion else None,
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
    params, metrics = tracking_record(settings, evidence, split, lineage["window"])
    output = predict_output(pipeline, split.x_test, settings.dataset)
    classes = getattr(output, "classes", ()) or None
    figures = evaluation_figures(split.y_test, output, settings.dataset.task, classes)
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
            task=settings.dataset.task,
        )
    finally:
        for fig in figures.values():
            plt.close(fig)


@task(name="describe-lineage", **IO_RETRIES)
def describe_lineage(
    settings: Settings, window: str, trigger: str, sources: list[str], rows: int
) -> dict[str, str]:
    """What every model version must answer: from which data, code and config, and why."""
    return lineage_record(
        settings,
        window=window,
        trigger=trigger,
        sources=sources,
        rows=rows,
        source_digests=[storage.sha256_of(uri) for uri in sources],
        code_version=code_version(),
        flow_run_id=current_run_id(),
    )


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

    result = check_in_fresh_process(
        f"models:/{settings.registry.model_name}/{version}",
        split.x_test.head(settings.gate.smoke_rows),
        settings.tracking.uri,
        task=settings.dataset.task,
        classes=split.y_train.nunique() if settings.dataset.task == "multiclass" else None,
    )
    return evidence.model_copy(update={"smoke": result})


@task(name="judge-candidate", cache_policy=NONE)
def judge(evidence: GateEvidence, settings: Settings) -> GateDecision:
    return decide_gate(evidence, settings.gate)


@task(name="promote-or-park", cache_policy=NONE, **IO_RETRIES)
def promote(settings: Settings, decision: GateDecision, version: str, run_id: str) -> LedgerEntry:
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


@task(name="prewarm-smoke-check", cache_policy=NONE)
def prewarm_smoke_check(settings: Settings) -> None:
    """Start the smoke check's fresh interpreter now: its imports overlap tracking/registering."""

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
