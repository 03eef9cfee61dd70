"""What each flow returns: small typed values that can travel between flows and deployments."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field


class IngestSummary(BaseModel):
    day: date
    source: str
    curated_uri: str
    quarantine_uri: str | None
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    data_docs_uri: str | None = None


class LabelsSummary(BaseModel):
    """What the labels flow stored: the day's labels the drift check joins, and the rest."""

    day: date
    source: str
    labels_uri: str | None = Field(description="None when the file failed its contract")
    quarantine_uri: str | None
    rows_in: int
    rows_valid: int
    rows_quarantined: int


class TrainSummary(BaseModel):
    window: str
    trigger: str
    rows: int
    run_id: str
    version: str | None
    promoted: bool
    alias: str | None
    champion_before: str | None
    champion_after: str | None
    gate_reason: str
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    reference_uri: str | None
    dry_run: bool = False


class ScoreSummary(BaseModel):
    """What a scoring run wrote. What its predictions look like depends on the task: the
    predicted positive rate (binary), each class's share of the predictions (multiclass), the
    mean predicted value (regression); the others are None."""

    day: date
    source: str
    output_uri: str
    model_version: str
    rows: int
    rows_quarantined: int
    positive_rate: float | None
    task: str = "binary"
    class_shares: dict[str, float] | None = None
    prediction_mean: float | None = None
    mode: str = "stream"  # or "partitioned": output_uri is then a folder of part files
    partitions: int | None = None
    partitions_reused: int | None = None  # finished parts a re-run kept as they were

    @classmethod
    def predictions_of(
        cls, task: str, rows: int, positives: int, score_sum: float, class_counts: dict[str, int]
    ) -> dict[str, Any]:
        """The task's prediction fields from a run's counts (see the class docstring)."""
        if task == "multiclass":
            shares = {c: n / rows for c, n in sorted(class_counts.items())} if rows else {}
            return {"task": task, "positive_rate": None, "class_shares": shares}
        if task == "regression":
            mean = score_sum / rows if rows else float("nan")
            return {"task": task, "positive_rate": None, "prediction_mean": mean}
        return {"task": task, "positive_rate": positives / rows if rows else float("nan")}

    def predictions_text(self) -> str:
        """One phrase for timelines and the scoring artifact, e.g. 'positive rate 0.123'."""
        if self.class_shares is not None:
            shares = ", ".join(f"{c} {s:.2f}" for c, s in self.class_shares.items())
            return f"class shares {shares or 'none'}"
        if self.prediction_mean is not None:
            return f"mean prediction {self.prediction_mean:.4g}"
        rate = float("nan") if self.positive_rate is None else self.positive_rate
        return f"positive rate {rate:.3f}"


class DriftSummary(BaseModel):
    window: str
    drifted: bool
    share: float
    drifted_columns: list[str]
    reason: str
    baseline_version: str
    report_uri: str | None  # None: a quiet window under drift.report: signals
    retrain: TrainSummary | None = None
    # the policy's decision record and the monitoring signals behind it
    check_id: str | None = None
    rule: str | None = None
    retrain_decided: bool = False
    signals: dict[str, bool] = {}
    decision_uri: str | None = None
    history_plot_uri: str | None = None


class RollbackSummary(BaseModel):
    from_version: str
    to_version: str
    reason: str
    smoke_latency_ms_per_1000: float | None
    reference_uri: str
    ledger_entry: str


class DayOutcome(BaseModel):
    """One day of a `process` run: each stage it ran and how it ended."""

    day: date
    stages: dict[str, str]
    detail: str = ""


class ProcessSummary(BaseModel):
    """What a `process` run did: the days it worked on, in order, and what it could not do."""

    days: list[DayOutcome]
    failed_days: list[date]
    missing_days: list[date]
    unmatched_files: list[str]
    champion: str | None = None
