"""Which days a retrain learns from and which days judge it (core/windows.py, out_of_time)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from driftloop.configs.settings import SplitSettings, TrainingSettings, load_settings
from driftloop.data.generate import generate_day
from driftloop.tasks.core.training import event_days, split_frame
from driftloop.tasks.core.windows import holdout_start, parse_window, training_window

END = date(2026, 3, 31)
D = [date(2026, 3, day) for day in range(1, 11)]


@pytest.mark.parametrize(
    ("training", "champion", "expected"),
    [
        (TrainingSettings(window="rolling", days=28), None, (date(2026, 3, 4), END)),
        (TrainingSettings(window="rolling", days=1), None, (END, END)),
        (
            TrainingSettings(window="expanding", start=date(2026, 1, 1)),
            None,
            (date(2026, 1, 1), END),
        ),
        (
            TrainingSettings(window="champion_plus_new", days=7),
            (date(2026, 2, 1), date(2026, 2, 28)),
            (date(2026, 2, 1), END),
        ),
        (TrainingSettings(window="champion_plus_new", days=7), None, (date(2026, 3, 25), END)),
    ],
    ids=["rolling", "rolling-one-day", "expanding", "champion-plus-new", "no-champion-yet"],
)
def test_training_window(
    training: TrainingSettings,
    champion: tuple[date, date] | None,
    expected: tuple[date, date],
) -> None:
    assert training_window(training, end=END, champion_window=champion) == expected


def test_an_expanding_window_needs_its_start() -> None:
    with pytest.raises(ValueError, match=r"training\.start"):
        TrainingSettings(window="expanding")


@pytest.mark.parametrize(
    ("days", "holdout", "champion_end", "expected"),
    [
        (D, 1, None, D[-1]),
        (D, 3, None, D[-3]),
        (D, 3, D[-2], D[-1]),  # the champion saw D[-3] and D[-2]: judge on D[-1] only
        (D, 1, D[-1], D[-1]),  # no later day: the last day still judges
        (D[:1], 1, None, None),  # one day: nothing would be left to train on
        (D[:2], 5, None, D[1]),  # never the whole window
        ([D[3], D[0], D[3], D[1]], 1, None, D[3]),  # unordered, repeated
    ],
)
def test_holdout_start(
    days: list[date], holdout: int, champion_end: date | None, expected: date | None
) -> None:
    split = SplitSettings(strategy="out_of_time", holdout_days=holdout)
    assert holdout_start(days, split, champion_end=champion_end) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01..2026-01-28", (date(2026, 1, 1), date(2026, 1, 28))),
        ("", None),
        (None, None),
        ("2026-01-01", None),
        ("soon..later", None),
    ],
)
def test_parse_window(text: str | None, expected: tuple[date, date] | None) -> None:
    assert parse_window(text) == expected


def test_out_of_time_split_judges_on_the_most_recent_days_only() -> None:
    settings = load_settings(None, {"split.strategy": "out_of_time", "split.holdout_days": 2})
    frame = pd.concat(
        [generate_day(D[0] + timedelta(days=i), 300, seed=i) for i in range(5)],
        ignore_index=True,
    )
    days = event_days(frame, settings.dataset)
    split = split_frame(frame, settings.dataset, settings.split)
    assert len(split.x_test) == sum(d >= D[3] for d in days)
    assert len(split.x_train) == sum(d < D[3] for d in days)
    # a champion that trained up to D[3] leaves only D[4] to judge both on
    after = split_frame(frame, settings.dataset, settings.split, champion_end=D[3])
    assert len(after.x_test) == sum(d == D[4] for d in days)
