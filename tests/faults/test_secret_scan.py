"""A fake secret planted in the environment (S3 credentials, an API token) and in the on-call
webhook URL never appears in what driftloop writes: logs, messages, Prefect artifacts and the
Prefect database, the lake (on S3) and the MLflow store, after runs that succeed and one that
fails and pages."""

from __future__ import annotations

import json
import os
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from driftloop.data.generate import generate_day
from driftloop.flows.ingest import ingest
from driftloop.flows.train import train
from driftloop.tasks.adapters import storage
from driftloop.tasks.core.contract import DataContractError

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("prefect_backend")]

START = date(2026, 11, 1)
SECRET = f"dlfake{uuid.uuid4().hex}"
FAST = {"model.params.max_iter": 30, "dataset.data_docs": True}


def _files_holding(root: Path, needle: bytes) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            hits.append(str(path))
    return hits


def _prefect_database() -> Path:
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    url = str(PREFECT_API_DATABASE_CONNECTION_URL.value())
    assert url.startswith("sqlite"), f"the scan reads a SQLite Prefect database, got {url}"
    return Path(url.split(":///", 1)[1])


def test_a_planted_secret_appears_nowhere(
    s3_proxy, bucket, s3_keys, moto_endpoint, webhook, monkeypatch, tmp_path, caplog, capfd
) -> None:
    import boto3
    from prefect.logging.handlers import APILogHandler

    url, pages = webhook
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("DRIFTLOOP_TEST_API_TOKEN", SECRET)
    monkeypatch.setenv("DRIFTLOOP_WEBHOOK_URL", f"{url}?token={SECRET}")
    monkeypatch.setenv("DRIFTLOOP_NOTIFY_FROM_HOOK", "1")
    storage.clear_client_cache()
    overrides: dict[str, Any] = {
        "storage.root": f"s3://{bucket}/lake",
        "tracking.uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "tracking.artifact_location": str(tmp_path / "mlartifacts"),
        **FAST,
    }
    lake = storage.Lake(overrides["storage.root"], "loans")
    try:
        for i in range(2):
            day = START + timedelta(days=i)
            storage.write_frame(generate_day(day, 1200, seed=i), lake.raw(day))
            ingest(day, overrides=overrides)
        assert train(START, START + timedelta(days=1), overrides=overrides).version == "1"
        bad = START + timedelta(days=2)
        storage.write_frame(generate_day(bad, 300, seed=9).assign(age=5), lake.raw(bad))
        with pytest.raises(DataContractError):
            ingest(bad, overrides=overrides)
    finally:
        storage.clear_client_cache()
    APILogHandler().flush()  # the runs' logs are in the Prefect database before the scan

    assert len(pages) == 1 and pages[0]["driftloop"]["flow"] == "ingest", pages
    needle = SECRET.encode()
    leaks: dict[str, Any] = {
        "on-call message": SECRET in json.dumps(pages),
        "logs (captured)": SECRET in caplog.text or SECRET in "".join(capfd.readouterr()),
        "MLflow store and artifacts": _files_holding(tmp_path, needle),
        "Prefect home": _files_holding(Path(os.environ["PREFECT_HOME"]), needle),
    }
    database = _prefect_database()
    files = [p for p in database.parent.glob(database.name + "*") if p.is_file()]
    # the scan can see: the failed run's name and its error are stored there in plain text
    assert any(b"ingest-2026-11-03" in p.read_bytes() for p in files), files
    assert any(b"age: 5 not in [18, 100]" in p.read_bytes() for p in files), files
    assert _files_holding(tmp_path, b"train-2026-11-01..2026-11-02"), "MLflow run not found"
    leaks["Prefect database (runs, logs, artifacts)"] = [
        str(p) for p in files if needle in p.read_bytes()
    ]
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    keys = s3_keys(bucket, "lake/")
    assert any(k.startswith("lake/curated/") for k in keys), keys
    leaks["the lake (S3)"] = [
        k for k in keys if needle in client.get_object(Bucket=bucket, Key=k)["Body"].read()
    ]
    assert not any(leaks.values()), {k: v for k, v in leaks.items() if v}
