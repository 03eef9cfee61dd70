"""A scoring summary speaks the task's language: no positive rate outside binary."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from driftloop.tasks.core.results import ScoreSummary
from driftloop.tasks.core.scoring import count_classes
from driftloop.tasks.core.targets import ModelOutput


def _summary(**fields: object) -> ScoreSummary:
    base = {"day": date(2026, 11, 1), "source": "in", "output_uri": "out", "model_version": "1"}
    return ScoreSummary(rows=4, rows_quarantined=0, **base, **fields)  # type: ignore[arg-type]


def test_multiclass_counts_each_predicted_class() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    counts = count_classes(ModelOutput(proba, "multiclass", ("a", "b", "c")), {})
    assert counts == {"a": 2, "b": 1, "c": 1}
    assert count_classes(ModelOutput(proba[:1], "multiclass", ("a", "b", "c")), counts)["a"] == 3


@pytest.mark.parametrize(
    ("task", "counts", "text"),
    [
        ("binary", (1, 2.1, {}), "positive rate 0.250"),
        ("multiclass", (0, 4.0, {"b": 1, "a": 3}), "class shares a 0.75, b 0.25"),
        ("regression", (0, 600.0, {}), "mean prediction 150"),
    ],
)
def test_each_task_reports_its_own_prediction_summary(
    task: str, counts: tuple[int, float, dict[str, int]], text: str
) -> None:
    summary = _summary(**ScoreSummary.predictions_of(task, 4, *counts))
    assert summary.predictions_text() == text
    assert (summary.positive_rate is None) == (task != "binary")
