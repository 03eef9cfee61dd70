"""`make up` for a prod-like stack checks what it needs from outside before starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.deployments.stack import Stack, StackConfig, StackError, free_port


def _prod(home: Path, bucket: str, lake_bucket: str, pg_port: int) -> StackConfig:
    env = {
        "DRIFTLOOP_STACK": "prod",
        "DRIFTLOOP_STACK_HOME": str(home),
        "DRIFTLOOP_PREFECT_DB_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{pg_port}/p",
        "DRIFTLOOP_MLFLOW_BACKEND_URI": f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}/m",
        "DRIFTLOOP_MLFLOW_ARTIFACTS": f"s3://{bucket}/mlflow-artifacts",
    }
    config = StackConfig.from_env(env)
    return StackConfig(**{**config.__dict__, "overrides": {"storage.root": lake_bucket}})


def test_up_names_everything_missing_and_starts_nothing(
    tmp_path: Path, s3_bucket: str, s3_server: str
) -> None:
    nothing_there = free_port()
    stack = Stack(_prod(tmp_path, "no-such-bucket", f"{s3_bucket}/lake", nothing_there))
    with pytest.raises(StackError) as err:
        stack.up()
    message = str(err.value)
    assert f"127.0.0.1:{nothing_there}" in message and "Prefect's database" in message
    assert "MLflow's backend store" in message
    assert "s3://no-such-bucket does not exist at " + s3_server in message
    assert "aws s3 mb s3://no-such-bucket" in message
    assert s3_bucket.removeprefix("s3://") not in message, "the lake's bucket is there"
    assert stack.prefect.pid() is None and stack.mlflow.pid() is None, "nothing started"


def test_the_default_stack_needs_nothing_from_outside(tmp_path: Path) -> None:
    assert Stack(StackConfig(home=tmp_path)).preflight() == []
