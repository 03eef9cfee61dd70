"""The backtest replays the real signals and policy; issue 7's acceptance at a small size.

The full-size run (10k rows per window, 100k for the quiet case) is
`driftloop backtest --acceptance`, and the e2e test below; timings are printed, never asserted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftloop.configs.settings import load_settings
from driftloop.data.acceptance import cases, run_case
from driftloop.data.generate import generate_day
from driftloop.data.replay import parse_segments
from driftloop.flows.cli import main
from driftloop.tasks.adapters import storage
from driftloop.tasks.adapters.daily_files import folder_windows
from driftloop.tasks.adapters.validation import validate_frame
from driftloop.tasks.core.backtest import (
    BacktestError,
    BacktestOptions,
    run_backtest,
    timeline_table,
)
from driftloop.tasks.core.contract import ROW_COLUMN, quarantine_mask

# A lighter model keeps the replay fast; the policy and signals are the configured ones.
FAST = {
    "model.params.max_iter": 30,
    "gate.bootstrap.resamples": 50,
    "gate.slices.columns": [],  # realised per-slice metrics are tested in test_monitoring
}


def load(extra: dict[str, Any]):
    return load_settings("local", {**FAST, **extra})


@pytest.mark.parametrize(
    "case", cases(rows=3000, quiet_rows=3000, quiet_windows=6, after=4), ids=lambda c: c.name
)
def test_acceptance_case_holds_at_a_small_size(case) -> None:
    outcome, result = run_case(case, load)
    assert outcome.passed, (outcome.detail, timeline_table(result))
    if case.expect == "block":
        row = next(r for r in result.rows if r.rule == case.block_rule)
        assert not row.retrain and row.reason.startswith("Retrain held")


def test_the_gate_can_reject_a_retrain_in_the_replay() -> None:
    """With --train the gate judges each candidate; a floor nobody reaches rejects it."""
    settings = load({"gate.metrics.roc_auc.threshold": 0.99})
    from driftloop.data.replay import generated_windows

    windows = generated_windows([("none", 4), ("covariate_shift", 2)], 3000, date(2026, 1, 1))
    result = run_backtest(windows, settings, BacktestOptions(train=True))
    assert result.retrains >= 1 and result.promotions == 0 and result.rejected >= 1
    assert any("rejected by the gate" in r.event for r in result.rows)
    assert all(r.champion == "v1" for r in result.rows)


def test_the_backtest_quarantines_exactly_what_ingest_quarantines() -> None:
    """The replay's contract is the flows' contract: same rows out, whatever the fault."""
    dataset = load({}).dataset
    now = datetime(2026, 1, 2, tzinfo=UTC)
    for scenario in ("corrupt", "none"):
        frame = generate_day(date(2026, 1, 1), 2000, scenario=scenario)
        bad = quarantine_mask(frame, dataset, now=now)
        batch = validate_frame(frame, dataset, source=scenario, now=now)
        assert np.flatnonzero(bad).tolist() == sorted(batch.quarantine[ROW_COLUMN].tolist())
        assert bad.any() == (scenario == "corrupt")


def test_a_folder_of_daily_files_replays_in_day_order(tmp_path: Path) -> None:
    for i in (2, 0, 1, 3):
        day = date(2026, 1, 1 + i)
        frame = generate_day(day, 1500)
        storage.write_frame(frame, str(tmp_path / f"{day}.parquet"))
    windows = folder_windows(str(tmp_path))
    assert [w.day.day for w in windows] == [1, 2, 3, 4]
    result = run_backtest(windows, load({}), BacktestOptions(warmup=2))
    assert [r.day.day for r in result.rows] == [3, 4]


@pytest.mark.parametrize("text", ["none", "none:0", "sideways:3", ""])
def test_bad_segments_say_what_a_segment_looks_like(text: str) -> None:
    with pytest.raises(BacktestError, match="scenario"):
        parse_segments(text)


def test_an_empty_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(BacktestError, match=str(tmp_path)):
        folder_windows(str(tmp_path))


def test_cli_prints_the_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "backtest",
            "--segments",
            "none:3,covariate_shift:3",
            "--rows",
            "2000",
            "--set",
            "model.params.max_iter=40",
            "--set",
            "policy.consecutive_windows=1",
            "--set",
            "policy.min_new_rows=1000",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "covariate_shift" in out and "retrain -> v2 promoted" in out
    assert "6 windows: 1 retrain(s), 1 promotion(s)" in out


def test_cli_names_a_bad_override(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--set", "policy.cooldown_dayz=2"]) == 2
    assert "policy.cooldown_dayz" in capsys.readouterr().err


@pytest.mark.e2e
def test_full_size_acceptance_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 7 at its stated sizes: 100k rows for the quiet case, 10k for the others."""
    assert main(["backtest", "--acceptance", "--rows", "10000", "--quiet-rows", "100000"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.count("PASS") >= 8
