"""Task types in the pure core: config checks, metrics, the gate's evidence, realised labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftloop.configs.settings import ConfigError, load_settings
from driftloop.tasks.core.evaluation import paired_bootstrap, score_metrics
from driftloop.tasks.core.evidence import measure_evidence
from driftloop.tasks.core.gate import decide_gate
from driftloop.tasks.core.monitoring import decay, realised_performance
from driftloop.tasks.core.scoring import output_columns, predict_scores
from driftloop.tasks.core.training import TargetError, fit_pipeline, split_frame


def _settings(name: str, **overrides: Any) -> Any:
    return load_settings("local", {"dataset_config": name, **overrides})


def _frame(name: str, days: int = 2, rows: int = 300) -> pd.DataFrame:
    from datetime import date, timedelta

    from driftloop.data.sklearn_datasets import generate_day

    start = date(2026, 11, 1)
    return pd.concat(
        [generate_day(name, start + timedelta(days=i), rows) for i in range(days)],
        ignore_index=True,
    )


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"dataset_config": "diabetes", "gate.primary_metric": "roc_auc"}, "gate.primary_metric"),
        ({"dataset_config": "diabetes", "drift.decay_metric": "log_loss"}, "drift.decay_metric"),
        ({"dataset_config": "wine", "gate.slices.metric": "roc_auc"}, "gate.slices.metric"),
        (
            {
                "dataset_config": "diabetes",
                "model.estimator": "sklearn.linear_model.LogisticRegression",
            },
            "model.estimator",
        ),
        (
            {"dataset_config": "breast_cancer", "model.estimator": "sklearn.linear_model.Ridge"},
            "model.estimator",
        ),
        ({"dataset_config": "wine", "dataset.positive_label": "class_1"}, "dataset.positive_label"),
        ({"dataset_config": "breast_cancer", "dataset.positive_label": "yes"}, "positive_label"),
        (
            {"dataset_config": "breast_cancer", "dataset.task": "regression"},
            "dataset.target",
        ),
    ],
)
def test_a_config_mixing_task_types_fails_at_load_naming_the_key(
    overrides: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings("local", overrides)


def test_each_task_type_gets_its_documented_defaults() -> None:
    wine, diabetes = _settings("wine"), _settings("diabetes")
    assert (wine.gate.primary_metric, wine.drift.decay_metric) == ("log_loss", "log_loss")
    assert wine.gate.baseline is not None and wine.gate.baseline.estimator.endswith("Classifier")
    assert (diabetes.gate.primary_metric, diabetes.drift.decay_metric) == ("rmse", "rmse")
    assert diabetes.model.estimator == "sklearn.ensemble.HistGradientBoostingRegressor"
    assert diabetes.gate.baseline is not None and diabetes.gate.baseline.min_relative_change
    # binary stays as it was; a positive label of any type takes the target's type
    assert load_settings("local").dataset.positive_label == 1
    assert _settings("breast_cancer").dataset.positive_label == "malignant"
    churn = _settings("churn", **{"dataset.positive_label": "1"})
    assert churn.dataset.positive_label == 1


def test_binary_with_a_text_target_trains_on_its_positive_label() -> None:
    settings = _settings("breast_cancer")
    split = split_frame(_frame("breast_cancer"), settings.dataset, settings.split)
    assert set(split.y_train) == {0, 1}
    frame = _frame("breast_cancer")
    wrong = settings.dataset.model_copy(update={"positive_label": "Malignant"})
    with pytest.raises(TargetError, match="positive_label 'Malignant' is not one of"):
        split_frame(frame, wrong, settings.split)


def test_a_multiclass_target_configured_as_binary_says_so() -> None:
    settings = _settings("breast_cancer")
    wine = _frame("wine").rename(columns={"cultivar": "diagnosis"})
    dataset = settings.dataset.model_copy(
        update={"columns": {**settings.dataset.columns}}  # same contract, other target values
    )
    frame = _frame("breast_cancer").assign(diagnosis=wine["diagnosis"].head(600).to_numpy())
    with pytest.raises(TargetError, match=r"3 distinct values .* set dataset\.task: multiclass"):
        split_frame(frame, dataset, settings.split)


def test_multiclass_evidence_reports_a_class_never_seen_in_training() -> None:
    settings = _settings("wine", **{"gate.bootstrap.resamples": 50})
    frame = _frame("wine", rows=400)
    last_day = frame["observed_at"].dt.date == frame["observed_at"].dt.date.max()
    train_rows = ~last_day & (frame["cultivar"] != "class_2")
    frame = frame[train_rows | last_day].reset_index(drop=True)
    split = split_frame(frame, settings.dataset, settings.split)
    candidate = fit_pipeline(split, settings.dataset, settings.model)
    evidence = measure_evidence(candidate, candidate, split, settings, champion_version="1")
    assert evidence.unseen_classes == ["class_2"]
    assert evidence.classes == ["class_0", "class_1", "class_2"]
    decision = decide_gate(evidence, settings.gate)
    assert "'class_2' appear in the evaluation rows but never in training" in decision.reason
    assert evidence.improvement is not None and evidence.improvement.point == 0.0


def test_multiclass_and_regression_metrics() -> None:
    classes = ("a", "b", "c")
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    y = np.array(["a", "b", "c", "b"])
    m = score_metrics(y, proba, task="multiclass", classes=classes)
    assert m["accuracy"] == 0.75
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.8, 0.6, 0.4])))
    unseen = score_metrics(np.array(["a", "z"]), proba[:2], task="multiclass", classes=classes)
    assert unseen["log_loss"] > 5  # a class the model never saw costs it, it is not dropped
    r = score_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]), task="regression")
    assert r["rmse"] == pytest.approx(np.sqrt(4 / 3)) and r["mae"] == pytest.approx(2 / 3)
    # rmse gains and decay are relative: 10% better / 20% worse whatever the units
    y_big = np.arange(100.0)
    interval = paired_bootstrap(
        y_big, y_big + 9.0, y_big + 10.0, "rmse", resamples=20, confidence=0.9, seed=0
    )
    assert interval.point == pytest.approx(0.1)
    assert decay(10.0, 12.0, "rmse") == pytest.approx(0.2)


def test_regression_gate_judges_the_baseline_relatively() -> None:
    settings = _settings("diabetes", **{"gate.bootstrap.resamples": 0})
    split = split_frame(_frame("diabetes"), settings.dataset, settings.split)
    good = fit_pipeline(split, settings.dataset, settings.model)
    decision = decide_gate(measure_evidence(good, None, split, settings), settings.gate)
    assert decision.passed, decision.reason
    check = next(c for c in decision.checks if c.name == "beats_baseline_relative")
    assert check.passed and check.value > 0.05


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "diabetes"])
def test_scoring_and_realised_labels_per_task(name: str) -> None:
    settings = _settings(name)
    frame = _frame(name)
    split = split_frame(frame, settings.dataset, settings.split)
    model = fit_pipeline(split, settings.dataset, settings.model)
    outputs = predict_scores(model, frame, settings.dataset, chunk_rows=250)
    columns = {k: v.to_numpy(zero_copy_only=False) for k, v in output_columns(outputs).items()}
    predictions = frame.drop(columns=[settings.dataset.target]).assign(**columns)
    labels = frame[["row_id", settings.dataset.target]]
    realised = realised_performance(
        predictions,
        labels,
        dataset=settings.dataset,
        score_column="score",
        slice_columns=["segment"],
        min_slice_rows=10,
        min_precision=0.5,
    )
    assert realised.labelled == len(frame)
    assert settings.gate.primary_metric in realised.metrics
    assert {s.value for s in realised.slices} == {"north", "south"}
