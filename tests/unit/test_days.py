"""The unattended loop's rules for days (core/days.py): once each, in order, retry on new bytes."""

from __future__ import annotations

from datetime import date

import pytest

from driftloop.tasks.core.days import DayState, StageRecord, missing_days, plan_days

D = [date(2026, 5, day) for day in range(1, 8)]
DONE = StageRecord(status="done")
FAILED = StageRecord(status="failed", detail="DataContractError")
SKIPPED = StageRecord(status="skipped", detail="no champion yet")


def raw(*days: date) -> dict[date, str]:
    return {d: f"lake/raw/loans/{d}.parquet" for d in days}


def state(day: date, **stages: StageRecord) -> DayState:
    return DayState(day=day, raw_uri=f"lake/raw/loans/{day}.parquet", stages=stages)


def planned(plans: list) -> list[tuple[date, list[str]]]:
    return [(p.day, p.stages) for p in plans]


ALL = ["ingest", "score", "check"]


@pytest.mark.parametrize(
    ("landed", "states", "kwargs", "expected"),
    [
        pytest.param(raw(D[2], D[0], D[1]), {}, {}, [(d, ALL) for d in D[:3]], id="oldest-first"),
        pytest.param(
            raw(*D[:3]),
            {D[0]: state(D[0], ingest=DONE, score=DONE, check=DONE)},
            {},
            [(D[1], ALL), (D[2], ALL)],
            id="done-days-never-again",
        ),
        pytest.param(
            raw(D[0]),
            {D[0]: state(D[0], ingest=DONE)},
            {},
            [(D[0], ["score", "check"])],
            id="resume-where-it-stopped",
        ),
        pytest.param(
            raw(D[0]),
            {D[0]: state(D[0], ingest=DONE, score=SKIPPED, check=SKIPPED)},
            {},
            [],
            id="skipped-is-ended",
        ),
        pytest.param(
            raw(D[0], D[1]),
            {D[0]: state(D[0], ingest=FAILED)},
            {},
            [(D[1], ALL)],
            id="a-failed-day-waits-and-the-next-goes-on",
        ),
        pytest.param(
            raw(D[0]),
            {D[0]: state(D[0], ingest=DONE, score=FAILED)},
            {"changed": {D[0]}},
            [(D[0], ALL)],
            id="redelivered-failed-day-from-the-start",
        ),
        pytest.param(
            raw(*D[:4]), {}, {"since": D[1], "until": D[2]}, [(D[1], ALL), (D[2], ALL)], id="range"
        ),
        pytest.param(raw(D[0]), {}, {"check": False}, [(D[0], ["ingest", "score"])], id="no-check"),
    ],
)
def test_plan_days(
    landed: dict[date, str], states: dict[date, DayState], kwargs: dict, expected: list
) -> None:
    assert planned(plan_days(landed, states, **kwargs)) == expected


def test_a_late_file_is_planned_when_it_lands() -> None:
    done = {d: state(d, ingest=DONE, score=DONE, check=DONE) for d in (D[0], D[2])}
    assert planned(plan_days(raw(D[0], D[2]), done)) == []
    assert planned(plan_days(raw(D[0], D[1], D[2]), done)) == [(D[1], ALL)]


def test_missing_days_are_gaps_before_the_last_landed_day_reported_once() -> None:
    landed = raw(D[0], D[3], D[4])
    assert missing_days(landed, {}) == [D[1], D[2]]
    reported = {D[1]: DayState(day=D[1], missing_reported=True)}
    assert missing_days(landed, reported) == [D[2]]
    assert missing_days(landed, {}, since=D[2]) == [D[2]]
    assert missing_days({}, {}) == []
