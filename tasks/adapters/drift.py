"""Data drift between a reference window and a current batch: the one Evidently adapter.

`measure_drift` is the only function that touches Evidently (0.7 API, imported lazily because it
is costly); it returns our own types. The `check_drift` flow stores its HTML report; the
retraining decision is made from stored statistics (`core.monitoring`), not from this report.
"""

from __future__ import annotations

import html as html_lib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from driftloop.configs.settings import DriftSettings

if TYPE_CHECKING:
    from evidently.core.report import Snapshot

ColumnKind = Literal["numeric", "categorical"]

# How Evidently turns a score into a verdict (evidently/legacy/calculations/stattests/*.py):
# distances drift when score >= threshold; p-value tests drift when p is small, and the two
# p-value tests we allow disagree on the boundary (ks uses <=, chisquare uses <).
_DRIFT_RULES: dict[str, Callable[[float, float], bool]] = {
    "wasserstein": lambda score, threshold: score >= threshold,
    "jensenshannon": lambda score, threshold: score >= threshold,
    "psi": lambda score, threshold: score >= threshold,
    "ks": lambda score, threshold: score <= threshold,
    "chisquare": lambda score, threshold: score < threshold,
}
P_VALUE_METHODS = frozenset({"ks", "chisquare"})

# Evidently's own reporting is off: DO_NOT_TRACK is read by evidently.telemetry and
# iterative_telemetry; EVIDENTLY_DISABLE_TELEMETRY by the legacy collector config.
_TELEMETRY_OFF = {"DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}


class DriftMeasurementError(RuntimeError):
    """Evidently could not measure drift, or its verdict disagrees with our reading of it."""


class ColumnDrift(BaseModel):
    """One feature's drift score; `note` says why a column could not be scored (score is NaN)."""

    # NaN scores must survive a JSON round trip (pydantic's default writes them as null).
    model_config = ConfigDict(frozen=True, ser_json_inf_nan="constants")

    column: str
    kind: ColumnKind
    method: str
    score: float
    threshold: float
    drifted: bool
    note: str = ""

    @property
    def severity(self) -> float:
        """How far past (>1) or short of (<1) its threshold the column is, whatever the method."""
        if math.isnan(self.score):
            return math.inf
        if self.method in P_VALUE_METHODS:
            return math.inf if self.score <= 0 else self.threshold / self.score
        return self.score / self.threshold


@dataclass(frozen=True)
class DriftMeasurement:
    """Per-column scores plus the Evidently HTML report to store next to the verdict.

    Row counts are those of the inputs (before sampling): `min_rows` is about how much data
    arrived, not how much of it we chose to look at.
    """

    columns: list[ColumnDrift]
    reference_rows: int
    current_rows: int
    html: str


def is_drift(method: str, score: float, threshold: float) -> bool:
    """Evidently's verdict for one score, so the direction of each method is written down once."""
    try:
        rule = _DRIFT_RULES[method]
    except KeyError as err:
        raise ValueError(f"unknown drift method {method!r}; known: {sorted(_DRIFT_RULES)}") from err
    return rule(score, threshold)


def measure_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    settings: DriftSettings,
) -> DriftMeasurement:
    """Score every feature with an explicit Evidently method and threshold.

    Both sides are sampled to `settings.sample_size` rows first: drift scores on 100k rows match
    those on millions, at a fraction of the time and memory. A feature that is missing, or has no
    values, on one side cannot be scored; it is reported as drifted (score NaN, with a note),
    because a feature that vanished or appeared is a bigger change than any shift in its values.
    A feature with no values on either side is reported as not drifted: there is nothing to
    compare, and flagging it would trigger a retrain on every run.
    """
    overlap = set(numeric) & set(categorical)
    if overlap:
        raise ValueError(f"columns listed as both numeric and categorical: {sorted(overlap)}")
    kinds: dict[str, ColumnKind] = {c: "numeric" for c in numeric}
    kinds.update({c: "categorical" for c in categorical})
    if len(kinds) != len(numeric) + len(categorical):
        raise ValueError("a feature column is listed twice")

    ref = _sample(reference, kinds, settings)
    cur = _sample(current, kinds, settings)

    unscorable: dict[str, ColumnDrift] = {}
    scorable: list[str] = []
    for column, kind in kinds.items():
        spec = _spec(column, kind, settings)
        why, drifted = _why_unscorable(column, ref, cur)
        if why:
            unscorable[column] = ColumnDrift(**spec, score=math.nan, drifted=drifted, note=why)
        else:
            scorable.append(column)

    if scorable:
        scored, html = _run_evidently(ref, cur, scorable, kinds, settings)
    else:
        scored, html = {}, _placeholder_html(list(unscorable.values()))
    columns = [scored[c] if c in scored else unscorable[c] for c in kinds]
    return DriftMeasurement(
        columns=columns,
        reference_rows=len(reference),
        current_rows=len(current),
        html=html,
    )


def _spec(column: str, kind: ColumnKind, settings: DriftSettings) -> dict[str, Any]:
    method = settings.numeric_method if kind == "numeric" else settings.categorical_method
    threshold = settings.column_thresholds.get(column, settings.column_threshold)
    return {"column": column, "kind": kind, "method": method, "threshold": threshold}


def _sample(
    frame: pd.DataFrame, kinds: dict[str, ColumnKind], settings: DriftSettings
) -> pd.DataFrame:
    """A new frame with only the features present and at most `sample_size` rows.

    Categorical features become pandas categoricals: Evidently counts values per column several
    times, and counting category codes is cheaper than counting Python strings, with identical
    scores.
    """
    columns = [c for c in kinds if c in frame.columns]
    if len(frame) > settings.sample_size:
        rng = np.random.default_rng(settings.seed)
        rows = np.sort(rng.choice(len(frame), size=settings.sample_size, replace=False))
        frame = frame.iloc[rows]
    sample = frame.loc[:, columns].reset_index(drop=True)
    to_category = {
        c: "category"
        for c in columns
        if kinds[c] == "categorical" and not isinstance(sample[c].dtype, pd.CategoricalDtype)
    }
    return sample.astype(to_category) if to_category else sample


def _has_values(frame: pd.DataFrame, column: str) -> bool:
    if column not in frame.columns:
        return False
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return bool(np.isfinite(values.to_numpy(dtype=float, na_value=np.nan)).any())
    return bool(values.notna().any())


def _why_unscorable(column: str, ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[str, bool]:
    """('', False) when Evidently can score the column, else a note and whether it counts."""
    in_ref, in_cur = column in ref.columns, column in cur.columns
    if not in_ref or not in_cur:
        side = "reference" if not in_ref else "current"
        if not in_ref and not in_cur:
            return "missing from both reference and current data", False
        return f"missing from {side} data", True
    ref_ok, cur_ok = _has_values(ref, column), _has_values(cur, column)
    if ref_ok and cur_ok:
        return "", False
    if not ref_ok and not cur_ok:
        return "no values in reference or current data", False
    return f"no values in {'current' if ref_ok else 'reference'} data", True


def _run_evidently(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    columns: list[str],
    kinds: dict[str, ColumnKind],
    settings: DriftSettings,
) -> tuple[dict[str, ColumnDrift], str]:
    """One Report with a ValueDrift per column, each with its method and threshold set."""
    for key, value in _TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    specs = {c: _spec(c, kinds[c], settings) for c in columns}
    numeric = [c for c in columns if kinds[c] == "numeric"]
    categorical = [c for c in columns if kinds[c] == "categorical"]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    # Only ValueDrift: DriftedColumnsCount (or DataDriftPreset) recomputes every column's drift
    # through the legacy DatasetDriftMetric, doubling the cost. include_tests adds one pass/fail
    # test per column, which is the HTML's overview (N of M columns drifted) and Evidently's own
    # verdict that we check our direction rules against.
    report = Report(
        [
            ValueDrift(column=c, method=specs[c]["method"], threshold=specs[c]["threshold"])
            for c in columns
        ],
        include_tests=True,
    )
    try:
        snapshot = report.run(
            current_data=Dataset.from_pandas(cur[columns], data_definition=definition),
            reference_data=Dataset.from_pandas(ref[columns], data_definition=definition),
        )
    except (ValueError, TypeError, KeyError) as err:
        raise DriftMeasurementError(
            f"Evidently could not measure drift on columns {columns}: {err}"
        ) from err
    scores, verdicts = _read_value_drift(snapshot)
    result: dict[str, ColumnDrift] = {}
    for column in columns:
        if column not in scores:
            raise DriftMeasurementError(f"Evidently returned no ValueDrift score for {column!r}")
        spec = specs[column]
        score = scores[column]
        drifted = is_drift(spec["method"], score, spec["threshold"])
        evidently_says = verdicts.get(column)
        if evidently_says is not None and evidently_says != drifted:
            raise DriftMeasurementError(
                f"column {column!r}: Evidently says drifted={evidently_says} but "
                f"{spec['method']} score {score} vs threshold {spec['threshold']} says {drifted}; "
                "the adapter's direction rules are out of date"
            )
        result[column] = ColumnDrift(**spec, score=score, drifted=drifted)
    return result, snapshot.get_html_str(as_iframe=False)


def _read_value_drift(snapshot: Snapshot) -> tuple[dict[str, float], dict[str, bool]]:
    """Per-column scores and Evidently's own verdicts, from the documented `dict()` export."""
    exported = snapshot.dict()
    scores: dict[str, float] = {}
    column_of_metric: dict[str, str] = {}
    for metric in exported["metrics"]:
        config = metric.get("config", {})
        if config.get("type") == "evidently:metric_v2:ValueDrift":
            scores[config["column"]] = float(metric["value"])
            column_of_metric[metric["id"]] = config["column"]
    verdicts: dict[str, bool] = {}
    for test in exported["tests"]:
        column = column_of_metric.get(test.get("metric_config", {}).get("metric_id", ""))
        if column is not None and test.get("id") == "drift":
            verdicts[column] = str(test["status"]).upper().endswith("FAIL")
    return scores, verdicts


def _placeholder_html(columns: list[ColumnDrift]) -> str:
    """A small page in place of the Evidently report when no column could be scored."""
    items = "".join(
        f"<li>{html_lib.escape(c.column)}: {html_lib.escape(c.note)}</li>" for c in columns
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Drift report</title></head>"
        "<body><h1>Drift report</h1><p>No feature could be scored, so Evidently was not run."
        f"</p><ul>{items}</ul></body></html>"
    )
