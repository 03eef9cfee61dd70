"""Daily files in a folder (local or S3) as backtest windows, one per day, in day order.

Why a pattern and not "the first ten characters": real exports are named
`events_2013-01-01.csv` or `part-20130101.parquet`; a name that carries no date must stop the
replay (naming the file), never be given a made-up day.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from driftloop.tasks.adapters import storage
from driftloop.tasks.core.backtest import BacktestError, Window

#: `<YYYY-MM-DD>` anywhere in the file name.
DATE_PATTERN = r"(?P<date>\d{4}-\d{2}-\d{2})"


def compile_date_pattern(pattern: str) -> re.Pattern[str]:
    """The pattern must name the day: a group `date` (YYYY-MM-DD), or `year`, `month`, `day`."""
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise BacktestError(f"date pattern {pattern!r} is not a regular expression: {err}") from err
    groups = set(regex.groupindex)
    if "date" not in groups and not {"year", "month", "day"} <= groups:
        raise BacktestError(
            f"date pattern {pattern!r} names no day: give it a group (?P<date>...) matching "
            "YYYY-MM-DD, or groups (?P<year>...), (?P<month>...) and (?P<day>...), e.g. "
            r"'events_(?P<date>\d{4}-\d{2}-\d{2})' or "
            r"'(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})'"
        )
    return regex


def day_of(name: str, regex: re.Pattern[str]) -> date | None:
    """The day a file name carries, or None when the pattern does not match it."""
    match = regex.search(name)
    if match is None:
        return None
    found = match.groupdict()
    if found.get("date") is not None:
        return date.fromisoformat(found["date"])
    return date(int(found["year"]), int(found["month"]), int(found["day"]))


def folder_windows(folder: str, date_pattern: str = DATE_PATTERN) -> list[Window]:
    """Daily files (parquet/csv, with the target) sorted by the day in their names.

    A file whose name does not match `date_pattern`, carries an impossible date, or shares its
    day with another file is an error naming the file(s).
    """
    regex = compile_date_pattern(date_pattern)
    uris = [u for u in storage.list_uris(folder) if u.endswith((".parquet", ".csv"))]
    if not uris:
        raise BacktestError(f"{folder} holds no .parquet or .csv daily files to replay")
    dated: dict[date, str] = {}
    for uri in uris:
        name = Path(uri).name
        try:
            day = day_of(name, regex)
        except ValueError as err:
            raise BacktestError(f"{uri}: the date in its name is not a valid day ({err})") from err
        if day is None:
            raise BacktestError(
                f"{uri}: its name carries no date matching {date_pattern!r}; rename it, move it "
                "out of the folder, or pass --date-pattern with a group (?P<date>...)"
            )
        if day in dated:
            raise BacktestError(
                f"{dated[day]} and {uri} both carry the day {day}: a backtest replays one file "
                "per day"
            )
        dated[day] = uri
    return [
        Window(day=day, frame=storage.read_frame(uri), source=Path(uri).name)
        for day, uri in sorted(dated.items())
    ]
