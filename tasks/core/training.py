"""Turn a curated window into a fitted scikit-learn Pipeline.

Everything here is pure: frames in, new frames or fitted estimators out. The estimator class
and its hyperparameters come from config, so onboarding a dataset needs no code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from driftloop.configs.settings import DatasetSettings, ModelSettings, SplitSettings
from driftloop.tasks.core.targets import class_names, encode_target
from driftloop.tasks.core.windows import holdout_start


class ModelConfigError(ValueError):
    """The configured estimator cannot be built; the message names the config key."""


@dataclass(frozen=True)
class Split:
    """Features and labels for fitting and for the held-out evaluation rows."""

    x_train: pd.DataFrame
    y_train: pd.Series
    x_test: pd.DataFrame
    y_test: pd.Series


def features_and_target(
    frame: pd.DataFrame, dataset: DatasetSettings
) -> tuple[pd.DataFrame, pd.Series]:
    """Select the model's inputs in contract order; the label as the task encodes it (0/1,
    class name, or number: `targets.encode_target`)."""
    x = frame[dataset.feature_columns].copy()
    y = encode_target(frame[dataset.target], dataset)
    return model_input(x, dataset), y


def model_input(frame: pd.DataFrame, dataset: DatasetSettings) -> pd.DataFrame:
    """Cast features to the dtypes the model signature promises (float / str, None for null).

    A new frame that shares the columns already in those dtypes (nothing here writes to
    them): on a typed scoring batch that spares two copies of every column, a visible share
    of what scoring adds to a bare predict (see benchmarks/README.md)."""
    numeric = set(dataset.numeric_features)
    columns: dict[str, pd.Series] = {}
    for col in dataset.feature_columns:
        values = frame[col]
        if col in numeric:
            if values.dtype != "float64":
                values = pd.to_numeric(values, errors="coerce").astype("float64")
        else:
            if values.dtype != object:
                values = values.astype(object)
            missing = values.isna().to_numpy()
            if missing.any():
                values = values.where(~missing, None)
        columns[col] = values
    return pd.DataFrame(columns, index=frame.index, copy=False)


def split_frame(
    frame: pd.DataFrame,
    dataset: DatasetSettings,
    split: SplitSettings,
    *,
    champion_end: date | None = None,
) -> Split:
    """Out-of-time (the most recent days), time-ordered or random (stratified, seeded)
    hold-out rows; `champion_end`, the last day the champion trained on, keeps out-of-time
    rows out of the champion's window too."""
    x, y = features_and_target(frame, dataset)
    check_target(y, dataset, frame[dataset.target], spread=False)
    if split.strategy == "out_of_time":
        days = event_days(frame, dataset)
        start = holdout_start(sorted(set(days)), split, champion_end=champion_end)
        if start is not None:
            test = np.asarray([d >= start for d in days])
            return Split(
                x[~test].reset_index(drop=True),
                y[~test].reset_index(drop=True),
                x[test].reset_index(drop=True),
                y[test].reset_index(drop=True),
            )
        split = split.model_copy(update={"strategy": "time"})  # one day: its latest rows
    if split.strategy == "time":
        order = np.argsort(frame[dataset.timestamp_column].to_numpy(), kind="stable")
        cut = round(len(order) * (1 - split.test_size))
        train_idx, test_idx = order[:cut], order[cut:]
        return Split(
            x.iloc[train_idx].reset_index(drop=True),
            y.iloc[train_idx].reset_index(drop=True),
            x.iloc[test_idx].reset_index(drop=True),
            y.iloc[test_idx].reset_index(drop=True),
        )
    stratify = y if y.nunique() > 1 and y.value_counts().min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=split.test_size, random_state=split.seed, stratify=stratify
    )
    return Split(
        x_train.reset_index(drop=True),
        y_train.reset_index(drop=True),
        x_test.reset_index(drop=True),
        y_test.reset_index(drop=True),
    )


def event_days(frame: pd.DataFrame, dataset: DatasetSettings) -> list[date]:
    """Each row's day (UTC) by its event time."""
    stamps = pd.to_datetime(frame[dataset.timestamp_column], utc=True)
    return list(stamps.dt.date)


def _estimator_class(path: str, task: str = "binary") -> type[ClassifierMixin]:
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ModelConfigError(
            f"model.estimator {path!r} cannot be imported: check the class path "
            "(e.g. sklearn.ensemble.HistGradientBoostingClassifier)"
        ) from err
    from sklearn.base import RegressorMixin

    if task == "regression":
        if not issubclass(cls, RegressorMixin):
            raise ModelConfigError(
                f"model.estimator {path!r} is not a regressor but dataset.task is regression"
            )
    elif not hasattr(cls, "predict_proba"):
        raise ModelConfigError(f"model.estimator {path!r} has no predict_proba: use a classifier")
    return cls


def build_pipeline(dataset: DatasetSettings, model: ModelSettings) -> Pipeline:
    """Imputation + encoding + the configured estimator, as one serialisable Pipeline."""
    prep = model.preprocessing
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy=prep.numeric_impute))]
    if prep.scale_numeric:
        numeric_steps.append(("scale", StandardScaler()))
    categorical_steps: list[tuple[str, Any]] = [
        (
            "impute",
            SimpleImputer(strategy=prep.categorical_impute, fill_value="__missing__")
            if prep.categorical_impute == "constant"
            else SimpleImputer(strategy=prep.categorical_impute),
        ),
        (
            "encode",
            OneHotEncoder(
                handle_unknown="infrequent_if_exist" if prep.max_categories else "ignore",
                max_categories=prep.max_categories,
                sparse_output=False,
            ),
        ),
    ]
    transformers: list[tuple[str, Any, list[str]]] = []
    if dataset.numeric_features:
        transformers.append(("num", Pipeline(numeric_steps), dataset.numeric_features))
    if dataset.categorical_features:
        transformers.append(("cat", Pipeline(categorical_steps), dataset.categorical_features))
    cls = _estimator_class(model.estimator, dataset.task)
    try:
        estimator = cls(**model.params)
    except TypeError as err:
        raise ModelConfigError(
            f"model.params {model.params} do not fit {model.estimator}: {err}"
        ) from err
    return Pipeline([("prep", ColumnTransformer(transformers)), ("model", estimator)])


def fit_pipeline(split: Split, dataset: DatasetSettings, model: ModelSettings) -> Pipeline:
    """Fit a fresh pipeline; refuses a target it cannot learn from, saying why."""
    check_target(split.y_train, dataset)
    pipeline = build_pipeline(dataset, model)
    pipeline.fit(split.x_train, split.y_train)
    return pipeline


class TargetError(ValueError):
    """The training rows' target cannot train the configured task; the message says why."""


def check_target(
    y: pd.Series, dataset: DatasetSettings, raw: pd.Series | None = None, spread: bool = True
) -> None:
    """No rows, no spread, or a target that belongs to another task type: the message names
    the config key to change rather than blaming the window. `spread=False` checks only that
    the target fits the task (a whole window, before it is split)."""
    target = dataset.target
    if not spread and (dataset.task != "binary" or raw is None):
        return
    if len(y) == 0 or y.isna().all():
        raise TargetError(f"no training rows with a value of {target!r}: check the window")
    if dataset.task == "regression":
        if y.nunique() < 2:
            raise TargetError(f"{target!r} is constant ({y.dropna().iloc[0]}) in the training rows")
        return
    if dataset.task == "binary" and raw is not None:
        values = sorted(class_names(raw).dropna().unique(), key=str)
        if len(values) > 2:
            raise TargetError(
                f"{target!r} has {len(values)} distinct values ({', '.join(values[:10])}) but "
                "dataset.task is binary: set dataset.task: multiclass, or derive a two-valued "
                "target"
            )
        if y.nunique() < 2 and len(values) == 2:
            raise TargetError(
                f"dataset.positive_label {dataset.positive_label!r} is not one of the values of "
                f"{target!r} ({', '.join(values)}): set it to the positive class"
            )
    if not spread:
        return
    if y.nunique() < 2:
        seen = class_names(raw).dropna().iloc[0] if raw is not None and len(raw) else y.iloc[0]
        raise TargetError(
            f"training data has only one class of {target!r} ({seen}): the window holds no "
            "example of any other class; widen the training window or check the labels"
        )
