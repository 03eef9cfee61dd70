"""Monitoring signals from precomputed statistics: pure functions, no Evidently, no I/O.

Why statistics and not raw frames: each champion version owns one `ReferenceStats` (computed
once, stored next to its reference snapshot), and each window is summarised once into
`WindowStats`. Every comparison (reference vs current = training-serving skew, previous vs
current window = production drift, reference scores vs current scores = prediction drift) is
then a cheap distance between two summaries, so a check costs the same whatever the reference
size, and a backtest can replay months of windows cheaply.

Distances, not p-values: a p-value test fires on any tiny shift once a window holds 100k rows;
a distance (normalised Wasserstein, Jensen-Shannon, PSI) estimates *how much* moved, and its
noise shrinks with the sample. The methods are the ones Evidently names (same definitions and
thresholds), computed here from quantiles and frequencies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from driftloop.configs.settings import DatasetSettings, DriftSettings, Settings, SignalName
from driftloop.tasks.core.evaluation import (
    METRIC_DIRECTIONS,
    RELATIVE_METRICS,
    SliceScore,
    score_metrics,
    slice_scores,
)
from driftloop.tasks.core.scoring import PREDICTION_COLUMN, SCORE_COLUMN
from driftloop.tasks.core.targets import CLASS_PREFIX, class_names, encode_target

Kind = Literal["numeric", "categorical"]
Comparison = Literal["skew", "production", "prediction"]
_EPS = 1e-4
_PSI_BINS = 10
NULL_VALUE = "<null>"


class MonitoringError(ValueError):
    """A statistic or method cannot be computed; the message names the column or key."""


class FeatureStats(BaseModel):
    """One column of one window: quantiles (numeric) or frequencies (categorical), null rate."""

    model_config = ConfigDict(frozen=True)

    kind: Kind
    rows: int
    null_rate: float
    quantiles: list[float] = Field(default_factory=list)
    std: float = 0.0
    frequencies: dict[str, float] = Field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.quantiles and not self.frequencies


class WindowStats(BaseModel):
    """A window's summary: what every later comparison needs, and nothing row-level."""

    model_config = ConfigDict(frozen=True)

    rows: int
    features: dict[str, FeatureStats]
    score: FeatureStats | None = None


class ReferenceStats(BaseModel):
    """The champion version's baseline: its snapshot's statistics and its registration metrics.

    `metrics` are the held-out metrics the version was registered with: realised metrics on
    labelled production rows are compared with them to measure decay.
    """

    model_config = ConfigDict(frozen=True)

    model_name: str
    version: str
    snapshot_uri: str
    stats: WindowStats
    metrics: dict[str, float] = Field(default_factory=dict)


class FeatureScore(BaseModel):
    """One column's distance in one comparison, with its threshold and verdict."""

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="constants")

    feature: str
    comparison: Comparison
    method: str
    score: float
    threshold: float
    drifted: bool
    note: str = ""


class Signal(BaseModel):
    """One monitoring signal: its headline value vs its threshold, and why."""

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="constants")

    name: SignalName
    breached: bool
    value: float
    threshold: float
    detail: str
    judged: bool = True
    features: list[str] = Field(default_factory=list)


class Realised(BaseModel):
    """Delayed labels joined to stored predictions: realised metrics, and what did not join."""

    model_config = ConfigDict(ser_json_inf_nan="constants")

    predictions: int
    labelled: int
    pending: int = Field(description="predictions whose label has not arrived")
    unmatched_labels: int = Field(description="labels with no stored prediction (wrong id?)")
    unmatched_examples: list[str] = Field(default_factory=list)
    unseen_classes: list[str] = Field(
        default_factory=list, description="multiclass: label classes the model does not know"
    )
    metrics: dict[str, float] = Field(default_factory=dict)
    slices: list[SliceScore] = Field(default_factory=list)


class Quality(BaseModel):
    """Rows the contract rejected for the window (quarantine) vs rows received."""

    rows_received: int
    rows_quarantined: int

    @property
    def quarantine_rate(self) -> float:
        return self.rows_quarantined / self.rows_received if self.rows_received else 0.0


class Assessment(BaseModel):
    """Every signal of one check plus the per-feature scores behind them."""

    model_config = ConfigDict(ser_json_inf_nan="constants")

    baseline_version: str
    current_rows: int
    signals: dict[str, Signal]
    scores: list[FeatureScore]
    null_rates: dict[str, float] = Field(default_factory=dict)
    realised: Realised | None = None
    quality: Quality | None = None
    # The window's statistics, for the drift report; not kept in the history (too large).
    window: WindowStats | None = Field(None, exclude=True)

    def breached(self) -> list[str]:
        return [name for name, s in self.signals.items() if s.breached]


# ------------------------------------------------------------------------------ statistics


def _u_grid(k: int) -> np.ndarray:
    """Mid-point probabilities: no 0 or 1, so min and max outliers do not steer the estimate."""
    return (np.arange(k) + 0.5) / k


def column_stats(values: pd.Series, kind: Kind, quantiles: int) -> FeatureStats:
    rows = len(values)
    nulls = int(values.isna().sum())
    null_rate = nulls / rows if rows else 0.0
    present = values.dropna()
    if kind == "numeric":
        data = pd.to_numeric(present, errors="coerce").to_numpy(dtype=float)
        data = data[np.isfinite(data)]
        if data.size == 0:
            return FeatureStats(kind=kind, rows=rows, null_rate=null_rate)
        q = np.quantile(data, _u_grid(quantiles))
        return FeatureStats(
            kind=kind,
            rows=rows,
            null_rate=null_rate,
            quantiles=[float(x) for x in q],
            std=float(np.std(data)),
        )
    counts = present.astype(str).value_counts(normalize=True, sort=False)
    return FeatureStats(
        kind=kind,
        rows=rows,
        null_rate=null_rate,
        frequencies={str(k): float(v) for k, v in counts.items()},
    )


def window_stats(
    frame: pd.DataFrame,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    quantiles: int,
    score_column: str | None = None,
    score_kind: Kind = "numeric",
) -> WindowStats:
    """Summarise a window once; columns it lacks are simply absent (reported when compared).
    The model's output (`score_column`) is summarised as `score_kind`: a distribution of
    scores or values (numeric), or the shares of predicted classes (categorical)."""
    features: dict[str, FeatureStats] = {}
    for kind, names in (("numeric", numeric), ("categorical", categorical)):
        for name in names:
            if name in frame.columns:
                features[name] = column_stats(frame[name], kind, quantiles)  # type: ignore[arg-type]
    score = None
    if score_column and score_column in frame.columns:
        score = column_stats(frame[score_column], score_kind, quantiles)
    return WindowStats(rows=len(frame), features=features, score=score)


# ------------------------------------------------------------------------------ distances


def _cdf_at(quantiles: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of a distribution at or below each edge, read off its quantile grid."""
    return np.searchsorted(quantiles, edges, side="right") / len(quantiles)


def _binned(ref: FeatureStats, cur: FeatureStats) -> tuple[np.ndarray, np.ndarray]:
    """Proportions of both sides in the reference's decile bins (numeric) or categories."""
    if ref.kind == "categorical":
        keys = sorted(set(ref.frequencies) | set(cur.frequencies))
        r = np.array([ref.frequencies.get(k, 0.0) for k in keys])
        c = np.array([cur.frequencies.get(k, 0.0) for k in keys])
        return r, c
    return binned_shares(ref, cur, bin_edges(ref))


def bin_edges(ref: FeatureStats) -> np.ndarray:
    """The inner edges of a numeric reference's deciles (ties merged)."""
    return np.unique(np.quantile(np.asarray(ref.quantiles), np.linspace(0, 1, _PSI_BINS + 1)[1:-1]))


def binned_shares(
    ref: FeatureStats, cur: FeatureStats, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Both numeric sides' shares of rows between consecutive `edges` (and beyond either end)."""
    rq, cq = np.asarray(ref.quantiles), np.asarray(cur.quantiles)
    r = np.diff(np.concatenate([[0.0], _cdf_at(rq, edges), [1.0]]))
    c = np.diff(np.concatenate([[0.0], _cdf_at(cq, edges), [1.0]]))
    return r, c


def distance(ref: FeatureStats, cur: FeatureStats, method: str) -> float:
    """The drift distance between two summaries of one column (higher = more drift)."""
    if method == "wasserstein":
        if ref.kind != "numeric":
            raise MonitoringError("wasserstein needs a numeric column")
        rq, cq = np.asarray(ref.quantiles), np.asarray(cur.quantiles)
        if len(rq) != len(cq):
            grid = _u_grid(max(len(rq), len(cq)))
            rq = np.interp(grid, _u_grid(len(rq)), rq)
            cq = np.interp(grid, _u_grid(len(cq)), cq)
        # W1 is the mean gap between the quantile functions; normalised by the reference's
        # spread like Evidently's wasserstein_distance_norm, so 0.1 means "a tenth of a std".
        return float(np.mean(np.abs(rq - cq)) / max(ref.std, _EPS))
    r, c = _binned(ref, cur)
    r = np.clip(r, _EPS, None)
    c = np.clip(c, _EPS, None)
    if method == "psi":
        return float(np.sum((c - r) * np.log(c / r)))
    if method == "jensenshannon":
        from scipy.spatial.distance import jensenshannon  # what Evidently's method calls

        return float(jensenshannon(r, c))
    raise MonitoringError(
        f"drift method {method!r} cannot be computed from precomputed statistics: p-value tests "
        "(ks, chisquare) fire on any shift in large windows. Set drift.numeric_method / "
        "drift.categorical_method to wasserstein, psi or jensenshannon."
    )


def compare(
    ref: WindowStats,
    cur: WindowStats,
    *,
    comparison: Comparison,
    settings: DriftSettings,
    columns: Sequence[str],
) -> list[FeatureScore]:
    """Per-column distances; a column present on one side only counts as drifted."""
    out: list[FeatureScore] = []
    for column in columns:
        a, b = ref.features.get(column), cur.features.get(column)
        kind = (a or b).kind if (a or b) else "numeric"
        method = settings.numeric_method if kind == "numeric" else settings.categorical_method
        threshold = settings.column_thresholds.get(column, settings.column_threshold)
        base = {"feature": column, "comparison": comparison, "method": method}
        if a is None or b is None or a.empty or b.empty:
            both_missing = (a is None or a.empty) and (b is None or b.empty)
            side = "reference" if (a is None or a.empty) else "current"
            note = "no values on either side" if both_missing else f"no values in {side} data"
            out.append(
                FeatureScore(
                    **base, score=math.nan, threshold=threshold, drifted=not both_missing, note=note
                )
            )
            continue
        score = distance(a, b, method)
        out.append(
            FeatureScore(**base, score=score, threshold=threshold, drifted=score >= threshold)
        )
    return out


# ------------------------------------------------------------------------------ labels


def realised_performance(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    dataset: DatasetSettings,
    score_column: str,
    slice_columns: Sequence[str],
    min_slice_rows: int,
    min_precision: float,
    only_version: str | None = None,
    slice_metric: str | None = None,
) -> Realised:
    """Join labels to predictions by id; realised metrics overall and per slice.

    Unmatched labels are counted and a few ids shown (a wrong id column or a label file for
    another day looks exactly like this); predictions without a label yet are `pending`. With
    `only_version`, metrics cover the rows that version scored (its decay is judged against its
    own registration metrics); labels of rows another version scored are still matched.
    """
    id_col, target = dataset.id_column, dataset.target
    task = dataset.task
    classes: tuple[str, ...] | None = None
    if task == "multiclass":
        output_cols = [c for c in predictions.columns if str(c).startswith(CLASS_PREFIX)]
        classes = tuple(str(c)[len(CLASS_PREFIX) :] for c in output_cols)
        if not output_cols:
            output_cols = [f"{CLASS_PREFIX}<class>"]  # reported as missing below
    else:
        output_cols = [PREDICTION_COLUMN if task == "regression" else score_column]
    for name, frame, need in (
        ("labels", labels, [id_col, target]),
        ("predictions", predictions, [id_col, *output_cols]),
    ):
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise MonitoringError(
                f"the {name} have no column(s) {missing} (columns: {list(frame.columns)}); "
                f"labels need '{id_col}' and '{target}' (dataset.id_column and dataset.target)"
            )
    lab = labels[[id_col, target]].dropna(subset=[target]).drop_duplicates(id_col, keep="last")
    pred_cols = [id_col, *output_cols, *[c for c in slice_columns if c in predictions.columns]]
    joined = predictions[pred_cols].merge(lab, on=id_col, how="inner", validate="many_to_one")
    known = set(predictions[id_col].astype(str))
    unmatched = lab.loc[~lab[id_col].astype(str).isin(known), id_col].astype(str)
    if only_version is not None and "model_version" in predictions.columns:
        mine = predictions["model_version"].astype(str) == str(only_version)
        predictions = predictions[mine]
        joined = joined[joined[id_col].isin(predictions[id_col])]
    realised = Realised(
        predictions=len(predictions),
        labelled=len(joined),
        pending=len(predictions) - len(joined),
        unmatched_labels=len(unmatched),
        unmatched_examples=unmatched.head(5).tolist(),
    )
    if joined.empty:
        return realised
    y = encode_target(joined[target], dataset).to_numpy()
    p = joined[output_cols].to_numpy(dtype=float)
    if task != "multiclass":
        p = p[:, 0]
    else:
        realised.unseen_classes = sorted(set(class_names(joined[target]).dropna()) - set(classes))
    realised.metrics = score_metrics(y, p, min_precision=min_precision, task=task, classes=classes)
    present = [c for c in slice_columns if c in joined.columns]
    if present:
        metric = slice_metric or ("roc_auc" if task == "binary" else next(iter(realised.metrics)))
        realised.slices = [
            s
            for s in slice_scores(joined[present], y, p, None, metric, min_precision, classes)
            if s.rows >= min_slice_rows
        ]
    return realised


def decay(reference_value: float, realised_value: float, metric: str) -> float:
    """How much worse realised is than at registration (positive = worse), either direction;
    for metrics in the target's units (rmse, mae) as a fraction of the registration value."""
    if METRIC_DIRECTIONS[metric] == "higher":
        worse = reference_value - realised_value
    else:
        worse = realised_value - reference_value
    if metric in RELATIVE_METRICS:
        return worse / abs(reference_value) if reference_value else math.nan
    return worse


# ------------------------------------------------------------------------------ signals


def assess(
    reference: ReferenceStats,
    current: WindowStats,
    *,
    previous: WindowStats | None,
    realised: Realised | None,
    quality: Quality | None,
    settings: DriftSettings,
    features: Sequence[str],
    reported: Sequence[str] = (),
) -> Assessment:
    """All signals of one check, from summaries only (pure: table-tested, replayable).

    `features` drive the signals; `reported` (columns kept out of the model) are compared
    and listed in the scores, but no signal counts them."""
    ref = reference.stats
    skew = compare(ref, current, comparison="skew", settings=settings, columns=features)
    side = compare(ref, current, comparison="skew", settings=settings, columns=reported)
    scores = [*skew, *side]
    side_drifted = [s.feature for s in side if s.drifted]
    signals: dict[str, Signal] = {}
    enough = current.rows >= settings.min_rows
    too_few = f"only {current.rows:,} rows (drift.min_rows {settings.min_rows:,}): not judged"

    drifted = [s.feature for s in skew if s.drifted]
    share = len(drifted) / len(skew) if skew else 0.0
    keys = [k for k in settings.key_features if k in drifted]
    signals["feature_drift"] = Signal(
        name="feature_drift",
        breached=enough and (share >= settings.share_threshold or bool(keys)),
        value=share,
        threshold=settings.share_threshold,
        features=drifted,
        judged=enough,
        detail=too_few
        if not enough
        else f"{len(drifted)} of {len(skew)} features drifted vs baseline v{reference.version}"
        + (f" ({', '.join(drifted)})" if drifted else "")
        + (f"; key feature(s) {', '.join(keys)}" if keys else "")
        + (
            f"; not counted (kept out of the model): {', '.join(side_drifted)} drifted"
            if side_drifted
            else ""
        ),
    )

    if ref.score is not None and current.score is not None and not ref.score.empty:
        classes = ref.score.kind == "categorical"
        method = settings.categorical_method if classes else settings.numeric_method
        what = "predicted class shares" if classes else "score distribution"
        value = distance(ref.score, current.score, method)
        scores.append(
            FeatureScore(
                feature="prediction" if classes else "score",
                comparison="prediction",
                method=method,
                score=value,
                threshold=settings.prediction_threshold,
                drifted=value >= settings.prediction_threshold,
            )
        )
        signals["prediction_drift"] = Signal(
            name="prediction_drift",
            breached=enough and value >= settings.prediction_threshold,
            value=value,
            threshold=settings.prediction_threshold,
            judged=enough,
            detail=too_few if not enough else f"{what} {method} {value:.3f} vs the reference's",
        )
    else:
        signals["prediction_drift"] = _unjudged(
            "prediction_drift", settings.prediction_threshold, "no scores on one side"
        )

    if previous is not None:
        prod = compare(
            previous, current, comparison="production", settings=settings, columns=features
        )
        scores.extend(prod)
        moved = [s.feature for s in prod if s.drifted]
        p_share = len(moved) / len(prod) if prod else 0.0
        ok = enough and previous.rows >= settings.min_rows
        signals["production_drift"] = Signal(
            name="production_drift",
            breached=ok and p_share >= settings.production_share_threshold,
            value=p_share,
            threshold=settings.production_share_threshold,
            features=moved,
            judged=ok,
            detail=f"{len(moved)} of {len(prod)} features moved since the previous window"
            + (f" ({', '.join(moved)})" if moved else ""),
        )
    else:
        signals["production_drift"] = _unjudged(
            "production_drift", settings.production_share_threshold, "no previous window"
        )

    null_rates = {name: st.null_rate for name, st in current.features.items()}
    increases = {
        name: current.features[name].null_rate - ref.features[name].null_rate
        for name in features
        if name in current.features and name in ref.features
    }
    worst_null = max(increases.values(), default=0.0)
    null_bad = sorted(n for n, v in increases.items() if v > settings.max_null_increase)
    q_rate = quality.quarantine_rate if quality else 0.0
    q_bad = q_rate > settings.max_quarantine_rate
    signals["data_quality"] = Signal(
        name="data_quality",
        breached=bool(null_bad) or q_bad,
        value=max(worst_null, q_rate),
        threshold=settings.max_null_increase,
        features=null_bad,
        detail=(
            f"quarantine rate {q_rate:.3f} (max {settings.max_quarantine_rate:.3f}); "
            f"largest null-rate increase {worst_null:+.3f} (max {settings.max_null_increase:.3f})"
            + (f" in {', '.join(null_bad)}" if null_bad else "")
        ),
    )

    signals["performance_decay"] = _decay_signal(reference, realised, settings)
    return Assessment(
        baseline_version=reference.version,
        current_rows=current.rows,
        signals=signals,
        scores=scores,
        null_rates=null_rates,
        realised=realised,
        quality=quality,
        window=current,
    )


def _unjudged(name: SignalName, threshold: float, why: str) -> Signal:
    return Signal(
        name=name, breached=False, value=math.nan, threshold=threshold, judged=False, detail=why
    )


def _decay_signal(
    reference: ReferenceStats, realised: Realised | None, settings: DriftSettings
) -> Signal:
    metric = settings.decay_metric
    if realised is None or realised.labelled == 0:
        return _unjudged("performance_decay", settings.max_decay, "no labels have arrived yet")
    if realised.labelled < settings.min_labelled_rows:
        return _unjudged(
            "performance_decay",
            settings.max_decay,
            f"only {realised.labelled:,} labelled rows (drift.min_labelled_rows "
            f"{settings.min_labelled_rows:,})",
        )
    at_registration = reference.metrics.get(metric)
    now = realised.metrics.get(metric, math.nan)
    if at_registration is None or math.isnan(at_registration) or math.isnan(now):
        return _unjudged(
            "performance_decay",
            settings.max_decay,
            f"{metric} unknown at registration of v{reference.version} or on the labelled rows",
        )
    worse = decay(at_registration, now, metric)
    unseen = (
        f"; label class(es) the model never learnt: {', '.join(map(repr, realised.unseen_classes))}"
        if realised.unseen_classes
        else ""
    )
    relative = " of its value" if metric in RELATIVE_METRICS else ""
    return Signal(
        name="performance_decay",
        breached=worse > settings.max_decay,
        value=worse,
        threshold=settings.max_decay,
        detail=f"realised {metric} {now:.3f} on {realised.labelled:,} labelled rows vs "
        f"{at_registration:.3f} at registration of v{reference.version} (decay {worse:+.3f}"
        f"{relative}){unseen}",
    )


def monitored_output(task: str) -> tuple[str, Kind]:
    """The prediction column whose drift is watched, and how: the score's distribution
    (binary), the predicted classes' shares (multiclass), the predicted values' distribution
    (regression)."""
    if task == "multiclass":
        return PREDICTION_COLUMN, "categorical"
    if task == "regression":
        return PREDICTION_COLUMN, "numeric"
    return SCORE_COLUMN, "numeric"


def settings_stats(
    frame: pd.DataFrame, settings: Settings, score_column: str | None = None
) -> WindowStats:
    """`window_stats` with the dataset's features and the configured quantiles: what every
    window and every baseline is summarised with, so they always compare like with like.
    The model's output is the task's `monitored_output` (`score_column` overrides it for
    binary models)."""
    column, kind = monitored_output(settings.dataset.task)
    if score_column is not None and settings.dataset.task == "binary":
        column = score_column
    return window_stats(
        frame,
        numeric=settings.dataset.monitored_numeric,
        categorical=settings.dataset.monitored_categorical,
        quantiles=settings.drift.quantiles,
        score_column=column,
        score_kind=kind,
    )
