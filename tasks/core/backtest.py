"""Backtest: replay windows through monitoring -> policy (-> train -> gate) offline.

Why: thresholds and policy rules must be tuned on history before automation is switched on.
The replay uses the very functions the `check_drift` flow uses (`window_stats`, `assess`,
`decide_retrain`, and with `train=True` the gate's `decide_gate`), in one process and without
Prefect, MLflow or the lake, so a long replay stays quick to rerun while tuning (each replay
prints how long it took; `driftloop backtest --acceptance` times a mixed one).

Simulation choices (each stated in the timeline's header):
- each window is one day of data; the model in service scores it;
- labels of window t arrive `label_delay` windows later and are joined by id to the stored
  predictions, counted only if the current champion made them;
- a retrain trains on the windows of the breaching streak (at least one), is in flight for
  `train_latency` windows (the policy sees it as a running `train` run), and is then promoted:
  always without `train=True`, only if the gate passes with it;
- rows that break the data contract (nulls where not allowed, out of range, unknown category)
  are counted as quarantined and not scored, like the score flow does.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel

from driftloop.configs.settings import DatasetSettings, Settings
from driftloop.tasks.core.contract import quarantine_mask
from driftloop.tasks.core.evaluation import score_metrics
from driftloop.tasks.core.evidence import measure_evidence
from driftloop.tasks.core.gate import decide_gate
from driftloop.tasks.core.monitoring import (
    Quality,
    Realised,
    ReferenceStats,
    WindowStats,
    assess,
    realised_performance,
    settings_stats,
)
from driftloop.tasks.core.policy import CheckRecord, InFlightRun, decide_retrain
from driftloop.tasks.core.training import Split, fit_pipeline, model_input, split_frame

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

SCORE = "score"


class BacktestError(ValueError):
    """The replay cannot start: a bad plan, folder or option; the message says which."""


@dataclass(frozen=True)
class Window:
    """One day of data to replay (features and target), and where it came from."""

    day: date
    frame: pd.DataFrame
    source: str


class BacktestOptions(BaseModel):
    label_delay: int = 1
    train_latency: int = 0
    train: bool = False
    warmup: int = 3
    threads: int = 1


class TimelineRow(BaseModel):
    """One window of the replay: what was measured, what the policy said, what happened."""

    index: int
    day: date
    source: str
    rows: int
    champion: str
    breached: list[str]
    feature_share: float
    prediction_drift: float
    decay: float
    rule: str
    retrain: bool
    reason: str
    event: str = ""


class BacktestResult(BaseModel):
    rows: list[TimelineRow]
    retrains: int
    promotions: int
    rejected: int
    seconds: float
    options: BacktestOptions

    def first(self, rule: str, after: int = -1) -> TimelineRow | None:
        return next((r for r in self.rows if r.rule == rule and r.index > after), None)


# ------------------------------------------------------------------------------ the replay


@dataclass
class _Champion:
    version: int
    model: Pipeline
    reference: ReferenceStats


@dataclass
class _Scored:
    day: date
    version: int
    predictions: pd.DataFrame
    labels: pd.DataFrame


@dataclass
class _Pending:
    ready_at: int
    champion: _Champion | None
    started_at: int
    gate_reason: str = ""


@dataclass
class _State:
    champion: _Champion
    versions: int = 1
    history: list[CheckRecord] = field(default_factory=list)
    previous: WindowStats | None = None
    recent: deque[pd.DataFrame] = field(default_factory=deque)
    scored: deque[_Scored] = field(default_factory=deque)
    pending: _Pending | None = None


def _quarantined(frame: pd.DataFrame, dataset: DatasetSettings, day: date) -> np.ndarray:
    """What the flows would quarantine from this window, judged at the end of its day."""
    end_of_day = datetime.combine(day + timedelta(days=1), clock.min, tzinfo=UTC)
    return quarantine_mask(frame, dataset, now=end_of_day, source=f"window {day}")


def _fit_version(
    frame: pd.DataFrame, version: int, settings: Settings
) -> tuple[_Champion, Pipeline, Split]:
    """Fit on the frame's train split; the reference is the whole frame, metrics held-out."""
    split = split_frame(frame, settings.dataset, settings.split)
    model = fit_pipeline(split, settings.dataset, settings.model)
    p_test = model.predict_proba(split.x_test)[:, 1]
    metrics = score_metrics(split.y_test, p_test, min_precision=settings.gate.recall_at_precision)
    scored = frame.assign(
        **{SCORE: model.predict_proba(model_input(frame, settings.dataset))[:, 1]}
    )
    reference = ReferenceStats(
        model_name=settings.registry.model_name,
        version=str(version),
        snapshot_uri=f"backtest:v{version}",
        stats=_stats(scored, settings),
        metrics=metrics,
    )
    return _Champion(version=version, model=model, reference=reference), model, split


def _stats(frame: pd.DataFrame, settings: Settings) -> WindowStats:
    return settings_stats(frame, settings, SCORE)


def _gate(candidate: Pipeline, champion: _Champion, split: Split, settings: Settings) -> str:
    """The gate's pure decision on the candidate vs the champion on the same held-out rows
    (no serving smoke check and no baseline model offline). Returns '' if passed."""
    evidence = measure_evidence(
        candidate,
        champion.model,
        split,
        settings,
        champion_version=str(champion.version),
        baseline=False,
    )
    decision = decide_gate(evidence, settings.gate.model_copy(update={"baseline": None}))
    return "" if decision.passed else decision.reason


def run_backtest(
    windows: Iterable[Window],
    settings: Settings,
    options: BacktestOptions | None = None,
) -> BacktestResult:
    """Replay the windows; the first `options.warmup` train the first champion (v1)."""
    from threadpoolctl import threadpool_limits

    options = options or BacktestOptions()
    # One native thread per model: on a shared host OpenMP's default (all cores) makes gradient
    # boosting far slower through oversubscription (its threads wait at every barrier), and
    # windows are small anyway.
    with threadpool_limits(limits=options.threads):
        return _replay(windows, settings, options)


def _replay(
    windows: Iterable[Window], settings: Settings, options: BacktestOptions
) -> BacktestResult:
    started = time.perf_counter()
    dataset = settings.dataset
    it = iter(windows)
    warm = [w for _, w in zip(range(options.warmup), it, strict=False)]
    if len(warm) < max(options.warmup, 1):
        raise BacktestError(f"need at least {max(options.warmup, 1)} window(s) to train v1")
    warm_frame = pd.concat([w.frame for w in warm], ignore_index=True)
    warm_frame = warm_frame[~_quarantined(warm_frame, dataset, warm[-1].day)]
    first, _, _ = _fit_version(warm_frame, 1, settings)
    state = _State(champion=first)
    keep = max(settings.policy.consecutive_windows, 1)
    state.recent = deque(maxlen=max(keep, 8))
    rows: list[TimelineRow] = []
    retrains = promotions = rejected = 0
    features = dataset.feature_columns
    for index, window in enumerate(it):
        event = ""
        if state.pending is not None and index >= state.pending.ready_at:
            pending, state.pending = state.pending, None
            if pending.champion is not None:
                state.champion = pending.champion
                promotions += 1
                event = f"v{pending.champion.version} promoted"
            else:
                rejected += 1
                event = f"candidate rejected by the gate: {pending.gate_reason[:80]}"
        champion = state.champion
        frame = window.frame
        bad = _quarantined(frame, dataset, window.day)
        valid = frame[~bad].reset_index(drop=True)
        scores = champion.model.predict_proba(model_input(valid, dataset))[:, 1]
        scored = valid.assign(**{SCORE: scores})
        current = _stats(scored, settings)
        keep_cols = [dataset.id_column, SCORE, *settings.gate.slices.columns]
        state.scored.append(
            _Scored(
                day=window.day,
                version=champion.version,
                predictions=scored[keep_cols],
                labels=valid[[dataset.id_column, dataset.target]],
            )
        )
        realised = _arrived_labels(state, options, settings)
        assessment = assess(
            champion.reference,
            current,
            previous=state.previous,
            realised=realised,
            quality=Quality(rows_received=len(frame), rows_quarantined=int(bad.sum())),
            settings=settings.drift,
            features=features,
        )
        in_flight = []
        if state.pending is not None:
            in_flight = [
                InFlightRun(
                    id=f"bt-{state.pending.started_at}",
                    name=f"train-backtest-w{state.pending.started_at}",
                    state="RUNNING",
                )
            ]
        decision = decide_retrain(
            check_id=f"w{index}",
            model_name=settings.registry.model_name,
            window_start=window.day,
            window_end=window.day,
            baseline_version=str(champion.version),
            signals=assessment.signals,
            history=state.history,
            in_flight=in_flight,
            new_rows=len(valid),
            policy=settings.policy,
        )
        state.history.append(decision.record())
        state.recent.append(valid)
        state.previous = current
        if decision.retrain:
            retrains += 1
            streak = list(state.recent)[-max(decision.streak, 1) :]
            state.versions += 1
            candidate, model, split = _fit_version(
                pd.concat(streak, ignore_index=True), state.versions, settings
            )
            reason = _gate(model, champion, split, settings) if options.train else ""
            state.pending = _Pending(
                ready_at=index + max(options.train_latency, 0),
                champion=None if reason else candidate,
                started_at=index,
                gate_reason=reason,
            )
            event = (event + "; " if event else "") + f"retrain -> v{state.versions}"
            if options.train_latency == 0:
                pending, state.pending = state.pending, None
                if pending.champion is not None:
                    state.champion = pending.champion
                    promotions += 1
                    event += " promoted"
                else:
                    rejected += 1
                    event += f" rejected by the gate: {pending.gate_reason[:80]}"
        sig = assessment.signals
        rows.append(
            TimelineRow(
                index=index,
                day=window.day,
                source=window.source,
                rows=len(frame),
                champion=f"v{champion.version}",
                breached=assessment.breached(),
                feature_share=sig["feature_drift"].value,
                prediction_drift=sig["prediction_drift"].value,
                decay=sig["performance_decay"].value,
                rule=decision.rule,
                retrain=decision.retrain,
                reason=decision.reason,
                event=event,
            )
        )
    return BacktestResult(
        rows=rows,
        retrains=retrains,
        promotions=promotions,
        rejected=rejected,
        seconds=time.perf_counter() - started,
        options=options,
    )


def _arrived_labels(state: _State, options: BacktestOptions, settings: Settings) -> Realised | None:
    """Labels of the window `label_delay` back, if the current champion scored it."""
    delay = max(options.label_delay, 0)
    while len(state.scored) > delay + 1:
        state.scored.popleft()
    if len(state.scored) < delay + 1:
        return None
    old = state.scored[0]
    if old.version != state.champion.version:
        return None
    return realised_performance(
        old.predictions,
        old.labels,
        dataset=settings.dataset,
        score_column=SCORE,
        slice_columns=settings.gate.slices.columns,
        min_slice_rows=settings.gate.slices.min_rows,
        min_precision=settings.gate.recall_at_precision,
    )


# ------------------------------------------------------------------------------ printing


def _num(value: float, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def timeline_table(result: BacktestResult) -> str:
    """The replay as a fixed-width table: one line per window, then the totals."""
    head = (
        f"{'#':>3} {'day':<10} {'data':<16} {'rows':>7} {'champ':<5} {'share':>5} {'pred':>5} "
        f"{'decay':>6} {'rule':<10} signals / event"
    )
    lines = [head, "-" * len(head)]
    for r in result.rows:
        what = ",".join(r.breached) or "-"
        lines.append(
            f"{r.index:>3} {r.day!s:<10} {r.source[:16]:<16} {r.rows:>7} {r.champion:<5} "
            f"{_num(r.feature_share):>5} {_num(r.prediction_drift):>5} {_num(r.decay, 3):>6} "
            f"{r.rule:<10} {what}{'  => ' + r.event if r.event else ''}"
        )
    o = result.options
    lines.append(
        f"{len(result.rows)} windows: {result.retrains} retrain(s), {result.promotions} "
        f"promotion(s), {result.rejected} rejected by the gate; label delay {o.label_delay}, "
        f"train latency {o.train_latency}, gate {'on' if o.train else 'off'}; "
        f"{result.seconds:.1f} s"
    )
    return "\n".join(lines)
