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
import pyarrow as pa
from pydantic import BaseModel

from driftloop.configs.settings import DatasetSettings
from driftloop.tasks.core.training import model_input

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

PREDICTION_COLUMN = "prediction"
SCORE_COLUMN = "score"
DECISION_THRESHOLD = 0.5  # score >= this: predicted positive


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


def predict_scores(
    model: Pipeline, frame: pd.DataFrame, dataset: DatasetSettings, chunk_rows: int
) -> np.ndarray:
    """P(positive) per row, chunk by chunk so the model's working memory stays bounded."""
    if frame.empty:
        return np.empty(0, dtype="float64")
    parts = [
        model.predict_proba(model_input(part, dataset))[:, 1].astype("float64")
        for part in chunks(frame, chunk_rows)
    ]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def prediction_table(
    frame: pd.DataFrame,
    scores: np.ndarray,
    meta: PredictionMeta,
    threshold: float = DECISION_THRESHOLD,
) -> pa.Table:
    """The input columns, the score, the label and the lineage columns, as one arrow table.

    Built in arrow, not pandas: a lineage value repeated on every row is one C-level fill
    (`pa.repeat`) instead of a column of Python objects converted back, which would be most
    of what scoring adds to a bare read -> predict -> write (see benchmarks/README.md).
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)  # the index is not written
    return append_predictions(table, scores, meta, threshold)


def append_predictions(
    table: pa.Table,
    scores: np.ndarray,
    meta: PredictionMeta,
    threshold: float = DECISION_THRESHOLD,
) -> pa.Table:
    """`prediction_table` for input rows already in arrow."""
    n = table.num_rows
    table = table.append_column(SCORE_COLUMN, pa.array(scores, type=pa.float64()))
    labels = (scores >= threshold).astype("int64")
    table = table.append_column(PREDICTION_COLUMN, pa.array(labels, type=pa.int64()))
    for key, value in meta.model_dump().items():
        table = table.append_column(key, pa.repeat(pa.scalar(value), n))
    return table


def model_frame(table: pa.Table, dataset: DatasetSettings) -> pd.DataFrame:
    """The model's features of a typed arrow batch, in the dtypes `model_input` gives them
    (so it shares them): only these columns are converted to pandas, not the id or lineage."""
    numeric = set(dataset.numeric_features)
    columns = [
        table.column(c).cast(pa.float64()) if c in numeric else table.column(c)
        for c in dataset.feature_columns
    ]
    return pa.table(columns, names=dataset.feature_columns).to_pandas()


def predict_chunked(
    model: Pipeline,
    frame: pd.DataFrame,
    dataset: DatasetSettings,
    meta: PredictionMeta,
    chunk_rows: int,
) -> pd.DataFrame:
    """Predictions with lineage as a DataFrame (what the scoring stream writes, row for row)."""
    scores = predict_scores(model, frame, dataset, chunk_rows)
    return prediction_table(frame, scores, meta).to_pandas()


def now_utc() -> datetime:
    return datetime.now(UTC)
