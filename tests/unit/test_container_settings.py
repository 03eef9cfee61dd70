"""Settings for running from an installed package (the flows' image): where relative paths
land, and the Docker-type work pool the stack can deploy to instead of the process pool."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from driftloop.configs import settings
from driftloop.deployments.stack import (
    IMAGE_CODE_DIR,
    PREFECT_YAML,
    Stack,
    StackConfig,
    StackError,
)


def test_relative_paths_resolve_in_the_checkout_by_default() -> None:
    checkout = Path(settings.__file__).resolve().parents[1]
    assert settings.project_root({}) == checkout
    assert (checkout / "pyproject.toml").is_file()


def test_an_installed_package_uses_the_working_directory_not_site_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = tmp_path / "site-packages" / "driftloop" / "configs"
    installed.mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(settings, "CONFIG_DIR", installed)
    monkeypatch.chdir(work)
    assert settings.project_root({}) == work
    assert settings.project_root({"DRIFTLOOP_HOME": str(tmp_path / "vol")}) == tmp_path / "vol"


def test_driftloop_home_moves_the_lake_and_the_mlflow_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_HOME", str(tmp_path))
    loaded = settings.load_settings("local")
    assert loaded.storage.root == str(tmp_path / "data" / "lake")
    assert loaded.tracking.uri == f"sqlite:///{tmp_path / 'data' / 'mlflow' / 'mlflow.db'}"


def test_the_docker_pool_is_a_stack_setting_with_the_same_deployments(tmp_path: Path) -> None:
    cfg = StackConfig.from_env(
        {
            "DRIFTLOOP_WORK_POOL_TYPE": "Docker",
            "DRIFTLOOP_IMAGE": "registry.example/driftloop:1.2",
            "DRIFTLOOP_DOCKER_JOB_VARIABLES": '{"network_mode": "bridge"}',
            "DRIFTLOOP_STACK_HOME": str(tmp_path),
        }
    )
    assert (cfg.work_pool_type, cfg.work_pool) == ("docker", "driftloop-docker")
    derived = yaml.safe_load(Stack(cfg).prefect_file().read_text())
    original = yaml.safe_load(PREFECT_YAML.read_text())
    assert [d["name"] for d in derived["deployments"]] == [
        d["name"] for d in original["deployments"]
    ]
    for deployment, same in zip(derived["deployments"], original["deployments"], strict=True):
        assert deployment["entrypoint"] == same["entrypoint"]
        assert deployment.get("triggers") == same.get("triggers")
        pool = deployment["work_pool"]
        assert pool["name"] == "driftloop-docker"
        variables = pool["job_variables"]
        assert variables["image"] == "registry.example/driftloop:1.2"
        assert variables["network_mode"] == "bridge", "DRIFTLOOP_DOCKER_JOB_VARIABLES wins"
        assert variables["env"]["DRIFTLOOP_PROFILE"] == "local"
        assert "tracking.uri" in variables["env"]["DRIFTLOOP_OVERRIDES"]
    step = derived["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert step["directory"] == IMAGE_CODE_DIR, "the image's code, no DRIFTLOOP_PROJECT_DIR"
    assert StackConfig.from_env({}).work_pool == "driftloop-process"
    assert Stack(StackConfig.from_env({})).prefect_file() == PREFECT_YAML


def test_an_unknown_work_pool_type_is_refused_by_name() -> None:
    with pytest.raises(StackError, match="DRIFTLOOP_WORK_POOL_TYPE='kubernetes'"):
        StackConfig.from_env({"DRIFTLOOP_WORK_POOL_TYPE": "kubernetes"})


def test_the_stack_keeps_its_state_under_driftloop_home(tmp_path: Path) -> None:
    assert StackConfig.from_env({"DRIFTLOOP_HOME": str(tmp_path)}).home == tmp_path / ".stack"
    checkout = Path(settings.__file__).resolve().parents[1]
    assert StackConfig.from_env({}).home == checkout / ".stack", "make up: as before"
