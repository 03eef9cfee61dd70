"""Optional id and timestamp (derived columns) and feature selection in the data contract."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from driftloop.configs.settings import DatasetSettings, load_settings
from driftloop.tasks.adapters.validation import validate_frame
from driftloop.tasks.core.contract import DataContractError, derive_columns

DAY = date(2026, 11, 3)


def contract(**extra: Any) -> DatasetSettings:
    columns = {
        "x": {"dtype": "float", "nullable": False},
        "leak": {"dtype": "float"},
        "y": {"dtype": "int", "min": 0, "max": 1},
    }
    data = {"name": "anon", "target": "y", "columns": columns, **extra}
    return DatasetSettings.model_validate(data)


def test_a_dataset_without_id_or_timestamp_gets_derived_columns() -> None:
    dataset = contract()
    assert dataset.id_column == "row_id" and dataset.timestamp_column == "event_time"
    assert dataset.derived_columns == {"row_id": "row_id", "event_time": "batch_day"}
    assert dataset.feature_columns == ["x", "leak"]
    # the validated model round-trips (a flow parameter, a config digest)
    assert DatasetSettings.model_validate(dataset.model_dump()) == dataset


def test_a_declared_column_with_the_derived_name_must_be_named_as_the_role() -> None:
    with pytest.raises(ValueError, match=r"set 'dataset\.id_column: row_id'"):
        contract(columns={"row_id": {"dtype": "string"}, "y": {"dtype": "int"}})


def test_derived_ids_are_positional_and_stable() -> None:
    raw = pd.DataFrame({"x": [1.0, 1.0, 2.0], "leak": [0.0, 0.0, 1.0], "y": [0, 0, 1]})
    dataset = contract(time_zone="Europe/Paris")
    first = derive_columns(raw, dataset, digest="ab" * 32, day=DAY, source="f.csv")
    again = derive_columns(raw, dataset, digest="ab" * 32, day=DAY, source="f.csv")
    assert first["row_id"].tolist() == ["abababababababab-0", "abababababababab-1",
                                        "abababababababab-2"]  # fmt: skip
    assert first["row_id"].tolist() == again["row_id"].tolist()
    assert (first["event_time"] == pd.Timestamp("2026-11-02T23:00:00Z")).all()  # Paris midnight
    assert list(raw.columns) == ["x", "leak", "y"]  # the input frame is not touched
    later = derive_columns(raw, dataset, digest="ab" * 32, day=DAY, source="f", offset=10)
    assert later["row_id"].iloc[0] == "abababababababab-10"
    table = derive_columns(pa.Table.from_pandas(raw), dataset, digest="ab" * 32, day=DAY,
                           source="f")  # fmt: skip
    assert table.column("row_id").to_pylist() == first["row_id"].tolist()
    assert table.schema.field("event_time").type == pa.timestamp("ns", tz="UTC")


def test_a_file_carrying_a_derived_column_name_is_refused_naming_the_role() -> None:
    raw = pd.DataFrame({"x": [1.0], "leak": [0.0], "y": [0], "row_id": ["a"]})
    with pytest.raises(DataContractError, match=r"Set 'dataset\.id_column: row_id'"):
        derive_columns(raw, contract(), digest="0" * 64, day=DAY, source="f.csv")


def test_validation_with_a_digest_keeps_identical_rows_apart() -> None:
    raw = pd.DataFrame({"x": [1.0, 1.0], "leak": [0.0, 0.0], "y": [0, 0]})
    batch = validate_frame(raw, contract(), source="f.csv", day=DAY, digest="c" * 64)
    assert batch.result.success and batch.valid["row_id"].is_unique
    assert len(batch.valid) == 2


def test_feature_selection_keeps_excluded_columns_in_the_contract() -> None:
    dataset = contract(features={"exclude": ["leak"]})
    assert dataset.feature_columns == ["x"]
    assert dataset.monitored_columns == ["x", "leak"]
    assert dataset.excluded_columns == ["leak"]
    assert "leak" in dataset.contract_columns()
    assert contract(features={"include": ["leak"]}).feature_columns == ["leak"]


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ({"exclude": ["nope"]}, "'dataset.features.exclude' names column 'nope'"),
        ({"include": ["y"]}, "'dataset.features.include' names 'y'"),
        ({"exclude": ["x", "leak"]}, "leaves the model no feature"),
        ({"include": ["x"], "exclude": ["leak"]}, "both include and exclude"),
    ],
)
def test_feature_selection_errors_name_the_key(features: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        contract(features=features)


def test_shipped_base_config_is_unchanged_by_the_optional_roles() -> None:
    dataset = load_settings("local").dataset
    assert dataset.id_column == "loan_id" and dataset.derived_columns == {}


def _excluding(**extra: Any) -> Any:
    return load_settings("local", {"dataset.features.exclude": ["income"], **extra})


def test_an_excluded_column_is_not_a_model_input() -> None:
    from driftloop.data.generate import generate_day
    from driftloop.tasks.core.training import model_input

    settings = _excluding()
    frame = generate_day(DAY, 50)
    assert "income" not in model_input(frame, settings.dataset).columns
    assert "income" in settings.dataset.monitored_numeric
    assert settings.reported_columns == ["income"] and "income" not in settings.policy_columns


def _income_shift(settings: Any) -> Any:
    from driftloop.data.generate import generate_day
    from driftloop.tasks.core.monitoring import ReferenceStats, assess, settings_stats

    reference = generate_day(DAY, 3000).assign(score=0.2)
    current = generate_day(DAY, 3000, seed=5).assign(score=0.2)
    current["income"] = current["income"] * 3  # only the excluded column moves
    baseline = ReferenceStats(
        model_name="m", version="1", snapshot_uri="-",
        stats=settings_stats(reference, settings, "score"),
    )  # fmt: skip
    return assess(
        baseline,
        settings_stats(current, settings, "score"),
        previous=None,
        realised=None,
        quality=None,
        settings=settings.drift,
        features=settings.policy_columns,
        reported=settings.reported_columns,
    )


def test_an_excluded_columns_drift_is_reported_but_drives_nothing() -> None:
    result = _income_shift(_excluding(**{"drift.key_features": []}))
    income = [s for s in result.scores if s.feature == "income"]
    assert income and income[0].drifted  # measured and reported
    signal = result.signals["feature_drift"]
    assert "income" not in signal.features and not signal.breached
    assert "not counted (kept out of the model): income drifted" in signal.detail


def test_drive_policy_lets_an_excluded_column_count() -> None:
    settings = _excluding(**{"drift.drive_policy": ["income"], "drift.key_features": ["income"]})
    signal = _income_shift(settings).signals["feature_drift"]
    assert "income" in signal.features and signal.breached


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"drift.key_features": ["income"]}, r"add it to 'drift\.drive_policy'"),
        ({"drift.drive_policy": ["age"]}, "is a model feature"),
        ({"drift.drive_policy": ["salary"]}, "names column 'salary'"),
    ],
)
def test_policy_keys_on_excluded_columns_fail_naming_the_key(
    overrides: dict[str, Any], message: str
) -> None:
    from driftloop.configs.settings import ConfigError

    with pytest.raises(ConfigError, match=message):
        _excluding(**overrides)
