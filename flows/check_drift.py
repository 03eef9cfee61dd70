"""check_drift: the champion's baseline vs recently scored inputs -> signals -> retrain policy."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from prefect import flow, tags
from prefect.utilities.annotations import quote
from pydantic import Field

from driftloop.configs.settings import load_settings
from driftloop.flows.params import Day, Overrides, Profile, flow_timeout, run_name, yesterday
from driftloop.flows.train import train
from driftloop.tasks import check_drift as steps
from driftloop.tasks import common
from driftloop.tasks.adapters.history import history_rows
from driftloop.tasks.adapters.oncall import on_failure_hook
from driftloop.tasks.adapters.storage import Lake
from driftloop.tasks.core.monitoring import Assessment
from driftloop.tasks.core.policy import PolicyDecision, RetrainsKeepFailing, model_run_tag
from driftloop.tasks.core.results import DriftSummary
from driftloop.tasks.core.windows import parse_window, training_window


@flow(
    name="check_drift",
    timeout_seconds=flow_timeout("check_drift"),
    flow_run_name=run_name("check_drift", "window_end"),
    log_prints=True,
    on_failure=[on_failure_hook],
    on_crashed=[on_failure_hook],
)
def check_drift(
    window_end: Day | None = None,
    window_days: Annotated[int | None, Field(ge=1)] = None,
    retrain: bool | None = None,
    profile: Profile | None = None,
    overrides: Overrides = None,
    labels: str | None = None,
) -> DriftSummary:
    """Measure the window's signals against the champion's baseline; let the policy decide.

    Signals: feature drift (skew vs the champion's reference), prediction drift, production
    drift (vs the previous window), data quality, and realised-performance decay when delayed
    labels have arrived. The retraining policy (config `policy`) turns them and the drift
    history into a decision record; only a retrain decision emits the drift event, and with
    `retrain` (default: the config's `drift.retrain_inline`) trains right here. A retrain
    learns from its own window (config `training`), which ends with this check's window.

    Args:
        window_end: last scored day of the window (YYYY-MM-DD; empty: yesterday, UTC).
        window_days: days in the window (empty: drift.window_days from the config).
        retrain: also train here when drift is found (empty: drift.retrain_inline; on a
            server the `train` deployment's trigger on the drift event retrains instead).
        profile: config profile, configs/PROFILE.yaml read over base.yaml, e.g. prod (empty:
            the worker's DRIFTLOOP_PROFILE, else local).
        overrides: dotted config keys for this run only, validated like the YAML, e.g.
            {"gate.metrics.roc_auc.threshold": 0.7}.
        labels: delayed labels (id + target) as a file or folder, local or s3:// (empty: the
            lake's labels/DATASET/DAY.parquet for the window's days, where present).
    """
    window_end = window_end or yesterday()
    settings = load_settings(profile, overrides)
    lake = Lake(settings.storage.root, settings.dataset.name)
    model_name = settings.registry.model_name
    days = window_days or settings.drift.window_days
    window_start = window_end - timedelta(days=days - 1)
    window = f"{window_start}..{window_end}"
    window_days_list = common.days_in(window_start, window_end)
    previous_days = [d - timedelta(days=days) for d in window_days_list]
    check_id = uuid.uuid4().hex[:12]
    checked_at = datetime.now(UTC)

    champion = common.require_champion(settings)
    inputs = steps.read_window(settings, champion, window_days_list, previous_days, labels)
    assessment = steps.assess_window(quote(inputs), settings, champion.version)
    decision, history = steps.decide_policy(
        settings,
        check_id=check_id,
        window_start=window_start,
        window_end=window_end,
        assessment=quote(assessment),
        checked_at=checked_at,
    )
    # The report and plot are for people: written when there is something to look at.
    render = wants_report(settings.drift.report, assessment, decision)
    report_uri = None
    if render:
        report_uri = steps.write_report(
            settings,
            quote(assessment),
            quote(decision),
            quote(inputs.baseline),
            lake.report("drift", f"{model_name}-{window_end}.html"),
        )
        decision = decision.model_copy(update={"report_uri": report_uri})
    record_uri, history = steps.record_check(
        settings, history_rows(decision, assessment, checked_at), quote(decision), quote(history)
    )
    plot_uri = steps.publish_policy(
        settings, quote(decision), quote(assessment), quote(history), record_uri, render
    )
    if render or settings.drift.report != "decisions":  # a catch-up's quiet earlier day
        common.publish_loop_status(settings)
    feature = assessment.signals["feature_drift"]
    summary = DriftSummary(
        window=window,
        drifted=decision.breached,
        share=feature.value,
        drifted_columns=feature.features,
        reason=decision.reason,
        baseline_version=champion.version,
        report_uri=report_uri,
        check_id=check_id,
        rule=decision.rule,
        retrain_decided=decision.retrain,
        signals={name: s.breached for name, s in assessment.signals.items()},
        decision_uri=record_uri,
        history_plot_uri=plot_uri,
    )
    if decision.retrain:
        train_start, train_end = training_window(
            settings.training, end=window_end, champion_window=parse_window(champion.tag("window"))
        )
        steps.announce_drift(
            settings.drift.event,
            model_name,
            {
                "model": model_name,
                "window_start": str(window_start),
                "window_end": str(window_end),
                "train_start": str(train_start),
                "train_end": str(train_end),
                "report": report_uri,
                "decision": record_uri,
                "check_id": check_id,
                "rule": decision.rule,
                "drifted_columns": feature.features,
                "baseline_version": champion.version,
            },
        )
    if report_uri and settings.drift.evidently_report:  # seconds: after the decision is out
        steps.render_detail_report(
            inputs.baseline.snapshot_uri,
            quote(inputs.current),
            settings,
            steps.detail_report_uri(report_uri),
        )
    inline = settings.drift.retrain_inline if retrain is None else retrain
    if decision.retrain and inline:
        with tags(model_run_tag(model_name)):
            summary.retrain = train(
                train_start,
                train_end,
                retrain_trigger(record_uri, report_uri),
                profile,
                overrides,
            )
    if decision.rule == "escalate":  # recorded and published above: now page a human
        raise RetrainsKeepFailing(f"{decision.reason} Decision record: {record_uri}")
    return summary


def wants_report(mode: str, assessment: Assessment, decision: PolicyDecision) -> bool:
    """Whether this check writes its drift report and history plot (`drift.report`)."""
    if mode == "always":
        return True
    if mode == "decisions":
        return decision.retrain or decision.rule == "escalate"
    return any(signal.breached for signal in assessment.signals.values())


def retrain_trigger(record_uri: str, report_uri: str | None) -> str:
    """The `trigger` a retrain carries to its MLflow run and version: decision record + report."""
    return f"drift:{record_uri}" + (f" report:{report_uri}" if report_uri else "")


if __name__ == "__main__":
    import sys

    print(check_drift(date.fromisoformat(sys.argv[1])))
