"""Every shipped config validates; every broken one fails naming its key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from driftloop.configs.settings import (
    CONFIG_DIR,
    ConfigError,
    Settings,
    available_datasets,
    load_settings,
)

PROFILES = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if p.stem != "base")
BROKEN = sorted((CONFIG_DIR / "broken").glob("*.yaml"))
DATASETS = available_datasets()


@pytest.mark.parametrize("profile", PROFILES)
def test_every_shipped_profile_validates(profile: str) -> None:
    settings = load_settings(profile)
    assert isinstance(settings, Settings)
    assert settings.profile == profile
    assert settings.dataset.target not in settings.dataset.feature_columns


def test_shipped_profiles_exist() -> None:
    assert {"local", "prod"} <= set(PROFILES)


def _expected_key(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# names: "), f"{path} must start with '# names: <key>'"
    return first.removeprefix("# names: ").strip()


@pytest.mark.parametrize("overlay", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_config_fails_naming_the_key(overlay: Path, tmp_path: Path) -> None:
    shutil.copy(CONFIG_DIR / "base.yaml", tmp_path / "base.yaml")
    shutil.copy(overlay, tmp_path / "broken.yaml")
    with pytest.raises(ConfigError) as err:
        load_settings("broken", config_dir=tmp_path)
    message = str(err.value)
    assert f"'{_expected_key(overlay)}" in message, message
    assert "broken.yaml" in message


def test_broken_folder_is_not_empty() -> None:
    assert len(BROKEN) >= 5


def test_unknown_profile_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match="available profiles"):
        load_settings("staging-typo")


def test_dotted_overrides_apply_and_are_validated() -> None:
    settings = load_settings("local", {"model.params.max_iter": 5, "split.seed": 3})
    assert settings.model.params["max_iter"] == 5
    assert settings.split.seed == 3
    with pytest.raises(ConfigError, match=r"'split\.seeed'"):
        load_settings("local", {"split.seeed": 3})


def test_relative_paths_resolve_against_the_project() -> None:
    settings = load_settings("local")
    assert Path(settings.storage.root).is_absolute()
    assert settings.tracking.uri.startswith("sqlite:////")


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    shutil.copy(CONFIG_DIR / "base.yaml", tmp_path / "base.yaml")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_settings("bad", config_dir=tmp_path)


def test_digest_changes_with_config() -> None:
    assert load_settings("local").digest() != load_settings("prod").digest()


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_config_validates_under_every_profile(name: str, profile: str) -> None:
    settings = load_settings(profile, {"dataset_config": name})
    assert settings.dataset_config == name
    assert settings.profile == profile
    # the dataset file replaces base.yaml's sections: nothing of the loans contract leaks in
    base = load_settings(profile)
    assert not set(settings.dataset.columns) & (set(base.dataset.columns) - {"default"})
    assert settings.registry.model_name != base.registry.model_name
    # the profile still decides where state lives
    assert settings.storage.root == base.storage.root


def test_churn_is_shipped_as_the_onboarding_example() -> None:
    assert "churn" in DATASETS


def test_dataset_is_chosen_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_DATASET", "churn")
    assert load_settings("local").dataset.name == "churn"
    # explicit overrides win over the environment
    with pytest.raises(ConfigError, match=r"available datasets: \[.*'churn'.*\]"):
        load_settings("local", {"dataset_config": "churnn"})


def _dataset_dir(tmp_path: Path, text: str) -> Path:
    shutil.copy(CONFIG_DIR / "base.yaml", tmp_path / "base.yaml")
    shutil.copy(CONFIG_DIR / "local.yaml", tmp_path / "local.yaml")
    (tmp_path / "datasets").mkdir()
    churn = (CONFIG_DIR / "datasets" / "churn.yaml").read_text()
    (tmp_path / "datasets" / "mine.yaml").write_text(churn + text)
    return tmp_path


@pytest.mark.parametrize(
    ("appended", "fragments"),
    [
        ("tracking: {uri: sqlite:///x.db}\n", ["datasets/mine.yaml", "'tracking'"]),
        ("split: {seeed: 1}\n", ["unknown key 'split.seeed'", "datasets/mine.yaml"]),
        ("gate: {floors: {roc_auc: 2}, primary_metric: rocauc}\n", ["'gate.primary_metric'"]),
    ],
    ids=["foreign_section", "typo_key", "bad_value"],
)
def test_broken_dataset_file_fails_naming_file_and_key(
    tmp_path: Path, appended: str, fragments: list[str]
) -> None:
    config_dir = _dataset_dir(tmp_path, appended)
    with pytest.raises(ConfigError) as err:
        load_settings("local", {"dataset_config": "mine"}, config_dir=config_dir)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_dataset_config_must_be_a_plain_name() -> None:
    with pytest.raises(ConfigError, match=r"'dataset_config' in overrides must be a dataset name"):
        load_settings("local", {"dataset_config": "../base"})


def test_a_dataset_file_sets_its_own_storage_and_policy_under_the_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Precedence: base < dataset file sections < profile < dataset file's storage/policy <
    $DRIFTLOOP_OVERRIDES < run overrides (docs/data-engineer.md, "Every way to set a key")."""
    appended = "storage: {root: /data/mine}\npolicy: {cooldown_days: 11}\n"
    config_dir = _dataset_dir(tmp_path, appended)
    chosen = {"dataset_config": "mine"}
    settings = load_settings("local", chosen, config_dir=config_dir)
    assert settings.storage.root == "/data/mine"  # over local.yaml's data/lake
    assert settings.policy.cooldown_days == 11
    assert settings.storage.score_chunk_rows == 500_000  # merged key by key, not replaced
    monkeypatch.setenv("DRIFTLOOP_OVERRIDES", '{"storage.root": "/from/env"}')
    assert load_settings("local", chosen, config_dir=config_dir).storage.root == "/from/env"
    run = load_settings("local", {**chosen, "storage.root": "/run"}, config_dir=config_dir)
    assert run.storage.root == "/run"
