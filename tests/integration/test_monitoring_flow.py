"""check_drift end to end on a real Prefect test server and MLflow store: baseline per champion,
delayed labels, partitioned predictions, the history, and in-flight dedupe through the API."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.states import Scheduled

from driftloop.data.generate import generate_day, labels_of
from driftloop.flows.check_drift import check_drift
from driftloop.flows.ingest import ingest
from driftloop.flows.score import score
from driftloop.flows.train import train
from driftloop.tasks import check_drift as drift_steps
from driftloop.tasks.adapters import history, registry, storage
from driftloop.tasks.adapters.promotion import move_alias

pytestmark = pytest.mark.usefixtures("prefect_backend")

START = date(2026, 11, 1)
ROWS = 1500
MODEL = "loan-default"
FAST = {"model.params.max_iter": 60, "gate.bootstrap.resamples": 50}


@pytest.fixture(scope="module")
def scored(workspace_factory):
    """v1 trained on days 1-2; days 3-4 scored; labels for day 3 (plus a stray one) in the
    lake; day 4's predictions stored partitioned (two part files in a folder)."""
    ws = workspace_factory("monitoring")
    over = {**ws.overrides, **FAST}
    lake = storage.Lake(ws.lake_root, "loans")
    for i in range(4):
        day = START + timedelta(days=i)
        storage.write_frame(generate_day(day, ROWS), lake.raw(day))
        if i < 2:
            ingest(day, overrides=over)
    assert train(START, START + timedelta(days=1), overrides=over).version == "1"
    for i in (2, 3):
        score(START + timedelta(days=i), overrides=over)
    day3, day4 = START + timedelta(days=2), START + timedelta(days=3)
    labels = labels_of(generate_day(day3, ROWS))
    stray = pd.DataFrame({"loan_id": ["L20991231-0000001"], "default": [1]})
    storage.write_frame(pd.concat([labels, stray], ignore_index=True), lake.labels(day3))
    single = lake.predictions(MODEL, day4)
    frame = storage.read_frame(single)
    folder = lake.prediction_parts(MODEL, day4)
    storage.write_frame(frame.iloc[:700], f"{folder}/part-00000.parquet")
    storage.write_frame(frame.iloc[700:], f"{folder}/part-00001.parquet")
    Path(single).unlink()  # the day now exists only as a partitioned folder
    return ws, over


def test_check_records_its_decision_against_the_champions_baseline(scored) -> None:
    ws, over = scored
    end = START + timedelta(days=3)
    always = {**over, "drift.report": "always"}  # a quiet window: no plot unless asked
    summary = check_drift(end, window_days=2, retrain=False, overrides=always)
    assert summary.baseline_version == "1" and summary.rule == "quiet", summary.reason
    assert not summary.retrain_decided and summary.retrain is None
    lake = storage.Lake(ws.lake_root, "loans")
    assert storage.exists(lake.reference_stats(MODEL, "1")), "stats stored next to the snapshot"
    frame = history.read(lake.drift_history(MODEL))
    (decision,) = history.decisions(frame)
    assert decision.check_id == summary.check_id and decision.baseline_version == "1"
    assert summary.decision_uri and storage.exists(summary.decision_uri)
    assert storage.read_bytes(summary.history_plot_uri).startswith(b"\x89PNG")
    # the delayed labels of day 3 joined by id; the stray label is reported, not dropped
    assert frame[frame["name"] == "labels:unmatched"]["value"].tolist() == [1.0]
    labelled = frame[(frame["kind"] == "metric") & (frame["name"] == "roc_auc")]
    assert 0.6 < labelled["value"].iloc[0] <= 1.0
    decay = frame[(frame["kind"] == "signal") & (frame["name"] == "performance_decay")]
    assert "labelled rows" in decay["detail"].iloc[0]
    # the partitioned day was read: two days of rows were compared
    skew = frame[(frame["kind"] == "feature") & (frame["comparison"] == "skew")]
    assert len(skew) == 12
    with get_client(sync_client=True) as client:
        artifacts = {a.key for a in client.read_artifacts(limit=200)}
    assert {"retrain-decision-loan-default", "drift-history-loan-default"} <= artifacts


def test_baseline_follows_promotion_and_rollback(scored) -> None:
    """v2 (v1's model registered again with its own reference snapshot, as the train flow
    registers versions) is promoted, then rolled back: each check names the baseline it used."""
    ws, over = scored
    end = START + timedelta(days=3)
    settings = ws.settings(**FAST)
    registry.configure_tracking(settings.tracking, settings.registry)
    v1 = registry.get_version(settings.registry, "1")
    lake = storage.Lake(ws.lake_root, "loans")
    snapshot = generate_day(START + timedelta(days=2), ROWS, scenario="covariate_shift")
    version = registry.register(v1.source, settings.registry, {"window": "test"})
    reference_uri = storage.write_frame(snapshot, lake.reference(MODEL, version))
    registry.set_version_tags(settings.registry, version, {"reference_uri": reference_uri})
    move_alias(settings, alias="champion", to_version=version, kind="promotion", reason="test")
    after_promotion = check_drift(end, window_days=2, retrain=False, overrides=over)
    assert after_promotion.baseline_version == version == "2"
    assert after_promotion.signals["feature_drift"], "v2's shifted snapshot is the baseline now"
    move_alias(settings, alias="champion", to_version="1", kind="rollback", reason="test")
    after_rollback = check_drift(end, window_days=2, retrain=False, overrides=over)
    assert after_rollback.baseline_version == "1"
    assert not after_rollback.signals["feature_drift"]
    frame = history.read(lake.drift_history(MODEL))
    assert [d.baseline_version for d in history.decisions(frame)][-2:] == ["2", "1"]
    assert storage.exists(lake.reference_stats(MODEL, "2"))


def test_scheduled_train_runs_for_this_model_are_in_flight(scored) -> None:
    ws, _ = scored
    settings = ws.settings()
    later = datetime.now(UTC) + timedelta(hours=1)
    with get_client(sync_client=True) as client:
        mine = client.create_flow_run(
            train,
            parameters={"window_start": str(START), "window_end": str(START)},
            state=Scheduled(scheduled_time=later),
            tags=[drift_steps.model_run_tag(MODEL)],
        )
        other = client.create_flow_run(
            train,
            parameters={"window_start": str(START), "window_end": str(START)},
            state=Scheduled(scheduled_time=later),
            tags=[drift_steps.model_run_tag("churn")],
        )
        try:
            found = drift_steps.find_in_flight(settings)
            ids = {r.id for r in found}
            assert str(mine.id) in ids and str(other.id) not in ids
            assert all(r.state == "SCHEDULED" for r in found if r.id == str(mine.id))
            off = ws.settings(**{"policy.dedupe_in_flight": False})
            assert drift_steps.find_in_flight(off) == []
        finally:
            client.delete_flow_run(mine.id)
            client.delete_flow_run(other.id)


def test_a_window_without_predictions_names_the_missing_days(scored) -> None:
    _, over = scored
    state = check_drift(START + timedelta(days=9), window_days=1, overrides=over, return_state=True)
    assert state.is_failed()
    message = str(state.result(raise_on_failure=False))
    assert "2026-11-10" in message and "score them first" in message


def test_a_partial_window_is_judged_on_the_days_it_has(scored) -> None:
    """Days 3-4 scored, day 5 not (yet): the check judges days 3-4 instead of failing."""
    _, over = scored
    summary = check_drift(START + timedelta(days=4), window_days=3, retrain=False, overrides=over)
    assert summary.window == f"{START + timedelta(days=2)}..{START + timedelta(days=4)}"
    assert summary.rule in ("quiet", "hysteresis")
