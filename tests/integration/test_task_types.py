"""Binary, multi-class and regression datasets, each onboarded by config alone, through the
real flows: ingest -> train (gate, register, promote) -> score -> check_drift with delayed
labels -> a worse candidate rejected by the gate.

The data are built from the datasets scikit-learn ships (`data/sklearn_datasets.py`):
resampled with noise, split into daily batches, drift injected into the later days. The
contracts are configs/datasets/{breast_cancer,wine,diabetes}.yaml; nothing here is
dataset-specific code.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from driftloop.data.sklearn_datasets import SOURCES, write_days, write_labels
from driftloop.flows.check_drift import check_drift
from driftloop.flows.ingest import ingest
from driftloop.flows.score import score
from driftloop.flows.train import train
from driftloop.tasks.adapters import storage

pytestmark = pytest.mark.usefixtures("prefect_backend")

START = date(2026, 11, 1)
ROWS = 2000  # a day
TRAIN_DAYS = 2  # days 0-1 clean: the last one is the gate's out-of-time rows
DRIFT_DAYS = 2  # days 2-3 drifted: scored, labelled, checked


@pytest.fixture(scope="module")
def shared_workspace(workspace_factory: Any) -> Any:
    """One lake and MLflow store for the three datasets (their names, folders and registered
    models differ): a new MLflow store costs seconds to create."""
    return workspace_factory("task-types")


def _check_predictions(name: str, predictions: Any) -> None:
    """The task's prediction columns (tasks/core/scoring.py), with the version stamped."""
    assert len(predictions) == ROWS
    assert (predictions["model_version"] == "1").all()
    task = SOURCES[name].task
    if task == "binary":
        assert predictions["score"].between(0, 1).all()
        assert set(predictions["prediction"]) <= {0, 1}
    elif task == "multiclass":
        classes = ["class_0", "class_1", "class_2"]
        proba = predictions[[f"proba_{c}" for c in classes]].to_numpy()
        assert np.allclose(proba.sum(axis=1), 1.0)
        assert set(predictions["prediction"]) <= set(classes)
        best = np.asarray(classes)[proba.argmax(axis=1)]
        assert (predictions["prediction"].to_numpy() == best).all()
        assert np.allclose(predictions["score"], proba.max(axis=1))
    else:
        assert "score" not in predictions.columns
        values = predictions["prediction"].to_numpy(dtype=float)
        assert np.isfinite(values).all() and 25 < values.mean() < 350


@pytest.mark.parametrize(
    ("name", "primary"),
    [("breast_cancer", "roc_auc"), ("wine", "log_loss"), ("diabetes", "rmse")],
)
def test_task_type_runs_the_loop_from_config_alone(
    shared_workspace: Any, name: str, primary: str
) -> None:
    workspace = shared_workspace
    overrides = {**workspace.overrides, "dataset_config": name}
    settings = workspace.settings(dataset_config=name)
    assert settings.dataset.task == SOURCES[name].task
    assert settings.gate.primary_metric == primary  # the task's default, or the file's choice
    days = [START + timedelta(days=i) for i in range(TRAIN_DAYS + DRIFT_DAYS)]
    write_days(workspace.lake_root, name, START, len(days), ROWS, drift_from=TRAIN_DAYS)

    for day in days[:TRAIN_DAYS]:
        assert ingest(day, overrides=overrides).rows_valid == ROWS
    trained = train(days[0], days[TRAIN_DAYS - 1], overrides=overrides)
    assert trained.promoted and trained.version == "1" and trained.alias == "champion"
    assert primary in trained.metrics and "passed" in trained.gate_reason
    card = next(workspace.root.glob(f"mlartifacts/**/{trained.run_id}/artifacts/model_card.md"))
    assert f"- task: {SOURCES[name].task}" in card.read_text()

    for day in days[TRAIN_DAYS:]:
        scored = score(day, overrides=overrides)
        _check_predictions(name, storage.read_frame(scored.output_uri))
        write_labels(workspace.lake_root, name, day)

    checked = check_drift(days[-1], window_days=DRIFT_DAYS, retrain=False, overrides=overrides)
    assert checked.baseline_version == "1"
    assert checked.signals["prediction_drift"], checked.reason
    assert checked.signals["feature_drift"]
    record = storage.read_frame(checked.decision_uri)
    decay = record[(record["kind"] == "signal") & (record["name"] == "performance_decay")]
    assert f"realised {settings.drift.decay_metric}" in decay["detail"].iloc[0]

    worse = train(
        days[0],
        days[TRAIN_DAYS - 1],
        overrides={**overrides, "model.params.max_iter": 1, "model.params.learning_rate": 0.01},
        dry_run=True,
    )
    assert not worse.promoted
    assert worse.gate_reason.startswith("rejected") and primary in worse.gate_reason
