"""The lake's record of days: which raw files have landed, and what the loop did with each."""

from __future__ import annotations

import re
from datetime import date
from pathlib import PurePosixPath

from driftloop.tasks.adapters import storage
from driftloop.tasks.core.days import DayState

# raw/<dataset>/<YYYY-MM-DD>.parquet|csv
_RAW_NAME = re.compile(r"^(?P<day>\d{4}-\d{2}-\d{2})\.(?P<ext>parquet|csv)$")


def raw_day(uri: str, lake: storage.Lake | None = None) -> date | None:
    """The day a raw file holds: by the lake's `raw_pattern` when it has one, else by its
    name <YYYY-MM-DD>.parquet|csv; None for any other."""
    if lake is not None and lake.raw_pattern is not None:
        return lake.raw_day_of(uri)
    found = _RAW_NAME.match(PurePosixPath(uri).name)
    try:
        return date.fromisoformat(found["day"]) if found else None
    except ValueError:
        return None


def landed_days(lake: storage.Lake) -> tuple[dict[date, str], list[str]]:
    """({day: raw URI}, names that are not <YYYY-MM-DD>.parquet|csv). A day with both a
    parquet and a csv file is read from the parquet, as `Lake.raw_any` does."""
    days: dict[date, str] = {}
    unmatched = []
    pattern = lake.raw_pattern
    suffix = "." + pattern.rsplit("/", 1)[-1].split(".", 1)[-1] if pattern else ""
    for uri in storage.list_uris(lake.raw_folder()):
        day = raw_day(uri, lake)
        if day is None:
            # a pattern's folder may hold other files: only look-alikes are worth naming
            if uri.endswith(suffix):
                unmatched.append(uri)
        elif day not in days or uri.endswith(".parquet"):
            days[day] = uri
    return days, unmatched


def curated_days(lake: storage.Lake, until: date) -> list[date]:
    """The days up to `until` that have curated rows, oldest first."""
    days = []
    for uri in storage.list_uris(lake.curated_folder(), ".parquet"):
        try:
            day = date.fromisoformat(PurePosixPath(uri).name.removesuffix(".parquet"))
        except ValueError:
            continue
        if day <= until:
            days.append(day)
    return sorted(days)


def read_states(lake: storage.Lake) -> dict[date, DayState]:
    states = {}
    for uri in storage.list_uris(lake.day_states(), ".json"):
        state = DayState.model_validate_json(storage.read_bytes(uri))
        states[state.day] = state
    return states


def write_state(lake: storage.Lake, state: DayState) -> str:
    uri = storage.join(lake.day_states(), f"{state.day.isoformat()}.json")
    return storage.write_text(uri, state.model_dump_json(indent=2))
