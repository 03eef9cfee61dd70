"""Metrics and plots for a binary classifier on held-out rows.

The gate compares candidate and champion on the *same* rows, so both go through `score_metrics`
with the same labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Direction = Literal["higher", "lower"]

#: Which way is better for each metric the gate may name.
METRIC_DIRECTIONS: dict[str, Direction] = {
    "roc_auc": "higher",
    "average_precision": "higher",
    "accuracy": "higher",
    "f1": "higher",
    "log_loss": "lower",
    "brier": "lower",
    "recall_at_precision": "higher",
}


def recall_at_precision(y: np.ndarray, p: np.ndarray, min_precision: float) -> float:
    """The best recall among thresholds whose precision reaches `min_precision` (0 if none)."""
    if y.sum() == 0:
        return float("nan")
    precision, recall, _ = precision_recall_curve(y, p)
    reachable = recall[precision >= min_precision]
    return float(reachable.max()) if reachable.size else 0.0


def metric_value(name: str, y: np.ndarray, p: np.ndarray, min_precision: float = 0.5) -> float:
    """One metric; the bootstrap and the slice checks call it many times."""
    if name in ("roc_auc", "average_precision") and len(np.unique(y)) < 2:
        return float("nan")
    if name == "roc_auc":
        return float(roc_auc_score(y, p))
    if name == "average_precision":
        return float(average_precision_score(y, p))
    if name == "recall_at_precision":
        return recall_at_precision(y, p, min_precision)
    if name == "log_loss":
        return float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))
    if name == "brier":
        return float(brier_score_loss(y, p))
    predicted = (p >= 0.5).astype(int)
    if name == "accuracy":
        return float(accuracy_score(y, predicted))
    if name == "f1":
        return float(f1_score(y, predicted, zero_division=0))
    raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRIC_DIRECTIONS)}")


def score_metrics(
    y_true: pd.Series | np.ndarray,
    proba: np.ndarray,
    threshold: float = 0.5,
    min_precision: float = 0.5,
) -> dict[str, float]:
    """All gate metrics from positive-class probabilities."""
    y = np.asarray(y_true, dtype=int)
    p = np.clip(np.asarray(proba, dtype=float), 1e-7, 1 - 1e-7)
    predicted = (p >= threshold).astype(int)
    both_classes = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both_classes else float("nan"),
        "average_precision": float(average_precision_score(y, p)) if both_classes else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "recall_at_precision": recall_at_precision(y, p, min_precision),
    }


class Interval(BaseModel):
    """A bootstrap confidence interval of an improvement (positive = candidate better)."""

    metric: str
    low: float
    high: float
    point: float
    confidence: float
    resamples: int


def paired_bootstrap(
    y_true: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray,
    metric: str,
    *,
    resamples: int,
    confidence: float,
    seed: int,
    min_precision: float = 0.5,
) -> Interval:
    """Resample evaluation rows (the same rows for both models) and read the improvement's CI.

    Pairing matters: both models are scored on each resample, so the row-to-row noise that
    both share cancels out and the interval measures the difference, not the sampling.
    """
    y = np.asarray(y_true, dtype=int)
    sign = 1.0 if METRIC_DIRECTIONS[metric] == "higher" else -1.0

    def gain(rows: np.ndarray) -> float:
        ys = y[rows]
        return sign * (
            metric_value(metric, ys, candidate[rows], min_precision)
            - metric_value(metric, ys, champion[rows], min_precision)
        )

    rng = np.random.default_rng(seed)
    everything = np.arange(len(y))
    draws = (rng.integers(0, len(y), len(y)) for _ in range(resamples))
    if metric == "roc_auc":
        # Same resamples, same values (to float rounding), far faster on large hold-outs (see
        # benchmarks/README.md): a resample is a vector of row counts, so each model's rows are
        # sorted only once.
        cand, champ = _ResampledAuc(y, candidate), _ResampledAuc(y, champion)
        weights = (np.bincount(rows, minlength=len(y)).astype(float) for rows in draws)
        gains = np.array([cand.auc(w) - champ.auc(w) for w in weights])
    else:
        gains = np.array([gain(rows) for rows in draws])
    gains = gains[~np.isnan(gains)]
    tail = (1.0 - confidence) / 2.0
    low, high = (
        (float(np.quantile(gains, tail)), float(np.quantile(gains, 1.0 - tail)))
        if gains.size
        else (float("nan"), float("nan"))
    )
    return Interval(
        metric=metric,
        low=low,
        high=high,
        point=gain(everything),
        confidence=confidence,
        resamples=int(gains.size),
    )


class _ResampledAuc:
    """ROC AUC of one model's scores under row weights (bootstrap counts).

    AUC is the Mann-Whitney statistic: the weighted share of (positive, negative) pairs the
    model orders correctly, ties counting one half, exactly what `roc_auc_score` returns for
    the resampled rows. Grouping equal scores once makes each resample two `bincount`s.
    """

    def __init__(self, y: np.ndarray, scores: np.ndarray) -> None:
        _, self.group = np.unique(np.asarray(scores, dtype=float), return_inverse=True)
        self.groups = int(self.group.max()) + 1 if len(self.group) else 0
        self.y = y.astype(float)

    def auc(self, weights: np.ndarray) -> float:
        pos = np.bincount(self.group, weights=weights * self.y, minlength=self.groups)
        neg = np.bincount(self.group, weights=weights * (1.0 - self.y), minlength=self.groups)
        total = pos.sum() * neg.sum()
        if total == 0:
            return float("nan")
        below = np.cumsum(neg) - neg
        return float((pos * (below + 0.5 * neg)).sum() / total)


class SliceScore(BaseModel):
    """One slice value's metric for the candidate and (if any) the champion."""

    column: str
    value: str
    rows: int
    metric: str
    candidate: float
    champion: float | None


def slice_scores(
    slices: pd.DataFrame,
    y_true: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray | None,
    metric: str,
    min_precision: float = 0.5,
) -> list[SliceScore]:
    """Metric per value of each slice column (nulls form their own slice)."""
    y = np.asarray(y_true, dtype=int)
    out: list[SliceScore] = []
    for column in slices.columns:
        values = slices[column].astype("object").where(slices[column].notna(), "<null>")
        for value, positions in values.groupby(values, sort=True).indices.items():
            rows = np.asarray(positions)
            out.append(
                SliceScore(
                    column=column,
                    value=str(value),
                    rows=len(rows),
                    metric=metric,
                    candidate=metric_value(metric, y[rows], candidate[rows], min_precision),
                    champion=None
                    if champion is None
                    else metric_value(metric, y[rows], champion[rows], min_precision),
                )
            )
    return out


def evaluation_figures(y_true: pd.Series, proba: np.ndarray) -> dict[str, Figure]:
    """ROC curve and confusion matrix, for people comparing runs in the MLflow UI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

    y = np.asarray(y_true, dtype=int)
    roc_fig, roc_ax = plt.subplots(figsize=(5, 4))
    RocCurveDisplay.from_predictions(y, proba, ax=roc_ax, name="candidate")
    roc_ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    cm_fig, cm_ax = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(y, (np.asarray(proba) >= 0.5).astype(int), ax=cm_ax)
    for fig in (roc_fig, cm_fig):
        fig.tight_layout()
    return {"roc_curve.png": roc_fig, "confusion_matrix.png": cm_fig}
