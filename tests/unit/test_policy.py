"""The retraining policy, table-tested: every rule fires or blocks for the reason it names."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from driftloop.configs.settings import PolicySettings
from driftloop.tasks.core.monitoring import Signal
from driftloop.tasks.core.policy import (
    CheckRecord,
    InFlightRun,
    PolicyDecision,
    RetrainOutcome,
    combined_breach,
    decide_retrain,
)

DAY = date(2026, 3, 10)


def sig(name: str, breached: bool, features: list[str] | None = None, judged: bool = True):
    return Signal(
        name=name,  # type: ignore[arg-type]
        breached=breached,
        value=1.0 if breached else 0.0,
        threshold=0.5,
        detail=f"{name} detail",
        judged=judged,
        features=features or [],
    )


def signals(**breached: bool) -> dict[str, Signal]:
    names = (
        "feature_drift",
        "prediction_drift",
        "production_drift",
        "data_quality",
        "performance_decay",
    )
    return {n: sig(n, breached.get(n, False)) for n in names}


def rec(days_ago: int, breached: bool, retrain: bool = False, baseline: str = "1") -> CheckRecord:
    return CheckRecord(
        check_id=f"c{days_ago}",
        window_end=DAY - timedelta(days=days_ago),
        baseline_version=baseline,
        breached=breached,
        retrain=retrain,
    )


POLICY = PolicySettings(consecutive_windows=2, cooldown_days=3, max_retrains=2, period_days=30)
RUNNING = InFlightRun(id="r1", name="train-2026-03-08..2026-03-10", state="RUNNING")


@pytest.mark.parametrize(
    ("case", "sigs", "history", "in_flight", "rows", "rule", "retrain"),
    [
        ("nothing breached", signals(), [], [], 9000, "quiet", False),
        (
            "production drift alone does not count by default",
            signals(production_drift=True),
            [rec(1, True)],
            [],
            9000,
            "quiet",
            False,
        ),
        (
            "first breach waits (hysteresis)",
            signals(feature_drift=True),
            [],
            [],
            9000,
            "hysteresis",
            False,
        ),
        (
            "a quiet window breaks the streak",
            signals(feature_drift=True),
            [rec(2, True), rec(1, False)],
            [],
            9000,
            "hysteresis",
            False,
        ),
        (
            "a new champion's baseline restarts the streak",
            signals(feature_drift=True),
            [rec(1, True, baseline="0")],
            [],
            9000,
            "hysteresis",
            False,
        ),
        (
            "second breach in a row retrains",
            signals(prediction_drift=True),
            [rec(1, True)],
            [],
            9000,
            "retrain",
            True,
        ),
        (
            "data quality holds even a long streak",
            signals(feature_drift=True, data_quality=True),
            [rec(2, True), rec(1, True)],
            [],
            9000,
            "blocked",
            False,
        ),
        (
            "too few rows",
            signals(performance_decay=True),
            [rec(1, True)],
            [],
            100,
            "min-rows",
            False,
        ),
        (
            "a train run in flight",
            signals(feature_drift=True),
            [rec(1, True)],
            [RUNNING],
            9000,
            "in-flight",
            False,
        ),
        (
            "cool-down after a retrain",
            signals(feature_drift=True),
            [rec(2, True, retrain=True), rec(1, True)],
            [],
            9000,
            "cool-down",
            False,
        ),
        (
            "rate limit per period",
            signals(feature_drift=True),
            [rec(25, True, retrain=True), rec(10, True, retrain=True), rec(2, True), rec(1, True)],
            [],
            9000,
            "rate-limit",
            False,
        ),
        (
            "retrains older than the period do not count",
            signals(feature_drift=True),
            [rec(40, True, retrain=True), rec(10, True, retrain=True), rec(2, True), rec(1, True)],
            [],
            9000,
            "retrain",
            True,
        ),
    ],
)
def test_decide_retrain_table(case, sigs, history, in_flight, rows, rule, retrain) -> None:
    decision = decide_retrain(
        check_id="now",
        model_name="m",
        window_start=DAY - timedelta(days=2),
        window_end=DAY,
        baseline_version="1",
        signals=sigs,
        history=history,
        in_flight=in_flight,
        new_rows=rows,
        policy=POLICY,
    )
    assert (decision.rule, decision.retrain) == (rule, retrain), (case, decision.reason)
    assert decision.reason, "every decision says why"
    if rule == "in-flight":
        assert "train-2026-03-08..2026-03-10 (RUNNING)" in decision.reason
    if rule == "cool-down":
        assert (
            decision.last_retrain == DAY - timedelta(days=2) and "2 day(s) ago" in decision.reason
        )
    if rule == "rate-limit":
        assert decision.retrains_in_period == 2 and "max_retrains 2" in decision.reason


def test_a_rerun_of_the_same_window_is_not_a_second_breaching_window() -> None:
    history = [rec(0, True).model_copy(update={"check_id": "earlier-run-same-window"})]
    decision = decide_retrain(
        check_id="now",
        model_name="m",
        window_start=DAY,
        window_end=DAY,
        baseline_version="1",
        signals=signals(feature_drift=True),
        history=history,
        in_flight=[],
        new_rows=9000,
        policy=POLICY,
    )
    assert decision.rule == "hysteresis" and decision.streak == 1


def test_a_retrained_streak_does_not_carry_over() -> None:
    """After a retrain decision the next breach starts a new streak (no double retrain)."""
    policy = POLICY.model_copy(update={"cooldown_days": 0})
    decision = decide_retrain(
        check_id="now",
        model_name="m",
        window_start=DAY,
        window_end=DAY,
        baseline_version="1",
        signals=signals(feature_drift=True),
        history=[rec(2, True), rec(1, True, retrain=True)],
        in_flight=[],
        new_rows=9000,
        policy=policy,
    )
    assert decision.rule == "hysteresis" and decision.streak == 1


@pytest.mark.parametrize(
    ("combine", "features", "sigs", "expected"),
    [
        ("any", [], {"feature_drift": True}, True),
        ("all", [], {"feature_drift": True}, False),
        ("all", [], {"feature_drift": True, "prediction_drift": True,
                     "performance_decay": True}, True),
        ("features", ["income"], {"feature_drift": True}, True),
        ("features", ["age"], {"feature_drift": True}, False),
    ],
)  # fmt: skip
def test_combine_modes(combine, features, sigs, expected) -> None:
    policy = PolicySettings(combine=combine, features=features)
    current = signals(**sigs)
    current["feature_drift"] = sig("feature_drift", sigs.get("feature_drift", False), ["income"])
    breached, _, how = combined_breach(current, policy)
    assert breached is expected, how


def test_features_mode_needs_features() -> None:
    with pytest.raises(ValueError, match=r"policy\.features"):
        PolicySettings(combine="features")


# --- drift episodes: rejected retrains, escalation, promotion limits ---------------------------

NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)


def at(days_ago: int) -> datetime:
    return NOON - timedelta(days=days_ago)


def timed(days_ago: int, breached: bool, retrain: bool = False, rule: str | None = None):
    return rec(days_ago, breached, retrain).model_copy(
        update={"checked_at": at(days_ago), "rule": rule}
    )


def outcome(days_ago: float, promoted: bool, version: str) -> RetrainOutcome:
    return RetrainOutcome(at=NOON - timedelta(days=days_ago), version=version, promoted=promoted)


def decide_episode(history, outcomes, **policy) -> PolicyDecision:
    settings = POLICY.model_copy(
        update={"cooldown_days": 0, "max_retrains": 10, "max_rejected_in_episode": 2, **policy}
    )
    return decide_retrain(
        check_id="now",
        model_name="m",
        window_start=DAY,
        window_end=DAY,
        baseline_version="1",
        signals=signals(feature_drift=True),
        history=history,
        in_flight=[],
        new_rows=9000,
        policy=settings,
        outcomes=outcomes,
        now=NOON,
    )


EPISODE = [timed(6, False), timed(5, True), timed(4, True, retrain=True), timed(3, True)]


@pytest.mark.parametrize(
    ("case", "history", "outcomes", "rule", "rejected"),
    [
        (
            "one rejection in the episode: try again",
            [*EPISODE, timed(2, True), timed(1, True)],
            [outcome(3.5, False, "2")],
            "retrain",
            1,
        ),
        (
            "K rejections in one episode: stop and page",
            [*EPISODE, timed(2, True, retrain=True), timed(1, True)],
            [outcome(3.5, False, "2"), outcome(1.5, False, "3")],
            "escalate",
            2,
        ),
        (
            "paged once: later checks of the episode hold quietly",
            [*EPISODE, timed(2, True, retrain=True), timed(1, True, rule="escalate")],
            [outcome(3.5, False, "2"), outcome(1.5, False, "3")],
            "escalated",
            2,
        ),
        (
            "a quiet check ends the episode: old rejections no longer count",
            [*EPISODE, timed(2, False), timed(1, True)],
            [outcome(3.5, False, "2"), outcome(2.5, False, "3")],
            "retrain",
            0,
        ),
        (
            "a promotion ends the episode",
            [*EPISODE, timed(2, True), timed(1, True)],
            [outcome(3.5, False, "2"), outcome(2.5, True, "3"), outcome(1.5, False, "4")],
            "retrain",
            1,
        ),
    ],
)
def test_rejected_retrains_are_counted_per_episode(case, history, outcomes, rule, rejected):
    decision = decide_episode(history, outcomes)
    assert (decision.rule, decision.rejected_in_episode) == (rule, rejected), (
        case,
        decision.reason,
    )
    if rule == "escalate":
        assert "v2, v3" in decision.reason and "max_rejected_in_episode" in decision.reason


def test_promotions_are_limited_apart_from_attempts() -> None:
    history = [timed(2, True), timed(1, True)]
    promoted = [outcome(20, True, "2"), outcome(10, True, "3")]
    assert decide_episode(history, promoted).rule == "retrain"
    held = decide_episode(history, promoted, max_promotions=2)
    assert held.rule == "promotion-limit" and "max_promotions 2" in held.reason


# ---------------------------------------------------------------- the limits at their boundaries


def _decide_at(history: list[CheckRecord], outcomes=(), **policy: int) -> PolicyDecision:
    """Feature drift on DAY with enough rows and a streak, under POLICY with `policy` changes."""
    return decide_retrain(
        check_id="now",
        model_name="m",
        window_start=DAY - timedelta(days=6),
        window_end=DAY,
        baseline_version="1",
        signals=signals(feature_drift=True),
        history=history,
        in_flight=[],
        new_rows=9000,
        policy=POLICY.model_copy(update=policy),
        outcomes=list(outcomes),
        now=datetime(2026, 3, 10, 12, tzinfo=UTC),
    )


@pytest.mark.parametrize(("days_ago", "rule"), [(2, "cool-down"), (3, "retrain"), (4, "retrain")])
def test_cooldown_holds_until_exactly_cooldown_days(days_ago: int, rule: str) -> None:
    """cooldown_days=3: a retrain 2 days ago holds, one exactly 3 days ago no longer does."""
    history = [rec(days_ago, True, retrain=True), rec(1, True)]
    decision = _decide_at(history)
    assert decision.rule == rule, decision.reason
    assert decision.last_retrain == DAY - timedelta(days=days_ago)


@pytest.mark.parametrize(
    ("oldest", "rule", "counted"), [(29, "rate-limit", 2), (30, "retrain", 1), (31, "retrain", 1)]
)
def test_rate_limit_counts_retrains_inside_the_period_only(
    oldest: int, rule: str, counted: int
) -> None:
    """max_retrains=2 per period_days=30: a retrain exactly 30 days back is outside the period."""
    history = [rec(oldest, True, retrain=True), rec(10, True, retrain=True), rec(1, True)]
    decision = _decide_at(history)
    assert decision.rule == rule, decision.reason
    assert decision.retrains_in_period == counted


@pytest.mark.parametrize(("limit", "rule"), [(1, "rate-limit"), (2, "retrain")])
def test_rate_limit_holds_exactly_at_max_retrains(limit: int, rule: str) -> None:
    """One retrain in the period: max_retrains=1 holds (reached), 2 lets one more through."""
    history = [rec(10, True, retrain=True), rec(1, True)]
    assert _decide_at(history, max_retrains=limit).rule == rule


@pytest.mark.parametrize(("days_ago", "rule"), [(29, "promotion-limit"), (30, "retrain")])
def test_promotion_limit_counts_promotions_inside_the_period_only(days_ago: int, rule: str) -> None:
    """max_promotions=1 per 30 days: a promotion on the period's first excluded day is free."""
    promoted = [
        RetrainOutcome(at=datetime.combine(DAY - timedelta(days=days_ago), datetime.min.time(),
                                           tzinfo=UTC), version="2", promoted=True)
    ]  # fmt: skip
    decision = _decide_at([rec(1, True)], promoted, max_promotions=1)
    assert decision.rule == rule, decision.reason
