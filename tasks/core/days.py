"""The unattended loop's memory of each day: what landed, what was done, what to do next.

Every raw file that lands is processed once, in day order: ingested, scored by whichever
model is champion then, and checked for drift. A day that failed is retried only when a
different file lands for it (raw input is immutable; a corrected delivery has new bytes). A
day that never arrived while later days did is reported once. Pure: the lake is read and
written by the adapters, so these rules are table-tested.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Stage = Literal["ingest", "score", "check"]
Status = Literal["done", "failed", "skipped"]


class StageRecord(BaseModel):
    """One stage of one day: how it ended, in which flow run, and why if it did not."""

    model_config = ConfigDict(frozen=True)

    status: Status
    flow_run_id: str | None = None
    detail: str = ""
    at: datetime | None = None


class DayState(BaseModel):
    """A day as the loop remembers it; stored as state/<dataset>/days/<day>.json."""

    day: date
    raw_uri: str | None = None
    raw_sha256: str | None = None
    stages: dict[Stage, StageRecord] = Field(default_factory=dict)
    missing_reported: bool = False

    def ended(self, stage: Stage) -> bool:
        record = self.stages.get(stage)
        return record is not None and record.status in ("done", "skipped")

    @property
    def failed(self) -> bool:
        return any(r.status == "failed" for r in self.stages.values())


class DayPlan(BaseModel):
    """What a `process` run does with one day, and why."""

    model_config = ConfigDict(frozen=True)

    day: date
    raw_uri: str
    stages: list[Stage]
    retry: bool = False  # a failed day whose raw file changed


def plan_days(
    raw: dict[date, str],
    states: dict[date, DayState],
    *,
    since: date | None = None,
    until: date | None = None,
    check: bool = True,
    changed: set[date] | None = None,
) -> list[DayPlan]:
    """The days to work on, oldest first: each landed day whose stages have not all ended.

    A failed day is planned again only when it is in `changed` (its raw file's bytes differ
    from the ones that failed); then every stage runs again.
    """
    wanted: list[Stage] = ["ingest", "score", "check"] if check else ["ingest", "score"]
    plans = []
    for day in sorted(raw):
        if (since and day < since) or (until and day > until):
            continue
        state = states.get(day)
        if state is not None and state.failed:
            if day in (changed or set()):
                plans.append(DayPlan(day=day, raw_uri=raw[day], stages=wanted, retry=True))
            continue
        todo = [s for s in wanted if state is None or not state.ended(s)]
        if todo:
            plans.append(DayPlan(day=day, raw_uri=raw[day], stages=todo))
    return plans


def missing_days(
    raw: dict[date, str], states: dict[date, DayState], *, since: date | None = None
) -> list[date]:
    """Days with no raw file although a later day has one, not reported before."""
    if not raw:
        return []
    first = max(min(raw), since) if since else min(raw)
    gaps = []
    day = first
    while day < max(raw):
        state = states.get(day)
        if day not in raw and not (state is not None and state.missing_reported):
            gaps.append(day)
        day += timedelta(days=1)
    return gaps


class ParameterError(ValueError):
    """A run's own parameters do not make sense (a window ending before it starts, an override
    without a reason): the person who started it fixes them and starts it again."""


class InputMissingError(RuntimeError):
    """Days whose raw file never arrived although later days did; raised once per day."""

    def __init__(self, days: list[date], folder: str) -> None:
        listed = ", ".join(str(d) for d in days)
        super().__init__(
            f"input did not arrive: no raw file for {listed} under {folder}, although later "
            "days have landed. Ask the producer to deliver <day>.parquet (or .csv) for each; "
            "the next `process` run picks a late file up on its own. The days after them were "
            "processed; this alert is sent once per missing day."
        )
        self.days = days
