"""The retraining policy's acceptance cases and the loop-lift claims, replayed on generated
data through the backtest.

Why in the package: `driftloop backtest --acceptance` (and `--lift --acceptance`) prints the
tables people read, and the test suite runs the same claims at a smaller size, so the printed
claims and the tested ones cannot drift apart. Timings are printed, never asserted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel

from driftloop.configs.settings import Settings
from driftloop.data.replay import generated_windows, with_warmup
from driftloop.tasks.core.backtest import (
    BacktestOptions,
    BacktestResult,
    LiftResult,
    Window,
    lift_table,
    loop_lift,
    run_backtest,
)

Expect = Literal["quiet", "trigger", "block", "timeline"]
START = date(2026, 1, 1)


def _triggers_only() -> BacktestOptions:
    """The policy's cases promote every candidate (the gate off): they claim when the policy
    triggers and that it quiets down after a promotion. Whether a candidate beats the champion
    is the gate's question (a covariate shift rightly gives it nothing to gain); the loop lift
    below judges policy and gate together."""
    return BacktestOptions(train=False)


@dataclass(frozen=True)
class Case:
    """One acceptance claim: a replay plan, policy overrides and what must happen."""

    name: str
    segments: list[tuple[str, int]]
    rows: int
    expect: Expect
    options: BacktestOptions = field(default_factory=_triggers_only)
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


#: The policy cases isolate its rules on sudden shifts: a check window of two days (the day
#: and the one whose labels arrived) and a retrain on the last two days only, so each claim
#: reads off one rule. The defaults' windows of weeks (a rolling check window, a training
#: window whose reference still holds the old world after a sudden shift) are judged where
#: they matter, by the loop lift on the `seasonal` scenario.
SUDDEN: dict[str, Any] = {"drift.window_days": 2, "training.window": "rolling", "training.days": 2}


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
                overrides=SUDDEN,
            )
        )
    fast = {**SUDDEN, "policy.consecutive_windows": 1}
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
            options=BacktestOptions(train=False, train_latency=3),
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
    # The timeline as production would run it: the defaults, the gate judging every retrain.
    return Case("60 windows, mixed scenarios", segments, rows, "timeline", BacktestOptions())


def evaluate(case: Case, result: BacktestResult, settings: Settings) -> Outcome:
    """Judge one replay against its case's claim; the detail says what was seen."""
    first = next((r.index for r in result.rows if r.retrain), None)
    # the verdict reads the rows it summarises, never a separately kept total
    retrains = sum(1 for r in result.rows if r.retrain)
    promoted = next((r.index for r in result.rows if "promoted" in r.event), None)
    alarms = None
    if promoted is not None:
        # Counted once the check window holds only the new champion's predictions: until
        # then it still reads the old one's (as the check_drift flow does).
        settled = promoted + settings.drift.window_days - 1
        alarms = sum(1 for r in result.rows if r.index > settled and r.rule != "quiet")
    blocked = sorted(
        {r.rule for r in result.rows if r.rule not in ("quiet", "retrain", "hysteresis")}
    )
    change = case.change
    bound = None
    if change is not None and case.expect == "trigger":
        scenario = case.segments[1][0]
        delay = case.options.label_delay if scenario == "concept_drift" else 0
        # The check window fills with the new world one day at a time.
        fill = settings.drift.window_days - 1
        bound = change + settings.policy.consecutive_windows - 1 + delay + fill
    if case.expect == "quiet":
        passed = retrains == 0
        detail = f"{retrains} retrain(s) in {len(result.rows)} windows"
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
        retrains=retrains,
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


# ------------------------------------------------------------------------------ loop lift

#: The loop pays for itself: the policy's realised metric beats never retraining, capturing at
#: least this share of the lift of retraining every window ...
MIN_CAPTURED = 0.5
#: ... with at most this share of its retrains.
MAX_RETRAIN_SHARE = 0.2


@dataclass(frozen=True)
class LiftPlan:
    """What the loop-lift acceptance replays: the `seasonal` scenario, a year of daily windows
    after a warm-up that trains v1, labels a day late, on several seeds.

    `max_iter` caps the estimator's iterations for every fit of every regime (the same model
    for all three): retraining every window is hundreds of fits a year.
    """

    segments: list[tuple[str, int]] = field(default_factory=lambda: [("seasonal", 365)])
    rows: int = 1000
    seeds: tuple[int, ...] = (0, 1, 2)
    label_delay: int = 1
    warmup: int = 60
    max_iter: int | None = 60
    start: date = START

    @property
    def options(self) -> BacktestOptions:
        return BacktestOptions(
            label_delay=self.label_delay, warmup=self.warmup, max_iter=self.max_iter
        )

    @property
    def label(self) -> str:
        plan = ",".join(f"{name}:{count}" for name, count in self.segments)
        return f"{plan} x {self.rows} rows"


#: The full-size plan (`make acceptance`, `driftloop backtest --lift --acceptance`) and the one
#: the normal suite runs.
LIFT_PLANS = {
    "full": LiftPlan(),
    # the spring months, when the season moves fastest
    "small": LiftPlan(segments=[("seasonal", 75)], seeds=(0,), max_iter=15, start=date(2026, 2, 1)),
}


class LiftOutcome(BaseModel):
    """One seed's loop lift judged against the claims."""

    label: str
    lift: LiftResult
    beats_never: bool
    captured: float
    retrain_share: float
    passed: bool
    detail: str


def judge_lift(label: str, lift: LiftResult) -> LiftOutcome:
    """The claims: policy > never; policy lift >= MIN_CAPTURED x always lift; policy retrains
    <= MAX_RETRAIN_SHARE x always retrains."""
    beats = lift.lift("policy") > 0
    captured, share = lift.captured, lift.retrain_share
    enough = not math.isnan(captured) and captured >= MIN_CAPTURED
    cheap = not math.isnan(share) and share <= MAX_RETRAIN_SHARE
    detail = (
        f"policy {'beats' if beats else 'does NOT beat'} never by {lift.lift('policy'):+.4f}; "
        f"captures {captured:.0%} of always's lift {lift.lift('always'):+.4f} (needs "
        f"{MIN_CAPTURED:.0%}) with {share:.0%} of its retrains (at most {MAX_RETRAIN_SHARE:.0%})"
    )
    return LiftOutcome(
        label=label,
        lift=lift,
        beats_never=beats,
        captured=captured,
        retrain_share=share,
        passed=beats and enough and cheap,
        detail=detail,
    )


def lift_windows(plan: LiftPlan, seed: int) -> list[Window]:
    """The warm-up (the first segment's scenario, before it) and the replayed days."""
    segments = with_warmup(plan.segments, plan.warmup)
    return list(generated_windows(segments, plan.rows, plan.start, seed))


def run_lift(plan: LiftPlan, settings: Settings, seed: int) -> LiftOutcome:
    lift, _ = loop_lift(lift_windows(plan, seed), settings, plan.options)
    return judge_lift(f"seed {seed}", lift)


def lift_verdicts(outcomes: list[LiftOutcome]) -> str:
    """The lift table, then one verdict line per seed."""
    lines = [lift_table([(o.label, o.lift) for o in outcomes])]
    for o in outcomes:
        lines.append(f"{o.label}: {'PASS' if o.passed else 'FAIL'}: {o.detail}")
    return "\n".join(lines)
