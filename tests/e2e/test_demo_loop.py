"""The demo loop end to end: quiet days change nothing, a shift moves the champion to v2."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.configs.settings import load_settings
from driftloop.flows.demo import DemoPlan, demo_overrides, run_demo
from driftloop.tasks.adapters import registry, storage

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_backend")]


def test_demo_loop_retrains_after_drift_and_only_then(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    timeline = run_demo(DemoPlan(), home=home)  # the story `make demo` tells, at its size

    first, second = timeline.trainings[0], timeline.trainings[-1]
    assert (first.version, first.alias, first.trigger) == ("1", "champion", "manual")

    quiet, waiting, drifted = timeline.drift_checks
    assert not quiet.drifted, quiet.reason
    assert quiet.retrain is None, "a no-drift window must trigger nothing"
    # hysteresis: the first breaching window only starts the streak
    assert waiting.drifted and waiting.rule == "hysteresis" and waiting.retrain is None
    assert drifted.rule == "retrain" and drifted.decision_uri
    assert drifted.decision_uri in second.trigger
    assert drifted.drifted and drifted.baseline_version == "1"
    assert drifted.retrain is not None
    # the retrain learns from its own window (training.days up to the check's end), not the
    # drift window; days before the data began are simply absent
    assert second.trigger.startswith("drift:")
    assert second.window == "2026-10-14..2026-11-10" and drifted.window.endswith("2026-11-10")
    assert (second.version, second.champion_before, second.champion_after) == ("2", "1", "2")

    settings = load_settings("local", demo_overrides(home))
    registry.configure_tracking(settings.tracking, settings.registry)
    champion = registry.version_by_alias(settings.registry, "champion")
    assert champion is not None and champion.version == "2"
    assert storage.exists(champion.tag("reference_uri"))
    assert len(timeline.trainings) == 2, "exactly one retrain: the drifted window"
    assert any("quarantined" in line and "quarantine:" in line for line in timeline.lines)
