"""The demo generator's days as backtest windows: scenarios in segments, one day per window."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from driftloop.data.generate import SCENARIOS, generate_day
from driftloop.tasks.core.backtest import BacktestError, Window


def parse_segments(text: str) -> list[tuple[str, int]]:
    """'none:20,covariate_shift:20' -> [('none', 20), ('covariate_shift', 20)]."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, count = part.partition(":")
        if name not in SCENARIOS or not count.isdigit() or int(count) < 1:
            raise BacktestError(
                f"segment {part!r} must look like <scenario>:<windows>, e.g. seasonal:365 or "
                f"covariate_shift:20; scenarios: {', '.join(SCENARIOS)}"
            )
        out.append((name, int(count)))
    if not out:
        raise BacktestError(
            "no segments given: each is <scenario>:<windows>, e.g. none:20,covariate_shift:20"
        )
    return out


def with_warmup(segments: list[tuple[str, int]], warmup: int) -> list[tuple[str, int]]:
    """The segments after `warmup` days of the first segment's scenario (they train v1 and
    are not replayed): the world v1 learns is the one the replay starts in."""
    if warmup < 1 or not segments:
        return list(segments)
    first, count = segments[0]
    return [(first, warmup + count), *segments[1:]]


def generated_windows(
    segments: list[tuple[str, int]], rows: int, start: date, seed: int = 0
) -> Iterator[Window]:
    """Consecutive generated days; each segment's scenario starts at its first day."""
    day = start
    for scenario, count in segments:
        for _ in range(count):
            frame = generate_day(day, rows, scenario=scenario, drift_start=None, seed=seed)
            yield Window(day=day, frame=frame, source=scenario)
            day += timedelta(days=1)
