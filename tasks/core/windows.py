"""Windows of days: which days a retrain learns from, and which days judge it.

The drift check and the backtest call these with the same settings, so what the loop does
unattended is what a replay of history shows.
"""

from __future__ import annotations

from datetime import date, timedelta

from driftloop.configs.settings import SplitSettings, TrainingSettings


def parse_window(text: str | None) -> tuple[date, date] | None:
    """'2026-01-01..2026-01-28' -> (start, end); None for an empty or malformed text."""
    start, sep, end = (text or "").partition("..")
    try:
        return (date.fromisoformat(start), date.fromisoformat(end)) if sep else None
    except ValueError:
        return None


def training_window(
    training: TrainingSettings, *, end: date, champion_window: tuple[date, date] | None = None
) -> tuple[date, date]:
    """The days a retrain that follows a check ending on `end` learns from."""
    if training.window == "expanding" and training.start is not None:
        return min(training.start, end), end
    if training.window == "champion_plus_new" and champion_window is not None:
        return min(champion_window[0], end), end
    return end - timedelta(days=training.days - 1), end


def holdout_start(
    days: list[date], split: SplitSettings, *, champion_end: date | None = None
) -> date | None:
    """The first day of the out-of-time rows the gate judges on, among the days present.

    The last `split.holdout_days` days, but never a day the champion trained on when later
    days exist: both models are then judged on rows neither learnt from. None when fewer than
    two days are present (nothing would be left to train on).
    """
    present = sorted(set(days))
    if len(present) < 2:
        return None
    start = present[-min(split.holdout_days, len(present) - 1)]
    if champion_end is not None and start <= champion_end < present[-1]:
        start = next(d for d in present if d > champion_end)
    return start
