"""Each flow on small generated data, under a real Prefect test server and MLflow SQLite store."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client

from driftloop.data.generate import generate_day
from driftloop.flows.check_drift import check_drift
from driftloop.flows.ingest import ingest
from driftloop.flows.score import score
from driftloop.flows.train import train
from driftloop.tasks.adapters import registry, storage
from driftloop.tasks.check_drift import detail_report_uri

pytestmark = pytest.mark.usefixtures("prefect_backend")

START = date(2026, 11, 1)
ROWS = 1200


def write_raw(ws, days: int, *, start: date = START, scenario: str = "none", seed: int = 0):
    lake = storage.Lake(ws.lake_root, "loans")
    out = []
    for i in range(days):
        day = start + timedelta(days=i)
        frame = generate_day(day, ROWS, scenario=scenario, drift_start=day, seed=seed)
        out.append(storage.write_frame(frame, lake.raw(day)))
    return lake, out


def ingest_and_train(ws, days: int = 2):
    write_raw(ws, days)
    for i in range(days):
        ingest(START + timedelta(days=i), overrides=ws.overrides)
    summary = train(START, START + timedelta(days=days - 1), overrides=ws.overrides)
    assert summary.version == "1" and summary.promoted, summary.gate_reason
    assert summary.alias == "champion"
    assert summary.metrics["roc_auc"] > 0.7
    return summary


@pytest.fixture(scope="module")
def trained(workspace_factory):
    """One workspace with v1 as champion, shared by the tests that only read the registry."""
    ws = workspace_factory("trained")
    ingest_and_train(ws)
    return ws


def test_ingest_writes_curated_rows_that_match_the_contract(workspace) -> None:
    lake, (raw_uri,) = write_raw(workspace, 1)
    raw_bytes = Path(raw_uri).read_bytes()
    summary = ingest(START, overrides=workspace.overrides)
    assert summary.rows_in == ROWS == summary.rows_valid + summary.rows_quarantined
    curated = storage.read_frame(lake.curated(START))
    assert len(curated) == summary.rows_valid
    assert list(curated.columns) == list(workspace.settings().dataset.columns)
    assert Path(raw_uri).read_bytes() == raw_bytes, "raw input must never be modified"


def test_corrupt_batch_is_quarantined_with_reasons(workspace) -> None:
    _lake, (raw_uri,) = write_raw(workspace, 1, scenario="corrupt")
    raw_bytes = Path(raw_uri).read_bytes()
    summary = ingest(START, overrides=workspace.overrides)
    assert summary.rows_quarantined > 0
    assert summary.rows_in == summary.rows_valid + summary.rows_quarantined
    quarantine = storage.read_frame(summary.quarantine_uri)
    assert len(quarantine) == summary.rows_quarantined
    assert quarantine["_dq_reasons"].str.len().gt(0).all()
    assert (quarantine["_dq_source"] == raw_uri).all()
    reasons = " ".join(quarantine["_dq_reasons"])
    for column in ("age", "loan_id"):
        assert column in reasons
    assert Path(raw_uri).read_bytes() == raw_bytes


def test_mostly_bad_batch_fails_the_run_but_keeps_the_rows(workspace) -> None:
    lake = storage.Lake(workspace.lake_root, "loans")
    frame = generate_day(START, 200, seed=1)
    frame.loc[: len(frame) // 2, "age"] = 250
    storage.write_frame(frame, lake.raw(START))
    state = ingest(START, overrides=workspace.overrides, return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="age"):
        state.result()
    quarantined = storage.list_uris(workspace.lake_root + "/quarantine", suffix=".parquet")
    assert len(quarantined) == 1
    assert len(storage.read_frame(quarantined[0])) >= 100
    assert not storage.exists(lake.curated(START)), "a failed batch must not reach curated"


def test_train_registers_champion_and_score_stamps_its_version(trained) -> None:
    workspace = trained
    settings = workspace.settings()
    registry.configure_tracking(settings.tracking, settings.registry)
    champion = registry.version_by_alias(settings.registry, "champion")
    assert champion is not None and champion.version == "1"
    assert storage.exists(champion.tag("reference_uri"))
    assert champion.tag("config_digest") == settings.digest()

    day = START + timedelta(days=20)
    _lake, _ = write_raw(workspace, 1, start=day)
    scored = score(day, overrides=workspace.overrides)
    predictions = storage.read_frame(scored.output_uri)
    assert len(predictions) == ROWS
    assert (predictions["model_version"] == "1").all()
    assert (predictions["model_run_id"] == champion.run_id).all()
    assert predictions["input_digest"].nunique() == 1
    assert predictions["score"].between(0, 1).all()
    assert settings.dataset.target not in predictions.columns


def test_worse_model_is_not_promoted(workspace) -> None:
    ingest_and_train(workspace)
    lake = storage.Lake(workspace.lake_root, "loans")
    rng = np.random.default_rng(0)
    later = [START + timedelta(days=10 + i) for i in range(2)]
    for day in later:
        curated = generate_day(day, ROWS, seed=3)
        curated["default"] = rng.permutation(curated["default"].to_numpy())
        storage.write_frame(curated, lake.curated(day))
    summary = train(later[0], later[-1], overrides=workspace.overrides)
    assert not summary.promoted
    assert summary.alias == "challenger"
    assert summary.champion_after == "1"
    assert "rejected" in summary.gate_reason
    settings = workspace.settings()
    registry.configure_tracking(settings.tracking, settings.registry)
    assert registry.version_by_alias(settings.registry, "champion").version == "1"
    assert registry.version_by_alias(settings.registry, "challenger").version == "2"


def test_no_drift_window_triggers_nothing(trained) -> None:
    workspace = trained
    days = [START + timedelta(days=2 + i) for i in range(3)]
    write_raw(workspace, 3, start=days[0])
    for day in days:
        score(day, overrides=workspace.overrides)
    summary = check_drift(days[-1], overrides=workspace.overrides)
    assert not summary.drifted, summary.reason
    assert summary.retrain is None
    assert summary.baseline_version == "1"
    assert summary.report_uri is None, "a quiet window renders no report by default"
    always = {**workspace.overrides, "drift.report": "always"}
    summary = check_drift(days[-1], overrides=always)
    report = storage.read_bytes(summary.report_uri).decode()
    assert report.lstrip().lower().startswith("<!doctype html") and "<b>No retrain</b>" in report
    # Evidently's report is rendered beside it, and the drift report links it by name
    detail = detail_report_uri(summary.report_uri)
    assert f'href="{detail.rsplit("/", 1)[-1]}"' in report
    evidently = storage.read_bytes(detail).decode()
    features = workspace.settings().dataset.feature_columns
    assert features
    assert all(re.search(rf"column '?{re.escape(c)}\b", evidently) for c in features)


def test_flow_runs_are_named_for_what_they_did(trained) -> None:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200)
    names = {run.name for run in runs}
    assert f"train-{START}..{START + timedelta(days=1)}" in names
    assert f"ingest-{START}" in names


def test_train_names_missing_days(workspace) -> None:
    state = train(
        START, START + timedelta(days=1), overrides=workspace.overrides, return_state=True
    )
    assert state.is_failed()
    with pytest.raises(FileNotFoundError, match=str(START)):
        state.result()


def test_score_without_champion_says_what_to_do(workspace) -> None:
    write_raw(workspace, 1)
    state = score(START, overrides=workspace.overrides, return_state=True)
    with pytest.raises(Exception, match="run the train flow first"):
        state.result()


def test_predictions_stay_in_input_order(trained) -> None:
    workspace = trained
    day = START + timedelta(days=15)
    _lake, (raw_uri,) = write_raw(workspace, 1, start=day)
    scored = score(day, overrides=workspace.overrides)
    predictions = storage.read_frame(scored.output_uri)
    raw = pd.read_parquet(raw_uri)
    assert predictions["loan_id"].tolist() == raw["loan_id"].tolist()


def test_loading_the_champion_leaves_no_model_copy_behind(
    workspace, s3_bucket, tmp_path, monkeypatch
) -> None:
    """A worker loads the champion every run: with artifacts in S3 (as in production) MLflow
    downloads a copy each time, which must not stay behind in the temporary folder."""
    import tempfile

    artifacts = {"tracking.artifact_location": f"{s3_bucket}/mlartifacts"}
    overrides = {**workspace.overrides, **artifacts}
    write_raw(workspace, 2)
    for i in range(2):
        ingest(START + timedelta(days=i), overrides=overrides)
    train(START, START + timedelta(days=1), overrides=overrides)
    settings = workspace.settings(**artifacts)
    registry.configure_tracking(settings.tracking, settings.registry)
    champion = registry.version_by_alias(settings.registry, "champion")
    assert champion is not None
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    model = registry.load_version(champion)
    assert hasattr(model, "predict_proba")
    assert list(scratch.iterdir()) == []


def test_the_loop_status_page_says_who_is_champion_and_why(trained) -> None:
    """After a train and a score, the page people open first names v1, since when and why."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    day = START + timedelta(days=21)
    write_raw(trained, 1, start=day)
    run = score(day, overrides=trained.overrides, return_state=True)
    assert run.is_completed()

    async def latest() -> list:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["loop-status-loans"])),
                sort="CREATED_DESC",
                limit=1,
            )

    import asyncio

    (artifact,) = asyncio.run(latest())
    assert str(artifact.flow_run_id) == str(run.state_details.flow_run_id), "this run wrote it"
    page = artifact.data
    assert page.startswith("# Loop status: loans (model loan-default)")
    assert "**v1** since " in page and "(promotion)" in page
    assert "1 candidate(s) judged by the gate, 1 promoted (v1)" in page
    assert "## Drift checks this week" in page and "## On recent labels" in page
    assert "Nothing waits for approval." in page
