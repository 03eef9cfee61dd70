"""The retraining policy's acceptance cases, replayed on generated data through the backtest.

Why in the package: `driftloop backtest --acceptance` prints the table people read, and the test
suite runs the same cases at a smaller size, so the printed claims and the tested ones cannot
drift apart. Timings are printed, never asserted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel

from driftloop.configs.settings import Settings
from driftloop.data.replay import generated_windows
from driftloop.tasks.core.backtest import (
    BacktestOptions,
    BacktestResult,
    run_backtest,
)

Expect = Literal["quiet", "trigger", "block", "timeline"]
START = date(2026, 1, 1)


@dataclass(frozen=True)
class Case:
    """One acceptance claim: a replay plan, policy overrides and what must happen."""

    name: str
    segments: list[tuple[str, int]]
    rows: int
    expect: Expect
    options: BacktestOptions = field(default_factory=BacktestOptions)
    overrides: dict[str, Any] = field(default_factory=dict)
    block_rule: str | None = None

    @property
    def change(self) -> int | None:
        """Index (among replayed windows) of the first window of the second segment."""
        if len(self.segments) < 2:
            return None
        return self.segments[0][1] - self.options.warmup


class Outcome(BaseModel):
    case: str
    rows: int
    windows: int
    change: int | None
    bound: int | None
    first_retrain: int | None
    retrains: int
    promotions: int
    alarms_after_promotion: int | None
    blocked: list[str]
    passed: bool
    detail: str
    seconds: float


def cases(rows: int, quiet_rows: int, quiet_windows: int = 30, after: int = 12) -> list[Case]:
    """The policy's acceptance claims; `after` is the number of windows replayed after each
    change."""
    warm = BacktestOptions().warmup
    lead = warm + 8  # warm-up windows + 8 quiet windows before the change
    reshift = [("none", lead), ("covariate_shift", 3), ("none", after)]
    out = [
        Case("none: no retrain", [("none", warm + quiet_windows)], quiet_rows, "quiet"),
    ]
    for scenario in ("covariate_shift", "prior_shift", "concept_drift"):
        out.append(
            Case(
                f"{scenario}: triggers, then quiet",
                [("none", lead), (scenario, after)],
                rows,
                "trigger",
            )
        )
    fast = {"policy.consecutive_windows": 1}
    out += [
        Case(
            "cool-down blocks",
            reshift,
            rows,
            "block",
            overrides={**fast, "policy.cooldown_days": 5},
            block_rule="cool-down",
        ),
        Case(
            "rate limit blocks",
            reshift,
            rows,
            "block",
            overrides={**fast, "policy.cooldown_days": 0, "policy.max_retrains": 1},
            block_rule="rate-limit",
        ),
        Case(
            "in-flight dedupe blocks",
            [("none", lead), ("covariate_shift", after)],
            rows,
            "block",
            options=BacktestOptions(train_latency=3),
            overrides=fast,
            block_rule="in-flight",
        ),
    ]
    return out


def mixed_case(rows: int) -> Case:
    """60 windows mixing every scenario: the backtest's speed claim (timeline printed)."""
    segments = [
        ("none", 3 + 15),
        ("covariate_shift", 10),
        ("none", 10),
        ("prior_shift", 10),
        ("concept_drift", 15),
    ]
    return Case("60 windows, mixed scenarios", segments, rows, "timeline")


def evaluate(case: Case, result: BacktestResult, settings: Settings) -> Outcome:
    """Judge one replay against its case's claim; the detail says what was seen."""
    first = next((r.index for r in result.rows if r.retrain), None)
    promoted = next((r.index for r in result.rows if "promoted" in r.event), None)
    alarms = None
    if promoted is not None:
        alarms = sum(1 for r in result.rows if r.index > promoted and r.rule != "quiet")
    blocked = sorted(
        {r.rule for r in result.rows if r.rule not in ("quiet", "retrain", "hysteresis")}
    )
    change = case.change
    bound = None
    if change is not None and case.expect == "trigger":
        scenario = case.segments[1][0]
        delay = case.options.label_delay if scenario == "concept_drift" else 0
        bound = change + settings.policy.consecutive_windows - 1 + delay
    if case.expect == "quiet":
        passed = result.retrains == 0
        detail = f"{result.retrains} retrain(s) in {len(result.rows)} windows"
    elif case.expect == "trigger":
        in_time = first is not None and change is not None and change <= first <= (bound or 0)
        passed = bool(in_time) and promoted is not None and alarms == 0
        detail = (
            f"first retrain at window {first} (change at {change}, allowed by {bound}); "
            f"alarms after promotion: {alarms}"
        )
    elif case.expect == "block":
        hit = next((r for r in result.rows if r.rule == case.block_rule), None)
        passed = hit is not None
        detail = f"window {hit.index}: {hit.reason}" if hit else f"no '{case.block_rule}' decision"
    else:
        passed = len(result.rows) > 0
        detail = f"{result.retrains} retrain(s), {result.promotions} promotion(s)"
    return Outcome(
        case=case.name,
        rows=case.rows,
        windows=len(result.rows),
        change=change,
        bound=bound,
        first_retrain=first,
        retrains=result.retrains,
        promotions=result.promotions,
        alarms_after_promotion=alarms,
        blocked=blocked,
        passed=passed,
        detail=detail,
        seconds=result.seconds,
    )


def run_case(
    case: Case, load: Callable[[dict[str, Any]], Settings]
) -> tuple[Outcome, BacktestResult]:
    settings = load(case.overrides)
    windows = generated_windows(case.segments, case.rows, START)
    result = run_backtest(windows, settings, case.options)
    return evaluate(case, result, settings), result


def acceptance_table(outcomes: list[Outcome]) -> str:
    head = (
        f"{'case':<38} {'rows':>7} {'wins':>4} {'change':>6} {'by':>3} {'1st':>4} "
        f"{'retr':>4} {'prom':>4} {'after':>5} {'secs':>5}  verdict / detail"
    )
    lines = [head, "-" * len(head)]

    def n(value: int | None) -> str:
        return "-" if value is None else str(value)

    for o in outcomes:
        lines.append(
            f"{o.case:<38} {o.rows:>7} {o.windows:>4} {n(o.change):>6} {n(o.bound):>3} "
            f"{n(o.first_retrain):>4} {o.retrains:>4} {o.promotions:>4} "
            f"{n(o.alarms_after_promotion):>5} {o.seconds:>5.1f}  "
            f"{'PASS' if o.passed else 'FAIL'}: {o.detail}"
        )
    return "\n".join(lines)
