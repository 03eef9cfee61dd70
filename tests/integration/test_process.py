"""The unattended loop's `process` flow: files land, every day is done once, in order.

Under the Prefect test server, with the real ingest, score, check_drift and train flows as
subflows: the test only places files in the lake and runs `process` as a schedule would.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

from driftloop.data.generate import generate_day
from driftloop.flows.process import process
from driftloop.tasks.adapters import day_states, storage

pytestmark = pytest.mark.usefixtures("prefect_backend")

START = date(2026, 6, 1)
DAYS = [START + timedelta(days=i) for i in range(6)]
ROWS = 1200
FAST = {
    "process.bootstrap_days": 2,
    "gate.bootstrap.resamples": 50,
    "policy.min_new_rows": 500,
}


def land(lake: storage.Lake, day: date, scenario: str = "none") -> str:
    frame = generate_day(day, ROWS, scenario=scenario, drift_start=DAYS[4], seed=day.day)
    return storage.write_frame(frame, lake.raw(day))


def runs_named(name: str) -> int:
    with get_client(sync_client=True) as client:
        return len(
            client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            )
        )


def stages(lake: storage.Lake) -> dict[date, dict[str, str]]:
    return {
        day: {stage: r.status for stage, r in state.stages.items()}
        for day, state in day_states.read_states(lake).items()
    }


def test_every_landed_day_is_done_once_in_order_and_gaps_are_reported_once(workspace) -> None:
    overrides = {**workspace.overrides, **FAST}
    lake = storage.Lake(workspace.lake_root, "loans")
    for day in (DAYS[0], DAYS[1], DAYS[2], DAYS[5]):
        land(lake, day, "covariate_shift" if day >= DAYS[4] else "none")
    corrupt = storage.write_bytes(lake.raw(DAYS[4]), b"this is not a parquet file")
    raw_before = storage.read_bytes(corrupt)

    # First run: v1 is trained once two days are curated; the corrupt day fails alone; the
    # missing day fails the run once, by name, after the other days are done.
    state = process(overrides=overrides, return_state=True)
    assert state.is_failed()
    assert "input did not arrive" in state.message and str(DAYS[3]) in state.message
    done = {"ingest": "done", "score": "done", "check": "done"}
    seen = stages(lake)
    assert seen[DAYS[0]] == {"ingest": "done", "score": "skipped", "check": "skipped"}
    assert seen[DAYS[1]] == seen[DAYS[2]] == seen[DAYS[5]] == done
    assert seen[DAYS[4]] == {"ingest": "failed"}
    for day in (DAYS[1], DAYS[2], DAYS[5]):
        predictions = storage.read_frame(lake.predictions("loan-default", day))
        assert set(predictions["model_version"].astype(str)) == {"1"}
    assert storage.read_bytes(corrupt) == raw_before

    # Second run: nothing new landed, so nothing runs and nothing pages again.
    again = process(overrides=overrides)
    assert again.days == [] and again.missing_days == []

    # The late day lands: it alone is processed. A corrected delivery of the corrupt day
    # (other bytes) is retried from the start.
    land(lake, DAYS[3])
    land(lake, DAYS[4], "covariate_shift")
    late = process(overrides=overrides)
    assert [o.day for o in late.days] == [DAYS[3], DAYS[4]]
    assert stages(lake)[DAYS[3]] == stages(lake)[DAYS[4]] == done
    for day in DAYS[1:4] + DAYS[5:]:
        assert runs_named(f"ingest-{day}") == 1, day
        assert runs_named(f"score-{day}") == 1, day
    assert runs_named(f"ingest-{DAYS[4]}") == 2  # the corrupt delivery, then the corrected one


def test_a_backfill_range_does_only_its_days(workspace) -> None:
    overrides = {**workspace.overrides, **FAST}
    lake = storage.Lake(workspace.lake_root, "loans")
    for day in DAYS[:4]:
        land(lake, day)
    first = process(since=DAYS[0], until=DAYS[1], check=False, overrides=overrides)
    assert [o.day for o in first.days] == DAYS[:2]
    assert set(stages(lake)) == set(DAYS[:2])
    rest = process(since=DAYS[0], until=DAYS[3], check=False, overrides=overrides)
    assert [o.day for o in rest.days] == DAYS[2:4]  # resumed: the done days are skipped
    seen = stages(lake)
    assert seen.pop(DAYS[0]) == {"ingest": "done", "score": "skipped"}  # before v1 existed
    assert all(s == {"ingest": "done", "score": "done"} for s in seen.values())
