"""Stack settings: embedded by default (its own PostgreSQL), PostgreSQL + S3 with
DRIFTLOOP_STACK=prod."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.deployments.stack import StackConfig, StackError
from driftloop.flows.params import merged_overrides


def test_default_stack_is_embedded() -> None:
    cfg = StackConfig.from_env({})
    assert (cfg.prefect_db_url, cfg.mlflow_backend_uri, cfg.mlflow_artifacts) == (None, None, None)
    assert cfg.profile == "local" and cfg.api_url == "http://127.0.0.1:4200/api"
    assert cfg.flow_overrides()["tracking.uri"] == "http://127.0.0.1:5000"
    assert cfg.flow_overrides()["drift.retrain_inline"] is False
    assert cfg.process_interval == 900
    assert StackConfig.from_env({"DRIFTLOOP_PROCESS_INTERVAL": "20"}).process_interval == 20
    assert cfg.database == "postgres", "its own embedded PostgreSQL: SQLite loses events"
    assert StackConfig.from_env({"DRIFTLOOP_STACK_DB": "SQLite"}).database == "sqlite"
    assert cfg.client_env()["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "60"
    assert cfg.reports_url == "http://127.0.0.1:4210"
    assert StackConfig.from_env({"DRIFTLOOP_REPORTS_PORT": "4999"}).reports_port == 4999


def test_a_lake_in_s3_gets_no_report_server(tmp_path: Path) -> None:
    """Its links are presigned; a local lake's reports/ folder is what the stack serves."""
    from driftloop.deployments.stack import Stack

    s3 = Stack(StackConfig(home=tmp_path, overrides={"storage.root": "s3://bucket/lake"}))
    assert s3.reports_dir() is None and s3.reports_env() == {}
    local = Stack(StackConfig(home=tmp_path, overrides={"storage.root": str(tmp_path / "lake")}))
    assert local.reports_env() == {
        "DRIFTLOOP_REPORTS_DIR": str(tmp_path / "lake" / "reports"),
        "DRIFTLOOP_REPORTS_URL": "http://127.0.0.1:4210",
    }


def test_an_unknown_stack_database_is_refused_by_name() -> None:
    with pytest.raises(StackError, match="DRIFTLOOP_STACK_DB='mysql'"):
        StackConfig.from_env({"DRIFTLOOP_STACK_DB": "mysql"})


def test_prod_stack_uses_postgres_and_s3_and_each_setting_can_change() -> None:
    cfg = StackConfig.from_env(
        {"DRIFTLOOP_STACK": "prod", "DRIFTLOOP_MLFLOW_ARTIFACTS": "s3://mine/art"}
    )
    assert cfg.prefect_db_url and cfg.prefect_db_url.startswith("postgresql+asyncpg://")
    assert cfg.mlflow_backend_uri and cfg.mlflow_backend_uri.startswith("postgresql+psycopg://")
    assert cfg.mlflow_artifacts == "s3://mine/art" and cfg.profile == "prod"


def test_hyperparameters_become_model_params_and_explicit_overrides_win() -> None:
    assert merged_overrides(None, None) is None
    assert merged_overrides(
        {"model.params.max_iter": 9}, {"max_iter": 5, "learning_rate": 0.1}
    ) == {
        "model.params.max_iter": 9,
        "model.params.learning_rate": 0.1,
    }
