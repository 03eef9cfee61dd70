"""The acceptance table's own verdicts: each outcome's `passed` must follow from the timeline
rows it summarises (a PASS the rows contradict would hide a broken policy)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from driftloop.configs.settings import load_settings
from driftloop.data.acceptance import Case, evaluate
from driftloop.tasks.core.backtest import BacktestOptions, BacktestResult, TimelineRow

DAY = date(2026, 11, 1)


def row(index: int, rule: str = "quiet", event: str = "") -> TimelineRow:
    return TimelineRow(
        index=index, day=DAY + timedelta(days=index), source="generated", rows=100,
        champion="1", breached=[] if rule == "quiet" else ["feature_drift"], feature_share=0.0,
        prediction_drift=0.0, decay=0.0, rule=rule, retrain=rule == "retrain", reason=rule,
        event=event,
    )  # fmt: skip


def result(rows: list[TimelineRow], retrains: int | None = None) -> BacktestResult:
    counted = sum(r.retrain for r in rows)
    return BacktestResult(
        rows=rows,
        retrains=counted if retrains is None else retrains,
        promotions=sum("promoted" in r.event for r in rows),
        rejected=0,
        seconds=0.0,
        options=BacktestOptions(),
    )


SETTINGS = load_settings("local")
QUIET = Case(name="quiet", segments=[("none", 10)], rows=100, expect="quiet")
TRIGGER = Case(name="shift", segments=[("none", 6), ("covariate_shift", 6)], rows=100,
               expect="trigger")  # fmt: skip
BLOCK = Case(name="block", segments=[("none", 10)], rows=100, expect="block",
             block_rule="cool-down")  # fmt: skip


@pytest.mark.parametrize(
    ("case", "rows", "passed"),
    [
        (QUIET, [row(i) for i in range(10)], True),
        (QUIET, [row(i) for i in range(9)] + [row(9, "retrain")], False),
        (BLOCK, [row(0), row(1, "cool-down")], True),
        (BLOCK, [row(0), row(1, "rate-limit")], False),
    ],
)
def test_passed_follows_the_rows(case: Case, rows: list[TimelineRow], passed: bool) -> None:
    assert evaluate(case, result(rows), SETTINGS).passed is passed


def test_a_trigger_passes_only_in_time_and_without_alarms_after_the_promotion() -> None:
    change = TRIGGER.change
    assert change is not None
    quiet = [row(i) for i in range(change)]
    on_time = [*quiet, row(change, "hysteresis"), row(change + 1, "retrain", "promoted v2")]
    outcome = evaluate(TRIGGER, result(on_time), SETTINGS)
    assert outcome.passed and outcome.first_retrain == change + 1
    assert outcome.bound is not None and outcome.first_retrain <= outcome.bound
    late = [*quiet, *(row(change + i, "hysteresis") for i in range(20))]
    late.append(row(change + 20, "retrain", "promoted v2"))
    assert not evaluate(TRIGGER, result(late), SETTINGS).passed
    settled = change + 1 + SETTINGS.drift.window_days
    alarmed = [*on_time, *(row(i) for i in range(change + 2, settled + 1))]
    alarmed.append(row(settled + 1, "hysteresis"))
    verdict = evaluate(TRIGGER, result(alarmed), SETTINGS)
    assert not verdict.passed and verdict.alarms_after_promotion == 1


def test_a_quiet_case_with_a_retrain_row_fails_whatever_the_totals_say() -> None:
    """The verdict reads the rows: totals that missed a retrain must not turn it into a PASS."""
    rows = [row(i) for i in range(9)] + [row(9, "retrain")]
    outcome = evaluate(QUIET, result(rows, retrains=0), SETTINGS)
    assert not outcome.passed, outcome.detail
    assert outcome.retrains == 1
