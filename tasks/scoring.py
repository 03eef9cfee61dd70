"""Batch scoring with the champion: predictions that say which model made them.

Every prediction row carries the model name, version, MLflow run id, the digest of the input
file and the scoring time, so any output can be traced back to a model and its data.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel

from driftloop.configs.settings import DatasetSettings
from driftloop.tasks.training import model_input

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

PREDICTION_COLUMN = "prediction"
SCORE_COLUMN = "score"


class PredictionMeta(BaseModel):
    """Lineage stamped on every prediction row."""

    model_name: str
    model_version: str
    model_run_id: str
    input_uri: str
    input_digest: str
    scored_at: datetime


def chunks(frame: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), rows):
        yield frame.iloc[start : start + rows]


def predict_frame(
    model: Pipeline,
    frame: pd.DataFrame,
    dataset: DatasetSettings,
    meta: PredictionMeta,
    threshold: float = 0.5,
) -> pd.DataFrame:
    """Scores for one chunk: the input columns, the score, the label and the lineage columns."""
    proba = model.predict_proba(model_input(frame, dataset))[:, 1]
    out = frame.reset_index(drop=True).copy()
    out[SCORE_COLUMN] = proba.astype("float64")
    out[PREDICTION_COLUMN] = (proba >= threshold).astype("int64")
    for key, value in meta.model_dump().items():
        out[key] = value
    return out


def predict_chunked(
    model: Pipeline,
    frame: pd.DataFrame,
    dataset: DatasetSettings,
    meta: PredictionMeta,
    chunk_rows: int,
) -> pd.DataFrame:
    """Predict chunk by chunk so the model's working memory stays bounded."""
    if frame.empty:
        return predict_frame(model, frame, dataset, meta)
    parts = [predict_frame(model, part, dataset, meta) for part in chunks(frame, chunk_rows)]
    # one chunk (the usual case: chunk = batch) needs no concat, which would copy every column
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def now_utc() -> datetime:
    return datetime.now(UTC)


def score_summary(predictions: pd.DataFrame) -> dict[str, float]:
    """Counts and score distribution, for the scoring artifact and the timeline."""
    if predictions.empty:
        return {"rows": 0, "positive_rate": float("nan"), "mean_score": float("nan")}
    scores = predictions[SCORE_COLUMN].to_numpy()
    return {
        "rows": len(predictions),
        "positive_rate": float(predictions[PREDICTION_COLUMN].mean()),
        "mean_score": float(np.mean(scores)),
        "p90_score": float(np.quantile(scores, 0.9)),
    }
