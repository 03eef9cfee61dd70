"""What a model learns and predicts, per task type (binary, multiclass, regression).

One place decides how the target is encoded for fitting, what a fitted model's output is, and
how outputs of two models are put side by side, so training, the gate, scoring and the drift
check treat the three task types alike:

- binary: the label is 0/1 (target == `dataset.positive_label`); the output is P(positive);
- multiclass: the label is the class name as text; the output is a probability matrix whose
  columns are `classes` (the model's, or a union of several models' and the labels');
- regression: the label is the numeric target; the output is the predicted value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftloop.configs.settings import DatasetSettings

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

#: Multiclass predictions carry one probability column per class, named with this prefix.
CLASS_PREFIX = "proba_"


def encode_target(values: pd.Series, dataset: DatasetSettings) -> pd.Series:
    """The label a model is fitted on (see the module docstring)."""
    if dataset.task == "binary":
        label = dataset.positive_label
        hits = values.astype("string") == label if isinstance(label, str) else values == label
        return hits.fillna(False).astype("int64")
    if dataset.task == "multiclass":
        return class_names(values)
    return pd.to_numeric(values, errors="coerce").astype("float64")


def class_names(values: pd.Series) -> pd.Series:
    """Class labels as text: the same class compares equal whether it was read from CSV,
    parquet or a label file (1, '1' and 1.0 of an int column all become '1')."""
    if pd.api.types.is_float_dtype(values) and values.dropna().apply(float.is_integer).all():
        values = values.astype("Int64")
    return values.astype("string").astype(object).where(values.notna(), None)


def model_classes(model: Any) -> tuple[str, ...]:
    """The classes a fitted multiclass model predicts, as text, in its column order."""
    return tuple(str(c) for c in model.classes_)


class ModelOutput(np.ndarray):
    """A model's output that knows its task type (and, multiclass, its column classes).

    Why a subclass: the streaming scorer passes a model's output from `predict_scores` to
    `append_predictions` unchanged, whatever the task; what the columns mean must travel with
    it. `np.asarray` turns it back into a plain array.
    """

    task: str
    classes: tuple[str, ...]

    def __new__(cls, values: np.ndarray, task: str, classes: tuple[str, ...] = ()) -> ModelOutput:
        obj = np.asarray(values, dtype="float64").view(cls)
        obj.task = task
        obj.classes = classes
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.task = getattr(obj, "task", "binary")
        self.classes = getattr(obj, "classes", ())


def predict_output(model: Pipeline, x: pd.DataFrame, dataset: DatasetSettings) -> ModelOutput:
    """P(positive) (binary), a probability matrix over the model's classes (multiclass) or
    predicted values (regression)."""
    if dataset.task == "regression":
        return ModelOutput(model.predict(x), "regression")
    proba = model.predict_proba(x)
    if dataset.task == "multiclass":
        return ModelOutput(proba, "multiclass", model_classes(model))
    return ModelOutput(proba[:, 1], "binary")


def joined(parts: list[np.ndarray]) -> np.ndarray:
    """Chunks of one model's output as one, keeping what they are (`ModelOutput`)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return ModelOutput(
        np.concatenate([np.asarray(p) for p in parts]),
        getattr(first, "task", "binary"),
        getattr(first, "classes", ()),
    )


def align(proba: np.ndarray, have: tuple[str, ...], classes: tuple[str, ...]) -> np.ndarray:
    """`proba` (columns `have`) as columns `classes`; a class the model lacks gets 0."""
    out = np.zeros((len(proba), len(classes)))
    index = {c: i for i, c in enumerate(have)}
    for j, name in enumerate(classes):
        if name in index:
            out[:, j] = np.asarray(proba)[:, index[name]]
    return out


@dataclass(frozen=True)
class Compared:
    """Outputs of several models on the same rows, ready for the same metrics.

    `classes` is the union of the models' classes and the labels' (multiclass; None
    otherwise), so a class one model never saw counts against it instead of breaking the
    comparison.
    """

    outputs: list[np.ndarray | None]
    classes: tuple[str, ...] | None


def compare_outputs(
    outputs: list[np.ndarray | None], y: np.ndarray, dataset: DatasetSettings
) -> Compared:
    if dataset.task != "multiclass":
        return Compared([None if o is None else np.asarray(o) for o in outputs], None)
    names: set[str] = {str(v) for v in np.asarray(y)}
    for out in outputs:
        if out is not None:
            names.update(getattr(out, "classes", ()))
    classes = tuple(sorted(names))
    return Compared(
        [None if o is None else align(o, tuple(o.classes), classes) for o in outputs], classes
    )


def unseen_classes(train: pd.Series, other: pd.Series | np.ndarray) -> list[str]:
    """Classes in `other` (evaluation rows, delayed labels) that training never had."""
    known = {str(v) for v in pd.Series(train).dropna()}
    return sorted({str(v) for v in pd.Series(other).dropna()} - known)
