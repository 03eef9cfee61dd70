"""The loop status page's text, from plain records (tasks/core/status.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from driftloop.tasks.core.status import ChampionMove, CheckLine, LoopStatus, status_markdown

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_the_page_answers_the_five_questions() -> None:
    status = LoopStatus(
        model="loan-default",
        dataset="loans",
        now=NOW,
        champion="2",
        moves=[
            ChampionMove("1", "promotion", NOW - timedelta(days=30), "gate passed: first model"),
            ChampionMove("2", "promotion", NOW - timedelta(days=2), "gate passed: roc_auc +0.04"),
            ChampionMove("3", "challenger", NOW - timedelta(days=1), "gate rejected: worse"),
        ],
        checks=[
            CheckLine(NOW - timedelta(days=9), "2026-11-08..2026-11-10", "quiet", False, "old"),
            CheckLine(
                NOW - timedelta(days=3),
                "2026-11-14..2026-11-16",
                "retrain",
                True,
                "feature drift 2 days | in a row",
                ["feature_drift"],
            ),
        ],
        realised={"roc_auc": 0.81234},
        realised_window="2026-11-14..2026-11-16",
        waiting=["train-2026-11-14..2026-11-19: waiting for approval"],
    )
    page = status_markdown(status)
    assert "**v2** since 2026-11-18 12:00 UTC (promotion): gate passed: roc_auc +0.04" in page
    assert "Window 2026-11-14..2026-11-16: roc_auc 0.8123." in page
    assert "1 check(s), 1 decided to retrain." in page, "the 9-day-old check is not this week"
    assert "feature drift 2 days / in a row" in page, "a pipe would break the table"
    assert "2 candidate(s) judged by the gate, 1 promoted (v2)." in page
    assert "- v3 kept as challenger" in page
    assert "- train-2026-11-14..2026-11-19: waiting for approval" in page


def test_a_new_loop_says_what_comes_first() -> None:
    page = status_markdown(LoopStatus("m", "loans", NOW, None, [], []))
    assert "No champion yet: the first training promotes v1." in page
    assert "0 candidate(s) judged by the gate, 0 promoted." in page
    assert "Nothing waits for approval." in page
