"""process: every raw file that lands is ingested, scored and checked, once, in day order."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.states import State

from driftloop.configs.settings import Settings, load_settings
from driftloop.flows.check_drift import check_drift
from driftloop.flows.ingest import ingest
from driftloop.flows.params import Day, Overrides, Profile, flow_timeout
from driftloop.flows.score import score
from driftloop.flows.train import train
from driftloop.tasks import common
from driftloop.tasks import process as steps
from driftloop.tasks.adapters.oncall import on_failure_hook
from driftloop.tasks.adapters.storage import Lake
from driftloop.tasks.core.days import (
    DayPlan,
    DayState,
    InputMissingError,
    Stage,
    StageRecord,
    missing_days,
    plan_days,
)
from driftloop.tasks.core.results import DayOutcome, ProcessSummary


@flow(
    name="process",
    timeout_seconds=flow_timeout("process"),
    flow_run_name="process",
    log_prints=True,
    on_failure=[on_failure_hook],
    on_crashed=[on_failure_hook],
)
def process(
    since: Day | None = None,
    until: Day | None = None,
    check: bool | None = None,
    profile: Profile | None = None,
    overrides: Overrides = None,
) -> ProcessSummary:
    """Work through every day whose raw file has landed and is not done yet, oldest first.

    Each day is ingested, scored by the model that is champion at that moment, and checked
    for drift (a retrain decision starts `train`, on a server through the drift event). Days
    missed while nothing ran are caught up in order; a day that is done is never redone; a day
    that failed (its run pages on-call) is retried only when a file with other bytes lands for
    it; the days after it go on. With no champion yet, v1 is trained once
    `process.bootstrap_days` days are curated. A day that never arrived while later days did
    fails this run once, by name, after the others are done. As a backfill, `since` and `until`
    bound the days; days before the last render a drift report only where the policy decided.

    Args:
        since: first day to work on (YYYY-MM-DD; empty: the first day that landed).
        until: last day to work on, inclusive (YYYY-MM-DD; empty: the last day that landed).
        check: run the drift check after each day is scored (empty: the config's
            process.check).
        profile: config profile, configs/PROFILE.yaml read over base.yaml, e.g. prod (empty:
            the worker's DRIFTLOOP_PROFILE, else local).
        overrides: dotted config keys for this run and the runs it starts, validated like
            the YAML, e.g. {"drift.window_days": 7}.
    """
    settings = load_settings(profile, overrides)
    lake = Lake(settings.storage.root, settings.dataset.name, settings.dataset.raw_pattern)
    log = get_run_logger()
    busy = steps.earlier_run()
    if busy:
        log.info("another process run is working (%s): leaving the days to it", busy)
        return ProcessSummary(days=[], failed_days=[], missing_days=[], unmatched_files=[])
    raw, unmatched = steps.landed(lake)
    states = steps.read_states(lake)
    plans = plan_days(
        raw,
        states,
        since=since,
        until=until,
        check=settings.process.check if check is None else check,
        changed=steps.redelivered(raw, states),
    )
    log.info("%d day(s) to work on: %s", len(plans), ", ".join(str(p.day) for p in plans))
    progress = create_progress_artifact(0.0, description="days processed by this run")
    outcomes = []
    for done, plan in enumerate(plans, start=1):
        state = states.get(plan.day) if not plan.retry else None
        day_overrides = overrides if done == len(plans) else catch_up(settings, overrides)
        state = run_day(
            plan, state or DayState(day=plan.day), lake, settings, profile, day_overrides
        )
        states[plan.day] = state
        outcomes.append(
            DayOutcome(
                day=plan.day,
                stages={stage: state.stages[stage].status for stage in state.stages},
                detail="; ".join(r.detail for r in state.stages.values() if r.detail),
            )
        )
        update_progress_artifact(progress, 100.0 * done / len(plans))
    champion = common.find_champion(settings)
    summary = ProcessSummary(
        days=outcomes,
        failed_days=[o.day for o in outcomes if "failed" in o.stages.values()],
        missing_days=missing_days(raw, states, since=since),
        unmatched_files=unmatched,
        champion=None if champion is None else champion.version,
    )
    if summary.missing_days:
        for day in summary.missing_days:
            gap = states.get(day) or DayState(day=day)
            steps.record_day(lake, gap.model_copy(update={"missing_reported": True}))
        raise InputMissingError(summary.missing_days, lake.raw_folder())
    return summary


def catch_up(settings: Settings, overrides: dict[str, Any] | None) -> dict[str, Any] | None:
    """A day before the last of a catch-up renders its drift report only where the policy
    decided: nobody reads a report per drifted day of a backfilled year (drift.report)."""
    if settings.drift.report != "signals":
        return overrides
    return {**(overrides or {}), "drift.report": "decisions"}


def run_day(
    plan: DayPlan,
    state: DayState,
    lake: Lake,
    settings: Settings,
    profile: str | None,
    overrides: dict[str, Any] | None,
) -> DayState:
    """The day's stages in order, each recorded as it ends; a failed stage ends the day."""
    state = state.model_copy(
        update={"raw_uri": plan.raw_uri, "raw_sha256": common.digest(plan.raw_uri)}
    )
    for index, stage in enumerate(plan.stages):
        record = run_stage(stage, plan, lake, settings, profile, overrides)
        ended = {stage: record}
        if record.status == "skipped":  # no champion: nothing later to do for this day
            ended |= {later: record for later in plan.stages[index + 1 :]}
        state = state.model_copy(update={"stages": {**state.stages, **ended}})
        steps.record_day(lake, state)
        if record.status != "done":
            break
    return state


def run_stage(
    stage: Stage,
    plan: DayPlan,
    lake: Lake,
    settings: Settings,
    profile: str | None,
    overrides: dict[str, Any] | None,
) -> StageRecord:
    if stage == "ingest":
        return _record(ingest(plan.day, plan.raw_uri, profile, overrides, return_state=True))
    if stage == "score":
        if common.find_champion(settings) is None and not bootstrap(
            plan.day, lake, settings, profile, overrides
        ):
            return StageRecord(
                status="skipped",
                detail=f"no champion yet: v1 is trained once {settings.process.bootstrap_days} "
                "days are curated",
                at=datetime.now(UTC),
            )
        return _record(
            score(plan.day, plan.raw_uri, profile, overrides, return_state=True),
        )
    return _record(check_drift(plan.day, None, None, profile, overrides, return_state=True))


def bootstrap(
    day: date,
    lake: Lake,
    settings: Settings,
    profile: str | None,
    overrides: dict[str, Any] | None,
) -> bool:
    """Train v1 on the curated days up to `day` once there are enough; True if one exists."""
    curated = steps.curated_days(lake, day)
    if len(curated) < settings.process.bootstrap_days:
        return False
    state = train(curated[0], curated[-1], "bootstrap", profile, overrides, return_state=True)
    if not state.is_completed():
        return False
    return common.find_champion(settings) is not None


def _record(state: State) -> StageRecord:
    run_id = str(state.state_details.flow_run_id) if state.state_details.flow_run_id else None
    return StageRecord(
        status="done" if state.is_completed() else "failed",
        flow_run_id=run_id,
        detail="" if state.is_completed() else (state.message or state.name),
        at=datetime.now(UTC),
    )


if __name__ == "__main__":
    print(process())
