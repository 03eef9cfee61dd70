"""The evaluation gate: a pure decision over gathered evidence, table-tested.

Evidence is measured elsewhere (metrics on the same evaluation rows for candidate, champion and
baseline, a paired bootstrap interval, per-slice scores, a serving smoke check); this module
only judges it against the configured rules and explains every check it made.
"""

from __future__ import annotations

import math
import uuid

from pydantic import BaseModel, Field

from driftloop.configs.settings import GateSettings, MetricRule
from driftloop.tasks.core.evaluation import (
    METRIC_DIRECTIONS,
    RELATIVE_METRICS,
    Interval,
    SliceScore,
)


class SmokeResult(BaseModel):
    """Did the registered model load through the registry in a fresh process and predict?"""

    ok: bool
    rows: int
    latency_ms_per_1000: float | None
    error: str = ""


class Override(BaseModel):
    """An audited `allow_unvalidated`: who asked, and why."""

    reason: str = Field(min_length=3)
    requested_by: str = "unknown"


class GateEvidence(BaseModel):
    """Everything the gate judges, measured on the same evaluation rows.

    `classes` (multiclass) is the class list the outputs were compared over; `unseen_classes`
    names the evaluation rows' classes that training never had (reported, not judged: the
    metrics already charge the model for them)."""

    task: str = "binary"
    classes: list[str] = Field(default_factory=list)
    unseen_classes: list[str] = Field(default_factory=list)
    candidate: dict[str, float]
    champion: dict[str, float] | None = None
    champion_version: str | None = None
    baseline: dict[str, float] | None = None
    improvement: Interval | None = None
    slices: list[SliceScore] = Field(default_factory=list)
    smoke: SmokeResult | None = None
    override: Override | None = None


class GateCheck(BaseModel):
    """One rule, its numbers and its verdict."""

    name: str
    metric: str
    value: float
    limit: float
    passed: bool
    detail: str


class GateDecision(BaseModel):
    """Why a candidate was (or was not) allowed to become champion."""

    decision_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    passed: bool
    overridden: bool = False
    checks: list[GateCheck]
    reason: str
    evidence: GateEvidence

    @property
    def candidate(self) -> dict[str, float]:
        return self.evidence.candidate

    @property
    def champion(self) -> dict[str, float] | None:
        return self.evidence.champion

    @property
    def champion_version(self) -> str | None:
        return self.evidence.champion_version

    def table(self) -> list[dict[str, object]]:
        return [c.model_dump() for c in self.checks]

    def markdown(self) -> str:
        verdict = "PASSED" if self.passed else "REJECTED"
        if self.overridden:
            verdict = "OVERRIDDEN (allow_unvalidated)"
        lines = [
            f"### Gate {verdict} (decision `{self.decision_id}`)",
            "",
            self.reason,
            "",
            "| check | metric | value | limit | result | detail |",
            "|---|---|---|---|---|---|",
        ]
        for c in self.checks:
            mark = "pass" if c.passed else "**FAIL**"
            lines.append(
                f"| {c.name} | {c.metric} | {c.value:.4f} | {c.limit:.4f} | {mark} | {c.detail} |"
            )
        return "\n".join(lines)


def _higher(metric: str) -> bool:
    return METRIC_DIRECTIONS[metric] == "higher"


def _gain(metric: str, value: float, base: float) -> float:
    """Signed so that positive is always an improvement."""
    return value - base if _higher(metric) else base - value


def _at_least(value: float, limit: float) -> bool:
    return not math.isnan(value) and not math.isnan(limit) and value >= limit


def _rule_checks(
    prefix: str, metric: str, rule: MetricRule, value: float, base: float | None, label: str
) -> list[GateCheck]:
    """Floor + absolute/relative change against `base` (if any), in MetricThreshold terms."""
    checks: list[GateCheck] = []
    if rule.threshold is not None:
        higher = _higher(metric)
        checks.append(
            GateCheck(
                name=f"{prefix}floor",
                metric=metric,
                value=value,
                limit=rule.threshold,
                passed=_at_least(value, rule.threshold)
                if higher
                else _at_least(-value, -rule.threshold),
                detail=f"must be {'at least' if higher else 'at most'} {rule.threshold}",
            )
        )
    if base is None:
        return checks
    gain = _gain(metric, value, base)
    changes = (
        ("absolute", "change", gain, rule.min_absolute_change),
        ("relative", "relative change", gain / abs(base) if base else math.nan,
         rule.min_relative_change),
    )  # fmt: skip
    for kind, words, change, limit in changes:
        if limit is None:
            continue
        checks.append(
            GateCheck(
                name=f"{prefix}vs_champion_{kind}",
                metric=metric,
                value=change,
                limit=limit,
                passed=_at_least(change, limit),
                detail=f"{label} {base:.4f}, candidate {value:.4f} ({words} >= {limit:+})",
            )
        )
    return checks


def decide_gate(evidence: GateEvidence, rules: GateSettings) -> GateDecision:
    """Every rule is checked and listed; the candidate passes only if all of them pass."""
    checks: list[GateCheck] = []
    champion = evidence.champion
    who = f"champion v{evidence.champion_version}" if champion is not None else "champion"
    for metric, rule in rules.metrics.items():
        value = evidence.candidate.get(metric, math.nan)
        base = None if champion is None else champion.get(metric, math.nan)
        checks += _rule_checks("", metric, rule, value, base, who)
    primary = rules.primary_metric
    interval = evidence.improvement
    if champion is not None and interval is not None and rules.bootstrap.require_lower_bound:
        relative = " (relative to the champion's value)" if primary in RELATIVE_METRICS else ""
        checks.append(
            GateCheck(
                name="bootstrap_lower_bound",
                metric=primary,
                value=interval.low,
                limit=rules.bootstrap.min_lower_bound,
                passed=_at_least(interval.low, rules.bootstrap.min_lower_bound),
                detail=f"{interval.confidence:.0%} CI of the gain over {who}: "
                f"[{interval.low:+.4f}, {interval.high:+.4f}]{relative} from "
                f"{interval.resamples} paired resamples",
            )
        )
    if rules.baseline is not None and evidence.baseline is not None:
        base = evidence.baseline.get(primary, math.nan)
        value = evidence.candidate.get(primary, math.nan)
        gain = _gain(primary, value, base)
        name = rules.baseline.estimator.rsplit(".", 1)[-1]
        for suffix, change, limit in (
            ("", gain, rules.baseline.min_absolute_change),
            ("_relative", gain / abs(base) if base else math.nan,
             rules.baseline.min_relative_change),
        ):  # fmt: skip
            if limit is None:
                continue
            checks.append(
                GateCheck(
                    name=f"beats_baseline{suffix}",
                    metric=primary,
                    value=change,
                    limit=limit,
                    passed=_at_least(change, limit),
                    detail=f"baseline {name} {base:.4f}, candidate {value:.4f}",
                )
            )
    for score in evidence.slices:
        if score.rows < rules.slices.min_rows:
            continue
        checks += _rule_checks(
            f"slice {score.column}={score.value} ",
            score.metric,
            rules.slices.rule,
            score.candidate,
            score.champion,
            who,
        )
    if evidence.smoke is not None:
        smoke = evidence.smoke
        checks.append(
            GateCheck(
                name="serving_smoke",
                metric="latency_ms_per_1000",
                value=smoke.latency_ms_per_1000
                if smoke.latency_ms_per_1000 is not None
                else math.nan,
                limit=math.nan,
                passed=smoke.ok,
                detail="loaded through the registry in a fresh process, signature enforced, "
                f"{smoke.rows} rows" + (f"; error: {smoke.error}" if smoke.error else ""),
            )
        )
    failed = [c for c in checks if not c.passed]
    overridden = bool(failed) and evidence.override is not None
    if failed:
        reason = "rejected: " + "; ".join(
            f"{c.name} {c.metric} {c.value:.4f} vs limit {c.limit:.4f}" for c in failed
        )
        if overridden and evidence.override is not None:
            reason = (
                f"overridden by {evidence.override.requested_by} (allow_unvalidated: "
                f"{evidence.override.reason}); would have been {reason}"
            )
    elif champion is None:
        reason = f"passed: no champion yet and all {len(checks)} checks pass"
    else:
        reason = (
            f"passed: {primary} {evidence.candidate.get(primary, math.nan):.4f} vs {who} "
            f"{champion.get(primary, math.nan):.4f} on the same rows; all {len(checks)} "
            "checks pass"
        )
    if evidence.unseen_classes:
        reason += (
            f"; note: class(es) {', '.join(repr(c) for c in evidence.unseen_classes)} appear in "
            "the evaluation rows but never in training"
        )
    return GateDecision(
        passed=not failed or overridden,
        overridden=overridden,
        checks=checks,
        reason=reason,
        evidence=evidence,
    )
