"""A second dataset, onboarded by config alone, runs ingest -> train -> score end to end.

Nothing here is churn-specific code: the flows get `dataset_config: churn` and everything
else (contract, estimator, split, gate, registry name, lake paths) comes from
configs/datasets/churn.yaml.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from driftloop.data.generate_churn import generate_day, write_batches
from driftloop.flows.ingest import ingest
from driftloop.flows.score import score
from driftloop.flows.train import train
from driftloop.tasks.adapters import registry, storage

pytestmark = pytest.mark.usefixtures("prefect_backend")

START = date(2026, 11, 1)
DAYS = 3
ROWS = 800


def test_churn_runs_ingest_train_score_from_config_alone(workspace: Any) -> None:
    overrides = {**workspace.overrides, "dataset_config": "churn"}
    settings = workspace.settings(dataset_config="churn")
    assert settings.dataset.name == "churn"
    write_batches(workspace.lake_root, START, DAYS, ROWS)

    lake = storage.Lake(workspace.lake_root, "churn")
    raw_day = START + timedelta(days=1)
    frame = generate_day(raw_day, ROWS)
    frame.loc[:4, "contract"] = "lifetime"  # an unseen category: quarantined, not lost
    storage.write_frame(frame, lake.raw(raw_day))

    for i in range(DAYS):
        summary = ingest(START + timedelta(days=i), overrides=overrides)
        assert summary.rows_in == ROWS == summary.rows_valid + summary.rows_quarantined
        assert summary.curated_uri.startswith(f"{workspace.lake_root}/curated/churn/")
    quarantine = storage.read_frame(ingest(raw_day, overrides=overrides).quarantine_uri)
    assert len(quarantine) == 5
    assert quarantine["_dq_reasons"].str.contains("contract: 'lifetime' not in allowed").all()

    trained = train(START, START + timedelta(days=DAYS - 1), overrides=overrides)
    assert trained.promoted and trained.alias == "champion" and trained.version == "1"
    assert trained.metrics["roc_auc"] > 0.7
    registry.configure_tracking(settings.tracking, settings.registry)
    champion = registry.version_by_alias(settings.registry, "champion")
    assert champion is not None and champion.name == "customer-churn"

    day = START + timedelta(days=10)
    scoring_input = generate_day(day, ROWS).drop(columns=["churned"])  # labels come later
    storage.write_frame(scoring_input, lake.raw(day))
    scored = score(day, overrides=overrides)
    predictions = storage.read_frame(scored.output_uri)
    assert scored.output_uri.startswith(f"{workspace.lake_root}/predictions/customer-churn/")
    assert len(predictions) == ROWS
    assert predictions["customer_id"].tolist() == scoring_input["customer_id"].tolist()
    assert predictions["score"].between(0, 1).all()
    assert (predictions["model_version"] == "1").all()
