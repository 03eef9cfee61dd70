"""The S3 endpoint goes away mid-write (ingest and scoring), and a registered model's files are
changed behind the registry's back: real moto S3 behind a cuttable proxy, real Prefect, real
MLflow store.

Promises (docs/reliability.md): no partial object is ever visible, the error names the
endpoint and the object (bucket and key), a rerun completes; a changed or unverifiable model
is refused before it scores anything."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from driftloop.data.generate import generate_day
from driftloop.flows.ingest import ingest
from driftloop.flows.score import score
from driftloop.flows.train import train
from driftloop.tasks.adapters import registry, storage

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("prefect_backend")]

START = date(2026, 11, 1)
ROWS = 1200


def overrides_for(bucket: str, local: Path) -> dict[str, Any]:
    """The lake on S3 (through the proxy), MLflow on a local SQLite store."""
    return {
        "storage.root": f"s3://{bucket}/lake",
        "tracking.uri": f"sqlite:///{local / 'mlflow.db'}",
        "tracking.artifact_location": str(local / "mlartifacts"),
    }


def write_raw(root: str, day: date) -> str:
    return storage.write_frame(
        generate_day(day, ROWS, seed=day.day), storage.Lake(root, "loans").raw(day)
    )


def test_s3_gone_mid_curated_write_leaves_nothing_and_a_rerun_completes(
    proxy, bucket, s3_keys, tmp_path
) -> None:
    overrides = overrides_for(bucket, tmp_path)
    write_raw(overrides["storage.root"], START)
    proxy.cut_on(f"PUT /{bucket}/lake/curated/".encode())

    with pytest.raises(Exception) as failed:
        ingest(START, overrides=overrides)

    assert proxy.cut_requests, "the proxy never saw the curated write: nothing was cut"
    message = str(failed.value)
    assert proxy.endpoint in message and bucket in message, message
    assert f"s3://{bucket}/lake/" in message and "Could not connect" in message, message
    assert s3_keys(bucket, "lake/curated/") == [], "a partial curated object is visible"

    proxy.restore()
    summary = ingest(START, overrides=overrides)
    assert summary.rows_in == ROWS == summary.rows_valid + summary.rows_quarantined
    assert s3_keys(bucket, "lake/curated/") == ["lake/curated/loans/2026-11-01.parquet"]
    curated = storage.read_frame(f"s3://{bucket}/lake/curated/loans/2026-11-01.parquet")
    assert len(curated) == summary.rows_valid


@pytest.fixture(scope="module")
def champion_lake(s3_proxy, moto_endpoint, tmp_path_factory) -> dict[str, Any]:
    """Two days ingested to S3 and a champion trained on them, shared by the scoring faults."""
    import boto3

    bucket = f"faults-scoring-{tmp_path_factory.mktemp('n').name[-6:].lower()}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    local = tmp_path_factory.mktemp("scoring")
    overrides = overrides_for(bucket, local)
    for i in range(2):
        write_raw(overrides["storage.root"], START + timedelta(days=i))
        ingest(START + timedelta(days=i), overrides=overrides)
    summary = train(START, START + timedelta(days=1), overrides=overrides)
    assert summary.promoted, summary.gate_reason
    return {"bucket": bucket, "local": local, "overrides": overrides}


def test_s3_gone_mid_prediction_write_leaves_nothing_and_a_rerun_completes(
    proxy, champion_lake, s3_keys
) -> None:
    bucket, overrides = champion_lake["bucket"], champion_lake["overrides"]
    day = START + timedelta(days=2)
    write_raw(overrides["storage.root"], day)
    proxy.cut_on(f"PUT /{bucket}/lake/predictions/".encode())

    with pytest.raises(Exception) as failed:
        score(day, overrides=overrides, mode="stream")

    assert proxy.cut_requests, "the proxy never saw the predictions write: nothing was cut"
    message = str(failed.value)
    assert proxy.endpoint in message and bucket in message, message
    assert f"s3://{bucket}/lake/" in message and "Could not connect" in message, message
    assert s3_keys(bucket, "lake/predictions/") == [], "a partial predictions object is visible"

    proxy.restore()
    summary = score(day, overrides=overrides, mode="stream")
    assert summary.rows + summary.rows_quarantined == ROWS
    assert s3_keys(bucket, "lake/predictions/") == [
        "lake/predictions/loan-default/2026-11-03.parquet"
    ]
    assert len(storage.read_frame(summary.output_uri)) == summary.rows


def _model_file(local: Path) -> Path:
    """The serialised estimator of the only logged model (not its MLmodel description)."""
    files = [
        p
        for p in (local / "mlartifacts").rglob("model.*")
        if p.is_file() and p.suffix in (".skops", ".pkl", ".joblib")
    ]
    assert len(files) == 1, files
    return files[0]


def _fresh_worker() -> None:
    """Forget the champion a long-lived worker process keeps loaded (as a new worker would)."""
    from driftloop.tasks import score as score_steps

    with score_steps._MODELS_LOCK:
        score_steps._MODELS.clear()


def test_a_model_file_changed_after_registration_is_refused(proxy, champion_lake) -> None:
    overrides, local = champion_lake["overrides"], champion_lake["local"]
    day = START + timedelta(days=3)
    write_raw(overrides["storage.root"], day)
    model_file = _model_file(local)
    original = model_file.read_bytes()
    _fresh_worker()
    try:
        model_file.write_bytes(original + b"\n")
        with pytest.raises(Exception, match=r"does not match the digest recorded at registration"):
            score(day, overrides=overrides, mode="stream")
    finally:
        model_file.write_bytes(original)
        _fresh_worker()
    assert not storage.exists(
        storage.Lake(overrides["storage.root"], "loans").predictions("loan-default", day)
    ), "a refused model wrote predictions"


def test_a_driftloop_version_without_its_digest_is_refused(proxy, champion_lake) -> None:
    """Registration that never finished (MLflow gone between register and the digest tag)."""
    from mlflow import MlflowClient

    overrides = champion_lake["overrides"]
    day = START + timedelta(days=4)
    write_raw(overrides["storage.root"], day)
    settings = _settings(overrides)
    registry.configure_tracking(settings.tracking, settings.registry)
    champion = registry.version_by_alias(settings.registry, "champion")
    assert champion is not None and champion.tag("model_sha256")
    key = registry.TAG_PREFIX + "model_sha256"
    client = MlflowClient()
    client.delete_model_version_tag(settings.registry.model_name, champion.version, key)
    _fresh_worker()
    try:
        with pytest.raises(Exception, match=r"carries no driftloop\.model_sha256 digest"):
            score(day, overrides=overrides, mode="stream")
    finally:
        client.set_model_version_tag(
            settings.registry.model_name, champion.version, key, champion.tag("model_sha256")
        )
        _fresh_worker()


def _settings(overrides: dict[str, Any]) -> Any:
    from driftloop.configs.settings import load_settings

    return load_settings("local", overrides)
