"""The gate and rollback at flow level, on real Prefect and MLflow stores.

The gate: a candidate that clears every floor (primary metric, baseline, slices, smoke) but is
worse than the champion stays challenger, the champion alias does not move, and the decision
is recorded (ledger, version tags, the run's gate_decision.json). Rollback: the previous
champion, `--to N` (the `to_version` parameter), a rollback of a rollback, and each
RollbackError branch leaving the champion and the ledger untouched."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from driftloop.data.generate import generate_day
from driftloop.flows.rollback import rollback
from driftloop.flows.train import train
from driftloop.tasks.adapters import registry, storage
from driftloop.tasks.adapters.promotion import ledger_for
from driftloop.tasks.core.training import fit_pipeline, split_frame
from driftloop.tasks.rollback import RollbackError

pytestmark = pytest.mark.usefixtures("prefect_backend")

START = date(2026, 11, 1)
END = START + timedelta(days=2)
#: Decision stumps, few of them: a real model that clears the floors, weaker than the default.
DECENT = {"model.params.max_depth": 1, "model.params.max_iter": 25}


@pytest.fixture(scope="module")
def trained(workspace_factory):
    """Three curated days; v1 (the default model) is champion."""
    ws = workspace_factory("gate")
    lake = storage.Lake(ws.lake_root, "loans")
    for i in range(3):
        day = START + timedelta(days=i)
        storage.write_frame(generate_day(day, 2000, seed=5), lake.curated(day))
    first = train(START, END, overrides=ws.overrides)
    assert first.promoted and first.version == "1", first.gate_reason
    return ws


def champion_of(ws) -> str:
    settings = ws.settings()
    registry.configure_tracking(settings.tracking, settings.registry)
    info = registry.version_by_alias(settings.registry, "champion")
    return info.version if info else ""


def test_a_decent_but_worse_candidate_is_not_promoted(trained) -> None:
    ws = trained
    settings = ws.settings()
    weaker = train(START, END, overrides={**ws.overrides, **DECENT})

    assert not weaker.promoted and weaker.alias == "challenger", weaker.gate_reason
    assert weaker.metrics["roc_auc"] < weaker.champion_metrics["roc_auc"]
    assert champion_of(ws) == "1"
    import mlflow

    decision = mlflow.artifacts.load_dict(f"runs:/{weaker.run_id}/gate_decision.json")
    failed = [c["name"] for c in decision["checks"] if not c["passed"]]
    assert failed and all("vs_champion" in n or n == "bootstrap_lower_bound" for n in failed), (
        f"the candidate must fail only on the comparison with the champion, not a floor: {failed}"
    )
    assert any(c["name"].endswith("floor") and c["passed"] for c in decision["checks"])
    assert any(c["name"].startswith("beats_baseline") and c["passed"] for c in decision["checks"])
    info = registry.get_version(settings.registry, weaker.version)
    assert info.tag("gate_passed") == "false"
    assert info.tag("gate_decision_id") == decision["decision_id"]
    entry = ledger_for(settings).entries()[-1]
    assert (entry.kind, entry.alias, entry.to_version) == ("challenger", "challenger", "2")
    assert entry.gate_decision_id == decision["decision_id"]


def test_rollback_previous_to_n_and_a_rollback_of_a_rollback(trained) -> None:
    ws = trained
    better = train(
        START,
        END,
        overrides={**ws.overrides, "model.params.max_iter": 400},
        allow_unvalidated=True,
        override_reason="a champion to roll back from",
    )
    assert better.promoted, better.gate_reason
    current = better.version
    assert champion_of(ws) == current

    back = rollback("incident 1", overrides=ws.overrides)
    assert (back.from_version, back.to_version) == (current, "1") and champion_of(ws) == "1"

    undone = rollback("incident 1 was a false alarm", overrides=ws.overrides)
    assert (undone.from_version, undone.to_version) == ("1", current)
    assert champion_of(ws) == current

    named = rollback("back to the challenger", to_version="2", overrides=ws.overrides)
    assert (named.from_version, named.to_version) == (current, "2") and champion_of(ws) == "2"
    moves = [(e.kind, e.from_version, e.to_version) for e in ledger_for(ws.settings()).entries()]
    assert moves[-3:] == [("rollback", current, "1"), ("rollback", "1", current),
                          ("rollback", current, "2")]  # fmt: skip

    with pytest.raises(RollbackError, match="v2 is already the champion"):
        rollback("twice", to_version="2", overrides=ws.overrides)
    assert champion_of(ws) == "2"


def _register(ws, seed: int, reference: bool) -> str:
    """A version registered through the adapter (not the train flow), optionally with the
    drift reference tag the train flow would have written."""
    settings = ws.settings()
    frame = generate_day(START, 1500, seed=seed)
    split = split_frame(frame, settings.dataset, settings.split)
    pipeline = fit_pipeline(split, settings.dataset, settings.model.model_copy(
        update={"params": {**settings.model.params, "max_iter": 20}}))  # fmt: skip
    experiment = registry.configure_tracking(settings.tracking, settings.registry)
    _run, model_uri = registry.log_candidate(
        experiment_id=experiment, run_name=f"manual-{seed}", pipeline=pipeline,
        input_example=split.x_train.head(20), params={}, metrics={}, figures={}, tags={},
        training_frame=frame.head(20), training_source="generated",
        target=settings.dataset.target, documents={},
    )  # fmt: skip
    version = registry.register(model_uri, settings.registry, {})
    if reference:
        uri = storage.write_frame(
            frame,
            storage.Lake(ws.lake_root, "loans").reference(settings.registry.model_name, version),
        )
        registry.set_version_tags(settings.registry, version, {"reference_uri": uri})
    return version


def _model_file(ws, version: str) -> Path:
    from mlflow import MlflowClient

    settings = ws.settings()
    info = registry.get_version(settings.registry, version)
    model = MlflowClient().get_logged_model(info.source.removeprefix("models:/"))
    folder = Path(urlparse(model.artifact_location).path)
    files = [p for p in folder.rglob("model.*") if p.suffix in (".skops", ".pkl", ".joblib")]
    assert len(files) == 1, files
    return files[0]


def test_each_rollback_error_leaves_champion_and_ledger_alone(workspace) -> None:
    ws = workspace
    settings = ws.settings()
    first = _register(ws, 1, reference=True)
    registry.set_alias(settings.registry, "champion", first)  # set by hand: no ledger entry
    no_reference = _register(ws, 2, reference=False)
    broken = _register(ws, 3, reference=True)
    _model_file(ws, broken).write_bytes(b"not a model")
    swapped = _register(ws, 4, reference=True)
    info = registry.get_version(settings.registry, swapped)
    with registry.downloaded_model(info.uri) as local:  # the digest the train flow records
        digest = registry.artifact_digest(local)
    registry.set_version_tags(settings.registry, swapped, {"model_sha256": digest})
    # another model that loads and predicts (it would pass the smoke check), not the one registered
    _model_file(ws, swapped).write_bytes(_model_file(ws, first).read_bytes())
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, rf"the ledger has no champion before v{first}.*name the version"),
        ({"to_version": first}, rf"v{first} is already the champion"),
        ({"to_version": no_reference}, rf"v{no_reference} has no drift reference snapshot"),
        ({"to_version": broken}, rf"v{broken} failed the serving smoke check.*not rolled back"),
        (
            {"to_version": swapped},
            rf"v{swapped} cannot be rolled back to: .*does not match the digest",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(RollbackError, match=message):
            rollback("test", overrides=ws.overrides, **kwargs)
        assert champion_of(ws) == first, kwargs
    assert ledger_for(settings).entries() == []
