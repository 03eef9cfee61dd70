"""Prefect tasks of the `process` flow: which days have landed, what was done with each, and
the record of each day's stages."""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from driftloop.tasks.adapters import day_states, storage
from driftloop.tasks.adapters.prefect_runs import earlier_running_run
from driftloop.tasks.common import IO_RETRIES, current_run_id
from driftloop.tasks.core.days import DayState


@task(name="list-landed-days", cache_policy=NONE, **IO_RETRIES)
def landed(lake: storage.Lake) -> tuple[dict[date, str], list[str]]:
    """Raw files by day; a file whose name is not <YYYY-MM-DD>.parquet|csv (or does not
    match `dataset.raw_pattern`) is named, not guessed at."""
    days, unmatched = day_states.landed_days(lake)
    if unmatched:
        expected = (
            f"do not match dataset.raw_pattern {lake.raw_pattern!r}"
            if lake.raw_pattern
            else "are not named <YYYY-MM-DD>.parquet or .csv"
        )
        get_run_logger().warning(
            "%d raw file(s) %s and are not processed: %s. Rename (copy) them to the day they hold.",
            len(unmatched),
            expected,
            ", ".join(unmatched[:10]),
        )
    return days, unmatched


@task(name="read-day-states", cache_policy=NONE, **IO_RETRIES)
def read_states(lake: storage.Lake) -> dict[date, DayState]:
    return day_states.read_states(lake)


@task(name="find-redelivered-days", cache_policy=NONE, **IO_RETRIES)
def redelivered(raw: dict[date, str], states: dict[date, DayState]) -> set[date]:
    """Failed days whose raw file now holds other bytes: a corrected delivery to retry."""
    failed = [day for day, state in states.items() if state.failed and day in raw]
    return {
        day
        for day in failed
        if raw[day] != states[day].raw_uri or storage.sha256_of(raw[day]) != states[day].raw_sha256
    }


@task(name="record-day", cache_policy=NONE, **IO_RETRIES)
def record_day(lake: storage.Lake, state: DayState) -> str:
    return day_states.write_state(lake, state)


@task(name="list-curated-days", cache_policy=NONE, **IO_RETRIES)
def curated_days(lake: storage.Lake, until: date) -> list[date]:
    return day_states.curated_days(lake, until)


@task(name="find-earlier-process-run", **IO_RETRIES)
def earlier_run() -> str | None:
    """Another `process` run already working: this one leaves the days to it."""
    return earlier_running_run("process", current_run_id())
