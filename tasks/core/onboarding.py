"""A draft data contract from a sample (`driftloop init`), as plain functions on a DataFrame.

Why a draft with comments rather than a finished contract: a sample shows what the data *was*.
Whether a null is allowed, how far a range may stretch, which column is the id or the target
is the data owner's call; every guess here says what it was based on in a `# REVIEW:` comment
next to it, so a reviewer reads one file top to bottom and changes what is wrong.

What is guessed, and how (docs/onboarding.md has the same table for users):

- dtype: pandas' own type; text that parses as ISO 8601 in every row is `datetime`; text with
  at most MAX_CATEGORIES distinct values (each seen at least twice on average) is `category`
  with those values, other text `string`;
- nullability: `nullable: false` when the sample has no null, else a `max_null_fraction`
  above the observed share;
- numeric ranges: the observed min..max widened by RANGE_MARGIN of the span on each side
  (never below 0 for a column that is never negative): ranges catch unit errors and garbage,
  not drift, which the drift check measures;
- id: a text or integer column, unique and never null, preferring names like `*_id`;
  timestamp: a datetime column never null, preferring names like `*_at`, `*time*`, `*date*`;
- target: `--target`, else a column named like target/label/class/y, else the last column;
  task: two values -> binary (positive label: 1, true, or the rarer class), a numeric target
  with many values -> regression, otherwise multiclass;
- thresholds sized from the sample's rows, read as one day's batch (`suggest_thresholds`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
import yaml

from driftloop.configs.settings import TASK_DEFAULTS, DatasetSettings

#: More distinct text values than this and a column is `string`, not `category`.
MAX_CATEGORIES = 50
#: Ranges are widened by this share of the observed span on each side.
RANGE_MARGIN = 0.5
#: Integral numeric targets with at most this many distinct values are classes, not amounts.
MAX_INTEGER_CLASSES = 20

TARGET_NAMES = ("target", "label", "labels", "class", "y", "outcome")
_ID_HINT = re.compile(r"(^|_)(id|key|uuid)$|id$", re.IGNORECASE)
_TIME_HINT = re.compile(r"time|date|_at$|^ts$|timestamp|when", re.IGNORECASE)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class OnboardingError(ValueError):
    """The sample or an option cannot give a contract; the message names it and what to do."""


@dataclass(frozen=True)
class ColumnGuess:
    """One column's suggested contract, and the evidence behind it (for the comment)."""

    name: str
    spec: dict[str, Any]
    note: str


@dataclass(frozen=True)
class Draft:
    """A draft contract: the chosen roles, the columns and the YAML text to write."""

    name: str
    task: str
    target: str
    positive_label: Any
    id_column: str | None
    timestamp_column: str | None
    rows: int
    columns: list[ColumnGuess]
    thresholds: dict[str, int]
    text: str = field(repr=False)


def dataset_name(stem: str) -> str:
    """A valid dataset name (lower case, digits, `_` and `-`) made from a file or folder name."""
    name = re.sub(r"[^a-z0-9_-]+", "_", stem.lower()).strip("_-")
    if not name or not _NAME.match(name):
        raise OnboardingError(
            f"cannot make a dataset name from {stem!r}: pass --name, e.g. --name my_data "
            "(lower case letters, digits, '_' and '-')"
        )
    return name


def yaml_scalar(value: Any) -> str:
    """One value as YAML text that reads back as the same value (PyYAML, YAML 1.1)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:  # 1e-05 would read back as text
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    text = str(value)
    if _PLAIN.match(text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(mapping: dict[str, Any]) -> str:
    parts = []
    for key, value in mapping.items():
        if isinstance(value, list):
            shown = "[" + ", ".join(yaml_scalar(v) for v in value) + "]"
        elif isinstance(value, dict):
            shown = _flow(value)
        else:
            shown = yaml_scalar(value)
        parts.append(f"{yaml_scalar(key)}: {shown}")
    return "{" + ", ".join(parts) + "}"


def _nice_bounds(low: float, high: float, never_negative: bool, integer: bool) -> tuple[Any, Any]:
    """low..high widened by RANGE_MARGIN of the span, rounded outwards to a readable step."""
    span = high - low
    margin = RANGE_MARGIN * (span if span > 0 else max(abs(high), 1.0))
    lo, hi = low - margin, high + margin
    if never_negative:
        lo = max(lo, 0.0)
    if integer:
        return math.floor(lo), math.ceil(hi)
    digits = max(0, -math.floor(math.log10(margin)) + 1) if margin > 0 else 0
    step = 10.0**-digits
    return (
        round(math.floor(lo / step) * step, digits),
        round(math.ceil(hi / step) * step, digits),
    )


def _as_datetime(values: pd.Series) -> pd.Series | None:
    """The values as datetimes when every non-null one is ISO 8601 text, else None."""
    text = values.dropna()
    if text.empty or not all(isinstance(v, str) for v in text.head(1000)):
        return None
    if not text.astype(str).str.match(r"^\d{4}-\d{2}-\d{2}").all():
        return None
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    return parsed if parsed.notna().all() else None


def infer_column(name: str, values: pd.Series) -> ColumnGuess:
    """A column's dtype, nullability, range or categories (see the module docstring)."""
    rows = len(values)
    nulls = int(values.isna().sum())
    present = values.dropna()
    spec: dict[str, Any] = {}
    notes: list[str] = []
    if pd.api.types.is_bool_dtype(values):
        spec["dtype"] = "bool"
    elif pd.api.types.is_datetime64_any_dtype(values):
        spec["dtype"] = "datetime"
        if not present.empty:
            notes.append(f"{present.min()} .. {present.max()}")
    elif pd.api.types.is_numeric_dtype(values):
        integer = pd.api.types.is_integer_dtype(values)
        spec["dtype"] = "int" if integer else "float"
        finite = present[~present.isin([math.inf, -math.inf])] if not integer else present
        if not finite.empty:
            low, high = float(finite.min()), float(finite.max())
            spec["min"], spec["max"] = _nice_bounds(low, high, low >= 0, integer)
            notes.append(f"observed {low:.6g} .. {high:.6g}, widened by half the span")
    else:
        stamps = _as_datetime(values)
        if stamps is not None:
            spec["dtype"] = "datetime"
            notes.append(f"ISO 8601 text, {stamps.min()} .. {stamps.max()}")
        else:
            text = present.astype(str)
            distinct = sorted(text.unique())
            if len(distinct) <= MAX_CATEGORIES and len(distinct) * 2 <= len(text):
                spec["dtype"] = "category"
                spec["categories"] = distinct
                notes.append(f"{len(distinct)} distinct values; a value not listed is quarantined")
            else:
                spec["dtype"] = "string"
                notes.append(f"{len(distinct)} distinct values")
    if nulls == 0:
        spec["nullable"] = False
    else:
        share = nulls / rows
        spec["max_null_fraction"] = min(1.0, round(share * 1.5 + 0.05, 2))
        notes.append(f"{share:.1%} null in the sample")
    return ColumnGuess(name, spec, "; ".join(notes))


def _candidates(frame: pd.DataFrame, guesses: dict[str, ColumnGuess], role: str) -> list[str]:
    """Columns that could be the id (unique, never null) or the timestamp, best first."""
    found = []
    for name, guess in guesses.items():
        dtype, values = guess.spec["dtype"], frame[name]
        if values.isna().any():
            continue
        if role == "id":
            if dtype in ("string", "int") and values.is_unique:
                found.append((not bool(_ID_HINT.search(name)), name))
        elif dtype == "datetime":
            found.append((not bool(_TIME_HINT.search(name)), name))
    return [name for _, name in sorted(found, key=lambda item: item[0])]


def _pick_target(frame: pd.DataFrame, target: str | None, roles: set[str]) -> tuple[str, str]:
    columns = [str(c) for c in frame.columns]
    if target is not None:
        if target not in columns:
            raise OnboardingError(
                f"--target {target!r} is not a column of the sample; its columns are: "
                f"{', '.join(columns)}"
            )
        return target, "chosen with --target"
    for name in columns:
        if name.lower() in TARGET_NAMES and name not in roles:
            return name, "guessed from its name; pass --target to choose another"
    rest = [c for c in columns if c not in roles]
    if not rest:
        raise OnboardingError("the sample has no column left to be the target: pass --target")
    return rest[-1], "guessed: the last column; pass --target to choose another"


def suggest_task(values: pd.Series) -> tuple[str, Any, str]:
    """Task type, positive label (binary only) and the reason, from the target's values."""
    present = values.dropna()
    counts = present.value_counts()
    if len(counts) < 2:
        raise OnboardingError(
            f"target {values.name!r} has {len(counts)} distinct value(s) in the sample: a model "
            "needs at least two; choose another --target or a larger sample"
        )
    if len(counts) == 2:
        labels = list(counts.index)
        if pd.api.types.is_bool_dtype(values):
            positive: Any = True
        elif set(labels) == {0, 1}:
            positive = 1
        else:
            positive = counts.sort_index(ascending=False).idxmin()  # the rarer class
            positive = positive.item() if hasattr(positive, "item") else str(positive)
        return "binary", positive, f"two values {sorted(map(str, labels))}"
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    integral = numeric and bool((present == present.round()).all())
    if numeric and not (integral and len(counts) <= MAX_INTEGER_CLASSES):
        return "regression", None, f"numeric, {len(counts)} distinct values"
    return "multiclass", None, f"{len(counts)} classes"


def suggest_thresholds(rows: int) -> dict[str, int]:
    """Row thresholds sized from the sample, read as one day's batch.

    A batch is refused below a twentieth of it (at most 50); drift is judged once a window has
    half a day of scored rows (50..1000), realised performance once a quarter of a day is
    labelled (50..500), and a retrain waits for two days of new rows (50..3000, the default):
    too low and small samples look drifted by chance; too high and a small dataset is never
    judged, or never retrained.
    """
    return {
        "dataset.min_rows": max(1, min(50, rows // 20)),
        "drift.min_rows": max(50, min(1000, rows // 2)),
        "drift.min_labelled_rows": max(50, min(500, rows // 4)),
        "policy.min_new_rows": max(50, min(3000, 2 * rows)),
    }


def _target_spec(guess: ColumnGuess, task: str, values: pd.Series) -> ColumnGuess:
    """Class targets carry no range; a text binary target lists its two classes (so the
    positive label is checked), a multi-class one none (a new class is reported, not refused)."""
    spec = {k: v for k, v in guess.spec.items() if k not in ("min", "max", "categories")}
    if task == "regression":
        return guess
    if spec["dtype"] in ("category", "string"):
        if task == "binary":
            spec["dtype"] = "category"
            spec["categories"] = sorted(values.dropna().astype(str).unique())
        else:
            spec["dtype"] = "string"
    return ColumnGuess(guess.name, spec, "")


def draft_contract(
    frame: pd.DataFrame, name: str, target: str | None = None, source: str = "a sample"
) -> Draft:
    """The draft contract for `frame` (see the module docstring); raises OnboardingError."""
    if frame.empty or len(frame.columns) == 0:
        raise OnboardingError(
            f"{source} has no rows: init needs a sample of real rows to suggest types and ranges"
        )
    if not _NAME.match(name):
        raise OnboardingError(
            f"dataset name {name!r} must be lower case letters, digits, '_' and '-' "
            "(it names the config file and the lake folder)"
        )
    frame = frame.rename(columns=str)
    guesses = {col: infer_column(col, frame[col]) for col in frame.columns}
    ids = _candidates(frame, guesses, "id")
    times = _candidates(frame, guesses, "timestamp")
    target_hint = {target} if target else set()
    ids = [c for c in ids if c not in target_hint]
    times = [c for c in times if c not in target_hint]
    id_column = ids[0] if ids else None
    timestamp_column = times[0] if times else None
    roles = {c for c in (id_column, timestamp_column) if c}
    target, target_why = _pick_target(frame, target, roles)
    if target == id_column:
        id_column = next((c for c in ids if c != target), None)
    if target == timestamp_column:
        timestamp_column = next((c for c in times if c != target), None)
    for role, found, hint in (
        ("id_column", id_column, "a text or integer column, unique and never null"),
        ("timestamp_column", timestamp_column, "a datetime column (ISO 8601), never null"),
    ):
        if found is None and DatasetSettings.model_fields[role].is_required():
            raise OnboardingError(
                f"{source}: no column can be the {role} ({hint}); columns: "
                f"{', '.join(frame.columns)}. Add one to the sample (e.g. a row number and the "
                "time the row was recorded) and run init again"
            )
    task, positive, task_why = suggest_task(frame[target])
    guesses[target] = _target_spec(guesses[target], task, frame[target])
    if id_column:
        spec = {k: v for k, v in guesses[id_column].spec.items() if k not in ("min", "max")}
        spec["unique"] = True
        guesses[id_column] = ColumnGuess(id_column, spec, "")
    thresholds = suggest_thresholds(len(frame))
    draft = Draft(
        name=name,
        task=task,
        target=target,
        positive_label=positive,
        id_column=id_column,
        timestamp_column=timestamp_column,
        rows=len(frame),
        columns=[guesses[c] for c in frame.columns],
        thresholds=thresholds,
        text="",
    )
    why = {
        "target": target_why,
        "task": task_why,
        "id": _others("unique and never null", ids, id_column),
        "timestamp": _others("datetime, never null", times, timestamp_column),
    }
    return replace(draft, text=render(draft, source, why))


def _others(what: str, candidates: list[str], chosen: str | None) -> str:
    rest = [c for c in candidates if c != chosen]
    return what + (f"; other candidates: {', '.join(rest)}" if rest else "")


def _slice_candidates(draft: Draft) -> list[str]:
    roles = {draft.id_column, draft.timestamp_column, draft.target}
    return [
        c.name
        for c in draft.columns
        if c.name not in roles and c.spec["dtype"] == "category" and len(c.spec["categories"]) <= 10
    ]


def render(draft: Draft, source: str, why: dict[str, str]) -> str:
    """The YAML text: a dataset file (configs/datasets/<name>.yaml) with a comment per guess."""
    defaults = TASK_DEFAULTS[draft.task]
    t = draft.thresholds
    lines = [
        f"# Draft contract written by `driftloop init` from {source} ({draft.rows} rows).",
        "# Review every line marked REVIEW, then select it with DRIFTLOOP_DATASET="
        f"{draft.name} (see docs/onboarding.md).",
        "dataset:",
        f"  name: {yaml_scalar(draft.name)}",
        f"  task: {draft.task}  # REVIEW: {why['task']} (binary | multiclass | regression)",
    ]
    if draft.id_column:
        lines.append(f"  id_column: {yaml_scalar(draft.id_column)}  # REVIEW: {why['id']}")
    if draft.timestamp_column:
        lines.append(
            f"  timestamp_column: {yaml_scalar(draft.timestamp_column)}  "
            f"# REVIEW: {why['timestamp']}"
        )
    lines.append(f"  target: {yaml_scalar(draft.target)}  # REVIEW: {why['target']}")
    if draft.task == "binary":
        lines.append(
            f"  positive_label: {yaml_scalar(draft.positive_label)}  # REVIEW: the class "
            "counted as positive (1, true, or else the rarer class in the sample)"
        )
    lines += [
        f"  min_rows: {t['dataset.min_rows']}  # REVIEW: a batch with fewer rows is refused "
        "(a twentieth of the sample, at most 50)",
        "  max_quarantine_fraction: 0.2  # a batch with more bad rows than this fails",
        "  columns:",
    ]
    for column in draft.columns:
        note = f"  # REVIEW: {column.note}" if column.note else ""
        lines.append(f"    {yaml_scalar(column.name)}: {_flow(column.spec)}{note}")
    slices = _slice_candidates(draft)
    metrics = {m: {k: v for k, v in r.items()} for m, r in defaults["metrics"].items()}
    baseline = defaults["baseline"]
    lines += [
        "",
        "# The task's defaults (docs/data-scientist.md, Task types); tune once a first model runs.",
        "model:",
        f"  estimator: {defaults['estimator']}",
        "  params: {random_state: 0}",
        "",
        "split: {strategy: out_of_time, holdout_days: 1}  # the gate judges on the latest day",
        "",
        "gate:",
        f"  primary_metric: {defaults['primary_metric']}",
        "  metrics:",
        *(f"    {m}: {_flow(r)}" for m, r in metrics.items()),
        f"  baseline: {_flow({k: v for k, v in baseline.items() if v is not None})}",
        "  slices: {columns: []}"
        + (
            f"  # REVIEW: a model may not win on average and fail a group, e.g. "
            f"{{columns: [{', '.join(slices)}], min_rows: {max(50, draft.rows // 10)}}}"
            if slices
            else ""
        ),
        "",
        "registry:",
        f"  model_name: {yaml_scalar(draft.name)}",
        f"  experiment: {yaml_scalar('driftloop-' + draft.name)}",
        "",
        "drift:",
        "  window_days: 3  # REVIEW: days each drift check looks at",
        f"  min_rows: {t['drift.min_rows']}  # REVIEW: fewer scored rows in a window never count "
        "as drift (half the sample's rows, 50..1000)",
        f"  min_labelled_rows: {t['drift.min_labelled_rows']}  # REVIEW: fewer labelled rows: "
        "decay not judged (a quarter of the sample's rows, 50..500)",
        "",
        "policy:",
        f"  min_new_rows: {t['policy.min_new_rows']}  # REVIEW: a retrain waits for this many "
        f"new rows in its window (two days of the sample's {draft.rows} rows, 50..3000)",
        "",
    ]
    return "\n".join(lines)
