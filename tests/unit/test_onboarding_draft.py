"""`driftloop init`: the draft contract's guesses, that it loads, and its errors on bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from driftloop.configs.settings import CONFIG_DIR, load_settings
from driftloop.data.sklearn_datasets import generate_day
from driftloop.tasks.core.onboarding import (
    OnboardingError,
    draft_contract,
    suggest_task,
    suggest_thresholds,
    yaml_scalar,
)
from driftloop.tasks.onboarding import init_dataset


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the profiles with an empty datasets/ folder: init never writes the checkout."""
    folder = tmp_path / "configs"
    folder.mkdir()
    for path in CONFIG_DIR.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    (folder / "datasets").mkdir()
    return folder


def _sample(tmp_path: Path, frame: pd.DataFrame, name: str = "sample.csv") -> Path:
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize(
    ("dataset", "task", "target", "positive", "primary"),
    [
        ("breast_cancer", "binary", "diagnosis", "malignant", "roc_auc"),
        ("wine", "multiclass", "cultivar", None, "log_loss"),
        ("diabetes", "regression", "progression", None, "rmse"),
    ],
)
def test_a_sample_of_each_task_type_gives_a_contract_that_loads(
    tmp_path: Path, config_dir: Path, dataset: str, task: str, target: str, positive: object,
    primary: str,
) -> None:  # fmt: skip
    frame = generate_day(dataset, date(2026, 11, 1), 1200)
    sample = _sample(tmp_path, frame, f"{dataset}.csv")

    result = init_dataset(sample, name="shop", config_dir=config_dir)

    assert result.path == config_dir / "datasets" / "shop.yaml"
    settings = load_settings("local", {"dataset_config": "shop"}, config_dir)
    contract = settings.dataset
    assert (contract.task, contract.target) == (task, target)
    assert (contract.id_column, contract.timestamp_column) == ("row_id", "observed_at")
    assert settings.gate.primary_metric == primary
    if positive is not None:
        assert contract.positive_label == positive
    assert list(contract.columns) == list(frame.columns)
    assert contract.columns["observed_at"].dtype == "datetime"
    assert contract.columns["row_id"].unique
    assert contract.columns["segment"].categories == ["north", "south"]
    for name in frame.columns[3:]:
        spec = contract.columns[name]
        if name != target or task == "regression":
            assert spec.dtype == "float" and not spec.nullable
            assert spec.min <= frame[name].min() and frame[name].max() <= spec.max
    assert settings.drift.min_rows == 600 and settings.drift.min_labelled_rows == 300
    assert settings.policy.min_new_rows == 2400  # two days of 1,200 rows, not the default 3000
    text = result.path.read_text()
    assert text.count("# REVIEW:") >= len(frame.columns)
    assert sample.read_bytes() == _sample(tmp_path, frame, "again.csv").read_bytes()


def test_guesses_nulls_ranges_categories_and_a_bool_target(
    tmp_path: Path, config_dir: Path
) -> None:
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "order_id": np.arange(n),
            "placed_at": pd.date_range("2026-11-01", periods=n, freq="min", tz="UTC"),
            "amount": np.where(rng.random(n) < 0.1, np.nan, rng.uniform(10, 20, n)),
            "delta": rng.uniform(-5, 5, n),
            "items": rng.integers(1, 9, n),
            "channel": rng.choice(["web", "shop", "phone"], n),
            "comment": [f"free text {i}" for i in range(n)],
            "returned": rng.random(n) < 0.2,
        }
    )
    sample = _sample(tmp_path, frame, "orders.parquet")

    result = init_dataset(sample, config_dir=config_dir)

    contract = result.settings.dataset
    assert contract.name == "orders" and contract.task == "binary"
    assert (contract.target, contract.positive_label) == ("returned", True)
    assert (contract.id_column, contract.timestamp_column) == ("order_id", "placed_at")
    amount = contract.columns["amount"]
    assert amount.nullable and 0.1 < amount.max_null_fraction < 0.4
    assert amount.min >= 0 and amount.max >= 20  # never negative: not widened below 0
    assert contract.columns["delta"].min < -5 and contract.columns["delta"].max > 5
    assert contract.columns["items"].dtype == "int"
    assert contract.columns["channel"].categories == ["phone", "shop", "web"]
    assert contract.columns["comment"].dtype == "string"
    assert contract.columns["comment"].categories is None


def test_the_sample_size_sets_the_thresholds() -> None:
    assert suggest_thresholds(100) == {
        "dataset.min_rows": 5, "drift.min_rows": 50, "drift.min_labelled_rows": 50,
        "policy.min_new_rows": 200,  # a small dataset can retrain (the default waits for 3000)
    }  # fmt: skip
    assert suggest_thresholds(100_000)["drift.min_rows"] == 1000
    assert suggest_thresholds(100_000)["policy.min_new_rows"] == 3000


@pytest.mark.parametrize(
    ("values", "task", "positive"),
    [
        ([0, 1, 1, 0, 1], "binary", 1),
        (["yes", "no", "no", "no"], "binary", "yes"),
        ([1, 2, 3, 1, 2, 3], "multiclass", None),
        (["a", "b", "c", "a"], "multiclass", None),
        ([0.5, 1.25, 3.0, 7.5], "regression", None),
        (list(range(100)), "regression", None),
    ],
)
def test_the_task_follows_the_target(values: list[object], task: str, positive: object) -> None:
    got, label, _ = suggest_task(pd.Series(values, name="y"))
    assert (got, label) == (task, positive)


def test_values_render_as_yaml_that_reads_back() -> None:
    for value in ["yes", "on", "null", "a b", "x: y", "1e-05", "class_0", 1e-05, 3.0, True, 7]:
        assert yaml.safe_load(f"k: {yaml_scalar(value)}")["k"] == value


def test_a_target_not_in_the_sample_is_named_with_the_columns(
    tmp_path: Path, config_dir: Path
) -> None:
    sample = _sample(tmp_path, generate_day("wine", date(2026, 11, 1), 50))
    with pytest.raises(OnboardingError, match=r"--target 'label' is not a column.*row_id, obs"):
        init_dataset(sample, name="shop", target="label", config_dir=config_dir)
    assert not (config_dir / "datasets" / "shop.yaml").exists()


def test_empty_unreadable_and_missing_samples_are_refused(tmp_path: Path, config_dir: Path) -> None:
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b\n")
    with pytest.raises(OnboardingError, match=r"header\.csv has no rows"):
        init_dataset(header_only, config_dir=config_dir)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(OnboardingError, match=r"cannot read the sample: .*empty\.csv is empty"):
        init_dataset(empty, config_dir=config_dir)
    binary = tmp_path / "data.parquet"
    binary.write_text("id,x\n1,2\n")
    with pytest.raises(OnboardingError, match=r"data\.parquet is not a readable parquet"):
        init_dataset(binary, config_dir=config_dir)
    with pytest.raises(OnboardingError, match=r"nothing\.csv does not exist"):
        init_dataset(tmp_path / "nothing.csv", config_dir=config_dir)
    assert list((config_dir / "datasets").iterdir()) == []


def test_a_sample_without_id_or_timestamp_leaves_both_out(tmp_path: Path) -> None:
    """Both are optional in the contract: rows get derived ids and the batch's day."""
    frame = pd.DataFrame({"x": [1.0, 2.0, 2.0, 1.0], "y": [0, 1, 1, 0]})
    draft = draft_contract(frame, "tiny")
    assert draft.id_column is None and draft.timestamp_column is None
    assert draft.target == "y"


def test_a_broken_profile_is_named_and_nothing_is_written(tmp_path: Path, config_dir: Path) -> None:
    sample = _sample(tmp_path, generate_day("wine", date(2026, 11, 1), 60))
    with pytest.raises(OnboardingError, match=r"nothing written: .*profile 'nope' has no file"):
        init_dataset(sample, name="shop", profile="nope", config_dir=config_dir)
    assert not (config_dir / "datasets" / "shop.yaml").exists()


def test_an_existing_contract_is_kept_unless_forced(tmp_path: Path, config_dir: Path) -> None:
    sample = _sample(tmp_path, generate_day("wine", date(2026, 11, 1), 60))
    existing = config_dir / "datasets" / "shop.yaml"
    existing.write_text("# mine\n")
    with pytest.raises(OnboardingError, match=r"shop\.yaml already exists: pass --force"):
        init_dataset(sample, name="shop", config_dir=config_dir)
    assert existing.read_text() == "# mine\n"
    init_dataset(sample, name="shop", force=True, config_dir=config_dir)
    assert "task: multiclass" in existing.read_text()


def test_the_cli_prints_the_next_steps_or_one_line_error(tmp_path: Path, config_dir: Path) -> None:
    sample = _sample(tmp_path, generate_day("diabetes", date(2026, 11, 1), 60), "2026-11-01.csv")
    env = {"DRIFTLOOP_CONFIG_DIR": str(config_dir), "PATH": "/usr/bin:/bin"}
    env.update({k: v for k, v in os.environ.items() if k == "PYTHONPATH"})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "driftloop.flows.cli", "init", *args],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    done = run(str(sample), "--name", "clinic")
    assert done.returncode == 0, done.stderr
    assert "task regression on target 'progression'" in done.stdout
    assert "DRIFTLOOP_DATASET=clinic driftloop process" in done.stdout
    assert "id 'row_id'" in done.stdout
    bare = _sample(
        tmp_path,
        generate_day("diabetes", date(2026, 11, 1), 60).drop(columns=["row_id", "observed_at"]),
        "bare.csv",
    )
    done = run(str(bare), "--name", "bare")
    assert done.returncode == 0, done.stderr
    assert "no id column (each row gets one" in done.stdout, done.stdout
    assert "no timestamp (a row's event time is its batch's day)" in done.stdout
    failed = run(str(sample), "--name", "other", "--target", "outcome")
    assert failed.returncode == 2
    assert failed.stderr.startswith("driftloop init: --target 'outcome' is not a column")
    assert "Traceback" not in failed.stderr
