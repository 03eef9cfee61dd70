"""Drift: the retrain policy as a table, and Evidently's scores on hand-built frames."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from driftloop.configs.settings import DriftSettings
from driftloop.tasks.adapters import drift
from driftloop.tasks.adapters.drift import (
    ColumnDrift,
    DriftMeasurement,
    DriftMeasurementError,
    is_drift,
    measure_drift,
)

NUMERIC = [
    "age",
    "income",
    "loan_amount",
    "term_months",
    "interest_rate",
    "credit_score",
    "debt_to_income",
    "num_open_accounts",
    "employment_years",
]
CATEGORICAL = ["home_ownership", "purpose", "region"]
SHIFTED_NUMERIC = ["income", "interest_rate", "credit_score", "debt_to_income"]
SHIFTED_CATEGORICAL = ["home_ownership"]
ROWS = 3000


def make_frame(rows: int, seed: int, *, shifted: bool = False) -> pd.DataFrame:
    """Loan-like features; `shifted` moves four numeric means by ~1 sd and one category mix."""
    rng = np.random.default_rng(seed)
    s = 1.0 if shifted else 0.0
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "income": rng.lognormal(10.8 + 0.5 * s, 0.5, rows),
            "loan_amount": rng.gamma(2.0, 8000.0, rows) + 500,
            "term_months": rng.choice([12, 24, 36, 60, 84], rows),
            "interest_rate": rng.normal(12 + 3 * s, 3, rows),
            "credit_score": rng.normal(680 - 60 * s, 60, rows),
            "debt_to_income": rng.beta(2 + 3 * s, 5, rows) * 2,
            "num_open_accounts": rng.poisson(8, rows),
            "employment_years": rng.exponential(6, rows),
            "home_ownership": rng.choice(
                ["RENT", "OWN", "MORTGAGE", "OTHER"],
                rows,
                p=[0.7, 0.05, 0.15, 0.1] if shifted else [0.4, 0.2, 0.35, 0.05],
            ),
            "purpose": rng.choice(["debt_consolidation", "credit_card", "car", "other"], rows),
            "region": rng.choice(["north", "south", "east", "west"], rows),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "income"] = np.nan
    frame.index = pd.RangeIndex(1000, 1000 + rows)  # not 0-based: sampling must not care
    return frame


# --- is_drift: each method's direction ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "score", "threshold", "expected"),
    [
        ("wasserstein", 0.1, 0.1, True),  # distances: drift at score >= threshold
        ("wasserstein", 0.0999, 0.1, False),
        ("jensenshannon", 0.5, 0.1, True),
        ("psi", 0.01, 0.1, False),
        ("ks", 0.05, 0.05, True),  # Evidently's ks: drift at p <= threshold
        ("ks", 0.5, 0.05, False),
        ("chisquare", 0.05, 0.05, False),  # Evidently's chisquare: drift at p < threshold
        ("chisquare", 0.01, 0.05, True),
        ("wasserstein", math.nan, 0.1, False),
    ],
)
def test_is_drift_follows_each_methods_direction(
    method: str, score: float, threshold: float, expected: bool
) -> None:
    assert is_drift(method, score, threshold) is expected


def test_is_drift_rejects_unknown_methods() -> None:
    with pytest.raises(ValueError, match="unknown drift method 'kl_div'"):
        is_drift("kl_div", 0.2, 0.1)


# --- measure_drift: real Evidently on small frames ---------------------------------------------


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make_frame(ROWS, seed=1)


@pytest.fixture(scope="module")
def same_current() -> pd.DataFrame:
    return make_frame(ROWS, seed=2)


@pytest.fixture(scope="module")
def shifted_current() -> pd.DataFrame:
    return make_frame(ROWS, seed=3, shifted=True)


def measure(
    reference: pd.DataFrame, current: pd.DataFrame, settings: DriftSettings | None = None
) -> DriftMeasurement:
    return measure_drift(
        reference,
        current,
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        settings=settings or DriftSettings(key_features=[]),
    )


@pytest.fixture(scope="module")
def shifted(reference: pd.DataFrame, shifted_current: pd.DataFrame) -> DriftMeasurement:
    return measure(reference, shifted_current)


def test_same_distribution_has_no_drift(
    reference: pd.DataFrame, same_current: pd.DataFrame
) -> None:
    result = measure(reference, same_current)
    assert [c.column for c in result.columns] == NUMERIC + CATEGORICAL
    assert not any(c.drifted for c in result.columns)
    # Sampling noise at 3000 rows stays well under the threshold (max ~0.06 of 0.1 here).
    for c in result.columns:
        assert c.score < 0.7 * c.threshold, c


def test_shifted_columns_and_only_they_drift(shifted: DriftMeasurement) -> None:
    drifted = {c.column for c in shifted.columns if c.drifted}
    assert drifted == set(SHIFTED_NUMERIC + SHIFTED_CATEGORICAL)
    assert all(c.score >= 2 * c.threshold for c in shifted.columns if c.drifted)
    by_name = {c.column: c for c in shifted.columns}
    assert by_name["income"].kind == "numeric"
    assert by_name["income"].method == "wasserstein"
    assert by_name["home_ownership"].kind == "categorical"
    assert by_name["home_ownership"].method == "jensenshannon"
    assert all(c.threshold == 0.1 and c.note == "" for c in shifted.columns)
    assert (shifted.reference_rows, shifted.current_rows) == (ROWS, ROWS)


def test_html_is_a_full_evidently_report(shifted: DriftMeasurement) -> None:
    head = shifted.html[:2000].lower()
    assert "<html" in head
    assert shifted.html.rstrip().lower().endswith("</html>")
    # One pass/fail drift test per column is the report's overview.
    for name in NUMERIC + CATEGORICAL:
        assert f"Value Drift for column {name}" in shifted.html
    assert "Data drift detected" in shifted.html


@pytest.mark.parametrize("sample_size", [500, 100_000], ids=["sampled", "whole"])
def test_inputs_are_not_mutated(
    reference: pd.DataFrame, shifted_current: pd.DataFrame, sample_size: int
) -> None:
    ref_before, cur_before = reference.copy(deep=True), shifted_current.copy(deep=True)
    measure(reference, shifted_current, DriftSettings(sample_size=sample_size))
    pd.testing.assert_frame_equal(reference, ref_before)
    pd.testing.assert_frame_equal(shifted_current, cur_before)


def test_sampling_keeps_the_decision(
    reference: pd.DataFrame, shifted_current: pd.DataFrame, shifted: DriftMeasurement
) -> None:
    settings = DriftSettings(sample_size=1000, key_features=[])
    sampled = measure(reference, shifted_current, settings)
    assert [c.drifted for c in sampled.columns] == [c.drifted for c in shifted.columns]
    # Row counts are the inputs' (min_rows is about how much data arrived), not the sample's.
    assert (sampled.reference_rows, sampled.current_rows) == (ROWS, ROWS)
    # Sampling is seeded: the same settings give the same scores.
    again = measure(reference, shifted_current, settings)
    assert [c.score for c in again.columns] == [c.score for c in sampled.columns]


@pytest.mark.parametrize(
    ("numeric_method", "categorical_method", "threshold"),
    [("ks", "chisquare", 0.05), ("psi", "psi", 0.1), ("jensenshannon", "jensenshannon", 0.1)],
)
def test_other_methods_agree_with_evidentlys_verdict(
    reference: pd.DataFrame,
    shifted_current: pd.DataFrame,
    numeric_method: str,
    categorical_method: str,
    threshold: float,
) -> None:
    """measure_drift raises if our direction rule and Evidently's own test status disagree."""
    settings = DriftSettings(
        numeric_method=numeric_method,
        categorical_method=categorical_method,
        column_threshold=threshold,
    )
    result = measure(reference, shifted_current, settings)
    drifted = {c.column for c in result.columns if c.drifted}
    assert set(SHIFTED_NUMERIC + SHIFTED_CATEGORICAL) <= drifted
    assert {c.method for c in result.columns} == {numeric_method, categorical_method}


def test_a_disagreement_with_evidentlys_verdict_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, reference: pd.DataFrame, shifted_current: pd.DataFrame
) -> None:
    """Proves the verdict check reads Evidently's tests: invert one rule and it must fire."""
    monkeypatch.setitem(
        drift._DRIFT_RULES, "wasserstein", lambda score, threshold: score < threshold
    )
    with pytest.raises(DriftMeasurementError, match="Evidently says drifted="):
        measure(reference, shifted_current)


def test_per_column_thresholds_are_used(
    reference: pd.DataFrame, shifted_current: pd.DataFrame
) -> None:
    settings = DriftSettings(column_thresholds={"income": 50.0})
    result = measure(reference, shifted_current, settings)
    income = next(c for c in result.columns if c.column == "income")
    assert income.threshold == 50.0
    assert not income.drifted


def test_missing_and_empty_columns_do_not_crash(
    reference: pd.DataFrame, same_current: pd.DataFrame
) -> None:
    ref = reference.assign(region=None)
    cur = same_current.drop(columns=["employment_years"]).assign(income=np.nan, region=None)
    result = measure(ref, cur)
    by_name = {c.column: c for c in result.columns}
    assert by_name["employment_years"].drifted
    assert by_name["employment_years"].note == "missing from current data"
    assert by_name["income"].drifted
    assert by_name["income"].note == "no values in current data"
    assert math.isnan(by_name["income"].score)
    # Never populated on either side: nothing to compare, and not a reason to retrain every run.
    assert not by_name["region"].drifted
    assert by_name["region"].note == "no values in reference or current data"
    assert not any(by_name[c].drifted for c in ["age", "purpose", "credit_score"])


def test_empty_current_batch_is_too_few_rows(reference: pd.DataFrame) -> None:
    result = measure(reference, reference.iloc[0:0])
    assert result.current_rows == 0
    assert all(c.drifted and c.note == "no values in current data" for c in result.columns)
    assert "<html" in result.html


def test_a_column_listed_as_both_kinds_is_rejected(reference: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="both numeric and categorical"):
        measure_drift(
            reference, reference, numeric=["age"], categorical=["age"], settings=DriftSettings()
        )


def test_evidently_telemetry_is_turned_off(
    monkeypatch: pytest.MonkeyPatch, reference: pd.DataFrame
) -> None:
    monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    measure_drift(reference, reference, numeric=["age"], categorical=[], settings=DriftSettings())
    assert os.environ.get("DO_NOT_TRACK")


def test_importing_the_module_does_not_import_evidently() -> None:
    code = "import sys, driftloop.tasks.adapters.drift; print('evidently' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


# --- artifact and serialisation ----------------------------------------------------------------


def test_column_drift_with_nan_survives_json() -> None:
    original = ColumnDrift(
        column="x", kind="numeric", method="ks", score=math.nan, threshold=0.05, drifted=True
    )
    restored = ColumnDrift.model_validate_json(original.model_dump_json())
    assert math.isnan(restored.score)
    assert restored.drifted
