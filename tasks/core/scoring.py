"""Batch scoring with the champion: predictions that say which model made them.

Every prediction row carries the model name, version, MLflow run id, the digest of the input
file and the scoring time, so any output can be traced back to a model and its data.

What a row predicts depends on the task type (`dataset.task`):

| task | columns |
|---|---|
| binary | `score` (P(positive)), `prediction` (1 if score >= 0.5, else 0) |
| multiclass | `prediction` (the likeliest class, as text), `score` (its probability), |
| | `proba_<class>` (one column per class the model knows) |
| regression | `prediction` (the predicted value) |
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
from driftloop.tasks.core.targets import CLASS_PREFIX, joined, predict_output
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
    """The model's output per row (`targets.predict_output`: P(positive), class
    probabilities or predicted values), chunk by chunk so its working memory stays bounded."""
    if frame.empty:
        return np.empty(0, dtype="float64")
    return joined(
        [
            predict_output(model, model_input(part, dataset), dataset)
            for part in chunks(frame, chunk_rows)
        ]
    )


def output_columns(
    outputs: np.ndarray, threshold: float = DECISION_THRESHOLD
) -> dict[str, pa.Array]:
    """The prediction columns of the task `outputs` came from (see the module docstring)."""
    task = getattr(outputs, "task", "binary")
    values = np.asarray(outputs)
    if task == "regression":
        return {PREDICTION_COLUMN: pa.array(values, type=pa.float64())}
    if task == "multiclass":
        classes = np.asarray(getattr(outputs, "classes", ()), dtype=object)
        if values.size == 0:
            best = np.empty(0, dtype="int64")
            top = np.empty(0, dtype="float64")
        else:
            best = np.argmax(values, axis=1)
            top = values[np.arange(len(values)), best]
        columns = {
            PREDICTION_COLUMN: pa.array(classes[best] if len(classes) else [], type=pa.string()),
            SCORE_COLUMN: pa.array(top, type=pa.float64()),
        }
        for j, name in enumerate(classes):
            columns[f"{CLASS_PREFIX}{name}"] = pa.array(values[:, j], type=pa.float64())
        return columns
    labels = (values >= threshold).astype("int64")
    return {
        SCORE_COLUMN: pa.array(values, type=pa.float64()),
        PREDICTION_COLUMN: pa.array(labels, type=pa.int64()),
    }


def count_classes(outputs: np.ndarray, counts: dict[str, int]) -> dict[str, int]:
    """Add the rows each class is predicted for (multiclass outputs) to `counts`."""
    classes = [str(c) for c in getattr(outputs, "classes", ())]
    values = np.asarray(outputs)
    if values.size and classes:
        picked = np.bincount(values.argmax(axis=1), minlength=len(classes))
        for name, n in zip(classes, picked, strict=True):
            counts[name] = counts.get(name, 0) + int(n)
    return counts


def prediction_table(
    frame: pd.DataFrame,
    scores: np.ndarray,
    meta: PredictionMeta,
    threshold: float = DECISION_THRESHOLD,
) -> pa.Table:
    """The input columns, the task's prediction columns and the lineage, as one arrow table.

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
    for name, column in output_columns(scores, threshold).items():
        table = table.append_column(name, column)
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
