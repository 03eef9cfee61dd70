"""Metrics and plots for a model on held-out rows, per task type.

The gate compares candidate and champion on the *same* rows, so both go through `score_metrics`
with the same labels. What a model's output is depends on the task (`tasks/core/targets.py`):
binary, P(positive) per row against 0/1 labels; multiclass, a probability matrix whose columns
are `classes` against class names; regression, the predicted value against the target.
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
    r2_score,
    roc_auc_score,
)

from driftloop.configs.settings import TASK_METRICS

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
    "f1_macro": "higher",
    "rmse": "lower",
    "mae": "lower",
    "r2": "higher",
}

#: Metrics in the target's own units: a change (bootstrap gain, decay) is read as a fraction
#: of the reference value, so one default fits every dataset's scale.
RELATIVE_METRICS = frozenset({"rmse", "mae"})


def _multiclass_metric(name: str, y: np.ndarray, p: np.ndarray, classes: tuple[str, ...]) -> float:
    """Log loss, macro F1 or accuracy of a probability matrix whose columns are `classes`.

    A label outside `classes` (a class the model never saw) gets probability 0: the model is
    charged for it rather than the row being dropped."""
    y = np.asarray(y).astype(str)
    if len(y) == 0:
        return float("nan")
    if name == "log_loss":
        index = {c: i for i, c in enumerate(classes)}
        cols = np.array([index.get(v, -1) for v in y])
        known = cols >= 0
        picked = np.zeros(len(y))
        picked[known] = p[np.flatnonzero(known), cols[known]]
        return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
    predicted = np.asarray(classes)[np.argmax(p, axis=1)]
    if name == "accuracy":
        return float(np.mean(predicted == y))
    if name == "f1_macro":
        return float(
            f1_score(y, predicted, labels=sorted(set(y)), average="macro", zero_division=0)
        )
    raise KeyError(f"metric {name!r} does not apply to multiclass: {TASK_METRICS['multiclass']}")


def _regression_metric(name: str, y: np.ndarray, p: np.ndarray) -> float:
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) == 0:
        return float("nan")
    if name == "rmse":
        return float(np.sqrt(np.mean((y - p) ** 2)))
    if name == "mae":
        return float(np.mean(np.abs(y - p)))
    if name == "r2":
        return float(r2_score(y, p)) if len(y) > 1 else float("nan")
    raise KeyError(f"metric {name!r} does not apply to regression: {TASK_METRICS['regression']}")


def recall_at_precision(y: np.ndarray, p: np.ndarray, min_precision: float) -> float:
    """The best recall among thresholds whose precision reaches `min_precision` (0 if none)."""
    if y.sum() == 0:
        return float("nan")
    precision, recall, _ = precision_recall_curve(y, p)
    reachable = recall[precision >= min_precision]
    return float(reachable.max()) if reachable.size else 0.0


def metric_value(
    name: str,
    y: np.ndarray,
    p: np.ndarray,
    min_precision: float = 0.5,
    classes: tuple[str, ...] | None = None,
) -> float:
    """One metric; the bootstrap and the slice checks call it many times. With `classes`, `p`
    is a multiclass probability matrix; rmse, mae and r2 read `p` as predicted values."""
    if classes is not None:
        return _multiclass_metric(name, y, p, classes)
    if name in ("rmse", "mae", "r2"):
        return _regression_metric(name, y, p)
    y = np.asarray(y, dtype=int)
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
    *,
    task: str = "binary",
    classes: tuple[str, ...] | None = None,
) -> dict[str, float]:
    """All metrics of the task: binary from positive-class probabilities, multiclass from a
    probability matrix over `classes`, regression from predicted values."""
    if task != "binary":
        y_any = np.asarray(y_true)
        return {
            name: metric_value(name, y_any, np.asarray(proba), min_precision, classes)
            for name in TASK_METRICS[task]
        }
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
    classes: tuple[str, ...] | None = None,
) -> Interval:
    """Resample evaluation rows (the same rows for both models) and read the improvement's CI.

    Pairing matters: both models are scored on each resample, so the row-to-row noise that
    both share cancels out and the interval measures the difference, not the sampling.
    For `RELATIVE_METRICS` (rmse, mae) the gain is a fraction of the champion's value.
    """
    y = (
        np.asarray(y_true)
        if classes is not None or metric in ("rmse", "mae", "r2")
        else (np.asarray(y_true, dtype=int))
    )
    sign = 1.0 if METRIC_DIRECTIONS[metric] == "higher" else -1.0

    def gain(rows: np.ndarray) -> float:
        ys = y[rows]
        cand = metric_value(metric, ys, candidate[rows], min_precision, classes)
        champ = metric_value(metric, ys, champion[rows], min_precision, classes)
        if metric in RELATIVE_METRICS:
            return sign * (cand - champ) / abs(champ) if champ else float("nan")
        return sign * (cand - champ)

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
    classes: tuple[str, ...] | None = None,
) -> list[SliceScore]:
    """Metric per value of each slice column (nulls form their own slice)."""
    y = np.asarray(y_true)
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
                    candidate=metric_value(
                        metric, y[rows], candidate[rows], min_precision, classes
                    ),
                    champion=None
                    if champion is None
                    else metric_value(metric, y[rows], champion[rows], min_precision, classes),
                )
            )
    return out


def evaluation_figures(
    y_true: pd.Series,
    proba: np.ndarray,
    task: str = "binary",
    classes: tuple[str, ...] | None = None,
) -> dict[str, Figure]:
    """For people comparing runs in the MLflow UI: ROC curve and confusion matrix (binary),
    confusion matrix (multiclass), predicted vs actual and residuals (regression)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

    if task == "multiclass" and classes is not None:
        fig, ax = plt.subplots(figsize=(5, 5))
        predicted = np.asarray(classes)[np.argmax(proba, axis=1)]
        ConfusionMatrixDisplay.from_predictions(
            np.asarray(y_true).astype(str), predicted, ax=ax, xticks_rotation="vertical"
        )
        fig.tight_layout()
        return {"confusion_matrix.png": fig}
    if task == "regression":
        actual, predicted = np.asarray(y_true, dtype=float), np.asarray(proba, dtype=float)
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
        left.scatter(actual, predicted, s=4, alpha=0.4)
        lo, hi = float(np.nanmin(actual)), float(np.nanmax(actual))
        left.plot([lo, hi], [lo, hi], linestyle="--", color="grey")
        left.set(xlabel="actual", ylabel="predicted", title="predicted vs actual")
        right.hist(predicted - actual, bins=40)
        right.set(xlabel="predicted - actual", title="residuals")
        fig.tight_layout()
        return {"predicted_vs_actual.png": fig}
    y = np.asarray(y_true, dtype=int)
    roc_fig, roc_ax = plt.subplots(figsize=(5, 4))
    RocCurveDisplay.from_predictions(y, proba, ax=roc_ax, name="candidate")
    roc_ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    cm_fig, cm_ax = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(y, (np.asarray(proba) >= 0.5).astype(int), ax=cm_ax)
    for fig in (roc_fig, cm_fig):
        fig.tight_layout()
    return {"roc_curve.png": roc_fig, "confusion_matrix.png": cm_fig}
