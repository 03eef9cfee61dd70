"""The drift history: one file per check (local and S3), read back as the policy's memory."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from driftloop.tasks.adapters import history, storage
from driftloop.tasks.core.monitoring import Assessment, FeatureScore, Realised, Signal
from driftloop.tasks.core.policy import PolicyDecision
from driftloop.tasks.core.reporting import policy_markdown

DAY = date(2026, 3, 1)


def check(day: date, retrain: bool, check_id: str) -> tuple[PolicyDecision, Assessment]:
    signal = Signal(
        name="feature_drift", breached=retrain, value=0.5, threshold=0.3, detail="income drifted"
    )
    assessment = Assessment(
        baseline_version="3",
        current_rows=5000,
        signals={"feature_drift": signal},
        scores=[
            FeatureScore(
                feature="income",
                comparison="skew",
                method="wasserstein",
                score=0.4,
                threshold=0.1,
                drifted=True,
            )
        ],
        realised=Realised(
            predictions=5000,
            labelled=4000,
            pending=1000,
            unmatched_labels=3,
            unmatched_examples=["x1", "x2", "x3"],
            metrics={"roc_auc": 0.71},
        ),
    )
    decision = PolicyDecision(
        check_id=check_id,
        model_name="loan-default",
        window_start=day,
        window_end=day,
        baseline_version="3",
        retrain=retrain,
        rule="retrain" if retrain else "hysteresis",
        reason="because | of a table pipe",
        breached=True,
        counting=["feature_drift"],
        streak=2 if retrain else 1,
        new_rows=5000,
        report_uri="s3://bucket/reports/drift/x.html",
    )
    return decision, assessment


def write_two(prefix: str) -> None:
    for offset, (retrain, cid) in enumerate([(False, "aaa"), (True, "bbb")]):
        decision, assessment = check(DAY + timedelta(days=offset), retrain, cid)
        rows = history.history_rows(decision, assessment, datetime.now(UTC))
        history.append(prefix, rows, decision)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_checks_append_as_files_and_read_back_as_records(where, tmp_path, request) -> None:
    root = str(tmp_path) if where == "local" else request.getfixturevalue("s3_bucket")
    prefix = storage.Lake(root, "loans").drift_history("loan-default")
    assert history.read(prefix).empty
    write_two(prefix)
    assert len(storage.list_uris(prefix, ".parquet")) == 2
    frame = history.read(prefix)
    assert set(frame["kind"]) == {"feature", "signal", "metric", "decision"}
    records = history.records(frame)
    assert [(r.check_id, r.retrain, r.window_end) for r in records] == [
        ("aaa", False, DAY),
        ("bbb", True, DAY + timedelta(days=1)),
    ]
    unmatched = frame[frame["name"] == "labels:unmatched"]
    assert unmatched["value"].tolist() == [3.0, 3.0] and "x1" in unmatched["detail"].iloc[0]
    assert history.decisions(frame)[1].report_uri == "s3://bucket/reports/drift/x.html"


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_long_history_is_read_from_a_compacted_file_and_the_checks_after_it(
    where, tmp_path, request, monkeypatch
) -> None:
    """A year of checks must not mean a year of reads per check: the reader opens the newest
    compacted file and the few checks after it, and sees every check exactly once."""
    root = str(tmp_path) if where == "local" else request.getfixturevalue("s3_bucket")
    prefix = storage.Lake(root, "loans").drift_history("loan-default")
    total = 2 * history.COMPACT_AFTER + 5
    opened: list[str] = []
    read_frame = storage.read_frame
    monkeypatch.setattr(storage, "read_frame", lambda uri: opened.append(uri) or read_frame(uri))
    for n in range(total):
        decision, assessment = check(DAY + timedelta(days=n), n % 7 == 0, f"c{n:03d}")
        history.append(
            prefix, history.history_rows(decision, assessment, datetime.now(UTC)), decision
        )
    # appending reads back only when a compaction is due: 30 checks, then 1 compacted + 30
    assert len(opened) == history.COMPACT_AFTER + 1 + history.COMPACT_AFTER
    opened.clear()
    records = history.records(history.read(prefix))
    assert [r.check_id for r in records] == [f"c{n:03d}" for n in range(total)]
    assert [r.retrain for r in records] == [n % 7 == 0 for n in range(total)]
    compacted = [u for u in opened if "/compacted/" in u]
    assert len(compacted) == 1 and compacted[0].endswith(f"{2 * history.COMPACT_AFTER:08d}.parquet")
    assert len(opened) == 1 + 5  # the compacted file and the 5 checks after it


def test_a_foreign_file_in_the_history_is_named(tmp_path) -> None:
    prefix = str(tmp_path / "history")
    write_two(prefix)
    storage.write_frame(pd.DataFrame({"a": [1]}), f"{prefix}/stray.parquet")
    with pytest.raises(history.HistoryError, match=r"stray\.parquet"):
        history.read(prefix)
    other = str(tmp_path / "other")
    write_two(other)
    storage.write_frame(pd.DataFrame({"a": [1]}), f"{other}/compacted/backup.parquet")
    with pytest.raises(history.HistoryError, match=r"compacted/backup\.parquet"):
        history.read(other)


def test_plot_is_a_png_with_or_without_checks(tmp_path) -> None:
    prefix = str(tmp_path / "history")
    empty = history.plot_png(history.read(prefix), "m")
    write_two(prefix)
    full = history.plot_png(history.read(prefix), "m")
    for png in (empty, full):
        assert png.startswith(b"\x89PNG")
    assert len(full) > len(empty)


def test_markdown_shows_decisions_signals_and_labels(tmp_path) -> None:
    prefix = str(tmp_path / "history")
    write_two(prefix)
    table = history.decisions_markdown(history.read(prefix), "/x/plot.png")
    assert "file:///x/plot.png" in table and "because \\| of a table pipe" in table
    decision, assessment = check(DAY, True, "ccc")
    text = policy_markdown(decision, assessment, "/x/record.parquet")
    assert "RETRAIN (rule `retrain`)" in text and "baseline **v3**" in text
    assert "3 labels matched no prediction (e.g. x1, x2, x3)" in text
