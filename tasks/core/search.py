"""Hyperparameter search: trials planned from config, fitted in parallel, the best one chosen.

Planning, scoring and choosing are pure functions (table-tested); the fan-out over a Dask
cluster is Prefect's `DaskTaskRunner` (prefect-dask), built by `scaleout.dask_task_runner` from
the `dask` config section. Trials are scored on a validation split carved from the training rows,
so the gate's evaluation rows stay unseen until the candidate is judged.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from driftloop.configs.settings import (
    DatasetSettings,
    ModelSettings,
    SearchSettings,
    Settings,
)
from driftloop.tasks.core.evaluation import METRIC_DIRECTIONS, metric_value
from driftloop.tasks.core.targets import compare_outputs, predict_output
from driftloop.tasks.core.training import Split, _estimator_class, fit_pipeline


class SearchConfigError(ValueError):
    """The search config cannot be run; the message names the key under model.search."""


class TrialResult(BaseModel):
    """One trial: its params, its validation score and how long it took."""

    index: int
    params: dict[str, Any]
    metric: str
    value: float
    rows_fit: int
    rows_validation: int
    started_ms: int
    seconds: float


class SearchOutcome(BaseModel):
    """Every trial and the chosen one (best on the metric; the earliest wins a tie)."""

    metric: str
    strategy: str
    best: TrialResult
    trials: list[TrialResult]

    def table(self) -> list[dict[str, Any]]:
        """One row per trial, for a Prefect table artifact and the MLflow run."""
        return [
            {
                "trial": t.index,
                **{f"param {k}": v for k, v in t.params.items()},
                t.metric: round(t.value, 6),
                "seconds": round(t.seconds, 2),
                "chosen": "yes" if t.index == self.best.index else "",
            }
            for t in self.trials
        ]


@dataclass(frozen=True)
class SearchData:
    """Rows the trials fit on and the validation rows they are scored on (both from training)."""

    x_fit: pd.DataFrame
    y_fit: pd.Series
    x_val: pd.DataFrame
    y_val: pd.Series


def plan_trials(search: SearchSettings, model: ModelSettings) -> list[dict[str, Any]]:
    """The parameter sets to try, in a stable order; unknown parameter names fail here.

    grid: every combination (in the order the params are written). random: `trials` distinct
    combinations drawn with `seed` (all of them if the grid is smaller).
    """
    accepted = set(_estimator_class(model.estimator)().get_params())
    for name in search.params:
        if name not in accepted:
            raise SearchConfigError(
                f"'model.search.params.{name}': {model.estimator} has no parameter {name!r} "
                f"(it has: {', '.join(sorted(accepted))})"
            )
    names = list(search.params)
    grid = [dict(zip(names, combo, strict=True)) for combo in itertools.product(
        *(search.params[n] for n in names)
    )]  # fmt: skip
    if search.strategy == "grid":
        return grid
    count = min(search.trials or len(grid), len(grid))
    picks = np.random.default_rng(search.seed).choice(len(grid), size=count, replace=False)
    return [grid[int(i)] for i in picks]


def carve_validation(split: Split, search: SearchSettings, seed: int) -> SearchData:
    """A seeded (stratified when possible) validation part of the training rows."""
    from sklearn.model_selection import train_test_split

    y = split.y_train
    stratify = y if y.nunique() > 1 and y.value_counts().min() >= 2 else None
    x_fit, x_val, y_fit, y_val = train_test_split(
        split.x_train, y, test_size=search.validation_size, random_state=seed, stratify=stratify
    )
    return SearchData(
        x_fit.reset_index(drop=True),
        y_fit.reset_index(drop=True),
        x_val.reset_index(drop=True),
        y_val.reset_index(drop=True),
    )


def score_trial(
    index: int,
    params: dict[str, Any],
    data: SearchData,
    dataset: DatasetSettings,
    model: ModelSettings,
    metric: str,
    min_precision: float,
) -> TrialResult:
    """Fit the pipeline with `params` over model.params and score it on the validation rows."""
    started_ms, started = int(time.time() * 1000), time.perf_counter()
    trial_model = model.model_copy(update={"params": {**model.params, **params}, "search": None})
    fit_split = Split(data.x_fit, data.y_fit, data.x_val, data.y_val)
    pipeline = fit_pipeline(fit_split, dataset, trial_model)
    y = data.y_val.to_numpy()
    compared = compare_outputs([predict_output(pipeline, data.x_val, dataset)], y, dataset)
    output = compared.outputs[0]
    assert output is not None
    if dataset.task == "binary":
        output = np.clip(output, 1e-7, 1 - 1e-7)
    value = metric_value(metric, y, output, min_precision, compared.classes)
    return TrialResult(
        index=index,
        params=params,
        metric=metric,
        value=value,
        rows_fit=len(data.x_fit),
        rows_validation=len(data.x_val),
        started_ms=started_ms,
        seconds=time.perf_counter() - started,
    )


def choose_best(results: list[TrialResult], search: SearchSettings) -> SearchOutcome:
    """Best by the metric's direction; NaN scores never win; ties go to the earliest trial."""
    ordered = sorted(results, key=lambda r: r.index)
    scored = [r for r in ordered if r.value == r.value]
    if not scored:
        raise SearchConfigError(
            f"no trial produced a {search.metric} score (the validation rows may hold one class "
            "only): widen the window or raise model.search.validation_size"
        )
    sign = 1.0 if METRIC_DIRECTIONS[search.metric] == "higher" else -1.0
    best = max(scored, key=lambda r: (sign * r.value, -r.index))
    return SearchOutcome(metric=search.metric, strategy=search.strategy, best=best, trials=ordered)


def with_params(settings: Settings, params: dict[str, Any]) -> Settings:
    """The settings the candidate is fitted with: the chosen params over model.params."""
    model = settings.model.model_copy(update={"params": {**settings.model.params, **params}})
    return settings.model_copy(update={"model": model})
