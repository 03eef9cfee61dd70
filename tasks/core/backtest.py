"""Backtest: replay days through what production does, offline, and measure loop lift.

Why: thresholds and policy rules must be tuned on history before automation is switched on,
and the loop must show it pays for itself. The replay calls the very core functions the flows
call, in one process and without Prefect, MLflow or the lake, so a year replays in minutes:

- each day: rows that break the contract are quarantined and a batch ingest would fail is
  dropped (`screen_batch` + `batch_verdict`, ingest's own verdict); the rest are the day's
  curated rows, scored by the champion of that moment
  and kept as its predictions (with the version that made them);
- then the drift check of the `check_drift` flow: the window of the last `drift.window_days`
  days ending that day (days without predictions left out), the previous window of the same
  length, the labels that have arrived (`label_delay` days after their day, joined by id to
  the stored predictions of the champion), the quarantined rows; `settings_stats`, `assess`
  and `decide_retrain` with the history of earlier checks, the retrain outcomes and the
  check's time (noon UTC of the day);
- on a retrain decision, the `train` flow: the curated days of `training_window` (rolling,
  expanding or the champion's window plus the new days), split with `split_frame` (out of
  time, after the champion's window), fitted with `fit_pipeline`, judged by
  `measure_evidence` + `decide_gate` (no serving smoke check and no baseline model offline);
  the candidate becomes a version whose drift baseline is its training window scored by
  itself and whose registration metrics are its held-out ones, as `register_candidate` keeps;
- the outcome arrives `train_latency` days later (0: right after the check, as an inline
  retrain does; the policy sees a pending one as a running `train` run) and is recorded as a
  `RetrainOutcome`, so drift episodes, `escalate` and `promotion-limit` behave as in
  production; a promoted version scores from the next day on.

Regimes (`BacktestOptions`): the configured policy; `never` (v1 forever: the checks run, no
retrain starts); `force` (every check decides retrain, the gate still judges). `loop_lift`
replays the same days under all three and reports the realised primary metric of each: every
day's labelled rows as scored by the model in service that day, pooled over the replay.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, model_validator

from driftloop.configs.settings import DatasetSettings, Settings
from driftloop.tasks.core.contract import batch_verdict, derive_columns, screen_batch
from driftloop.tasks.core.evaluation import metric_value
from driftloop.tasks.core.evidence import measure_evidence
from driftloop.tasks.core.gate import decide_gate
from driftloop.tasks.core.monitoring import (
    Assessment,
    Quality,
    Realised,
    ReferenceStats,
    WindowStats,
    assess,
    realised_performance,
    settings_stats,
)
from driftloop.tasks.core.policy import (
    CheckRecord,
    InFlightRun,
    PolicyDecision,
    RetrainOutcome,
    decide_retrain,
)
from driftloop.tasks.core.scoring import SCORE_COLUMN
from driftloop.tasks.core.training import fit_pipeline, model_input, split_frame
from driftloop.tasks.core.windows import training_window

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

SCORE = SCORE_COLUMN
VERSION = "model_version"
CHECK_TIME = clock(12)  # the synthetic time of each day's drift check (UTC)
REGIMES = ("policy", "never", "always")


class BacktestError(ValueError):
    """The replay cannot start: a bad plan, folder or option; the message says which."""


@dataclass(frozen=True)
class Window:
    """One day of data to replay (features and target), and where it came from."""

    day: date
    frame: pd.DataFrame
    source: str


class BacktestOptions(BaseModel):
    """How the replay simulates what the data alone does not say.

    `train`: the gate judges each candidate, as production does; off, every candidate is
    promoted (to study the policy's triggers alone). `force` and `never` are the loop-lift
    regimes. `max_iter` caps the estimator's `max_iter` for every fit of the replay (v1 and
    candidates alike, see `replay_settings`), so long replays stay cheap.
    """

    label_delay: int = 1
    train_latency: int = 0
    train: bool = True
    warmup: int = 3
    threads: int = 1
    force: bool = False
    never: bool = False
    max_iter: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_regime(self) -> BacktestOptions:
        if self.force and self.never:
            raise ValueError(
                "force (retrain every window) and never (v1 forever) exclude each other"
            )
        if self.label_delay < 0 or self.train_latency < 0 or self.warmup < 1:
            raise ValueError("label_delay and train_latency must be >= 0, warmup >= 1")
        return self

    @property
    def regime(self) -> str:
        return "always" if self.force else "never" if self.never else "policy"


class TimelineRow(BaseModel):
    """One day of the replay: what was measured, what the policy said, what happened."""

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
    metric: float | None = None


class BacktestResult(BaseModel):
    """The timeline, the totals and the realised primary metric of the model in service."""

    rows: list[TimelineRow]
    retrains: int
    promotions: int
    rejected: int
    seconds: float
    options: BacktestOptions
    metric_name: str = "roc_auc"
    metric: float | None = None
    labelled: int = 0

    def first(self, rule: str, after: int = -1) -> TimelineRow | None:
        return next((r for r in self.rows if r.rule == rule and r.index > after), None)


# ------------------------------------------------------------------------------ the replay


@dataclass(frozen=True)
class Curated:
    """A day after the contract: its valid rows (what ingest curates) and what it dropped.

    Shared read-only between replays, so the lift's three regimes quarantine each day once.
    """

    day: date
    source: str
    valid: pd.DataFrame
    received: int
    quarantined: int
    failed: str = ""


@dataclass
class _Version:
    """A registered version: its model, training window, held-out metrics, and its training
    frame as drift baseline (summarised once it serves: rejected ones never need it)."""

    number: int
    model: Pipeline
    window: tuple[date, date]
    metrics: dict[str, float]
    snapshot: pd.DataFrame
    _reference: ReferenceStats | None = None

    def reference(self, settings: Settings) -> ReferenceStats:
        if self._reference is None:
            scores = self.model.predict_proba(model_input(self.snapshot, settings.dataset))[:, 1]
            self._reference = ReferenceStats(
                model_name=settings.registry.model_name,
                version=str(self.number),
                snapshot_uri=f"backtest:v{self.number}",
                stats=settings_stats(self.snapshot.assign(**{SCORE: scores}), settings, SCORE),
                metrics=self.metrics,
            )
            self.snapshot = self.snapshot.iloc[:0]
        return self._reference


@dataclass
class _Scored:
    predictions: pd.DataFrame
    labels: pd.DataFrame
    y: np.ndarray
    p: np.ndarray


@dataclass
class _Pending:
    ready: date
    started: date
    version: _Version
    passed: bool
    reason: str


@dataclass
class _State:
    champion: _Version
    versions: int = 1
    history: list[CheckRecord] = field(default_factory=list)
    outcomes: list[RetrainOutcome] = field(default_factory=list)
    curated: dict[date, Curated] = field(default_factory=dict)
    scored: dict[date, _Scored] = field(default_factory=dict)
    stats: dict[date, WindowStats] = field(default_factory=dict)
    pending: list[_Pending] = field(default_factory=list)
    served: list[tuple[date, np.ndarray, np.ndarray]] = field(default_factory=list)
    retrains: int = 0
    promotions: int = 0
    rejected: int = 0


def curate(window: Window, dataset: DatasetSettings) -> Curated:
    """What ingest would make of this day, judged at the end of its day: the rows it
    quarantines (the contract's row checks, the day's own time bounds included), and whether
    the batch fails by ingest's verdict (too few or too many rows, a column too often null, no
    valid row, more quarantined rows than `dataset.max_quarantine_fraction`): a failed day is
    neither curated nor scored."""
    end_of_day = datetime.combine(window.day + timedelta(days=1), clock.min, tzinfo=UTC)
    source = f"window {window.source} ({window.day})"
    digest = hashlib.sha256(f"{window.source}/{window.day}".encode()).hexdigest()
    frame = derive_columns(window.frame, dataset, digest=digest, day=window.day, source=source)
    bad, batch_level = screen_batch(frame, dataset, now=end_of_day, source=source, day=window.day)
    valid = frame[~bad].reset_index(drop=True)
    blocking = batch_verdict(
        batch_level, dataset, source=source, rows_in=len(window.frame), rows_valid=len(valid)
    )
    return Curated(
        day=window.day,
        source=window.source,
        valid=valid.iloc[:0] if blocking else valid,
        received=len(window.frame),
        quarantined=int(bad.sum()),
        failed="; ".join(blocking),
    )


def checked_at(day: date) -> datetime:
    """The synthetic, timezone-aware time of a day's drift check."""
    return datetime.combine(day, CHECK_TIME, tzinfo=UTC)


def replay_settings(settings: Settings, options: BacktestOptions) -> Settings:
    """The settings every fit of the replay uses: with `max_iter`, fewer and larger boosting
    steps (the learning rate grows by the factor the iterations shrink, so their product and
    the model's kind stay the configured ones)."""
    params = settings.model.params
    if options.max_iter is None or "max_iter" not in params:
        return settings
    configured = int(params["max_iter"])
    if options.max_iter >= configured:
        return settings
    update: dict[str, object] = {"max_iter": options.max_iter}
    if "learning_rate" in params:
        scaled = float(params["learning_rate"]) * configured / options.max_iter
        update["learning_rate"] = min(scaled, 1.0)
    model = settings.model.model_copy(update={"params": {**params, **update}})
    return settings.model_copy(update={"model": model})


def _train(
    frame: pd.DataFrame,
    champion: _Version | None,
    number: int,
    window: tuple[date, date],
    settings: Settings,
    gate: bool,
) -> tuple[_Version, bool, str]:
    """The `train` flow without its I/O: split, fit, evidence, gate; the version it registers.

    Returns (version, passed, gate reason); without a champion (v1) or without `gate` the
    candidate passes.
    """
    dataset = settings.dataset
    champion_end = None if champion is None else champion.window[1]
    split = split_frame(frame, dataset, settings.split, champion_end=champion_end)
    model = fit_pipeline(split, dataset, settings.model)
    evidence = measure_evidence(
        model,
        None if champion is None else champion.model,
        split,
        settings,
        champion_version=None if champion is None else str(champion.number),
        baseline=False,
    )
    passed, reason = True, "not judged"
    if gate and champion is not None:
        decision = decide_gate(evidence, settings.gate.model_copy(update={"baseline": None}))
        passed, reason = decision.passed, decision.reason
    version = _Version(
        number=number, model=model, window=window, metrics=evidence.candidate, snapshot=frame
    )
    return version, passed, reason


def run_backtest(
    windows: Iterable[Window],
    settings: Settings,
    options: BacktestOptions | None = None,
) -> BacktestResult:
    """Replay the windows (one day each, in day order); the first `options.warmup` train v1."""
    options = options or BacktestOptions()
    dataset = settings.dataset
    return replay_curated((curate(w, dataset) for w in windows), settings, options)


def replay_curated(
    days: Iterable[Curated], settings: Settings, options: BacktestOptions
) -> BacktestResult:
    """`run_backtest` on days already through the contract."""
    from threadpoolctl import threadpool_limits

    if settings.dataset.task != "binary":
        raise BacktestError(
            f"the backtest replays binary models only; dataset {settings.dataset.name!r} is "
            f"{settings.dataset.task} (dataset.task)"
        )

    # One native thread per model: on a shared host OpenMP's default (all cores) makes gradient
    # boosting far slower through oversubscription, and daily windows are small anyway.
    with threadpool_limits(limits=options.threads):
        return _Replay(replay_settings(settings, options), options).run(days)


class _Replay:
    def __init__(self, settings: Settings, options: BacktestOptions) -> None:
        self.settings = settings
        self.options = options
        self.dataset = settings.dataset
        keep = [settings.dataset.id_column, *settings.dataset.monitored_columns]
        self.keep = list(dict.fromkeys([*keep, *settings.gate.slices.columns]))

    # -------------------------------------------------------------------------- the loop

    def run(self, days: Iterable[Curated]) -> BacktestResult:
        started = time.perf_counter()
        it = iter(days)
        warm = [d for _, d in zip(range(self.options.warmup), it, strict=False)]
        if len(warm) < self.options.warmup:
            raise BacktestError(f"need at least {self.options.warmup} window(s) to train v1")
        self._check_order(warm)
        window = (warm[0].day, warm[-1].day)
        frame = pd.concat([d.valid for d in warm], ignore_index=True)
        first, _, _ = _train(frame, None, 1, window, self.settings, gate=False)
        state = _State(champion=first, curated={d.day: d for d in warm})
        rows: list[TimelineRow] = []
        last = warm[-1].day
        for index, curated in enumerate(it):
            if curated.day <= last:
                raise BacktestError(
                    f"window {curated.source} ({curated.day}) is not after {last}: replay days "
                    "in day order, one window per day"
                )
            last = curated.day
            rows.append(self._day(index, curated, state))
        metric, labelled = self._pooled(state, last)
        return BacktestResult(
            rows=rows,
            retrains=state.retrains,
            promotions=state.promotions,
            rejected=state.rejected,
            seconds=time.perf_counter() - started,
            options=self.options,
            metric_name=self.settings.gate.primary_metric,
            metric=metric,
            labelled=labelled,
        )

    @staticmethod
    def _check_order(days: Sequence[Curated]) -> None:
        for a, b in itertools.pairwise(days):
            if b.day <= a.day:
                raise BacktestError(
                    f"window {b.source} ({b.day}) is not after {a.source} ({a.day}): replay "
                    "days in day order, one window per day"
                )

    def _day(self, index: int, curated: Curated, state: _State) -> TimelineRow:
        day = curated.day
        events = self._resolve_due(state, day)
        state.curated[day] = curated
        champion = state.champion
        metric = None
        if curated.failed:
            events.append(f"ingest failed: {curated.failed[:100]}")
        else:
            scored = self._score(curated, champion)
            state.scored[day] = scored
            state.served.append((day, scored.y, scored.p))
            metric = self._metric(scored.y, scored.p)
        checked = self._check(day, state)
        if checked is None:  # the check_drift flow fails: no day of its window was scored
            self._forget(day, state)
            return TimelineRow(
                index=index,
                day=day,
                source=curated.source,
                rows=curated.received,
                champion=f"v{champion.number}",
                breached=[],
                feature_share=math.nan,
                prediction_drift=math.nan,
                decay=math.nan,
                rule="no-data",
                retrain=False,
                reason="No day of the check's window has predictions: the check fails.",
                event="; ".join(events),
            )
        decision, assessment = checked
        if decision.retrain:
            events.append(self._retrain(day, state))
        self._forget(day, state)
        sig = assessment.signals
        return TimelineRow(
            index=index,
            day=day,
            source=curated.source,
            rows=curated.received,
            champion=f"v{champion.number}",
            breached=assessment.breached(),
            feature_share=sig["feature_drift"].value,
            prediction_drift=sig["prediction_drift"].value,
            decay=sig["performance_decay"].value,
            rule=decision.rule,
            retrain=decision.retrain,
            reason=decision.reason,
            event="; ".join(events),
            metric=metric,
        )

    def _score(self, curated: Curated, champion: _Version) -> _Scored:
        """The score flow: the champion's predictions of the curated rows, with its version."""
        valid = curated.valid
        p = champion.model.predict_proba(model_input(valid, self.dataset))[:, 1]
        predictions = valid[self.keep].assign(**{SCORE: p, VERSION: str(champion.number)})
        target = self.dataset.target
        labels = valid[[self.dataset.id_column, target]]
        y = (valid[target].to_numpy() == self.dataset.positive_label).astype(int)
        return _Scored(predictions=predictions, labels=labels, y=y, p=p)

    # -------------------------------------------------------------------------- the check

    def _check(self, day: date, state: _State) -> tuple[PolicyDecision, Assessment] | None:
        """The `check_drift` flow on the window ending `day` (None: nothing scored in it)."""
        settings, drift = self.settings, self.settings.drift
        days = [day - timedelta(days=i) for i in range(drift.window_days - 1, -1, -1)]
        before = [d - timedelta(days=drift.window_days) for d in days]
        scored = [state.scored[d].predictions for d in days if d in state.scored]
        if not scored:
            return None
        current = pd.concat(scored)
        stats = state.stats[day] = settings_stats(current, settings, SCORE)
        # The previous window is the one checked `window_days` ago: same days, same stats.
        previous = state.stats.get(before[-1])
        earlier = [state.scored[d].predictions for d in before if d in state.scored]
        if previous is None and earlier:
            previous = settings_stats(pd.concat(earlier), settings, SCORE)
        champion = state.champion
        arrived = [
            state.scored[d].labels
            for d in days
            if d in state.scored and d + timedelta(days=self.options.label_delay) <= day
        ]
        realised = self._realised(current, pd.concat(arrived), champion) if arrived else None
        quarantined = sum(state.curated[d].quarantined for d in days if d in state.curated)
        assessment = assess(
            champion.reference(settings),
            stats,
            previous=previous,
            realised=realised,
            quality=Quality(rows_received=stats.rows + quarantined, rows_quarantined=quarantined),
            settings=drift,
            features=settings.policy_columns,
            reported=settings.reported_columns,
        )
        in_flight = [
            InFlightRun(id=f"bt-{p.started}", name=f"train-backtest-{p.started}", state="RUNNING")
            for p in state.pending
            if settings.policy.dedupe_in_flight
        ]
        now = checked_at(day)
        decision = decide_retrain(
            check_id=f"bt-{day}",
            model_name=settings.registry.model_name,
            window_start=days[0],
            window_end=day,
            baseline_version=str(champion.number),
            signals=assessment.signals,
            history=state.history,
            in_flight=in_flight,
            new_rows=assessment.current_rows,
            policy=settings.policy,
            outcomes=state.outcomes,
            now=now,
        )
        decision = self._regime(decision, in_flight)
        state.history.append(decision.record(now))
        return decision, assessment

    def _realised(
        self, current: pd.DataFrame, labels: pd.DataFrame, champion: _Version
    ) -> Realised:
        gate = self.settings.gate
        return realised_performance(
            current,
            labels,
            dataset=self.dataset,
            score_column=SCORE,
            slice_columns=gate.slices.columns,
            min_slice_rows=gate.slices.min_rows,
            min_precision=gate.recall_at_precision,
            only_version=str(champion.number),
        )

    def _regime(self, decision: PolicyDecision, in_flight: list[InFlightRun]) -> PolicyDecision:
        """The policy's decision, or what the `never` / `force` regime makes of it."""
        if self.options.never and decision.retrain:
            return decision.model_copy(
                update={"retrain": False, "rule": "never", "reason": f"Never: {decision.reason}"}
            )
        if self.options.force and not decision.retrain and not in_flight:
            # every window retrains, one training at a time
            return decision.model_copy(
                update={
                    "retrain": True,
                    "rule": "forced",
                    "reason": f"Retrain forced (every window); the policy said: {decision.reason}",
                }
            )
        return decision

    # -------------------------------------------------------------------------- retrains

    def _retrain(self, day: date, state: _State) -> str:
        """The `train` flow on the training window ending `day`; resolved now or later."""
        settings = self.settings
        champion = state.champion
        start, end = training_window(settings.training, end=day, champion_window=champion.window)
        frames = [c.valid for d, c in sorted(state.curated.items()) if start <= d <= end]
        state.versions += 1
        state.retrains += 1
        version, passed, reason = _train(
            pd.concat(frames, ignore_index=True),
            champion,
            state.versions,
            (start, end),
            settings,
            gate=self.options.train,
        )
        ready = day + timedelta(days=self.options.train_latency)
        pending = _Pending(ready=ready, started=day, version=version, passed=passed, reason=reason)
        what = f"retrain -> v{version.number}"
        trained = f"; trained on {start}..{end}"
        if self.options.train_latency == 0:
            outcome = self._resolve(state, pending, checked_at(day) + timedelta(minutes=1))
            return f"{what}{outcome}{trained}"
        state.pending.append(pending)
        return f"{what} (ready {ready}){trained}"

    def _resolve_due(self, state: _State, day: date) -> list[str]:
        """Retrains in flight whose outcome is due today: decided before today's scoring."""
        due = [p for p in state.pending if p.ready <= day]
        state.pending = [p for p in state.pending if p.ready > day]
        at = datetime.combine(day, clock.min, tzinfo=UTC)
        return [f"v{p.version.number}{self._resolve(state, p, at)}" for p in due]

    def _resolve(self, state: _State, pending: _Pending, at: datetime) -> str:
        """The outcome, recorded as the promotion ledger would (the policy reads it)."""
        version = pending.version
        state.outcomes.append(
            RetrainOutcome(at=at, version=str(version.number), promoted=pending.passed)
        )
        if pending.passed:
            state.champion = version
            state.promotions += 1
            return " promoted"
        state.rejected += 1
        return f" rejected by the gate: {pending.reason[:80]}"

    def _forget(self, day: date, state: _State) -> None:
        """Drop what no later check or retrain can read, so a long replay stays small."""
        settings = self.settings
        window = settings.drift.window_days
        for old in [d for d in state.scored if (day - d).days >= 2 * window]:
            del state.scored[old]
        for old in [d for d in state.stats if (day - d).days >= window]:
            del state.stats[old]
        start, _ = training_window(
            settings.training, end=day, champion_window=state.champion.window
        )
        cut = min(start, day - timedelta(days=window))
        for old in [d for d in state.curated if d < cut]:
            del state.curated[old]

    # -------------------------------------------------------------------------- the metric

    def _metric(self, y: np.ndarray, p: np.ndarray) -> float | None:
        if len(y) == 0 or len(np.unique(y)) < 2:
            return None
        gate = self.settings.gate
        return metric_value(gate.primary_metric, y, p, gate.recall_at_precision)

    def _pooled(self, state: _State, last: date) -> tuple[float | None, int]:
        """The primary metric over every replayed day's rows whose labels have arrived by the
        last day, as scored by the model in service that day (one pool, not a mean of days)."""
        delay = timedelta(days=self.options.label_delay)
        served = [(y, p) for d, y, p in state.served if d + delay <= last]
        if not served:
            return None, 0
        y = np.concatenate([y for y, _ in served])
        p = np.concatenate([p for _, p in served])
        return self._metric(y, p), len(y)


# ------------------------------------------------------------------------------ loop lift


class RegimeResult(BaseModel):
    """One regime of the lift: its realised metric and what it cost."""

    regime: str
    metric: float | None
    labelled: int
    retrains: int
    promotions: int
    rejected: int
    seconds: float


class LiftResult(BaseModel):
    """The same days under the policy, never retraining and retraining every window."""

    metric_name: str
    days: int
    regimes: dict[str, RegimeResult]

    def lift(self, regime: str) -> float:
        """metric(regime) - metric(never): what retraining bought."""
        value, never = self.regimes[regime].metric, self.regimes["never"].metric
        return math.nan if value is None or never is None else value - never

    @property
    def captured(self) -> float:
        """The policy's lift as a share of retraining every window's lift."""
        always = self.lift("always")
        return self.lift("policy") / always if always > 0 else math.nan

    @property
    def retrain_share(self) -> float:
        """The policy's retrains as a share of retraining every window's."""
        always = self.regimes["always"].retrains
        return self.regimes["policy"].retrains / always if always else math.nan


def loop_lift(
    windows: Iterable[Window],
    settings: Settings,
    options: BacktestOptions | None = None,
    regimes: Sequence[str] = REGIMES,
) -> tuple[LiftResult, dict[str, BacktestResult]]:
    """Replay the same days under each regime (the gate judging every candidate) and measure
    each one's realised primary metric; the days are quarantined once for all regimes."""
    options = (options or BacktestOptions()).model_copy(
        update={"train": True, "force": False, "never": False}
    )
    unknown = [r for r in regimes if r not in REGIMES]
    if unknown or "never" not in regimes:
        raise BacktestError(f"regimes must include 'never' and be among {', '.join(REGIMES)}")
    days = [curate(w, settings.dataset) for w in windows]
    results: dict[str, BacktestResult] = {}
    for regime in regimes:
        update = {"never": regime == "never", "force": regime == "always"}
        results[regime] = replay_curated(days, settings, options.model_copy(update=update))
    lift = LiftResult(
        metric_name=settings.gate.primary_metric,
        days=len(days) - options.warmup,
        regimes={
            name: RegimeResult(
                regime=name,
                metric=r.metric,
                labelled=r.labelled,
                retrains=r.retrains,
                promotions=r.promotions,
                rejected=r.rejected,
                seconds=r.seconds,
            )
            for name, r in results.items()
        },
    )
    return lift, results


# ------------------------------------------------------------------------------ printing


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def timeline_table(result: BacktestResult) -> str:
    """The replay as a fixed-width table: one line per day, then the totals."""
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
        f"train latency {o.train_latency}, gate {'on' if o.train else 'off'}, regime "
        f"{o.regime}; realised {result.metric_name} {_num(result.metric, 4)}; "
        f"{result.seconds:.1f} s"
    )
    return "\n".join(lines)


def lift_table(results: Sequence[tuple[str, LiftResult]]) -> str:
    """One line per (label, regime): realised metric, lift over never, retrains, promotions."""
    if not results:
        return ""
    metric = results[0][1].metric_name
    head = (
        f"{'replay':<24} {'regime':<7} {metric:>8} {'lift':>7} {'retr':>5} {'prom':>5} "
        f"{'rej':>4} {'secs':>6}"
    )
    lines = [head, "-" * len(head)]
    for label, lift in results:
        for name, r in lift.regimes.items():
            lines.append(
                f"{label[:24]:<24} {name:<7} {_num(r.metric, 4):>8} "
                f"{_num(lift.lift(name), 4) if name != 'never' else '-':>7} {r.retrains:>5} "
                f"{r.promotions:>5} {r.rejected:>4} {r.seconds:>6.1f}"
            )
    return "\n".join(lines)
