"""The demo data generator: reproducible, contract-conforming, and each scenario shifts what it
claims (and only that), measured the way the drift checks and the gate measure it."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from driftloop.configs.settings import DatasetSettings, load_settings
from driftloop.data.generate import (
    SCENARIOS,
    SEASONAL,
    UNKNOWN_CATEGORY,
    Seasonal,
    generate_day,
    generate_days,
    main,
    season_of,
    write_batches,
)
from driftloop.tasks.adapters import storage

START = date(2026, 11, 1)
DRIFT = date(2026, 11, 4)


@pytest.fixture(scope="module")
def contract() -> DatasetSettings:
    return load_settings("local").dataset


@pytest.fixture(scope="module")
def stable() -> pd.DataFrame:
    """Four days of the stable world (8,000 rows)."""
    return pd.concat([f for _, f in generate_days(START, 4, 2000)], ignore_index=True)


def after(scenario: str, rows: int = 2000, days: int = 2) -> pd.DataFrame:
    """Days on and after the drift start, for a scenario."""
    frames = generate_days(DRIFT, days, rows, scenario=scenario, drift_start=DRIFT)
    return pd.concat([f for _, f in frames], ignore_index=True)


def violations(frame: pd.DataFrame, contract: DatasetSettings) -> list[str]:
    """Every way the frame breaks the dataset contract of base.yaml."""
    found: list[str] = []
    if list(frame.columns) != list(contract.columns):
        found.append(f"columns {list(frame.columns)} != {list(contract.columns)}")
        return found
    for name, spec in contract.columns.items():
        col = frame[name]
        values = col.dropna()
        kind = {
            "string": pd.api.types.is_object_dtype,
            "category": pd.api.types.is_object_dtype,
            "int": pd.api.types.is_integer_dtype,
            "float": pd.api.types.is_float_dtype,
            "datetime": lambda s: str(s.dtype) == "datetime64[ns, UTC]",
        }[spec.dtype]
        if not kind(col):
            found.append(f"{name}: dtype {col.dtype} is not {spec.dtype}")
        if spec.dtype in ("string", "category") and not all(type(v) is str for v in values):
            found.append(f"{name}: not all values are plain str")
        null_share = col.isna().mean()
        if not spec.nullable and null_share > 0:
            found.append(f"{name}: {col.isna().sum()} nulls in a non-nullable column")
        if null_share > spec.max_null_fraction:
            found.append(f"{name}: null share {null_share:.3f} > {spec.max_null_fraction}")
        if spec.min is not None and (values < spec.min).any():
            found.append(f"{name}: values below {spec.min}")
        if spec.max is not None and (values > spec.max).any():
            found.append(f"{name}: values above {spec.max}")
        if spec.categories is not None and not set(values) <= set(spec.categories):
            found.append(f"{name}: unknown categories {set(values) - set(spec.categories)}")
        if spec.unique and col.duplicated().any():
            found.append(f"{name}: {col.duplicated().sum()} duplicates")
    return found


def normed_wasserstein(ref: pd.Series, cur: pd.Series) -> float:
    """Evidently's numeric drift score: Wasserstein distance in units of the reference std."""
    ref, cur = ref.dropna(), cur.dropna()
    return float(wasserstein_distance(ref, cur) / max(float(np.std(ref)), 1e-3))


def js_distance(ref: pd.Series, cur: pd.Series) -> float:
    """Evidently's categorical drift score: Jensen-Shannon distance of category shares."""
    cats = sorted(set(ref.dropna()) | set(cur.dropna()))
    p = ref.value_counts(normalize=True).reindex(cats, fill_value=0.0)
    q = cur.value_counts(normalize=True).reindex(cats, fill_value=0.0)
    return float(jensenshannon(p, q))


def drift_scores(ref: pd.DataFrame, cur: pd.DataFrame, contract: DatasetSettings) -> dict:
    scores = {c: normed_wasserstein(ref[c], cur[c]) for c in contract.numeric_features}
    scores.update({c: js_distance(ref[c], cur[c]) for c in contract.categorical_features})
    return scores


def fit_logistic(frame: pd.DataFrame, contract: DatasetSettings) -> Pipeline:
    numeric, categorical = contract.numeric_features, contract.categorical_features
    prep = make_column_transformer(
        (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        (
            make_pipeline(
                SimpleImputer(strategy="constant", fill_value="missing"),
                OneHotEncoder(handle_unknown="ignore"),
            ),
            categorical,
        ),
    )
    model = make_pipeline(prep, LogisticRegression(max_iter=1000))
    return model.fit(frame[numeric + categorical], frame[contract.target])


def auc(model: Pipeline, frame: pd.DataFrame, contract: DatasetSettings) -> float:
    features = contract.numeric_features + contract.categorical_features
    return float(roc_auc_score(frame[contract.target], model.predict_proba(frame[features])[:, 1]))


# ---------------------------------------------------------------- reproducibility


def test_same_arguments_give_identical_frames() -> None:
    for scenario in SCENARIOS:
        a = generate_day(START, 700, scenario=scenario, seed=5)
        b = generate_day(START, 700, scenario=scenario, seed=5)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert not generate_day(START, 700, seed=5).equals(generate_day(START, 700, seed=6))


def test_a_single_day_is_reproducible_alone() -> None:
    days = dict(generate_days(START, 5, 400, scenario="prior_shift", drift_start=DRIFT, seed=2))
    for day in (START + timedelta(days=2), START + timedelta(days=4)):
        alone = generate_day(day, 400, scenario="prior_shift", drift_start=DRIFT, seed=2)
        pd.testing.assert_frame_equal(days[day], alone, check_exact=True)


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s != "none"])
def test_days_before_drift_start_are_byte_identical_to_none(scenario: str, tmp_path: Path) -> None:
    none = dict(generate_days(START, 5, 300, seed=1))
    drifted = dict(generate_days(START, 5, 300, scenario=scenario, drift_start=DRIFT, seed=1))
    for day in none:
        if day < DRIFT:
            a = storage.write_frame(none[day], str(tmp_path / f"none-{day}.parquet"))
            b = storage.write_frame(drifted[day], str(tmp_path / f"{scenario}-{day}.parquet"))
            assert storage.sha256_of(a) == storage.sha256_of(b)
        else:
            assert not none[day].equals(drifted[day]), f"{scenario} did not change {day}"


def test_no_drift_start_applies_the_scenario_from_the_first_day() -> None:
    with_start = generate_day(START, 300, scenario="covariate_shift", drift_start=START)
    without = generate_day(START, 300, scenario="covariate_shift")
    pd.testing.assert_frame_equal(with_start, without)
    assert not without.equals(generate_day(START, 300))


def test_unknown_scenario_names_itself_and_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="'sideways'") as info:
        generate_day(START, 10, scenario="sideways")
    assert all(s in str(info.value) for s in SCENARIOS)
    with pytest.raises(ValueError, match="sideways"):
        generate_days(START, 2, 10, scenario="sideways")


def test_bad_sizes_and_seeds_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_rows"):
        generate_day(START, 0)
    with pytest.raises(ValueError, match="seed"):
        generate_day(START, 10, seed=-1)


# ---------------------------------------------------------------- the stable world


def test_stable_world_meets_the_contract(stable: pd.DataFrame, contract: DatasetSettings) -> None:
    assert violations(stable, contract) == []


def test_stable_world_has_the_designed_shape(stable: pd.DataFrame) -> None:
    assert 0.15 <= stable["default"].mean() <= 0.20
    null_shares = stable[["income", "credit_score", "employment_years", "region"]].isna().mean()
    expected = pd.Series(
        {"income": 0.05, "credit_score": 0.05, "employment_years": 0.08, "region": 0.03}
    )
    assert (null_shares - expected).abs().max() < 0.015
    assert set(stable["term_months"]) == {12, 24, 36, 48, 60, 72}
    for column, categories in {
        "home_ownership": 4,
        "purpose": 7,
        "region": 4,
    }.items():
        assert stable[column].nunique() == categories


def test_timestamps_fall_inside_their_day_in_order() -> None:
    for day, frame in generate_days(START, 3, 500):
        times = frame["event_time"]
        assert str(times.dt.tz) == "UTC"
        assert (times.dt.date == day).all()
        assert times.is_monotonic_increasing


def test_ids_are_unique_across_days_and_name_their_day() -> None:
    frames = [f for _, f in generate_days(START, 4, 600)]
    ids = pd.concat([f["loan_id"] for f in frames])
    assert ids.is_unique
    assert frames[0]["loan_id"].iloc[0] == "L20261101-0000001"
    assert all(re.fullmatch(r"L2026110[1-4]-\d{7}", i) for i in ids)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_small_days_work_for_every_scenario(scenario: str) -> None:
    for rows in (1, 7, 50):
        frame = generate_day(START, rows, scenario=scenario)
        assert len(frame) == rows
        assert frame["default"].isin([0, 1]).all()


def test_a_boosted_model_learns_it_but_not_perfectly(
    stable: pd.DataFrame, contract: DatasetSettings
) -> None:
    test = after("none", rows=4000, days=1)
    features = contract.numeric_features + contract.categorical_features

    def prepared(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[features].copy()
        for c in contract.categorical_features:
            out[c] = out[c].fillna("missing").astype("category")
        return out

    model = HistGradientBoostingClassifier(
        max_iter=150, learning_rate=0.08, categorical_features="from_dtype", random_state=7
    )
    # One OpenMP thread: on a busy machine spinning threads make this 30x slower.
    with threadpool_limits(limits=1):
        model.fit(prepared(stable), stable["default"])
        score = roc_auc_score(test["default"], model.predict_proba(prepared(test))[:, 1])
    assert 0.75 <= score <= 0.85


def test_stable_days_do_not_look_drifted_to_each_other(contract: DatasetSettings) -> None:
    days = [f for _, f in generate_days(START, 4, 2000)]
    for ref, cur in itertools.pairwise(days):
        scores = drift_scores(ref, cur, contract)
        assert max(scores.values()) < 0.1, scores
        assert np.mean(list(scores.values())) < 0.05, scores


# ---------------------------------------------------------------- scenarios

SHIFTED_NUMERIC = [
    "income",
    "loan_amount",
    "interest_rate",
    "credit_score",
    "debt_to_income",
    "employment_years",
]
SHIFTED_CATEGORICAL = ["home_ownership", "purpose"]


def test_covariate_shift_moves_features_past_drift_thresholds(
    stable: pd.DataFrame, contract: DatasetSettings
) -> None:
    shifted = after("covariate_shift")
    scores = drift_scores(stable, shifted, contract)
    for column in SHIFTED_NUMERIC + SHIFTED_CATEGORICAL:
        assert scores[column] > 0.15, (column, scores[column])
    assert scores["age"] < 0.1 and scores["region"] < 0.1
    assert shifted["credit_score"].mean() < stable["credit_score"].mean() - 15
    assert shifted["income"].median() < 0.85 * stable["income"].median()
    assert shifted["debt_to_income"].mean() > stable["debt_to_income"].mean() + 0.05

    def share(frame: pd.DataFrame, column: str, value: str) -> float:
        return float((frame[column] == value).mean())

    assert share(shifted, "home_ownership", "RENT") > share(stable, "home_ownership", "RENT") + 0.1
    for purpose in ("small_business", "medical"):
        assert share(shifted, "purpose", purpose) > share(stable, "purpose", purpose) + 0.05
    assert violations(shifted, contract) == []


def test_covariate_shift_keeps_the_label_mechanism(
    stable: pd.DataFrame, contract: DatasetSettings
) -> None:
    model = fit_logistic(stable, contract)
    before, shifted = after("none", 4000, 1), after("covariate_shift", 4000, 1)
    features = contract.numeric_features + contract.categorical_features
    # The applicants got riskier, so more of them default...
    assert shifted["default"].mean() > before["default"].mean() + 0.08
    # ...and the old model saw it coming: still calibrated and as discriminating as before.
    predicted = model.predict_proba(shifted[features])[:, 1].mean()
    assert abs(predicted - shifted["default"].mean()) < 0.03
    assert auc(model, shifted, contract) > auc(model, before, contract) - 0.03


def test_prior_shift_raises_the_default_rate_only(
    stable: pd.DataFrame, contract: DatasetSettings
) -> None:
    shifted = after("prior_shift", rows=3000)
    assert shifted["default"].mean() > stable["default"].mean() + 0.1
    assert 0.35 <= shifted["default"].mean() <= 0.45
    # P(x | y) is unchanged: within each class the features look like the stable world.
    for label in (0, 1):
        ref = stable[stable["default"] == label]
        cur = shifted[shifted["default"] == label]
        scores = drift_scores(ref, cur, contract)
        assert max(scores.values()) < 0.1, (label, scores)
    assert violations(shifted, contract) == []


def test_concept_drift_keeps_features_and_breaks_the_old_model(
    stable: pd.DataFrame, contract: DatasetSettings
) -> None:
    features = [c for c in stable.columns if c != "default"]
    none_day = generate_day(DRIFT, 2000)
    concept_day = generate_day(DRIFT, 2000, scenario="concept_drift", drift_start=DRIFT)
    pd.testing.assert_frame_equal(none_day[features], concept_day[features], check_exact=True)
    assert (none_day["default"] != concept_day["default"]).mean() > 0.05

    old = fit_logistic(stable, contract)
    before, drifted = after("none", 4000, 1), after("concept_drift", 4000, 1)
    assert auc(old, drifted, contract) < auc(old, before, contract) - 0.05
    # The new concept is learnable: retraining on drifted days recovers.
    retrained = fit_logistic(
        after("concept_drift", 2000, 4).iloc[4000:].reset_index(drop=True), contract
    )
    drifted_holdout = after("concept_drift", 2000, 2)
    assert auc(retrained, drifted_holdout, contract) > auc(old, drifted_holdout, contract) + 0.1
    assert 0.1 <= drifted["default"].mean() <= 0.25


def test_corrupt_breaks_about_8_percent_of_rows_in_every_way(
    contract: DatasetSettings, tmp_path: Path
) -> None:
    clean = generate_day(DRIFT, 2000)
    bad = generate_day(DRIFT, 2000, scenario="corrupt", drift_start=DRIFT)
    changed = (clean.ne(bad) & ~(clean.isna() & bad.isna())).any(axis=1)
    assert 0.07 <= changed.mean() <= 0.09
    # Every untouched row is still valid, and the broken rows break the contract.
    assert violations(bad[~changed].reset_index(drop=True), contract) == []
    broken = bad[changed]
    assert len(violations(broken, contract)) >= 6

    required = [n for n, spec in contract.columns.items() if not spec.nullable]
    assert broken[required].isna().any(axis=1).sum() > 0
    assert set(broken["age"]) & {-5, 250}
    assert (broken["loan_amount"] < 0).any()
    categorical = broken[["home_ownership", "purpose", "region"]]
    assert (categorical == UNKNOWN_CATEGORY).any(axis=1).sum() > 0
    duplicated = bad["loan_id"].duplicated(keep=False)
    assert duplicated.sum() > 0 and not (duplicated & ~changed).any()
    assert (broken["event_time"] > pd.Timestamp(DRIFT, tz="UTC") + pd.DateOffset(years=30)).any()
    # Still one type per column, so raw files can be written as parquet.
    assert (bad.dtypes == clean.dtypes).all()
    uri = storage.write_frame(bad, str(tmp_path / "bad.parquet"))
    pd.testing.assert_frame_equal(storage.read_frame(uri), bad)


# ---------------------------------------------------------------- the seasonal scenario

WINTER, SUMMER = date(2026, 1, 15), date(2026, 7, 16)


def seasonal(day: date, rows: int = 1000, days: int = 1, seed: int = 0) -> pd.DataFrame:
    frames = generate_days(day, days, rows, scenario="seasonal", seed=seed)
    return pd.concat([f for _, f in frames], ignore_index=True)


def test_the_seasonal_parameters_are_the_documented_ones() -> None:
    """The policy defaults were tuned on exactly these: change them and retune (docs too)."""
    documented = Seasonal(
        period_days=365.25,
        trough_day=15,
        concept_amplitude=0.7,
        income_amplitude=0.12,
        credit_amplitude=15.0,
        rate_amplitude=0.8,
        rent_amplitude=0.4,
        purpose_amplitude=0.8,
        weekend_risk=0.25,
        weekend_rent=0.3,
        weekend_purpose=1.0,
        label_noise=0.1,
    )
    assert documented == SEASONAL
    assert season_of(WINTER) < 0.01 and season_of(SUMMER) > 0.99
    assert abs(season_of(date(2026, 4, 16)) - 0.5) < 0.03
    # a year later the season is back where it was
    assert abs(season_of(date(2027, 4, 16)) - season_of(date(2026, 4, 16))) < 0.01


def test_seasonal_applicants_move_with_the_day_of_the_year(contract: DatasetSettings) -> None:
    winter, summer = seasonal(WINTER, 2000, 2), seasonal(SUMMER, 2000, 2)
    assert violations(winter, contract) == [] and violations(summer, contract) == []
    assert summer["income"].median() < 0.92 * winter["income"].median()
    assert summer["credit_score"].mean() < winter["credit_score"].mean() - 8
    assert summer["interest_rate"].mean() > winter["interest_rate"].mean() + 0.3
    for purpose in ("home_improvement", "car"):
        assert (summer["purpose"] == purpose).mean() > (winter["purpose"] == purpose).mean()
    scores = drift_scores(winter, summer, contract)
    assert scores["income"] > 0.1, scores
    # Neighbouring weeks look alike: the change is gradual.
    week_later = seasonal(WINTER + timedelta(days=7), 2000, 2)
    assert drift_scores(winter, week_later, contract)["income"] < 0.06


def test_weekends_differ_from_weekdays() -> None:
    """A weekly cycle: Saturdays and Sundays default more, and rent more."""
    monday = date(2026, 3, 2)
    weekdays = seasonal(monday, 2000, 5)
    weekend = seasonal(monday + timedelta(days=5), 2000, 2)
    assert weekend["default"].mean() > weekdays["default"].mean() + 0.02
    rent = "home_ownership"
    assert (weekend[rent] == "RENT").mean() > (weekdays[rent] == "RENT").mean() + 0.03


def test_a_fixed_share_of_seasonal_labels_is_flipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Label noise has its own random stream: without it, the same rows and labels but
    those flipped."""
    import driftloop.data.generate as generate

    noisy = seasonal(SUMMER, 20_000)
    monkeypatch.setattr(generate, "SEASONAL", replace(SEASONAL, label_noise=0.0))
    clean = seasonal(SUMMER, 20_000)
    features = [c for c in noisy.columns if c != "default"]
    pd.testing.assert_frame_equal(noisy[features], clean[features])
    assert abs((noisy["default"] != clean["default"]).mean() - 0.1) < 0.01


def test_weeks_of_data_beat_an_old_champion_but_a_week_does_not_beat_months(
    contract: DatasetSettings,
) -> None:
    """What makes the scenario a test of the loop: the season moves enough that a champion
    trained in winter loses by summer to a retrain on the last six weeks, while a retrain on
    the drift window (a few days) or a week loses to a model trained on the last two months."""
    from driftloop.tasks.core.training import Split, features_and_target, fit_pipeline

    model = load_settings(
        "local", {"model.params.max_iter": 60, "model.params.learning_rate": 0.15}
    ).model
    start = date(2025, 11, 1)
    days = {d: f for d, f in generate_days(start, 300, 1000, scenario="seasonal", seed=3)}

    def frame(end: date, count: int) -> pd.DataFrame:
        return pd.concat([days[end - timedelta(days=i)] for i in range(count)], ignore_index=True)

    def fit(end: date, count: int) -> Pipeline:
        x, y = features_and_target(frame(end, count), contract)
        return fit_pipeline(Split(x, y, x[:0], y[:0]), contract, model)

    def score(model: Pipeline, end: date) -> float:
        x, y = features_and_target(frame(end + timedelta(days=7), 7), contract)
        return float(roc_auc_score(y, model.predict_proba(x)[:, 1]))

    with threadpool_limits(limits=1):
        winter = fit(date(2026, 1, 31), 60)
        june = date(2026, 6, 10)
        assert score(fit(june, 42), june) > score(winter, june) + 0.03
        gaps: dict[int, list[float]] = {3: [], 7: []}
        for end in (date(2026, 3, 1), date(2026, 5, 1), june, date(2026, 8, 1)):
            months = score(fit(end, 60), end)
            for count, found in gaps.items():
                found.append(months - score(fit(end, count), end))
        # the drift window (3 days) loses clearly, a week still loses on average
        assert np.mean(gaps[3]) > 0.008 and np.mean(gaps[7]) > 0.002, gaps


# ---------------------------------------------------------------- writing files


def test_write_batches_writes_each_day_into_the_lake(tmp_path: Path) -> None:
    uris = write_batches(str(tmp_path), "loans", START, 3, 250, scenario="corrupt", seed=4)
    lake = storage.Lake(str(tmp_path), "loans")
    assert uris == [lake.raw(START + timedelta(days=i)) for i in range(3)]
    for i, uri in enumerate(uris):
        expected = generate_day(START + timedelta(days=i), 250, scenario="corrupt", seed=4)
        pd.testing.assert_frame_equal(storage.read_frame(uri), expected)


def test_cli_writes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path / "lake")
    argv = ["--root", root, "--dataset", "loans", "--start", "2026-11-01", "--days", "3"]
    argv += ["--rows", "300", "--scenario", "covariate_shift", "--drift-day", "2026-11-03"]
    assert main([*argv, "--seed", "9", "--format", "csv"]) == 0
    lake = storage.Lake(root, "loans")
    expected = [lake.raw(START + timedelta(days=i), "csv") for i in range(3)]
    assert capsys.readouterr().out.split() == expected
    assert storage.list_uris(root) == expected
    first = storage.read_frame(expected[0])
    assert first["loan_id"].tolist() == generate_day(START, 300, seed=9)["loan_id"].tolist()

    with pytest.raises(SystemExit):
        main(["--root", root, "--start", "2026-11-01", "--scenario", "sideways"])
    with pytest.raises(SystemExit):
        main(["--root", root, "--start", "01/11/2026"])


def test_committed_sample_is_what_the_generator_makes(contract: DatasetSettings) -> None:
    sample_path = Path(__file__).resolve().parents[2] / "data" / "samples" / "loans_sample.csv"
    sample = storage.read_frame(str(sample_path))
    sample["event_time"] = pd.to_datetime(sample["event_time"], utc=True)
    expected = generate_day(START, 200, seed=0)
    expected["region"] = expected["region"].where(expected["region"].notna(), np.nan)
    pd.testing.assert_frame_equal(sample, expected)
    assert violations(sample, contract) == []


def test_labels_are_written_as_their_own_feed(tmp_path) -> None:
    """Delayed labels: id + outcome per day, joinable to that day's rows."""
    import datetime as dt

    from driftloop.data.generate import main
    from driftloop.tasks.adapters import storage

    assert main(["--root", str(tmp_path), "--start", "2026-11-01", "--days", "2", "--rows",
                 "300", "--labels"]) == 0  # fmt: skip
    lake = storage.Lake(str(tmp_path), "loans")
    for day in (dt.date(2026, 11, 1), dt.date(2026, 11, 2)):
        raw, labels = storage.read_frame(lake.raw(day)), storage.read_frame(lake.labels(day))
        assert list(labels.columns) == ["loan_id", "default"]
        assert labels.equals(raw[["loan_id", "default"]])
