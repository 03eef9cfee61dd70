"""The retraining policy: signals + memory (history, in-flight runs) -> one decision record.

`decide_retrain` is pure: the check gathers its inputs (this check's signals, earlier decision
records from the drift history, the `train` runs Prefect reports as running or scheduled) and
the function returns a `PolicyDecision` naming the rule that fired or blocked. The same function
runs in the `check_drift` flow and in `driftloop backtest`, so a backtest replays the real policy.

Rules, in order (the first that holds decides):
  quiet        no counting signal breached (per `policy.combine`)
  blocked      a blocking signal (default: data_quality) breached: never train on broken data
  hysteresis   fewer than `consecutive_windows` breaching checks in a row on this baseline
  min-rows     the window holds fewer than `min_new_rows` rows to train on
  in-flight    a `train` run for this model is already running, pending or scheduled
  escalate     `max_rejected_in_episode` retrains of this drift episode were rejected by the
               gate: stop and page a human with the evidence (once; later checks of the
               episode are `escalated`)
  cool-down    the last retrain was less than `cooldown_days` ago
  rate-limit   `max_retrains` retrain attempts already in the last `period_days`
  promotion-limit  `max_promotions` promotions already in the last `period_days`
  retrain      otherwise: retrain

A drift episode runs from the first breaching check after a quiet one (or after a promotion)
to the next promotion or quiet check. Attempts (retrain decisions) and their outcomes
(promoted, or rejected by the gate: the promotion ledger) are counted apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from driftloop.configs.settings import PolicySettings
from driftloop.tasks.core.monitoring import Signal


class CheckRecord(BaseModel):
    """What the policy remembers of one earlier check (read back from the drift history)."""

    model_config = ConfigDict(frozen=True)

    check_id: str
    window_end: date
    baseline_version: str
    breached: bool
    retrain: bool
    checked_at: datetime | None = None
    rule: str | None = None


class RetrainOutcome(BaseModel):
    """What became of a training: promoted to champion, or rejected by the gate."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    version: str
    promoted: bool


class RetrainsKeepFailing(RuntimeError):
    """The loop cannot fix this drift alone: a human must look (runbook: retrains-keep-failing)."""


class InFlightRun(BaseModel):
    """A `train` flow run Prefect reports as Running, Pending or Scheduled."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    state: str
    expected_start: datetime | None = None


class PolicyDecision(BaseModel):
    """The decision record: retrain or not, which rule decided, and the evidence it used."""

    model_config = ConfigDict(frozen=True)

    check_id: str
    model_name: str
    window_start: date
    window_end: date
    baseline_version: str
    retrain: bool
    rule: str
    reason: str
    breached: bool
    counting: list[str] = Field(description="breached signals that count for the policy")
    blocking: list[str] = Field(default_factory=list)
    streak: int
    new_rows: int
    in_flight: list[str] = Field(default_factory=list)
    last_retrain: date | None = None
    retrains_in_period: int = 0
    report_uri: str | None = None
    rejected_in_episode: int = 0
    episode_start: datetime | None = None

    def record(self, checked_at: datetime | None = None) -> CheckRecord:
        """What later checks remember of this one."""
        return CheckRecord(
            check_id=self.check_id,
            window_end=self.window_end,
            baseline_version=self.baseline_version,
            breached=self.breached,
            retrain=self.retrain,
            checked_at=checked_at,
            rule=self.rule,
        )


def combined_breach(
    signals: dict[str, Signal], policy: PolicySettings
) -> tuple[bool, list[str], str]:
    """(breached, counting breached signals, how): the `combine` rule over the counting signals."""
    counting = [name for name in policy.signals if name in signals and signals[name].breached]
    if policy.combine == "features":
        feature = signals.get("feature_drift")
        named = [f for f in policy.features if feature is not None and f in feature.features]
        how = (
            f"named feature(s) drifted: {', '.join(named)}" if named else "no named feature drifted"
        )
        return bool(named), (["feature_drift"] if named else []), how
    if policy.combine == "all":
        judged = [name for name in policy.signals if name in signals and signals[name].judged]
        ok = bool(judged) and len(counting) == len(policy.signals)
        return (
            ok,
            counting,
            f"{len(counting)} of {len(policy.signals)} signals breached (all needed)",
        )
    return (
        bool(counting),
        counting,
        (f"breached: {', '.join(counting)}" if counting else "no counting signal breached"),
    )


def decide_retrain(
    *,
    check_id: str,
    model_name: str,
    window_start: date,
    window_end: date,
    baseline_version: str,
    signals: dict[str, Signal],
    history: Sequence[CheckRecord],
    in_flight: Sequence[InFlightRun],
    new_rows: int,
    policy: PolicySettings,
    report_uri: str | None = None,
    outcomes: Sequence[RetrainOutcome] = (),
    now: datetime | None = None,
) -> PolicyDecision:
    """Apply the rules in the module docstring; history is every earlier check, any order;
    `outcomes` are the trainings' results (the promotion ledger) and `now` this check's time."""
    breached, counting, how = combined_breach(signals, policy)
    earlier = sorted(
        (r for r in history if r.check_id != check_id and r.window_end <= window_end),
        key=lambda r: (r.window_end, r.checked_at.timestamp() if r.checked_at else 0.0),
    )
    # A re-run of a window replaces its earlier verdict: windows, not runs, make a streak.
    latest = {r.window_end: r for r in earlier if r.window_end < window_end}
    streak = 0
    if breached:
        streak = 1
        for record in reversed(list(latest.values())):
            if record.baseline_version != baseline_version or not record.breached:
                break
            if record.retrain:  # that streak was acted on; a new one starts after it
                break
            streak += 1
    retrains = [r for r in earlier if r.retrain]
    last = max((r.window_end for r in retrains), default=None)
    period_start = window_end - timedelta(days=policy.period_days)
    in_period = sum(1 for r in retrains if r.window_end > period_start)
    promotions = sum(1 for o in outcomes if o.promoted and o.at.date() > period_start)
    episode = episode_start(earlier, outcomes, now) if breached and now else None
    rejected = [o for o in outcomes if episode and not o.promoted and episode <= o.at]
    escalated = episode is not None and any(
        r.rule == "escalate" and r.checked_at is not None and r.checked_at >= episode
        for r in earlier
    )
    blocking = [n for n in policy.blocking_signals if n in signals and signals[n].breached]
    base = {
        "check_id": check_id,
        "model_name": model_name,
        "window_start": window_start,
        "window_end": window_end,
        "baseline_version": baseline_version,
        "breached": breached,
        "counting": counting,
        "blocking": blocking,
        "streak": streak,
        "new_rows": new_rows,
        "in_flight": [f"{r.name} ({r.state})" for r in in_flight],
        "last_retrain": last,
        "retrains_in_period": in_period,
        "report_uri": report_uri,
        "rejected_in_episode": len(rejected),
        "episode_start": episode,
    }

    def no(rule: str, reason: str) -> PolicyDecision:
        return PolicyDecision(**base, retrain=False, rule=rule, reason=reason)

    if not breached:
        return no("quiet", f"No retrain: {how}.")
    if blocking:
        details = "; ".join(signals[n].detail for n in blocking)
        return no(
            "blocked",
            f"Retrain held: {', '.join(blocking)} breached ({details}); fix the data first "
            f"({how}).",
        )
    if streak < policy.consecutive_windows:
        return no(
            "hysteresis",
            f"Breach {streak} of {policy.consecutive_windows} consecutive windows needed "
            f"({how}); waiting for the next check.",
        )
    if new_rows < policy.min_new_rows:
        return no(
            "min-rows",
            f"Retrain held: the window has {new_rows:,} rows, policy.min_new_rows is "
            f"{policy.min_new_rows:,} ({how}).",
        )
    if in_flight:
        return no(
            "in-flight",
            f"Retrain held: {policy.train_flow} run(s) already in flight for {model_name}: "
            f"{', '.join(base['in_flight'])} ({how}).",
        )
    if len(rejected) >= policy.max_rejected_in_episode:
        versions = ", ".join(f"v{o.version}" for o in rejected)
        if escalated:
            return no(
                "escalated",
                f"Retrain held: this drift episode's retrains ({versions}) were rejected and a "
                f"human was paged; a promotion or a quiet check ends the episode ({how}).",
            )
        return no(
            "escalate",
            f"Retrains keep failing: the gate rejected {len(rejected)} retrain(s) of this "
            f"drift episode (since {episode:%Y-%m-%d %H:%M} UTC: {versions}), "
            f"policy.max_rejected_in_episode is {policy.max_rejected_in_episode}; no more "
            f"retrains until a human looks ({how}).",
        )
    if last is not None and (window_end - last).days < policy.cooldown_days:
        return no(
            "cool-down",
            f"Retrain held: last retrain at {last}, {(window_end - last).days} day(s) ago; "
            f"cool-down is {policy.cooldown_days} day(s) ({how}).",
        )
    if in_period >= policy.max_retrains:
        return no(
            "rate-limit",
            f"Retrain held: {in_period} retrains since {period_start} already reach "
            f"policy.max_retrains {policy.max_retrains} per {policy.period_days} days ({how}).",
        )
    if policy.max_promotions is not None and promotions >= policy.max_promotions:
        return no(
            "promotion-limit",
            f"Retrain held: {promotions} promotions since {period_start} already reach "
            f"policy.max_promotions {policy.max_promotions} per {policy.period_days} days "
            f"({how}).",
        )
    return PolicyDecision(
        **base,
        retrain=True,
        rule="retrain",
        reason=f"Retrain: {how}, {streak} consecutive breaching window(s), "
        f"{new_rows:,} rows to train on.",
    )


def episode_start(
    earlier: Sequence[CheckRecord], outcomes: Sequence[RetrainOutcome], now: datetime
) -> datetime:
    """When the drift episode of a breaching check made at `now` began: the first of the
    unbroken run of breaching checks before it (or `now`), never before the last promotion."""
    start = now
    timed = sorted(
        ((r.checked_at, r) for r in earlier if r.checked_at is not None and r.checked_at <= now),
        key=lambda pair: pair[0].timestamp(),
        reverse=True,
    )
    for checked_at, record in timed:
        if not record.breached:
            break
        start = checked_at
    promoted = [o.at for o in outcomes if o.promoted and o.at <= now]
    return max([start, *promoted])


def model_run_tag(model_name: str) -> str:
    """The tag a retrain run carries so in-flight dedupe can tell models apart."""
    return f"model:{model_name}"
