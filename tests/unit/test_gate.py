"""The gate decision table: the champion moves only for a candidate that earns it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftloop.configs.settings import (
    BaselineSettings,
    BootstrapSettings,
    GateSettings,
    MetricRule,
    SliceSettings,
)
from driftloop.tasks.core.evaluation import (
    Interval,
    SliceScore,
    paired_bootstrap,
    recall_at_precision,
    slice_scores,
)
from driftloop.tasks.core.gate import GateEvidence, Override, SmokeResult, decide_gate

RULES = GateSettings(
    primary_metric="roc_auc",
    metrics={
        "roc_auc": MetricRule(threshold=0.65, min_absolute_change=-0.01),
        "log_loss": MetricRule(min_absolute_change=-0.02),
    },
    bootstrap=BootstrapSettings(require_lower_bound=True),
    slices=SliceSettings(
        columns=["region"], min_rows=100, rule=MetricRule(threshold=0.6, min_absolute_change=-0.05)
    ),
    baseline=BaselineSettings(min_absolute_change=0.0),
)


def m(auc: float, loss: float = 0.40) -> dict[str, float]:
    return {"roc_auc": auc, "log_loss": loss}


def ci(low: float, high: float = 0.05) -> Interval:
    return Interval(
        metric="roc_auc", low=low, high=high, point=(low + high) / 2, confidence=0.9, resamples=300
    )


def sl(value: str, cand: float, champ: float | None, rows: int = 500) -> SliceScore:
    return SliceScore(
        column="region", value=value, rows=rows, metric="roc_auc", candidate=cand, champion=champ
    )


OK_SMOKE = SmokeResult(ok=True, rows=1000, latency_ms_per_1000=12.0)


@pytest.mark.parametrize(
    ("case", "evidence", "passed", "failing"),
    [
        ("no champion, above floor", GateEvidence(candidate=m(0.80)), True, []),
        ("no champion, below floor", GateEvidence(candidate=m(0.60)), False, ["floor roc_auc"]),
        (
            "better than champion",
            GateEvidence(
                candidate=m(0.82, 0.38),
                champion=m(0.78, 0.41),
                champion_version="1",
                improvement=ci(0.01),
            ),
            True,
            [],
        ),
        (
            "equal to champion",
            GateEvidence(
                candidate=m(0.78, 0.41),
                champion=m(0.78, 0.41),
                champion_version="1",
                improvement=ci(-0.005),
            ),
            True,
            [],
        ),
        (
            "worse within tolerance",
            GateEvidence(candidate=m(0.775, 0.42), champion=m(0.78, 0.41), champion_version="1"),
            True,
            [],
        ),
        (
            "worse beyond tolerance",
            GateEvidence(candidate=m(0.76, 0.41), champion=m(0.78, 0.41), champion_version="1"),
            False,
            ["vs_champion_absolute roc_auc"],
        ),
        (
            "lower-is-better metric regresses",
            GateEvidence(candidate=m(0.80, 0.45), champion=m(0.78, 0.41), champion_version="1"),
            False,
            ["vs_champion_absolute log_loss"],
        ),
        (
            "better than champion but below floor",
            GateEvidence(candidate=m(0.64), champion=m(0.60), champion_version="1"),
            False,
            ["floor roc_auc"],
        ),
        (
            "metric is nan (single-class eval)",
            GateEvidence(candidate=m(math.nan)),
            False,
            ["floor roc_auc"],
        ),
        (
            "bootstrap lower bound below tolerance (noise)",
            GateEvidence(
                candidate=m(0.79), champion=m(0.78), champion_version="1", improvement=ci(-0.03)
            ),
            False,
            ["bootstrap_lower_bound roc_auc"],
        ),
        (
            "slice fails while the overall metric passes",
            GateEvidence(
                candidate=m(0.80),
                champion=m(0.78),
                champion_version="1",
                slices=[sl("north", 0.81, 0.79), sl("south", 0.62, 0.75)],
            ),
            False,
            ["slice region=south vs_champion_absolute roc_auc"],
        ),
        (
            "slice below its floor",
            GateEvidence(candidate=m(0.80), slices=[sl("east", 0.55, None)]),
            False,
            ["slice region=east floor roc_auc"],
        ),
        (
            "small slices are reported, not judged",
            GateEvidence(candidate=m(0.80), slices=[sl("west", 0.40, None, rows=20)]),
            True,
            [],
        ),
        (
            "does not beat the baseline",
            GateEvidence(candidate=m(0.70), baseline=m(0.72)),
            False,
            ["beats_baseline roc_auc"],
        ),
        ("beats the baseline", GateEvidence(candidate=m(0.80), baseline=m(0.72)), True, []),
        (
            "serving smoke check fails",
            GateEvidence(
                candidate=m(0.80),
                smoke=SmokeResult(
                    ok=False, rows=0, latency_ms_per_1000=None, error="signature mismatch"
                ),
            ),
            False,
            ["serving_smoke latency_ms_per_1000"],
        ),
        ("serving smoke check passes", GateEvidence(candidate=m(0.80), smoke=OK_SMOKE), True, []),
    ],
)
def test_gate_table(case: str, evidence: GateEvidence, passed: bool, failing: list[str]) -> None:
    decision = decide_gate(evidence, RULES)
    assert decision.passed is passed, (case, decision.reason)
    failed = [f"{c.name} {c.metric}" for c in decision.checks if not c.passed]
    assert failed == failing, case
    assert decision.reason.startswith("passed" if passed else "rejected")
    assert not decision.overridden


def test_override_passes_but_is_recorded() -> None:
    evidence = GateEvidence(
        candidate=m(0.60),
        override=Override(reason="hotfix for incident 42", requested_by="alice"),
    )
    decision = decide_gate(evidence, RULES)
    assert decision.passed and decision.overridden
    assert "alice" in decision.reason and "incident 42" in decision.reason
    assert "floor roc_auc" in decision.reason
    assert "OVERRIDDEN" in decision.markdown()


def test_override_is_not_needed_when_everything_passes() -> None:
    decision = decide_gate(
        GateEvidence(candidate=m(0.8), override=Override(reason="just in case")), RULES
    )
    assert decision.passed and not decision.overridden


def test_decision_renders_for_people() -> None:
    decision = decide_gate(
        GateEvidence(candidate=m(0.70), champion=m(0.80), champion_version="2"), RULES
    )
    text = decision.markdown()
    assert "REJECTED" in text and "**FAIL**" in text and "champion v2" in text
    rows = decision.table()
    assert {"name", "metric", "value", "limit", "passed"} <= set(rows[0])
    assert len(decision.decision_id) == 12
    assert decision.model_validate_json(decision.model_dump_json()).checks == decision.checks


def test_relative_change_semantics() -> None:
    rules = RULES.model_copy(update={"metrics": {"roc_auc": MetricRule(min_relative_change=0.02)}})
    up = decide_gate(GateEvidence(candidate=m(0.82), champion=m(0.80), champion_version="1"), rules)
    flat = decide_gate(
        GateEvidence(candidate=m(0.81), champion=m(0.80), champion_version="1"), rules
    )
    assert up.passed and not flat.passed


def _scores(n: int, quality: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.clip(y * quality + rng.normal(0.5 - quality / 2, 0.25, n), 0, 1)


def test_paired_bootstrap_separates_real_gain_from_noise() -> None:
    y, strong = _scores(2000, 0.5, 0)
    rng = np.random.default_rng(1)
    noisy_twin = np.clip(strong + rng.normal(0, 0.01, len(y)), 0, 1)
    weak = np.clip(strong + rng.normal(0, 0.4, len(y)), 0, 1)
    real = paired_bootstrap(y, strong, weak, "roc_auc", resamples=200, confidence=0.9, seed=0)
    noise = paired_bootstrap(
        y, noisy_twin, strong, "roc_auc", resamples=200, confidence=0.9, seed=0
    )
    assert real.low > 0.02, real
    assert noise.low < 0 < noise.high, noise
    again = paired_bootstrap(y, strong, weak, "roc_auc", resamples=200, confidence=0.9, seed=0)
    assert again == real, "seeded"
    lower_better = paired_bootstrap(
        y, strong, weak, "log_loss", resamples=50, confidence=0.9, seed=0
    )
    assert lower_better.point > 0, "a lower log loss is a positive gain"


def test_slice_scores_per_value() -> None:
    import pandas as pd

    y, p = _scores(600, 0.5, 2)
    slices = pd.DataFrame({"region": ["north"] * 300 + ["south"] * 250 + [None] * 50})
    scores = slice_scores(slices, y, p, None, "roc_auc")
    assert [(s.value, s.rows) for s in scores] == [("<null>", 50), ("north", 300), ("south", 250)]
    assert all(s.champion is None and 0.5 < s.candidate <= 1 for s in scores)


def test_recall_at_precision() -> None:
    y = np.array([1, 1, 0, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    assert recall_at_precision(y, p, 1.0) == pytest.approx(2 / 3)
    assert recall_at_precision(y, p, 0.5) == pytest.approx(1.0)


def test_reviewer_answer_becomes_a_gate_check() -> None:
    from driftloop.tasks.adapters.approval import PromotionApproval, with_approval

    passed = decide_gate(GateEvidence(candidate=m(0.8)), RULES)
    yes = with_approval(passed, PromotionApproval(approve=True, comment="ok", reviewer="dana"))
    no = with_approval(passed, PromotionApproval(approve=False, comment="wait", reviewer="eve"))
    assert yes.passed and yes.checks[-1].name == "human_approval" and "dana" in yes.reason
    assert not no.passed and "rejected by eve (wait)" in no.reason
