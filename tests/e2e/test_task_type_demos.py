"""`driftloop demo --dataset wine|diabetes`: the loop on a multi-class and a regression example.

`make demo` stays the binary loan story (tests/e2e/test_demo_loop.py); these are the other two
task types, built from scikit-learn's datasets: v1 trained, drifted days scored (summaries in
the task's terms, never a positive rate), two drift checks, a retrain promoted by the gate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.flows.cli import main
from driftloop.flows.demo import run_sklearn_demo

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_backend")]


@pytest.mark.parametrize(("name", "phrase"), [("wine", "class shares "), ("diabetes", "mean pred")])
def test_the_demo_runs_the_loop_on_other_task_types(tmp_path: Path, name: str, phrase: str) -> None:
    timeline = run_sklearn_demo(name, home=tmp_path / "demo")  # 2,000 rows a day, as the CLI

    first, last = timeline.trainings[0], timeline.trainings[-1]
    assert (first.version, first.alias) == ("1", "champion")
    scored = [line for line in timeline.lines if "ingest+score" in line]
    assert len(scored) == 3 and all(phrase in line for line in scored), scored
    assert not any("positive rate" in line for line in timeline.lines)
    assert [c.baseline_version for c in timeline.drift_checks] == ["1", "1"]
    assert timeline.drift_checks[-1].rule == "retrain", timeline.drift_checks[-1].reason
    assert last.version == "2" and last.trigger.startswith("drift:")
    # the drifted day judges both: the retrain wins (wine log loss ~0.01 vs ~0.24, diabetes
    # RMSE ~52 vs ~84 on the seeded data)
    assert last.promoted and last.champion_after == "2", last.gate_reason


def test_the_demo_command_refuses_an_unknown_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--dataset", "iris"])
    assert exited.value.code == 2
    assert "invalid choice: 'iris'" in capsys.readouterr().err
