"""train: curated window -> fit -> track -> gate against the champion -> register -> alias."""

from __future__ import annotations

from datetime import date

from prefect import flow

from driftloop.configs.settings import load_settings
from driftloop.flows.params import (
    Day,
    Hyperparameters,
    Overrides,
    Profile,
    SystemValue,
    flow_timeout,
    merged_overrides,
)
from driftloop.tasks import common
from driftloop.tasks import train as steps
from driftloop.tasks.adapters.approval import request_approval
from driftloop.tasks.adapters.oncall import on_failure_hook
from driftloop.tasks.adapters.storage import Lake
from driftloop.tasks.core.results import TrainSummary
from driftloop.tasks.core.search import plan_trials, with_params


@flow(
    name="train",
    timeout_seconds=flow_timeout("train"),
    flow_run_name="train-{window_start}..{window_end}",
    log_prints=True,
    on_failure=[on_failure_hook],
    on_crashed=[on_failure_hook],
)
def train(
    window_start: Day,
    window_end: Day,
    trigger: SystemValue = "manual",
    profile: Profile | None = None,
    overrides: Overrides = None,
    hyperparameters: Hyperparameters = None,
    dry_run: bool = False,
    allow_unvalidated: bool = False,
    override_reason: str | None = None,
) -> TrainSummary:
    """Train on the curated days of the window; promote only if the gate passes.

    A rejected candidate is a normal, completed outcome: it is registered with the
    challenger alias and the gate's reason.

    Args:
        window_start: first day of the training window (YYYY-MM-DD); days without curated
            data (never ingested, or failed their contract) are skipped.
        window_end: last day of the window, inclusive (YYYY-MM-DD). With the default
            `split.strategy: out_of_time` its most recent day(s) judge the candidate.
        trigger: why this run happened, recorded by the system and not in the form:
            manual, bootstrap, or "drift:" and the drift check's decision record and report
            (set by the retrain-on-drift trigger and by an inline retrain).
        profile: config profile, configs/PROFILE.yaml read over base.yaml, e.g. prod (empty:
            the worker's DRIFTLOOP_PROFILE, else local).
        overrides: dotted config keys for this run only, validated like the YAML, e.g.
            {"gate.metrics.roc_auc.threshold": 0.7}.
        hyperparameters: estimator hyperparameters for this run, merged over model.params,
            e.g. {"max_iter": 80, "learning_rate": 0.05}.
        dry_run: fit, gate and track the candidate in MLflow, but register nothing and move
            no alias (the serving smoke check needs a registered version, so it is skipped).
        allow_unvalidated: promote even if the gate rejects the candidate; recorded with the
            version, in the ledger and on the model card.
        override_reason: why the gate may be bypassed (required with allow_unvalidated).
    """
    settings = load_settings(profile, merged_overrides(overrides, hyperparameters))
    override = steps.requested_override(allow_unvalidated, override_reason)
    search = settings.model.search
    trials = plan_trials(search, settings.model) if search else []
    lake = Lake(settings.storage.root, settings.dataset.name)
    window = f"{window_start}..{window_end}"
    sources = common.locate_curated(lake, common.days_in(window_start, window_end))
    frame = common.read_window(sources)
    champion = common.find_champion(settings)
    split = steps.split_window(frame, settings, champion)
    parent_run = None
    trained = settings  # the config, with the chosen params when a search ran
    if trials:
        parent_run = steps.open_training_run(settings, window)
        outcome = steps.run_search(trials, split, settings)
        steps.track_search(settings, parent_run, outcome)
        trained = with_params(settings, outcome.best.params)
    candidate = steps.fit_candidate(split, trained)
    evidence = steps.gather_evidence(candidate, champion, split, settings, override)
    if not dry_run:  # after the fits: its imports overlap tracking, not multi-threaded fitting
        steps.prewarm_smoke_check(settings)
    lineage = steps.describe_lineage(settings, window, trigger, sources, len(frame))
    run_id, model_uri = steps.track_candidate(
        settings=trained,
        pipeline=candidate,
        split=split,
        frame=frame,
        evidence=evidence,
        lineage=lineage,
        sources=sources,
        run_id=parent_run,
    )
    before = champion.version if champion else None
    version = alias = reference_uri = None
    if dry_run:
        decision = steps.judge(evidence, settings)
    else:
        version, reference_uri = steps.register_candidate(settings, model_uri, frame, lineage)
        evidence = steps.smoke_check(evidence, settings, version, split)
        decision = request_approval(steps.judge(evidence, settings), settings, version)
        alias = steps.promote(settings, decision, version, run_id).alias
    promoted = decision.passed and not dry_run
    summary = TrainSummary(
        window=window,
        trigger=trigger,
        rows=len(frame),
        run_id=run_id,
        version=version,
        promoted=promoted,
        alias=alias,
        champion_before=before,
        champion_after=version if promoted else before,
        gate_reason=decision.reason,
        metrics=decision.candidate,
        champion_metrics=decision.champion,
        reference_uri=reference_uri,
        dry_run=dry_run,
    )
    steps.publish_training(summary, decision, trained, lineage)
    common.publish_loop_status(settings)
    return summary


if __name__ == "__main__":
    import sys

    print(train(date.fromisoformat(sys.argv[1]), date.fromisoformat(sys.argv[2])))
