"""Only a better model is promoted; rollback restores; the ledger and the alias never disagree."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from driftloop.data.generate import generate_day
from driftloop.flows.rollback import rollback
from driftloop.flows.score import score
from driftloop.flows.train import train
from driftloop.tasks.adapters import registry, storage
from driftloop.tasks.adapters.promotion import ledger_for, move_alias

pytestmark = pytest.mark.usefixtures("prefect_backend")

START = date(2026, 11, 1)
END = START + timedelta(days=2)
WEAK = {"model.params.max_iter": 2, "model.params.learning_rate": 0.01}


@pytest.fixture(scope="module")
def curated(workspace_factory):
    """Three curated days; every model below trains and is judged on the same split."""
    ws = workspace_factory("promotion")
    lake = storage.Lake(ws.lake_root, "loans")
    for i in range(3):
        day = START + timedelta(days=i)
        storage.write_frame(generate_day(day, 2000, seed=5), lake.curated(day))
    return ws


def champion_of(ws) -> str:
    settings = ws.settings()
    registry.configure_tracking(settings.tracking, settings.registry)
    info = registry.version_by_alias(settings.registry, "champion")
    return info.version if info else ""


def test_only_the_better_model_is_promoted_and_rollback_restores(curated) -> None:
    ws = curated
    weak = train(START, END, overrides={**ws.overrides, **WEAK})
    assert weak.promoted and weak.version == "1", weak.gate_reason
    t_after_v1 = datetime.now(UTC)

    equal = train(START, END, overrides={**ws.overrides, **WEAK})
    assert not equal.promoted and equal.alias == "challenger", equal.gate_reason
    assert "vs_champion_absolute roc_auc" in equal.gate_reason

    lake = storage.Lake(ws.lake_root, "loans")
    shuffled_days = [START + timedelta(days=10 + i) for i in range(3)]
    for day in shuffled_days:
        frame = generate_day(day, 2000, seed=6)
        frame["default"] = frame["default"].sample(frac=1.0, random_state=1).to_numpy()
        storage.write_frame(frame, lake.curated(day))
    worse = train(shuffled_days[0], shuffled_days[-1], overrides=ws.overrides)
    assert not worse.promoted, worse.gate_reason

    better = train(START, END, overrides=ws.overrides)
    assert better.promoted, better.gate_reason
    assert better.metrics["roc_auc"] > better.champion_metrics["roc_auc"]
    assert champion_of(ws) == better.version == "4"
    t_after_v4 = datetime.now(UTC)

    settings = ws.settings()
    import mlflow

    card = mlflow.artifacts.load_text(f"runs:/{better.run_id}/model_card.md")
    assert "v4" in card and "## Slices" in card and "Gate PASSED" in card
    info = registry.get_version(settings.registry, better.version)
    for key in (
        "data_digest",
        "data_location",
        "validation",
        "config_digest",
        "code_version",
        "flow_run_id",
        "trigger",
        "gate_decision_id",
        "model_sha256",
        "reference_uri",
    ):
        assert info.tag(key), key

    back = rollback("v4 misbehaves in production", overrides=ws.overrides)
    assert (back.from_version, back.to_version) == ("4", "1")
    assert champion_of(ws) == "1"
    day = START + timedelta(days=20)
    storage.write_frame(generate_day(day, 300, seed=7), lake.raw(day))
    assert score(day, overrides=ws.overrides).model_version == "1"

    ledger = ledger_for(settings)
    assert ledger.version_at("champion", t_after_v1) == "1"
    assert ledger.version_at("champion", t_after_v4) == "4"
    assert ledger.version_at("champion", datetime.now(UTC)) == "1"
    kinds = [(e.kind, e.to_version) for e in ledger.entries()]
    assert kinds == [
        ("promotion", "1"),
        ("challenger", "2"),
        ("challenger", "3"),
        ("promotion", "4"),
        ("rollback", "1"),
    ]


def test_override_promotes_a_rejected_model_and_says_so(curated) -> None:
    ws = curated
    forced = train(
        START,
        END,
        overrides={**ws.overrides, **WEAK},
        allow_unvalidated=True,
        override_reason="incident 42: roll forward the pinned model",
    )
    assert forced.promoted and "overridden" in forced.gate_reason
    assert "incident 42" in forced.gate_reason
    entry = ledger_for(ws.settings()).previous("champion")
    assert entry is not None and entry.to_version == forced.version
    assert "incident 42" in entry.reason


def test_override_without_reason_is_refused(curated) -> None:
    state = train(
        START,
        END,
        overrides={**curated.overrides, **WEAK},
        allow_unvalidated=True,
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(ValueError, match="override_reason"):
        state.result()


def test_racing_promotions_leave_alias_and_ledger_agreeing(curated) -> None:
    settings = curated.settings()
    registry.configure_tracking(settings.tracking, settings.registry)
    versions = [v["version"] for v in registry.list_versions(settings.registry)][:4]
    errors: list[BaseException] = []

    def promote(version: str) -> None:
        try:
            move_alias(
                settings,
                alias="champion",
                to_version=version,
                kind="manual",
                reason=f"race {version}",
            )
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    raced = [e for e in ledger_for(settings).entries() if e.reason.startswith("race")]
    assert len(raced) == len(versions) and all(e.status == "committed" for e in raced)
    for earlier, later in itertools.pairwise(raced):
        assert later.from_version == earlier.to_version, "moves must not interleave"
    assert champion_of(curated) == raced[-1].to_version


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from driftloop.configs.settings import load_settings
    from driftloop.tasks.adapters import registry
    from driftloop.tasks.adapters.ledger import LedgerEntry
    from driftloop.tasks.adapters.promotion import ledger_for
    settings = load_settings("local", {{"storage.root": {root!r}, "tracking.uri": {uri!r},
                                        "tracking.artifact_location": {art!r}}})
    registry.configure_tracking(settings.tracking, settings.registry)
    ledger = ledger_for(settings)
    ledger.write_intent(LedgerEntry(model=settings.registry.model_name, alias="champion",
                                    from_version="1", to_version={to!r}, kind="manual",
                                    reason="crash test"))
    if {move_alias}:
        registry.set_alias(settings.registry, "champion", {to!r})
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize(
    "alias_moved", [False, True], ids=["killed-before-alias", "killed-after-alias"]
)
def test_a_killed_promotion_settles_consistently(curated, alias_moved: bool) -> None:
    ws = curated
    settings = ws.settings()
    move_alias(settings, alias="champion", to_version="1", kind="manual", reason="reset")
    over = ws.overrides
    script = CRASH_SCRIPT.format(
        root=over["storage.root"],
        uri=over["tracking.uri"],
        art=over["tracking.artifact_location"],
        to="2",
        move_alias=alias_moved,
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ),
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    expected = "2" if alias_moved else "1"
    assert champion_of(ws) == expected
    # The next promotion settles the crashed one first, from what the registry says.
    move_alias(settings, alias="champion", to_version=expected, kind="manual", reason="next")
    ledger = ledger_for(settings)
    crashed = [e for e in ledger.entries() if e.reason == "crash test"][-1]
    assert crashed.status == ("committed" if alias_moved else "aborted")
    assert ledger.version_at("champion", datetime.now(UTC)) == champion_of(ws) == expected


def test_a_reviewer_can_reject_a_promotion_the_gate_passed(curated) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.flow_runs import resume_flow_run

    ws = curated
    overrides = {
        **ws.overrides,
        "gate.approval.required": True,
        "gate.approval.poll_seconds": 1,
        "gate.metrics.roc_auc.min_absolute_change": -1.0,
        "gate.bootstrap.require_lower_bound": False,
    }
    before = champion_of(ws)
    result: dict[str, object] = {}
    # A daemon thread and a bounded approval wait: a failed assertion must not hang the session.
    overrides["gate.approval.timeout_minutes"] = 15
    worker = threading.Thread(
        target=lambda: result.update(summary=train(START, END, overrides=overrides)), daemon=True
    )
    worker.start()
    paused = None
    deadline = time.monotonic() + 600  # training before the pause is slow on a loaded machine
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            # newest first: the session's shared test server holds every earlier test's runs
            runs = client.read_flow_runs(limit=50, sort=FlowRunSort.EXPECTED_START_TIME_DESC)
            paused = next((r for r in runs if r.state and r.state.is_paused()), None)
            if paused or not worker.is_alive():
                break
            worker.join(timeout=0.5)
    assert paused is not None, "the train run should wait for a reviewer"
    resume_flow_run(
        paused.id,
        run_input={"approve": False, "comment": "not before the audit", "reviewer": "carol"},
    )
    worker.join(timeout=180)
    summary = result["summary"]
    assert not summary.promoted and summary.alias == "challenger"
    assert "rejected by carol (not before the audit)" in summary.gate_reason
    assert champion_of(ws) == before
