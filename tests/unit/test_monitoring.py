"""Monitoring signals from precomputed statistics: size-robust, explicit about what is missing."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from driftloop.configs.settings import load_settings
from driftloop.data.generate import generate_day, labels_of
from driftloop.tasks.core.monitoring import (
    FeatureStats,
    MonitoringError,
    Quality,
    ReferenceStats,
    assess,
    column_stats,
    compare,
    decay,
    distance,
    realised_performance,
    window_stats,
)

SETTINGS = load_settings("local")
DATASET = SETTINGS.dataset
DRIFT = SETTINGS.drift
DAY = date(2026, 11, 1)


def stats(frame: pd.DataFrame, score: np.ndarray | None = None):
    if score is not None:
        frame = frame.assign(score=score)
    return window_stats(
        frame,
        numeric=DATASET.numeric_features,
        categorical=DATASET.categorical_features,
        quantiles=DRIFT.quantiles,
        score_column="score" if score is not None else None,
    )


@pytest.fixture(scope="module")
def quiet_pair():
    """Two independent days of the stable world at 100k rows: nothing changed."""
    return generate_day(DAY, 100_000, seed=1), generate_day(DAY, 100_000, seed=2)


def test_large_identical_worlds_do_not_drift(quiet_pair) -> None:
    """A p-value test would flag something at 100k rows; distances stay far below 0.1."""
    ref, cur = (stats(f) for f in quiet_pair)
    scores = compare(ref, cur, comparison="skew", settings=DRIFT, columns=DATASET.feature_columns)
    assert len(scores) == len(DATASET.feature_columns)
    assert not [s.feature for s in scores if s.drifted]
    assert max(s.score for s in scores) < 0.03


def test_covariate_shift_drifts_the_features_it_moves() -> None:
    ref = stats(generate_day(DAY, 20_000))
    cur = stats(generate_day(DAY, 20_000, scenario="covariate_shift", seed=3))
    scores = {s.feature: s for s in compare(
        ref, cur, comparison="skew", settings=DRIFT, columns=DATASET.feature_columns
    )}  # fmt: skip
    for moved in ("income", "credit_score", "home_ownership", "purpose"):
        assert scores[moved].drifted, scores[moved]
    for stable in ("age", "region"):
        assert not scores[stable].drifted, scores[stable]


@pytest.mark.parametrize("method", ["wasserstein", "psi", "jensenshannon"])
def test_each_distance_is_zero_on_itself_and_grows_with_the_shift(method: str) -> None:
    rng = np.random.default_rng(0)
    base = pd.Series(rng.normal(0, 1, 50_000))
    a = column_stats(base, "numeric", 200)
    small = column_stats(base + 0.2, "numeric", 200)
    large = column_stats(base + 1.0, "numeric", 200)
    assert distance(a, a, method) == pytest.approx(0.0, abs=1e-9)
    assert 0 < distance(a, small, method) < distance(a, large, method)


def test_normalised_wasserstein_reads_in_reference_stds() -> None:
    rng = np.random.default_rng(0)
    base = pd.Series(rng.normal(0, 5, 100_000))
    shifted = column_stats(base + 2.5, "numeric", 200)  # half a std
    assert distance(column_stats(base, "numeric", 200), shifted, "wasserstein") == pytest.approx(
        0.5, rel=0.02
    )


def test_categorical_distances_use_frequencies_and_new_categories_count() -> None:
    ref = column_stats(pd.Series(["a"] * 50 + ["b"] * 50), "categorical", 200)
    same = column_stats(pd.Series(["b", "a"] * 500), "categorical", 200)
    new = column_stats(pd.Series(["a"] * 50 + ["c"] * 50), "categorical", 200)
    assert distance(ref, same, "jensenshannon") == pytest.approx(0.0, abs=1e-9)
    assert distance(ref, new, "jensenshannon") > 0.5
    assert distance(ref, new, "psi") > 1.0


def test_p_value_methods_are_refused_with_the_key_to_change() -> None:
    a = column_stats(pd.Series([1.0, 2.0, 3.0]), "numeric", 10)
    with pytest.raises(MonitoringError, match=r"drift\.numeric_method"):
        distance(a, a, "ks")


def test_a_column_missing_or_empty_on_one_side_is_drift_and_says_why() -> None:
    ref = stats(generate_day(DAY, 2000))
    frame = generate_day(DAY, 2000, seed=5).drop(columns=["income"])
    frame["credit_score"] = np.nan
    cur = stats(frame)
    scores = {s.feature: s for s in compare(
        ref, cur, comparison="skew", settings=DRIFT, columns=DATASET.feature_columns
    )}  # fmt: skip
    assert scores["income"].drifted and "no values in current data" in scores["income"].note
    assert scores["credit_score"].drifted and math.isnan(scores["credit_score"].score)


def _reference(frame: pd.DataFrame, score: np.ndarray, roc_auc: float) -> ReferenceStats:
    return ReferenceStats(
        model_name="m",
        version="4",
        snapshot_uri="mem://",
        stats=stats(frame, score),
        metrics={"roc_auc": roc_auc},
    )


def test_realised_performance_joins_by_id_and_reports_what_did_not_join() -> None:
    frame = generate_day(DAY, 3000)
    rng = np.random.default_rng(0)
    predictions = frame.drop(columns=["default"]).assign(
        score=np.clip(frame["default"] * 0.6 + rng.random(len(frame)) * 0.4, 0, 1)
    )
    labels = labels_of(frame).iloc[:2500]
    stray = pd.DataFrame({"loan_id": ["L19990101-0000001", "nope"], "default": [0, 1]})
    realised = realised_performance(
        predictions,
        pd.concat([labels, stray], ignore_index=True),
        dataset=DATASET,
        score_column="score",
        slice_columns=["region"],
        min_slice_rows=100,
        min_precision=0.5,
    )
    assert (realised.predictions, realised.labelled, realised.pending) == (3000, 2500, 500)
    assert realised.unmatched_labels == 2 and "nope" in realised.unmatched_examples
    assert realised.metrics["roc_auc"] > 0.9
    assert {s.value for s in realised.slices} >= {"north", "south", "east", "west"}


def test_labels_without_the_target_column_name_the_columns_needed() -> None:
    frame = generate_day(DAY, 50)
    with pytest.raises(MonitoringError, match="'loan_id' and 'default'"):
        realised_performance(
            frame.assign(score=0.5),
            frame[["loan_id"]],
            dataset=DATASET,
            score_column="score",
            slice_columns=[],
            min_slice_rows=1,
            min_precision=0.5,
        )


@pytest.mark.parametrize(
    ("metric", "reference", "realised", "expected"),
    [("roc_auc", 0.80, 0.70, 0.10), ("roc_auc", 0.80, 0.85, -0.05), ("log_loss", 0.40, 0.50, 0.10)],
)
def test_decay_is_positive_when_worse_whatever_the_direction(
    metric, reference, realised, expected
) -> None:
    assert decay(reference, realised, metric) == pytest.approx(expected)


def test_assess_names_every_signal_and_breaches_only_the_right_ones() -> None:
    ref_frame = generate_day(DAY, 5000)
    reference = _reference(ref_frame, np.full(len(ref_frame), 0.2), roc_auc=0.8)
    cur_frame = generate_day(DAY, 5000, seed=9)
    cur_frame.loc[: len(cur_frame) // 2, "employment_years"] = np.nan  # a feed bug: nulls
    current = stats(cur_frame, np.full(len(cur_frame), 0.2))
    result = assess(
        reference,
        current,
        previous=None,
        realised=None,
        quality=Quality(rows_received=5500, rows_quarantined=500),
        settings=DRIFT,
        features=DATASET.feature_columns,
    )
    assert set(result.signals) == {
        "feature_drift",
        "prediction_drift",
        "production_drift",
        "data_quality",
        "performance_decay",
    }
    dq = result.signals["data_quality"]
    assert (
        dq.breached and "employment_years" in dq.features and "quarantine rate 0.091" in dq.detail
    )
    assert not result.signals["prediction_drift"].breached
    assert not result.signals["production_drift"].judged, "no previous window"
    assert not result.signals["performance_decay"].judged
    assert "no labels" in result.signals["performance_decay"].detail


def test_too_few_rows_are_not_judged() -> None:
    frame = generate_day(DAY, 5000)
    reference = _reference(frame, np.full(len(frame), 0.2), roc_auc=0.8)
    tiny = generate_day(DAY, 50, scenario="covariate_shift")
    result = assess(
        reference,
        stats(tiny, np.full(len(tiny), 0.9)),
        previous=None,
        realised=None,
        quality=None,
        settings=DRIFT,
        features=DATASET.feature_columns,
    )
    assert not result.breached()
    assert "not judged" in result.signals["feature_drift"].detail


def test_statistics_survive_a_json_round_trip() -> None:
    frame = generate_day(DAY, 1000)
    ref = _reference(frame, np.linspace(0, 1, len(frame)), roc_auc=0.8)
    again = ReferenceStats.model_validate_json(ref.model_dump_json())
    assert again == ref
    assert isinstance(again.stats.features["region"], FeatureStats)


def test_realised_metrics_cover_only_the_rows_the_baseline_version_scored() -> None:
    frame = generate_day(DAY, 2000)
    predictions = frame.drop(columns=["default"]).assign(
        score=frame["default"] * 0.5 + 0.25, model_version=["1"] * 800 + ["2"] * 1200
    )
    realised = realised_performance(
        predictions,
        labels_of(frame),
        dataset=DATASET,
        score_column="score",
        slice_columns=[],
        min_slice_rows=1,
        min_precision=0.5,
        only_version="2",
    )
    assert (realised.predictions, realised.labelled, realised.pending) == (1200, 1200, 0)
    assert realised.unmatched_labels == 0, "v1's labels matched a prediction, just not v2's"
