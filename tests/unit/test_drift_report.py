"""The drift report people open: it shows what the decision was made on, and nothing else."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from driftloop.configs.settings import DriftSettings, PolicySettings
from driftloop.tasks.core import drift_report
from driftloop.tasks.core.monitoring import Assessment, ReferenceStats, assess, window_stats
from driftloop.tasks.core.policy import PolicyDecision, decide_retrain
from tests.unit.test_drift import CATEGORICAL, NUMERIC, make_frame

DAY = date(2026, 11, 2)


def _check(
    reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[Assessment, PolicyDecision, ReferenceStats]:
    settings = DriftSettings()
    stats = window_stats(reference, numeric=NUMERIC, categorical=CATEGORICAL, quantiles=200)
    baseline = ReferenceStats(model_name="loans", version="3", snapshot_uri="-", stats=stats)
    current_stats = window_stats(current, numeric=NUMERIC, categorical=CATEGORICAL, quantiles=200)
    assessment = assess(
        baseline,
        current_stats,
        previous=None,
        realised=None,
        quality=None,
        settings=settings,
        features=NUMERIC + CATEGORICAL,
    )
    decision = decide_retrain(
        check_id="c0ffee",
        model_name="loans",
        window_start=DAY,
        window_end=DAY,
        baseline_version="3",
        signals=assessment.signals,
        history=[],
        in_flight=[],
        new_rows=len(current),
        policy=PolicySettings(),
    )
    return assessment, decision, baseline


def _render(reference: pd.DataFrame, current: pd.DataFrame, detail: str | None = None) -> str:
    assessment, decision, baseline = _check(reference, current)
    assert assessment.window is not None
    return drift_report.render_html(
        assessment,
        decision,
        baseline.stats,
        assessment.window,
        detail_link=detail,
        sample_size=100_000,
        written=datetime(2026, 11, 3, 6, 0, tzinfo=UTC),
    )


def _rows(html: str) -> dict[str, str]:
    """Each column's row of the Columns table: its name -> 'yes'/'no' drifted."""
    table = html.split("<h2>Columns</h2>", 1)[1]
    return dict(
        re.findall(r"<td><b>([^<]+)</b>.*?<td class=\"(?:bad|ok)\">(yes|no)</td>", table, re.S)
    )


def test_the_report_marks_the_drifted_columns_first_and_draws_every_column() -> None:
    html = _render(make_frame(4000, 1), make_frame(4000, 2, shifted=True))
    rows = _rows(html)
    assert set(rows) == set(NUMERIC + CATEGORICAL), rows
    drifted = [c for c, mark in rows.items() if mark == "yes"]
    assert {"income", "interest_rate", "credit_score", "debt_to_income", "home_ownership"} <= set(
        drifted
    )
    assert list(rows.values()) == sorted(rows.values(), reverse=True), "drifted columns first"
    assert html.count("<svg") == len(NUMERIC + CATEGORICAL), "one chart per column"
    assert "feature_drift" in html and "c0ffee" in html and "v3" in html
    assert "<script" not in html, "self-contained: opens from a file, a server or S3 alike"


def test_a_quiet_window_reads_as_quiet() -> None:
    html = _render(make_frame(4000, 1), make_frame(4000, 2))
    assert "yes" not in _rows(html).values()
    assert "<b>No retrain</b>" in html


def test_values_from_the_data_are_escaped_and_the_evidently_link_is_optional() -> None:
    reference, current = make_frame(2000, 1), make_frame(2000, 2)
    current["region"] = "<script>alert(1)</script>"
    html = _render(reference, current, detail="loans-2026-11-02.evidently.html")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="loans-2026-11-02.evidently.html"' in html
    assert "Evidently" not in _render(reference, current, detail=None)


@pytest.mark.parametrize("categories", [3, 30])
def test_many_categories_are_capped_with_the_rest_summed(categories: int) -> None:
    reference, current = make_frame(3000, 1), make_frame(3000, 2)
    current["purpose"] = [f"p{i % categories}" for i in range(len(current))]
    html = _render(reference, current)
    values = len(set(reference["purpose"]) | set(current["purpose"]))
    assert ("other values" in html) == (values > drift_report.TOP_CATEGORIES), values
