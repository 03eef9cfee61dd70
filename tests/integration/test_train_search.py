"""Hyperparameter search inside `train`: trials on a Dask LocalCluster, nested MLflow runs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import mlflow
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from driftloop.data.generate import generate_day
from driftloop.flows.train import train
from driftloop.tasks.adapters import storage
from driftloop.tasks.adapters.validation import validate_frame

pytestmark = pytest.mark.usefixtures("prefect_backend")

START = date(2026, 11, 1)
SEARCH = {
    "model.params.max_iter": 40,
    "model.search": {"strategy": "grid", "params": {"max_depth": [2, 4], "learning_rate": [0.1]}},
    "dask.n_workers": 1,
}


def write_curated(ws, days: int = 2, rows: int = 1500) -> None:
    """What ingest leaves behind (typed, valid rows), without running ingest."""
    settings = ws.settings()
    lake = storage.Lake(ws.lake_root, settings.dataset.name)
    now = datetime.combine(START + timedelta(days=days), datetime.min.time(), tzinfo=UTC)
    for i in range(days):
        day = START + timedelta(days=i)
        batch = validate_frame(
            generate_day(day, rows, seed=i), settings.dataset, source="t", now=now
        )
        storage.write_frame(batch.valid, lake.curated(day))


def test_search_trials_are_nested_runs_and_the_best_trains_the_candidate(workspace) -> None:
    write_curated(workspace)
    summary = train(START, START + timedelta(days=1), overrides={**workspace.overrides, **SEARCH},
                    dry_run=True)  # fmt: skip
    mlflow.set_tracking_uri(workspace.overrides["tracking.uri"])
    children = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{summary.run_id}'",
        output_format="list",
    )
    assert sorted(r.info.run_name for r in children) == ["trial-0", "trial-1"]
    scores = {r.data.params["max_depth"]: r.data.metrics["validation_roc_auc"] for r in children}
    best_depth = max(scores, key=lambda depth: (scores[depth], -int(depth)))
    parent = mlflow.get_run(summary.run_id)
    assert parent.data.params["search.best.max_depth"] == best_depth
    assert parent.data.params["model.max_depth"] == best_depth, "the candidate used the best"
    assert parent.data.params["model.max_iter"] == "40", "config params not searched stay"
    assert "roc_auc" in parent.data.metrics, "the candidate was judged on the gate's rows"
    table = mlflow.artifacts.load_dict(f"runs:/{summary.run_id}/search/trials.json")
    assert table["best"]["params"]["max_depth"] == int(best_depth)
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["search-loan-default"]))
        )
    assert found, "the trial table is a Prefect artifact"
    rows = json.loads(found[-1].data) if isinstance(found[-1].data, str) else found[-1].data
    assert [row["chosen"] for row in rows].count("yes") == 1 and len(rows) == 2
