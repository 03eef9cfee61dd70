"""Transforms are pure; the configured estimator is what gets fitted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.configs.settings import ModelSettings, load_settings
from driftloop.tasks.core.evaluation import score_metrics
from driftloop.tasks.core.scoring import PredictionMeta, now_utc, predict_chunked
from driftloop.tasks.core.training import (
    ModelConfigError,
    build_pipeline,
    fit_pipeline,
    model_input,
    split_frame,
)

SETTINGS = load_settings("local")
DATASET = SETTINGS.dataset


def make_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "loan_id": [f"L{i}" for i in range(n)],
            "event_time": pd.date_range("2026-11-01", periods=n, freq="min", tz="UTC"),
        }
    )
    for col in DATASET.numeric_features:
        frame[col] = rng.normal(10, 3, n)
    frame.loc[::17, "income"] = np.nan
    for col in DATASET.categorical_features:
        frame[col] = rng.choice(DATASET.columns[col].categories, n).astype(object)
    frame.loc[::13, "region"] = None
    logit = 0.8 * (frame["interest_rate"] - 10) - 0.5 * (frame["credit_score"] - 10)
    frame["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def test_transforms_do_not_mutate_their_input() -> None:
    frame = make_frame()
    before = frame.copy(deep=True)
    model_input(frame, DATASET)
    split_frame(frame, DATASET, SETTINGS.split)
    pd.testing.assert_frame_equal(frame, before)


def test_split_is_seeded_and_disjoint() -> None:
    frame = make_frame()
    a = split_frame(frame, DATASET, SETTINGS.split)
    b = split_frame(frame, DATASET, SETTINGS.split)
    pd.testing.assert_frame_equal(a.x_test, b.x_test)
    assert len(a.x_train) + len(a.x_test) == len(frame)
    assert abs(len(a.x_test) / len(frame) - SETTINGS.split.test_size) < 0.01


def test_time_split_holds_out_the_latest_rows() -> None:
    frame = make_frame().sample(frac=1.0, random_state=1)
    split = split_frame(frame, DATASET, SETTINGS.split.model_copy(update={"strategy": "time"}))
    assert len(split.x_test) == round(len(frame) * SETTINGS.split.test_size)


def test_fitted_model_learns_and_scores_in_chunks() -> None:
    frame = make_frame(1500)
    split = split_frame(frame, DATASET, SETTINGS.split)
    model = fit_pipeline(split, DATASET, SETTINGS.model)
    proba = model.predict_proba(split.x_test)[:, 1]
    assert score_metrics(split.y_test, proba)["roc_auc"] > 0.75
    meta = PredictionMeta(
        model_name="m",
        model_version="4",
        model_run_id="r",
        input_uri="u",
        input_digest="d",
        scored_at=now_utc(),
    )
    scored = predict_chunked(model, frame.drop(columns="default"), DATASET, meta, chunk_rows=97)
    whole = predict_chunked(model, frame.drop(columns="default"), DATASET, meta, chunk_rows=10**6)
    assert len(scored) == len(frame)
    np.testing.assert_allclose(scored["score"], whole["score"])
    assert (scored["model_version"] == "4").all()


def test_unknown_estimator_is_named() -> None:
    with pytest.raises(ModelConfigError, match=r"sklearn\.ensemble\.NoSuchForest"):
        build_pipeline(DATASET, ModelSettings(estimator="sklearn.ensemble.NoSuchForest"))
    with pytest.raises(ModelConfigError, match=r"model\.params"):
        build_pipeline(
            DATASET,
            ModelSettings(estimator="sklearn.linear_model.LogisticRegression", params={"x": 1}),
        )


def test_single_class_training_data_is_refused() -> None:
    frame = make_frame().assign(default=0)
    split = split_frame(frame, DATASET, SETTINGS.split)
    with pytest.raises(ValueError, match="only one class"):
        fit_pipeline(split, DATASET, SETTINGS.model)
