"""Markdown for the retrain decision artifact: the decision, every signal, realised metrics."""

from __future__ import annotations

import math

from driftloop.tasks.core.monitoring import Assessment
from driftloop.tasks.core.policy import PolicyDecision


def _num(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4g}"


def policy_markdown(decision: PolicyDecision, assessment: Assessment, record_uri: str) -> str:
    """Answers 'retrain or not, why, and against which baseline' without opening a file."""
    verdict = "RETRAIN" if decision.retrain else "no retrain"
    lines = [
        f"# Retrain decision: {verdict} (rule `{decision.rule}`)",
        "",
        decision.reason,
        "",
        f"- model {decision.model_name}, window {decision.window_start}..{decision.window_end}, "
        f"baseline **v{decision.baseline_version}**, {assessment.current_rows:,} rows",
        f"- breaching streak {decision.streak}; retrains in period {decision.retrains_in_period}; "
        f"last retrain {decision.last_retrain or 'never'}; in flight: "
        + (", ".join(decision.in_flight) or "none"),
        f"- decision record: `{record_uri}` (check `{decision.check_id}`)",
        f"- drift report: `{decision.report_uri or 'not stored'}`",
        "",
        "| signal | breached | value | threshold | detail |",
        "|---|:---:|---:|---:|---|",
    ]
    for s in assessment.signals.values():
        mark = "yes" if s.breached else ("no" if s.judged else "not judged")
        lines.append(
            f"| {s.name} | {mark} | {_num(s.value)} | {_num(s.threshold)} | "
            f"{s.detail.replace('|', '/')} |"
        )
    realised = assessment.realised
    if realised is not None:
        lines += [
            "",
            f"Delayed labels: {realised.labelled:,} of {realised.predictions:,} predictions "
            f"labelled, {realised.pending:,} pending, {realised.unmatched_labels:,} labels "
            "matched no prediction"
            + (
                f" (e.g. {', '.join(realised.unmatched_examples)})"
                if realised.unmatched_labels
                else ""
            )
            + ".",
        ]
        if realised.metrics:
            lines.append(
                "Realised: " + ", ".join(f"{k} {_num(v)}" for k, v in realised.metrics.items())
            )
        if realised.slices:
            lines += ["", "| slice | rows | realised roc_auc |", "|---|---:|---:|"]
            lines += [
                f"| {s.column}={s.value} | {s.rows} | {_num(s.candidate)} |"
                for s in realised.slices
            ]
    return "\n".join(lines) + "\n"
