"""The data contract as plain rules: parse raw values, check them, judge the batch.

One contract (`DatasetSettings`) is checked in three steps:

1. structure (missing / extra / duplicated columns, empty frame): fails at once with
   `DataContractError`, because nothing useful can be said about the rows;
2. `coerce_frame` parses raw values into the contract's dtypes without dropping rows and
   remembers every value that was present but unparsable;
3. checks built from the contract (`build_checks`: not-null, ranges, allowed sets, unique,
   no future times, cross-column rules, null shares, row count) judge the typed frame;
   row-level failures of severity "error" send the row (with its original raw values and
   its reasons) to quarantine; failed batch-level checks and too much quarantine block the
   batch (`batch_verdict`, the one verdict for a batch, a partition or a whole file).

The checks are Great Expectations' expectations (`adapters.validation` runs them in GE for
rows, Data Docs and the last word); here they are also evaluated directly (`screen_checks`),
because most batches pass and the predicates are cheap next to GE's machinery around them. A
batch read from parquet can be judged in arrow (`validate_table`): when its types already are
the contract's and it passes everything, it never becomes a pandas frame. Both paths give the
same verdict (tests hold them to it). Pure: no files, no network, no Great Expectations.
"""

from __future__ import annotations

import contextlib
import functools
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api import types as ptypes
from pydantic import BaseModel

from driftloop.configs.settings import ColumnSpec, CrossColumnRule, DatasetSettings

ROW_COLUMN = "_dq_row"


REASONS_COLUMN = "_dq_reasons"


SOURCE_COLUMN = "_dq_source"


Severity = Literal["error", "warning"]


_BOOL_WORDS = {
    "true": True, "t": True, "yes": True, "y": True, "1": True, "1.0": True,
    "false": False, "f": False, "no": False, "n": False, "0": False, "0.0": False,
}  # fmt: skip


# text that means "no value" where a number, timestamp or boolean is expected (as in read_csv)
_NULL_TOKENS = {"", "nan", "na", "n/a", "null", "none", "nat", "<na>"}


# object dtypes pyarrow writes as they are; anything else (mixed, bytes, decimal...) becomes str
_PARQUET_SAFE_KINDS = {"string", "empty", "integer", "floating", "mixed-integer-float", "boolean"}


_EXAMPLES = 3


class DataContractError(ValueError):
    """A batch breaks the data contract; the message alone says where, what and what to do."""

    def __init__(self, message: str, *, source: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.problems = problems or [message]


class ExpectationOutcome(BaseModel):
    """One expectation's verdict, in our own terms (GE's result objects stay in here)."""

    expectation: str
    column: str | None
    severity: Severity
    row_level: bool
    success: bool
    unexpected_count: int
    unexpected_percent: float | None
    observed: str
    rule: str | None = None  # the dataset.rules name, for a cross-column rule
    # the number an aggregate check measured (non-null share, row count), so verdicts on
    # batches of one file can be combined into the file's verdict (streaming scoring)
    observed_value: float | None = None


class ValidationResult(BaseModel):
    """What a validation found; `success` is False only for blocking failures."""

    source: str
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    success: bool
    outcomes: list[ExpectationOutcome]
    blocking_failures: list[str]

    def summary_markdown(self) -> str:
        """A Prefect artifact body: counts, every expectation, the top quarantine reasons."""
        verdict = "passed" if self.success else "**BLOCKED**"
        lines = [
            f"## Data contract: `{self.source}` {verdict}",
            "",
            "| rows in | valid | quarantined |",
            "|---:|---:|---:|",
            f"| {self.rows_in:,} | {self.rows_valid:,} | {self.rows_quarantined:,} |",
            "",
        ]
        if self.blocking_failures:
            lines += ["### Blocking failures", ""]
            lines += [f"- {_md(message)}" for message in self.blocking_failures]
            lines.append("")
        lines += [
            "### Expectations",
            "",
            "| status | expectation | column | severity | unexpected | observed |",
            "|---|---|---|---|---:|---|",
        ]
        for o in self.outcomes:
            status = "pass" if o.success else ("FAIL" if o.severity == "error" else "warn")
            unexpected = f"{o.unexpected_count:,}" if o.row_level else "-"
            lines.append(
                f"| {status} | {o.expectation} | {o.column or '(table)'} | {o.severity} "
                f"| {unexpected} | {_md(o.observed)} |"
            )
        quarantining = sorted(
            (o for o in self.outcomes if _quarantines(o)),
            key=lambda o: o.unexpected_count,
            reverse=True,
        )
        if quarantining:
            lines += ["", "### Top quarantine reasons", ""]
            lines += [
                f"{i}. `{o.column}` ({o.unexpected_count:,} rows): {_md(o.observed)}"
                for i, o in enumerate(quarantining[:5], start=1)
            ]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ValidatedBatch:
    """The split of one batch: typed valid rows, raw quarantined rows, and the verdict."""

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    result: ValidationResult
    docs_dir: str | None = None  # a local Data Docs site for this validation, when asked for
    # unique column -> (non-null mask, `hash_values` of the typed values, 0 where null), when
    # the screen hashed them: a stream checks uniqueness across batches with the same hashes
    unique_hashes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# structure and coercion


@dataclass
class _RowFailures:
    """Rows failing one check: positions (0-based row numbers) and one message per row."""

    positions: np.ndarray
    messages: np.ndarray


@dataclass
class _Coerced:
    frame: pd.DataFrame
    contract: dict[str, ColumnSpec]
    extras: list[str]
    parse: dict[str, _RowFailures] = field(default_factory=dict)


def coerce_frame(
    raw: pd.DataFrame, dataset: DatasetSettings, *, with_target: bool, source: str
) -> tuple[pd.DataFrame, pd.Series]:
    """Type raw values by the contract without losing a row; say which values did not parse.

    Returns the typed frame (contract columns in contract order, 0-based RangeIndex) and a
    Series of reasons aligned with it ("" where every value parsed). Unparsable values
    become nulls in the typed frame. Raises DataContractError for structural problems.
    """
    coerced = coerce_batch(raw, dataset, with_target=with_target, source=source)
    reasons = _Reasons(len(raw))
    for failures in coerced.parse.values():
        reasons.add(failures.positions, failures.messages)
    return coerced.frame, pd.Series(reasons.text, name=REASONS_COLUMN, dtype=object)


def coerce_batch(
    raw: pd.DataFrame, dataset: DatasetSettings, *, with_target: bool, source: str
) -> _Coerced:
    contract, extras = _check_structure(
        [str(c) for c in raw.columns], len(raw), dataset, with_target=with_target, source=source
    )
    columns: dict[str, pd.Series] = {}
    parse: dict[str, _RowFailures] = {}
    positions = pd.RangeIndex(len(raw))
    for name, spec in contract.items():
        col = raw[name].set_axis(positions, copy=False)  # a view; the frame below copies
        typed, failures = _coerce(col, spec, name)
        columns[name] = typed
        parse[name] = failures
    # Every coercer returns new memory, so the typed (and so the valid) frame never shares
    # the caller's. Not consolidated here (that copies every column again): only GE wants one
    # block per dtype, and `_ge_view` consolidates its own copy when GE runs.
    frame = pd.DataFrame(columns, copy=False)
    return _Coerced(frame=frame, contract=contract, extras=extras, parse=parse)


def _check_structure(
    found: list[str], rows: int, dataset: DatasetSettings, *, with_target: bool, source: str
) -> tuple[dict[str, ColumnSpec], list[str]]:
    """Fail fast, naming the file, on anything that makes row checks meaningless."""
    contract = dataset.contract_columns(with_target=with_target)
    duplicated = sorted({c for c in found if found.count(c) > 1})
    if duplicated:
        raise DataContractError(
            f"{source}: columns {duplicated} appear more than once, so their values are "
            "ambiguous. Fix the producer so every column name is unique, then re-run.",
            source=source,
        )
    missing = [c for c in contract if c not in found]
    if missing:
        hint = _misread_hint(found, list(contract), dataset.name)
        if hint:
            raise DataContractError(f"{source}: {hint}", source=source)
        raise DataContractError(
            f"{source}: required columns {missing} are missing (found: {_names(found)}). "
            f"The contract for dataset '{dataset.name}' needs {list(contract)}. Fix the "
            "producer or the column names in the file, or remove the columns from "
            "dataset.columns in the config if they are really gone.",
            source=source,
        )
    ignored = set() if with_target else {dataset.target}
    extras = [c for c in found if c not in contract and c not in ignored]
    if extras and dataset.extra_columns == "error":
        raise DataContractError(
            f"{source}: unexpected columns {extras} are not in the contract for dataset "
            f"'{dataset.name}' (dataset.extra_columns is 'error'). Remove them upstream, add "
            "them to dataset.columns, or set dataset.extra_columns to 'drop'.",
            source=source,
        )
    if rows == 0:
        raise DataContractError(
            f"{source}: the file has the right columns but 0 rows. Check that the extract "
            "for this batch ran and wrote data before re-running.",
            source=source,
        )
    return contract, extras


_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def _names(found: list[str], limit: int = 12) -> str:
    """Column names for a message: a garbled header must not flood it."""
    shown = [n if len(n) <= 40 else n[:37] + "..." for n in found[:limit]]
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return f"{shown}{more}"


def _misread_hint(found: list[str], expected: list[str], dataset: str) -> str | None:
    """Say why *no* expected column matched: a wrong delimiter, or not this dataset's data.

    A semicolon-separated CSV read with commas yields one column named "a;b;c"; reporting
    "columns a, b, c are missing" would send the user looking for the wrong fault.
    """
    if set(found) & set(expected):
        return None
    wanted = set(expected)
    for sep, label in _DELIMITERS.items():
        for name in found:
            parts = {p.strip().strip('"') for p in name.split(sep)}
            if len(parts) > 1 and parts & wanted:
                return (
                    f"the header was read as {_names(found, 3)}, which splits on {label}s into "
                    f"the contract's columns: the file looks {label}-separated, but CSV input "
                    "must be comma-separated. Re-export it with ',' as the delimiter (or convert "
                    "it, e.g. to parquet) and re-run; the raw file was not changed."
                )
    return (
        f"none of the columns of dataset '{dataset}' were found (found: {_names(found)}; "
        f"expected: {expected}). This does not look like this dataset's data: check that the "
        "path points at the right file and that the file has a header row, then re-run."
    )


def _failures(col: pd.Series, bad: np.ndarray, name: str, problem: str) -> _RowFailures:
    positions = np.flatnonzero(bad)
    shown = col.iloc[positions].map(_show_raw).to_numpy(dtype=object)
    return _RowFailures(positions, f"{name}: " + shown + f" {problem}")


def _merge(*parts: _RowFailures) -> _RowFailures:
    parts = tuple(p for p in parts if len(p.positions))
    if not parts:
        return _RowFailures(np.empty(0, dtype=np.int64), np.empty(0, dtype=object))
    if len(parts) == 1:
        return parts[0]
    return _RowFailures(
        np.concatenate([p.positions for p in parts]), np.concatenate([p.messages for p in parts])
    )


def _present(col: pd.Series, missing: np.ndarray) -> np.ndarray:
    """Of the values that did not parse, the ones really there ("", "NaN", "null" are nulls)."""
    candidates = col.notna().to_numpy() & missing
    if candidates.any() and col.dtype == object:
        idx = np.flatnonzero(candidates)
        words = col.iloc[idx].astype(str).str.strip().str.lower()
        candidates[idx[words.isin(_NULL_TOKENS).to_numpy()]] = False
    return candidates


def _coerce_number(col: pd.Series, name: str, *, integer: bool) -> tuple[pd.Series, _RowFailures]:
    if ptypes.is_numeric_dtype(col) and not ptypes.is_bool_dtype(col):
        fits = col.dtype != np.uint64 or not len(col) or int(col.max()) < _INT64_LIMIT
        if integer and ptypes.is_integer_dtype(col) and not col.hasnans and fits:
            return col.astype("int64"), _merge()
        parsed = col
    else:
        values = (
            col.astype(object) if isinstance(col.dtype, pd.api.extensions.ExtensionDtype) else col
        )
        parsed = pd.to_numeric(values, errors="coerce")
    num = parsed.astype("float64").to_numpy(copy=True)
    unparsable = _present(col, np.isnan(num))
    grouped = _thousands(col, unparsable)
    nonfinite = np.isinf(num)
    parts = [
        _failures(col, unparsable & ~grouped, name, "is not a number"),
        _failures(col, grouped, name, _GROUPED),
        _failures(col, nonfinite, name, "is not a finite number"),
    ]
    num[nonfinite] = np.nan
    if integer:
        fractional = np.isfinite(num) & (np.mod(num, 1.0) != 0.0)
        parts.append(_failures(col, fractional, name, "is not a whole number"))
        num[fractional] = np.nan
        # beyond int64 a cast wraps round (1e20 became -9.2e18): name it, never wrap
        huge = np.isfinite(num) & (np.abs(num) >= _INT64_LIMIT)
        parts.append(_failures(col, huge, name, "is too large for a 64-bit integer"))
        num[huge] = np.nan
        series = pd.Series(num)
        typed = series.astype("Int64") if series.hasnans else series.astype("int64")
        return typed, _merge(*parts)
    return pd.Series(num), _merge(*parts)


_INT64_LIMIT = 2**63


_GROUPED = "is not a number: it uses ',' as a thousands separator (write 73500.0, not 73,500.0)"


# 73,500 / 1,234,567.89: digits grouped by commas in threes, as spreadsheets export them
_THOUSANDS = r"\s*[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?\s*"


def _thousands(col: pd.Series, unparsable: np.ndarray) -> np.ndarray:
    """Of the unparsable values, those written with thousands separators (named as such)."""
    grouped = np.zeros(len(col), dtype=bool)
    if unparsable.any() and col.dtype == object:
        idx = np.flatnonzero(unparsable)
        text = col.iloc[idx].astype(str)
        grouped[idx[text.str.fullmatch(_THOUSANDS).to_numpy(dtype=bool)]] = True
    return grouped


def _coerce_int(col: pd.Series, name: str) -> tuple[pd.Series, _RowFailures]:
    return _coerce_number(col, name, integer=True)


def _coerce_float(col: pd.Series, name: str) -> tuple[pd.Series, _RowFailures]:
    return _coerce_number(col, name, integer=False)


def _coerce(col: pd.Series, spec: ColumnSpec, name: str) -> tuple[pd.Series, _RowFailures]:
    if spec.dtype == "datetime":
        return _coerce_datetime(col, name, spec.format)
    return _COERCERS[spec.dtype](col, name)


def expected_format(fmt: str | None) -> str:
    """A column's timestamp format in words, for messages."""
    return "ISO 8601 (e.g. 2026-11-01T09:30:00Z)" if fmt is None else f"'{fmt}'"


def _coerce_datetime(
    col: pd.Series, name: str, fmt: str | None = None
) -> tuple[pd.Series, _RowFailures]:
    """Text is parsed with the column's one format (ISO 8601 unless configured), never
    guessed: pandas would read 01/11/2026 month-first without a word."""
    if ptypes.is_datetime64_any_dtype(col):
        ts = col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")
        ts = ts.copy()  # tz_convert may return a view of the caller's data
        failures = _merge()
    elif ptypes.is_numeric_dtype(col) or ptypes.is_bool_dtype(col):
        # epoch numbers are ambiguous (s, ms, ns?): refuse them rather than guess
        ts = pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns, UTC]")
        failures = _failures(
            col, col.notna().to_numpy(), name, "is a number, not a timestamp (write ISO 8601)"
        )
    else:
        values = col.astype(object)
        ts = pd.to_datetime(values, utc=True, errors="coerce", format=fmt or "ISO8601")
        problem = f"is not a timestamp in the expected format {expected_format(fmt)}"
        failures = _failures(values, _present(values, ts.isna().to_numpy()), name, problem)
    with contextlib.suppress(OverflowError, pd.errors.OutOfBoundsDatetime):
        ts = ts.dt.as_unit("ns")  # one unit for every batch; far-off dates keep theirs
    return ts, failures


def _coerce_string(col: pd.Series, name: str) -> tuple[pd.Series, _RowFailures]:
    values = col.astype(object) if col.dtype != object else col.copy()
    if ptypes.infer_dtype(values, skipna=False) == "string":
        return values, _merge()  # strings only, no nulls: nothing to convert
    kind = ptypes.infer_dtype(values, skipna=True)
    if kind not in ("string", "empty"):
        values = values.where(values.isna(), values.astype(str))
    missing = values.isna().to_numpy()
    if missing.any():
        values = values.where(~missing, None)
    return values, _merge()


def _coerce_bool(col: pd.Series, name: str) -> tuple[pd.Series, _RowFailures]:
    if ptypes.is_bool_dtype(col) and not col.hasnans:
        return col.astype(bool), _merge()
    present = col.notna().to_numpy()
    idx = np.flatnonzero(present)
    words = col.iloc[idx].astype(str).str.strip().str.lower()
    mapped = words.map(_BOOL_WORDS)
    blank = words.isin(_NULL_TOKENS).to_numpy()
    bad = np.zeros(len(col), dtype=bool)
    bad[idx[mapped.isna().to_numpy() & ~blank]] = True
    typed = pd.Series(pd.NA, index=range(len(col)), dtype="boolean")
    ok = mapped.notna().to_numpy()
    typed.iloc[idx[ok]] = mapped.to_numpy()[ok].astype(bool)
    if not typed.hasnans:
        typed = typed.astype(bool)
    return typed, _failures(col, bad, name, "is not a boolean (use true/false)")


_COERCERS: dict[str, Callable[[pd.Series, str], tuple[pd.Series, _RowFailures]]] = {
    "int": _coerce_int,
    "float": _coerce_float,
    "datetime": _coerce_datetime,
    "string": _coerce_string,
    "category": _coerce_string,
    "bool": _coerce_bool,
}


# --------------------------------------------------------------------------------------
# the expectation suite


@dataclass(frozen=True)
class Check:
    """One expectation as we see it; `gx_type` names the GE class that evaluates it."""

    kind: str
    column: str | None
    severity: Severity
    row_level: bool
    gx_type: str
    kwargs: dict[str, Any]
    allowed: str = ""  # the bound in words, for messages
    rule: CrossColumnRule | None = None  # for kind "rule"


def _column_check(
    name: str,
    spec: ColumnSpec,
    kind: str,
    gx_type: str,
    *,
    row_level: bool = True,
    allowed: str = "",
    **kwargs: Any,
) -> Check:
    kwargs = {"column": name, **kwargs}
    return Check(kind, name, spec.severity, row_level, gx_type, kwargs, allowed)


def build_checks(
    contract: dict[str, ColumnSpec],
    dataset: DatasetSettings,
    now: datetime,
    day: date | None = None,
) -> list[Check]:
    """The suite for a batch; with `day`, its timestamps must also fall on that day."""
    checks: list[Check] = []
    for name, spec in contract.items():
        check = functools.partial(_column_check, name, spec)
        if not spec.nullable:
            checks.append(check("not_null", "ExpectColumnValuesToNotBeNull"))
        elif spec.max_null_fraction < 1.0:
            # not ExpectColumnValuesToNotBeNull(mostly=...): with COMPLETE results GE lists
            # (and serialises) every null's row number, far slower on large batches than the
            # non-null share this check needs
            min_value = 1.0 - spec.max_null_fraction
            checks.append(
                check(
                    "null_fraction",
                    "ExpectColumnProportionOfNonNullValuesToBeBetween",
                    row_level=False,
                    min_value=min_value,
                )
            )
        if spec.min is not None or spec.max is not None:
            between = "ExpectColumnValuesToBeBetween"
            checks.append(check("range", between, min_value=spec.min, max_value=spec.max))
        if spec.categories is not None:
            in_set = "ExpectColumnValuesToBeInSet"
            checks.append(check("in_set", in_set, value_set=list(spec.categories)))
        if spec.unique:
            checks.append(check("unique", "ExpectColumnValuesToBeUnique"))
        if name == dataset.timestamp_column:
            latest = now + timedelta(minutes=dataset.max_future_minutes)
            skew = f"now + {dataset.max_future_minutes} min"
            between = "ExpectColumnValuesToBeBetween"
            checks.append(check("not_future", between, max_value=latest, allowed=skew))
            if day is not None:
                low, high = day_bounds(dataset, day)
                hours = _num(dataset.event_time_tolerance_hours)
                on_day = f"{day} ({dataset.time_zone}, with {hours} h tolerance)"
                checks.append(
                    check("in_day", between, min_value=low, max_value=high, allowed=on_day)
                )
    for rule in dataset.rules:
        if rule.column_a in contract and rule.column_b in contract:
            checks.append(_rule_check(rule))
    row_bounds = {"min_value": dataset.min_rows, "max_value": dataset.max_rows}
    checks.append(
        Check("row_count", None, "error", False, "ExpectTableRowCountToBeBetween", row_bounds)
    )
    return checks


def day_bounds(dataset: DatasetSettings, day: date) -> tuple[datetime, datetime]:
    """The first and last instant (UTC) a row of the batch of `day` may carry: the day in the
    dataset's time zone, widened by the tolerance for late or early events."""
    zone = zoneinfo.ZoneInfo(dataset.time_zone)
    tolerance = timedelta(hours=dataset.event_time_tolerance_hours)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return (start - tolerance).astimezone(UTC), (end + tolerance).astimezone(UTC)


IN_DAY = "expect_column_values_to_fall_on_the_batch_day"


_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!="}


def _scaled_column(rule: CrossColumnRule) -> str:
    """The column GE compares against: column_b itself, or a derived factor x column_b."""
    return rule.column_b if rule.factor == 1.0 else f"_dq_rule_{rule.name}"


def _rule_check(rule: CrossColumnRule) -> Check:
    """A op factor*B as a GE 1.x pair expectation (nulls in either column are not judged).

    GE has no factor, so a factor other than 1 compares with a derived column factor*B
    (added to the frame GE sees only; see `derived_columns`).
    """
    a, b = rule.column_a, _scaled_column(rule)
    common = {"ignore_row_if": "either_value_is_missing"}
    if rule.op == "==":
        gx_type, kwargs = "ExpectColumnPairValuesToBeEqual", {"column_A": a, "column_B": b}
    else:
        greater, smaller = (a, b) if rule.op in (">", ">=") else (b, a)
        gx_type = "ExpectColumnPairValuesAToBeGreaterThanB"
        kwargs = {"column_A": greater, "column_B": smaller, "or_equal": "=" in rule.op}
    factor = "" if rule.factor == 1.0 else f"{_num(rule.factor)} x "
    allowed = f"{rule.column_a} {rule.op} {factor}{rule.column_b}"
    return Check("rule", None, rule.severity, True, gx_type, {**kwargs, **common}, allowed, rule)


def derived_columns(frame: pd.DataFrame, checks: list[Check]) -> dict[str, pd.Series]:
    """factor x column_b for each rule with a factor, as float64 (nulls stay null)."""
    derived: dict[str, pd.Series] = {}
    for check in checks:
        rule = check.rule
        if rule is not None and rule.factor != 1.0:
            values = frame[rule.column_b].astype("float64")
            derived[_scaled_column(rule)] = values * rule.factor
    return derived


@dataclass(frozen=True)
class CheckOutcome:
    index: int  # position of the check in the suite we built
    check: Check
    success: bool
    unexpected_count: int
    positions: np.ndarray
    observed_value: Any


def hash_values(values: pd.Series) -> np.ndarray:
    """64-bit hashes of typed values (nulls excluded by the caller); collisions ~ n^2/2^65.

    categorize=False: the values are meant to be unique, so factorizing them first (pandas'
    default, a win for repeated values) only adds a hash table; the hashes are the same."""
    return pd.util.hash_pandas_object(values, index=False, categorize=False).to_numpy(
        dtype=np.uint64
    )


def row_hashes(
    values: pd.Series, present: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(non-null mask, `hash_values` of the values, 0 where null): hashes aligned with rows."""
    if present is None:
        present = values.notna().to_numpy()
    hashes = np.zeros(len(values), dtype=np.uint64)
    hashes[present] = hash_values(values[present])
    return present, hashes


class NotNull:
    """Non-null masks (and hashes) of a frame's columns, each computed once: the screen and
    the observed values ask for the same columns, and isna on strings visits every Python
    object. The hashes of unique columns are handed on (`ValidatedBatch.unique_hashes`)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.masks: dict[str, pd.Series] = {}
        self.hashes: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, name: str) -> pd.Series:
        if name not in self.masks:
            self.masks[name] = self.frame[name].notna()
        return self.masks[name]

    def hashed(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.hashes:
            self.hashes[name] = row_hashes(self.frame[name], self(name).to_numpy())
        return self.hashes[name]


def screen_checks(
    frame: pd.DataFrame, checks: list[Check], notna: NotNull | None = None
) -> list[bool]:
    """Which checks the batch passes, by the predicate GE evaluates, without GE's machinery.

    GE spends far more on bookkeeping around the predicates (metric graphs, a batch hash, frame
    copies) than on the predicates themselves (see benchmarks/README.md), so a clean batch is
    screened here and GE is asked only about the checks that fail (it then lists their rows,
    and its verdict is the one kept). False means "ask GE": a check fails, or cannot be judged
    here. The predicates mirror GE 1.x: nulls are not judged by value checks, bounds are
    inclusive, a unique column may repeat nulls, a pair rule skips rows missing either side.
    A unit test checks the verdicts against GE's on every check kind.
    """
    notna = notna or NotNull(frame)
    passed: list[bool] = []
    for check in checks:
        try:
            passed.append(_passes(check, frame, notna))
        except (TypeError, ValueError):  # e.g. values that do not compare: GE decides
            passed.append(False)
    return passed


def _passes(check: Check, frame: pd.DataFrame, notna: NotNull) -> bool:
    kwargs = check.kwargs
    if check.kind == "row_count":
        return _within(np.asarray([len(frame)]), kwargs)
    if check.kind == "rule":
        rule = _rule_of(check)
        a, b = frame[rule.column_a], frame[rule.column_b]
        if rule.factor != 1.0:
            b = b.astype("float64") * rule.factor  # as `derived_columns` hands it to GE
        judged = (notna(rule.column_a) & notna(rule.column_b)).to_numpy()
        left, right = a[judged].to_numpy(), b[judged].to_numpy()
        return bool(_COMPARE[rule.op](left, right).all())
    name = _column_of(check)
    present = notna(name)
    if check.kind == "not_null":
        return bool(present.all())
    if check.kind == "null_fraction":
        return _within(np.asarray([present.mean()]), kwargs)
    col = frame[name]
    if not present.any():
        return True  # nothing to judge
    if check.kind in ("range", "not_future", "in_day"):
        return _within(np.asarray([col.min(), col.max()]), kwargs)  # both skip nulls
    if check.kind == "in_set":
        found = pd.unique(col)  # a handful of values: no copy of the column
        return bool(pd.Series(found).dropna().isin(kwargs["value_set"]).all())
    if check.kind == "unique":
        mask, hashes = notna.hashed(name)
        found = np.sort(hashes[mask])
        if not (found[1:] == found[:-1]).any():
            return True  # distinct hashes: distinct values
        return not col[present].duplicated().any()  # a repeat, or a collision: compare values
    return False


def quarantine_mask(
    raw: pd.DataFrame,
    dataset: DatasetSettings,
    *,
    now: datetime,
    source: str = "batch",
    day: date | None = None,
) -> np.ndarray:
    """The rows the contract sends to quarantine (unparsable, or failing a row-level check of
    severity error), judged by the same checks without Great Expectations.

    Why: the backtest replays months of days and must quarantine what the flows would; GE's
    row lists cost far more than these masks. Tests hold it to `validate_frame`'s quarantine.
    """
    return screen_batch(raw, dataset, now=now, source=source, day=day)[0]


def screen_batch(
    raw: pd.DataFrame,
    dataset: DatasetSettings,
    *,
    now: datetime,
    source: str = "batch",
    day: date | None = None,
) -> tuple[np.ndarray, list[ExpectationOutcome]]:
    """`quarantine_mask`, and the batch-level checks' outcomes (row count, null shares) that
    `batch_verdict` turns into a failed batch: the whole verdict of a batch without GE."""
    coerced = coerce_batch(raw, dataset, with_target=True, source=source)
    typed = coerced.frame
    n = len(typed)
    bad = np.zeros(n, dtype=bool)
    for name, spec in coerced.contract.items():
        if spec.severity == "error":
            bad[coerced.parse[name].positions] = True
    notna = NotNull(typed)
    batch_level: list[ExpectationOutcome] = []
    for index, check in enumerate(build_checks(coerced.contract, dataset, now, day)):
        if check.row_level:
            if check.severity == "error":
                bad |= _failing_rows(check, typed, notna)
            continue
        observed = aggregate_value(check, n, lambda name: int(notna(name).sum()))
        passed = _passes(check, typed, notna)
        empty = np.empty(0, dtype=np.int64)
        batch_level.append(
            _outcome(CheckOutcome(index, check, passed, 0, empty, observed), None, n)
        )
    return bad, batch_level


def _rule_of(check: Check) -> CrossColumnRule:
    if check.rule is None:
        raise ValueError(f"{check.gx_type} on {check.column!r} carries no cross-column rule")
    return check.rule


def _column_of(check: Check) -> str:
    if check.column is None:
        raise ValueError(f"{check.gx_type} is a table check, not a column check")
    return check.column


def _failing_rows(check: Check, frame: pd.DataFrame, notna: NotNull) -> np.ndarray:
    """The rows a row-level check quarantines; nulls are judged by not-null checks only."""
    if check.kind == "rule":
        rule = _rule_of(check)
        a, b = frame[rule.column_a], frame[rule.column_b]
        if rule.factor != 1.0:
            b = b.astype("float64") * rule.factor
        judged = (notna(rule.column_a) & notna(rule.column_b)).to_numpy()
        ok = np.ones(len(frame), dtype=bool)
        ok[judged] = _COMPARE[rule.op](a[judged].to_numpy(), b[judged].to_numpy())
        return ~ok
    name = _column_of(check)
    present = notna(name).to_numpy()
    col = frame[name]
    if check.kind == "not_null":
        return ~present
    failing = np.zeros(len(frame), dtype=bool)
    if check.kind in ("range", "not_future", "in_day"):
        low, high = check.kwargs.get("min_value"), check.kwargs.get("max_value")
        values = col[present]
        out = np.zeros(len(values), dtype=bool)
        if low is not None:
            out |= np.asarray(values < low, dtype=bool)
        if high is not None:
            out |= np.asarray(values > high, dtype=bool)
        failing[present] = out
    elif check.kind == "in_set":
        failing[present] = ~col[present].isin(check.kwargs["value_set"]).to_numpy()
    elif check.kind == "unique":
        failing[present] = col[present].duplicated(keep="first").to_numpy()
    return failing


def _within(values: Any, bounds: dict[str, Any]) -> bool:
    low, high = bounds.get("min_value"), bounds.get("max_value")
    ok = np.ones(len(values), dtype=bool)
    if low is not None:
        ok &= np.asarray(values >= low, dtype=bool)
    if high is not None:
        ok &= np.asarray(values <= high, dtype=bool)
    return bool(ok.all())


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
}  # fmt: skip


def aggregate_value(check: Check, rows: int, non_null: Callable[[str], int]) -> float | int:
    """What a passing aggregate check measured (screening returns only the verdict): the
    batch's non-null share or row count, the same quantity GE bounds, kept so that verdicts on
    the batches of one file can be combined into the file's (`merge_results`)."""
    if check.kind == "null_fraction":
        return non_null(str(check.column)) / rows if rows else 1.0
    return rows


# --------------------------------------------------------------------------------------
# validate_frame


class _Reasons:
    """Per-row reason text, built one check at a time (vectorised over the failing rows)."""

    def __init__(self, n: int) -> None:
        self.text = np.full(n, "", dtype=object)

    def add(self, positions: np.ndarray, messages: np.ndarray) -> None:
        if len(positions) == 0:
            return
        current = self.text[positions]
        self.text[positions] = np.where(current == "", messages, current + "; " + messages)


@dataclass
class Findings:
    """What the checks say about a batch, row by row and as a whole."""

    reasons: _Reasons
    quarantined: np.ndarray  # bool per row
    outcomes: list[ExpectationOutcome]


def collect_findings(
    contract: dict[str, ColumnSpec],
    parse: dict[str, _RowFailures],
    extras: list[str],
    gx_outcomes: list[CheckOutcome],
    typed: pd.DataFrame | None,
    *,
    rows: int,
) -> Findings:
    """The outcomes in contract order (parse, then each check of a column; rules; table),
    with the failing rows' reasons. `typed` is read only for failing rows: None when
    nothing failed (`validate_table`), so both paths report a clean batch alike."""
    n = rows
    reasons = _Reasons(n)
    quarantined = np.zeros(n, dtype=bool)
    outcomes: list[ExpectationOutcome] = []

    def record(sev: Severity, failures: _RowFailures) -> None:
        if sev == "error":
            reasons.add(failures.positions, failures.messages)
            quarantined[failures.positions] = True
        else:
            reasons.add(failures.positions, failures.messages + " (warning)")

    def failing_rows(o: CheckOutcome, unparsable: np.ndarray) -> _RowFailures:
        if o.success:
            return _RowFailures(o.positions, np.empty(0, dtype=object))
        if typed is None:
            raise ValueError("a failed check lists rows of the typed frame, and none was given")
        if o.check.kind == "rule":
            return _rule_failures(o, typed)
        return _row_failures(o, typed[o.check.column], unparsable)

    if extras:
        outcomes.append(
            ExpectationOutcome(
                expectation="expect_table_columns_to_match_contract",
                column=None,
                severity="warning",
                row_level=False,
                success=False,
                unexpected_count=0,
                unexpected_percent=None,
                observed=f"dropped {len(extras)} extra columns: " + ", ".join(extras),
            )
        )
    by_column: dict[str | None, list[CheckOutcome]] = {}
    rule_outcomes: list[CheckOutcome] = []
    for o in gx_outcomes:
        if o.check.kind == "rule":
            rule_outcomes.append(o)
        else:
            by_column.setdefault(o.check.column, []).append(o)

    for name, spec in contract.items():
        parsed = parse[name]
        record(spec.severity, parsed)
        if spec.dtype not in ("string", "category"):  # any value can be a string
            outcomes.append(_parse_outcome(name, spec, parsed, n))
        for o in by_column.get(name, []):
            failures = failing_rows(o, parsed.positions)
            if o.check.row_level:
                record(spec.severity, failures)
            outcomes.append(_outcome(o, failures, n))
    for o in rule_outcomes:
        failures = failing_rows(o, np.empty(0, dtype=np.int64))
        record(o.check.severity, failures)
        outcomes.append(_outcome(o, failures, n))
    for o in by_column.get(None, []):
        outcomes.append(_outcome(o, None, n))
    return Findings(reasons, quarantined, outcomes)


def narrow(valid: pd.DataFrame) -> pd.DataFrame:
    """Nullable dtypes forced by (now quarantined) bad values go back to plain ones."""
    valid.index = pd.RangeIndex(len(valid))  # take() returned a copy
    for name in valid.columns:
        dtype = valid[name].dtype
        if str(dtype) in ("Int64", "boolean") and not valid[name].hasnans:
            valid[name] = valid[name].astype("int64" if str(dtype) == "Int64" else bool)
    return valid


# --------------------------------------------------------------------------------------
# validate_table: a clean batch judged without leaving arrow

# The arrow type of each contract dtype: what `validate_frame`'s typed columns become when
# written (`pa.Table.from_pandas`).
ARROW_TYPES = {
    "int": pa.int64(),
    "float": pa.float64(),
    "datetime": pa.timestamp("ns", tz="UTC"),
    "string": pa.string(),
    "category": pa.string(),
    "bool": pa.bool_(),
}


@dataclass(frozen=True)
class CleanTable:
    """A batch that passed its whole contract in arrow: every row is valid, none parsed."""

    # the typed contract columns, with the pandas metadata `pa.Table.from_pandas` gives
    # `validate_frame`'s valid frame: written, both are the same file
    table: pa.Table
    result: ValidationResult
    unique_hashes: dict[str, tuple[np.ndarray, np.ndarray]]  # as `ValidatedBatch`'s


def validate_table(
    table: pa.Table,
    dataset: DatasetSettings,
    *,
    with_target: bool = True,
    source: str,
    now: datetime | None = None,
    day: date | None = None,
) -> CleanTable | None:
    """`validate_frame`'s verdict on a batch that passes every check; None: ask it instead.

    Why: for a clean batch read from parquet, pandas cost more than the checks (a Python
    object per string, a typed copy, and back to arrow to be written; see benchmarks/README.md).
    When the file's arrow types already are the contract's, typing is a cast and each check one
    arrow kernel. Only a batch that passes everything is judged here; a check that fails or
    cannot be judged, a value that needs parsing (strings in a number column, NaN,
    infinities) returns None, and `validate_frame` finds the rows and lets GE decide. Unit
    tests hold both to the same result. Structural problems raise `DataContractError`, as
    there.
    """
    now = as_utc(now or datetime.now(UTC))
    contract, extras = _check_structure(
        table.column_names, table.num_rows, dataset, with_target=with_target, source=source
    )
    typed = _typed_table(table, contract)
    if typed is None:
        return None
    checks = build_checks(contract, dataset, now, day)
    hashes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for check in checks:
        try:
            if not _table_passes(check, typed, hashes):
                return None
        except (pa.ArrowException, TypeError, ValueError):  # e.g. types that do not compare
            return None
    n = typed.num_rows

    def non_null(name: str) -> int:
        return n - typed.column(name).null_count

    gx_outcomes = [
        CheckOutcome(
            index,
            check,
            True,
            0,
            np.empty(0, dtype=np.int64),
            None if check.row_level else aggregate_value(check, n, non_null),
        )
        for index, check in enumerate(checks)
    ]
    parse = {name: _merge() for name in contract}
    found = collect_findings(contract, parse, extras, gx_outcomes, None, rows=n)
    blocking = batch_verdict(found.outcomes, dataset, source=source, rows_in=n, rows_valid=n)
    result = ValidationResult(
        source=source,
        rows_in=n,
        rows_valid=n,
        rows_quarantined=0,
        success=not blocking,
        outcomes=found.outcomes,
        blocking_failures=blocking,
    )
    return CleanTable(
        typed.replace_schema_metadata(_pandas_metadata(typed, contract)), result, hashes
    )


def _pandas_metadata(typed: pa.Table, contract: dict[str, ColumnSpec]) -> dict[bytes, bytes]:
    """The metadata `pa.Table.from_pandas` writes for `validate_frame`'s typed frame of these
    rows (which types an int or bool column with nulls as Int64 / boolean)."""
    sample = typed.slice(0, 1).to_pandas()
    for name, spec in contract.items():
        if spec.dtype in _WITH_NULLS and typed.column(name).null_count:
            sample[name] = sample[name].astype(_WITH_NULLS[spec.dtype])
    return pa.Schema.from_pandas(sample, preserve_index=False).metadata


_WITH_NULLS = {"int": "Int64", "bool": "boolean"}


_NULLABLE = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}


def _typed_table(table: pa.Table, contract: dict[str, ColumnSpec]) -> pa.Table | None:
    """The contract columns cast to `ARROW_TYPES`, or None if a value would need parsing."""
    columns = []
    for name, spec in contract.items():
        col = table.column(name)
        kind = col.type
        if spec.dtype == "int":
            plain = pa.types.is_integer(kind) and kind != pa.uint64()
        elif spec.dtype == "float":
            plain = pa.types.is_integer(kind) or (
                pa.types.is_floating(kind)
                and not pa.types.is_float16(kind)
                and pc.all(pc.is_finite(col)).as_py() is not False  # NaN and inf need parsing
            )
        elif spec.dtype == "datetime":
            plain = pa.types.is_timestamp(kind)
        elif spec.dtype == "bool":
            plain = pa.types.is_boolean(kind)
        else:  # string, category
            plain = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        if not plain:
            return None
        try:
            columns.append(col.cast(ARROW_TYPES[spec.dtype]))  # safe: overflow raises
        except pa.ArrowInvalid:  # e.g. a date beyond the nanosecond range
            return None
    return pa.table(columns, names=list(contract))


def _table_passes(
    check: Check, table: pa.Table, hashes: dict[str, tuple[np.ndarray, np.ndarray]]
) -> bool:
    """`_passes` in arrow kernels (same predicates, same bounds; nulls are not judged).

    A unique column's `row_hashes` go into `hashes` for the stream's check across batches."""
    kwargs = check.kwargs
    n = table.num_rows
    if check.kind == "row_count":
        return _within(np.asarray([n]), kwargs)
    if check.kind == "rule":
        rule = _rule_of(check)
        a, b = table.column(rule.column_a), table.column(rule.column_b)
        if rule.factor != 1.0:
            b = pc.multiply(b.cast(pa.float64()), rule.factor)  # as `_passes` scales it
        return pc.all(_ARROW_COMPARE[rule.op](a, b)).as_py() is not False  # nulls skipped
    name = _column_of(check)
    col = table.column(name)
    nulls = col.null_count
    if check.kind == "not_null":
        return nulls == 0
    if check.kind == "null_fraction":
        return _within(np.asarray([(n - nulls) / n]), kwargs)
    if nulls == n:
        return True  # nothing to judge
    if check.kind in ("range", "not_future", "in_day"):
        extremes = pc.min_max(col)
        values = [extremes["min"], extremes["max"]]
        if pa.types.is_timestamp(col.type):  # typed as ns: compare as pandas Timestamps
            found = [pd.Timestamp(v.value, unit="ns", tz="UTC") for v in values]
        else:
            found = [v.as_py() for v in values]
        return _within(np.asarray(found), kwargs)
    if check.kind == "in_set":
        allowed = set(kwargs["value_set"])
        return all(v in allowed for v in pc.unique(col).to_pylist() if v is not None)
    if check.kind == "unique":
        # the typed values as `validate_frame` has them (ints stay ints when nulls are
        # present), so the hashes are the same
        values = col.to_pandas(deduplicate_objects=False, types_mapper=_NULLABLE.get)
        mask, hashed = row_hashes(values, pc.is_valid(col).to_numpy(zero_copy_only=False))
        hashes[name] = (mask, hashed)
        found = np.sort(hashed[mask])
        return not (found[1:] == found[:-1]).any()  # equal hashes: let pandas compare
    return False


_ARROW_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": pc.less, "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal, "==": pc.equal,
}  # fmt: skip


def raise_for_result(result: ValidationResult) -> None:
    """Stop the pipeline on a blocked batch with one message that says what to do."""
    if result.success:
        return
    # Each failure names the file for the artifact; the message names it once, up front.
    problems = [p.removeprefix(f"{result.source}: ") for p in result.blocking_failures]
    if len(problems) == 1:
        message = f"Batch {result.source} failed its data contract: {problems[0]}"
    else:
        listed = " ".join(f"({i}) {p}" for i, p in enumerate(problems, start=1))
        message = (
            f"Batch {result.source} failed its data contract with {len(problems)} blocking "
            f"problems: {listed}"
        )
    raise DataContractError(message, source=result.source, problems=list(result.blocking_failures))


def _row_failures(o: CheckOutcome, col: pd.Series, unparsable: np.ndarray) -> _RowFailures:
    """The rows a failed GE check flags, with one message each (values read from the typed
    frame)."""
    check, name = o.check, o.check.column
    positions = o.positions
    if check.kind == "unique":
        # GE flags every occurrence; we keep the first and flag the repeats
        positions = np.flatnonzero((col.duplicated(keep="first") & col.notna()).to_numpy())
    elif check.kind == "not_null" and len(unparsable):
        # an unparsable value is null now, but its parse message already says why
        positions = np.setdiff1d(positions, unparsable, assume_unique=True)
    if len(positions) == 0 or not check.row_level:
        return _RowFailures(positions, np.empty(0, dtype=object))
    values = col.iloc[positions]
    if check.kind == "not_null":
        messages = np.full(
            len(positions), f"{name}: missing (column is not nullable)", dtype=object
        )
    elif check.kind == "range":
        messages = f"{name}: " + _show_numbers(values) + f" {_range_text(check)}"
    elif check.kind == "in_set":
        messages = f"{name}: " + _show_strings(values) + " not in allowed set"
    elif check.kind == "unique":
        messages = f"{name}: " + _show_strings(values) + " repeats an earlier row"
    elif check.kind == "not_future":
        latest = check.kwargs["max_value"]
        shown = values.dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(dtype=object)
        messages = f"{name}: " + shown + f" is later than {_iso(latest)} ({check.allowed})"
    elif check.kind == "in_day":
        shown = values.dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(dtype=object)
        messages = f"{name}: " + shown + f" is not on the batch's day {check.allowed}"
    else:  # pragma: no cover - every row-level kind is handled above
        raise ValueError(f"unknown row-level check {check.kind!r}")
    return _RowFailures(positions, np.asarray(messages, dtype=object))


def _rule_failures(o: CheckOutcome, typed: pd.DataFrame) -> _RowFailures:
    """One message per failing row: "name: a_col 900000 > 10 x b_col 20000"."""
    rule = _rule_of(o.check)
    positions = o.positions
    if len(positions) == 0:
        return _RowFailures(positions, np.empty(0, dtype=object))
    a = _show_values(typed[rule.column_a].iloc[positions])
    b = _show_values(typed[rule.column_b].iloc[positions])
    factor = "" if rule.factor == 1.0 else f"{_num(rule.factor)} x "
    messages = (
        f"{rule.name}: {rule.column_a} " + a + f" {_NEGATED[rule.op]} {factor}{rule.column_b} " + b
    )
    return _RowFailures(positions, np.asarray(messages, dtype=object))


def _show_values(values: pd.Series) -> np.ndarray:
    if ptypes.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(dtype=object)
    return _show_numbers(values)


def _outcome(o: CheckOutcome, failures: _RowFailures | None, n: int) -> ExpectationOutcome:
    check = o.check
    count = o.unexpected_count
    if check.kind == "unique":  # we act on the repeats only, so we report those
        count = len(failures.positions) if failures is not None else 0
    rule = check.rule
    return ExpectationOutcome(
        # not_future and in_day are both GE's "between" on one column: keep them apart
        expectation=IN_DAY if check.kind == "in_day" else _snake(check.gx_type),
        column=check.column if rule is None else f"{rule.column_a}, {rule.column_b}",
        severity=check.severity,
        row_level=check.row_level,
        success=o.success,
        unexpected_count=count,
        unexpected_percent=(100.0 * count / n) if check.row_level else None,
        observed=_observed(o, failures),
        rule=None if rule is None else rule.name,
        observed_value=_number(o.observed_value) if not check.row_level else None,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _observed(o: CheckOutcome, failures: _RowFailures | None) -> str:
    check = o.check
    if check.kind == "row_count":
        return f"{o.observed_value} rows ({_bounds_text(check.kwargs, 'rows')})"
    if check.kind == "null_fraction":
        observed = 1.0 - float(o.observed_value if o.observed_value is not None else 0.0)
        allowed = 1.0 - float(check.kwargs["min_value"])
        return f"{observed:.1%} null (max {allowed:.1%})"
    if o.success:
        return "all rows pass"
    examples = ""
    if failures is not None and len(failures.messages):
        shown = pd.unique(pd.Series(failures.messages[: 50 * _EXAMPLES]))[:_EXAMPLES]
        examples = "; e.g. " + " | ".join(str(s) for s in shown)
    if check.kind == "not_null":
        unparsable = o.unexpected_count - (len(failures.positions) if failures is not None else 0)
        also = f" ({unparsable:,} of them unparsable, see the parse check)" if unparsable else ""
        return f"{o.unexpected_count:,} nulls{also}{examples}"
    if check.kind == "range":
        return f"{o.unexpected_count:,} values {_range_text(check)}{examples}"
    if check.kind == "in_set":
        allowed = ", ".join(check.kwargs["value_set"])
        return f"{o.unexpected_count:,} values not in {{{allowed}}}{examples}"
    if check.kind == "unique":
        repeats = len(failures.positions) if failures is not None else 0
        return (
            f"{o.unexpected_count:,} rows share a value; {repeats:,} repeats flagged, "
            f"first occurrence kept{examples}"
        )
    if check.kind == "rule":
        name = check.rule.name if check.rule is not None else "rule"
        return f"{o.unexpected_count:,} rows break {name} ({check.allowed}){examples}"
    if check.kind == "in_day":
        low, high = _iso(check.kwargs["min_value"]), _iso(check.kwargs["max_value"])
        return (
            f"{o.unexpected_count:,} timestamps not on the batch's day {check.allowed} "
            f"({low} to {high}){examples}"
        )
    if check.kind == "not_future":
        latest = _iso(check.kwargs["max_value"])
        return f"{o.unexpected_count:,} timestamps after {latest} ({check.allowed}){examples}"
    return f"{o.unexpected_count:,} unexpected{examples}"  # pragma: no cover


def _parse_outcome(name: str, spec: ColumnSpec, parse: _RowFailures, n: int) -> ExpectationOutcome:
    count = len(parse.positions)
    examples = ""
    if count:
        shown = pd.unique(pd.Series(parse.messages[: 50 * _EXAMPLES]))[:_EXAMPLES]
        examples = "; e.g. " + " | ".join(str(s) for s in shown)
    return ExpectationOutcome(
        expectation=f"expect_column_values_to_parse_as_{spec.dtype}",
        column=name,
        severity=spec.severity,
        row_level=True,
        success=count == 0,
        unexpected_count=count,
        unexpected_percent=100.0 * count / n,
        observed=(f"{count:,} values present but unparsable{examples}" if count else "all parse"),
    )


ROW_COUNT = "expect_table_row_count_to_be_between"
NON_NULL_SHARE = "expect_column_proportion_of_non_null_values_to_be_between"


def batch_verdict(
    outcomes: list[ExpectationOutcome],
    dataset: DatasetSettings,
    *,
    source: str,
    rows_in: int,
    rows_valid: int,
) -> list[str]:
    """The blocking problems of a batch, a partition or a whole file, each a message that says
    what to do; none means the rows may go on.

    Failed batch-level checks of severity error (row count, null share) block, and so does a
    batch with no valid row or with more quarantined rows than the contract tolerates.
    """
    blocking: list[str] = []
    for o in outcomes:
        if o.row_level or o.success or o.severity != "error":
            continue
        if o.expectation == ROW_COUNT:
            blocking.append(
                f"{source}: the batch has {rows_in:,} rows; the contract needs "
                f"{row_bounds(dataset)} (dataset.min_rows / dataset.max_rows). Check that the "
                "extract for this batch is complete (or was split correctly), or change the "
                "bounds in the config if the volume is expected."
            )
        elif o.expectation == NON_NULL_SHARE and o.column in dataset.columns:
            share = 1.0 - (o.observed_value if o.observed_value is not None else 0.0)
            allowed = dataset.columns[o.column].max_null_fraction
            unparsable = _unparsable(outcomes, o.column)
            if unparsable is not None:  # the values are there: say why they did not parse
                blocking.append(
                    f"{source}: column '{o.column}' is {share:.1%} null because its values do "
                    f"not parse: {unparsable.observed}. The contract allows at most "
                    f"{allowed:.1%} null (dataset.columns.{o.column}.max_null_fraction). Fix "
                    f"how the producer writes '{o.column}' and deliver the file again."
                )
                continue
            blocking.append(
                f"{source}: column '{o.column}' is {share:.1%} null; the contract allows at "
                f"most {allowed:.1%} (dataset.columns.{o.column}.max_null_fraction). Fix the "
                f"upstream step that leaves '{o.column}' empty, or raise max_null_fraction if "
                "that many missing values are expected."
            )
    rows_quarantined = rows_in - rows_valid
    top = _top_reasons(outcomes)
    if rows_in and rows_valid == 0:
        blocking.append(
            f"{source}: none of the {rows_in:,} rows passed the data contract, so there is "
            f"nothing to use. Most common problems: {top}. Read _dq_reasons in the quarantined "
            "rows, fix the producer and re-run."
        )
    elif rows_in and rows_quarantined / rows_in > dataset.max_quarantine_fraction:
        blocking.append(
            f"{source}: {rows_quarantined:,} of {rows_in:,} rows ({rows_quarantined / rows_in:.1%})"
            f" broke the data contract; at most {dataset.max_quarantine_fraction:.1%} may be "
            "quarantined (dataset.max_quarantine_fraction). Most common problems: "
            f"{top}. Read _dq_reasons in the quarantined rows and fix the producer; raise the "
            "limit only if this share of bad rows is expected."
        )
    return blocking


def _unparsable(outcomes: list[ExpectationOutcome], column: str) -> ExpectationOutcome | None:
    for o in outcomes:
        if o.column == column and o.expectation.startswith(_PARSE) and o.unexpected_count:
            return o
    return None


_PARSE = "expect_column_values_to_parse_as_"


KNOWN_IDS = "expect_column_values_to_be_new_across_days"


def flag_known_ids(
    found: Findings,
    typed: pd.DataFrame,
    dataset: DatasetSettings,
    known: pd.Series | None,
) -> None:
    """Quarantine rows whose id was curated on an earlier day (`known`: id -> that day).

    Why: a batch delivered again under another day would otherwise be trained on twice.
    """
    if known is None or dataset.id_column not in typed.columns:
        return
    name = dataset.id_column
    ids = typed[name]
    hit = (ids.isin(known.index) & ids.notna()).to_numpy() if len(known) else None
    positions = np.flatnonzero(hit) if hit is not None else np.empty(0, dtype=np.int64)
    spec = dataset.columns[name]
    count = len(positions)
    if count:
        days = ids.iloc[positions].map(known).astype(str).to_numpy(dtype=object)
        messages = (
            f"{name}: "
            + _show_strings(ids.iloc[positions])
            + " was already curated on "
            + days
            + f" (ids are checked over dataset.id_lookback_days={dataset.id_lookback_days})"
        )
        failures = _RowFailures(positions, np.asarray(messages, dtype=object))
        if spec.severity == "error":
            found.reasons.add(positions, failures.messages)
            found.quarantined[positions] = True
        else:
            found.reasons.add(positions, failures.messages + " (warning)")
        shown = pd.unique(pd.Series(messages[: 50 * _EXAMPLES]))[:_EXAMPLES]
        observed = f"{count:,} ids seen on earlier days; e.g. " + " | ".join(map(str, shown))
    else:
        observed = f"no id seen in the last {dataset.id_lookback_days} days"
    n = len(typed)
    found.outcomes.append(
        ExpectationOutcome(
            expectation=KNOWN_IDS,
            column=name,
            severity=spec.severity,
            row_level=True,
            success=count == 0,
            unexpected_count=count,
            unexpected_percent=100.0 * count / n if n else 0.0,
            observed=observed,
        )
    )


def row_bounds(dataset: DatasetSettings) -> str:
    if dataset.max_rows is None:
        return f"at least {dataset.min_rows:,} rows"
    return f"between {dataset.min_rows:,} and {dataset.max_rows:,} rows"


def _top_reasons(outcomes: list[ExpectationOutcome]) -> str:
    ranked = sorted((o for o in outcomes if _quarantines(o)), key=lambda o: -o.unexpected_count)
    if not ranked:
        return "none recorded"
    return "; ".join(f"[{o.column}: {o.unexpected_count:,} rows, {o.observed}]" for o in ranked[:3])


def _quarantines(o: ExpectationOutcome) -> bool:
    return o.row_level and o.severity == "error" and not o.success and o.unexpected_count > 0


def _quarantine_frame(
    raw: pd.DataFrame, columns: list[str], positions: np.ndarray, reasons: np.ndarray, source: str
) -> pd.DataFrame:
    """The quarantined rows as they arrived, plus why and where from; parquet-writable."""
    where = [raw.columns.get_loc(c) for c in columns]
    quarantine = raw.iloc[positions, where].copy()  # a real copy: we add columns below
    quarantine.index = pd.RangeIndex(len(quarantine))
    for name in columns:
        col = quarantine[name]
        if col.dtype == object and ptypes.infer_dtype(col, skipna=True) not in _PARQUET_SAFE_KINDS:
            text = col.astype(str)
            text[col.isna().to_numpy()] = None
            quarantine[name] = text
    quarantine[ROW_COLUMN] = positions.astype(np.int64)
    quarantine[REASONS_COLUMN] = pd.Series(reasons[positions], dtype=object)
    quarantine[SOURCE_COLUMN] = source
    return quarantine


# --------------------------------------------------------------------------------------
# formatting helpers (vectorised over the failing rows only)


def _show_raw(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _show_numbers(values: pd.Series) -> np.ndarray:
    text = values.astype("float64").astype(str).str.removesuffix(".0")
    return text.to_numpy(dtype=object)


def _show_strings(values: pd.Series) -> np.ndarray:
    text = "'" + values.astype(str).str.slice(0, 60) + "'"
    return text.to_numpy(dtype=object)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _range_text(check: Check) -> str:
    lo, hi = check.kwargs.get("min_value"), check.kwargs.get("max_value")
    if lo is not None and hi is not None:
        return f"not in [{_num(lo)}, {_num(hi)}]"
    if lo is not None:
        return f"below the minimum {_num(lo)}"
    return f"above the maximum {_num(hi)}"


def _bounds_text(kwargs: dict[str, Any], unit: str) -> str:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if hi is None:
        return f"at least {lo:,} {unit}"
    return f"between {lo:,} and {hi:,} {unit}"


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC, like naive timestamps in the data."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _snake(class_name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in class_name).lstrip("_")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------------------
# building blocks for validating one file batch by batch (tasks/adapters/streaming.py)


def coerce_column(col: pd.Series, spec: ColumnSpec, name: str) -> pd.Series:
    """One raw column typed exactly as `validate_frame` types it (unparsable values -> null).

    Why: uniqueness across the batches of a file is judged on the typed values, like GE does.
    """
    typed, _failures = _coerce(col.reset_index(drop=True), spec, name)
    return typed


def quarantine_frame(
    raw: pd.DataFrame, columns: list[str], positions: np.ndarray, reasons: np.ndarray, source: str
) -> pd.DataFrame:
    """Rows of `raw` at `positions` in the quarantine layout (`reasons` indexed like `raw`)."""
    return _quarantine_frame(raw, columns, positions, reasons, source)


# the verdict of a file judged batch by batch (or partition by partition)


def merge_results(
    results: list[ValidationResult], dataset: DatasetSettings, source: str
) -> ValidationResult:
    """One file-level verdict from the verdicts of its batches (or partitions), in order.

    Row-level findings add up; the row count, null shares and the quarantine share are judged
    on the whole file, so a small last batch or one bad batch is judged as the file would be.
    """
    if not results:
        raise ValueError(f"{source}: no batches to judge")
    n = sum(r.rows_in for r in results)
    rows_valid = sum(r.rows_valid for r in results)
    rows_quarantined = sum(r.rows_quarantined for r in results)
    # aligned by (expectation, column): files of a folder may differ in their extra columns
    groups: dict[tuple[str, str | None], list[tuple[ExpectationOutcome, int]]] = {}
    for r in results:
        for o in r.outcomes:
            groups.setdefault((o.expectation, o.column), []).append((o, r.rows_in))
    outcomes = [
        _merge_outcome([o for o, _ in group], [size for _, size in group], dataset, n)
        for group in groups.values()
    ]
    blocking = batch_verdict(outcomes, dataset, source=source, rows_in=n, rows_valid=rows_valid)
    return ValidationResult(
        source=source,
        rows_in=n,
        rows_valid=rows_valid,
        rows_quarantined=rows_quarantined,
        success=not blocking,
        outcomes=outcomes,
        blocking_failures=blocking,
    )


def _merge_outcome(
    group: list[ExpectationOutcome], sizes: list[int], dataset: DatasetSettings, n: int
) -> ExpectationOutcome:
    first = group[0]
    if len(group) == 1 and first.expectation not in (ROW_COUNT, NON_NULL_SHARE):
        return first
    if first.row_level:
        count = sum(o.unexpected_count for o in group)
        failing = [i for i, o in enumerate(group) if not o.success]
        observed = first.observed if not failing else group[failing[0]].observed
        if failing and len(group) > 1:
            # the examples of every failing batch, not only the first: a value first seen in
            # a later batch (an unseen category) must still be named
            head, _, _ = observed.partition("; e.g. ")
            examples: list[str] = []
            for i in failing:
                found = group[i].observed.partition("; e.g. ")[2]
                examples += [e for e in found.split(" | ") if e and e not in examples]
            shown = "; e.g. " + " | ".join(examples[: 2 * _EXAMPLES]) if examples else ""
            observed = (
                f"{count:,} rows in {len(failing)} of {len(group)} batches; "
                f"first batch with failures: {head}{shown}"
            )
        return first.model_copy(
            update={
                "success": not failing and count == 0,
                "unexpected_count": count,
                "unexpected_percent": 100.0 * count / n if n else 0.0,
                "observed": observed,
            }
        )
    if first.expectation == ROW_COUNT:
        low, high = dataset.min_rows, dataset.max_rows
        ok = n >= low and (high is None or n <= high)
        return first.model_copy(
            update={
                "success": ok,
                "observed": f"{n:,} rows ({row_bounds(dataset)})",
                "observed_value": float(n),
            }
        )
    if first.expectation == NON_NULL_SHARE and first.column in dataset.columns:
        shares = [o.observed_value if o.observed_value is not None else 1.0 for o in group]
        non_null = sum(s * size for s, size in zip(shares, sizes, strict=True)) / sum(sizes)
        allowed = dataset.columns[first.column].max_null_fraction
        return first.model_copy(
            update={
                "success": 1.0 - non_null <= allowed + 1e-12,
                "observed": f"{1.0 - non_null:.1%} null (max {allowed:.1%})",
                "observed_value": non_null,
            }
        )
    return first.model_copy(update={"success": all(o.success for o in group)})


# ---------------------------------------------------------------- derived id and event time


def row_ids(digest: str, offset: int, rows: int) -> pa.Array:
    """'<sha256[:16]>-<position>' for rows `offset..offset+rows-1` of the input with `digest`.

    Why the position: identical rows of one file get different ids, and re-ingesting (or
    scoring) the same file gives the same ids, so labels keyed by them join either way.
    Built with arrow kernels: about 10x faster than numpy's string functions at 1M rows.
    """
    positions = pc.cast(pa.array(np.arange(offset, offset + rows, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(f"{digest[:16]}-", positions, "")


def batch_start(dataset: DatasetSettings, day: date) -> datetime:
    """The start of `day` in the dataset's time zone, in UTC: a derived event time."""
    zone = zoneinfo.ZoneInfo(dataset.time_zone)
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def derive_columns(
    raw: pd.DataFrame | pa.Table,
    dataset: DatasetSettings,
    *,
    digest: str,
    day: date | None,
    source: str,
    offset: int = 0,
) -> pd.DataFrame | pa.Table:
    """`raw` with the columns the contract derives (`DatasetSettings.derived_columns`) added:
    a row id from the input's digest and the row's position (`offset`: rows of the input
    before this batch), an event time from the batch's day. A new frame; `raw` is untouched.

    A file that already carries a column of a derived name is refused (naming the role to
    set), never overwritten.
    """
    derived = dataset.derived_columns
    if not derived:
        return raw
    table = isinstance(raw, pa.Table)
    names = raw.column_names if table else [str(c) for c in raw.columns]
    for name, kind in derived.items():
        if name in names:
            role = "id_column" if kind == "row_id" else "timestamp_column"
            raise DataContractError(
                f"{source}: the file has a column {name!r}, but dataset.{role} is not set, so "
                f"driftloop derives {name!r} itself. Set 'dataset.{role}: {name}' (and declare "
                "its dtype) to use the file's column, or rename it in the file; the raw file "
                "was not changed",
                source=source,
            )
    n = raw.num_rows if table else len(raw)
    added: dict[str, Any] = {}
    for name, kind in derived.items():
        if kind == "row_id":
            ids = row_ids(digest, offset, n)
            added[name] = ids if table else ids.to_numpy(zero_copy_only=False)
        else:
            if day is None:
                raise DataContractError(
                    f"{source}: dataset.timestamp_column is not set, so every row's event time "
                    "is its batch's day, but no day was given for this batch: pass the day",
                    source=source,
                )
            start = pd.Timestamp(batch_start(dataset, day)).as_unit("ns")
            added[name] = (
                pa.array(np.full(n, start.value, dtype="int64"), pa.timestamp("ns", tz="UTC"))
                if table
                else pd.Series(
                    pd.to_datetime(np.full(n, start.value, dtype="int64"), unit="ns", utc=True),
                    index=raw.index,
                )
            )
    if table:
        for name, values in added.items():
            raw = raw.append_column(name, values)
        return raw
    return raw.assign(**added)


# ---------------------------------------------------------------- delayed labels


def labels_contract(dataset: DatasetSettings) -> DatasetSettings:
    """The contract a delayed-labels file is checked with: the id and the target columns only,
    as the dataset declares them (a derived id is read from the file, not derived again: it
    is the id the predictions carry). An id may appear once; other columns are dropped."""
    id_spec = dataset.columns[dataset.id_column]
    columns = {
        dataset.id_column: id_spec.model_copy(
            update={"derived": None, "unique": True, "nullable": False}
        ),
        dataset.target: dataset.columns[dataset.target],
    }
    return dataset.model_copy(
        update={
            "columns": columns,
            "rules": [],
            "extra_columns": "drop",
            "min_rows": 1,
            "max_rows": None,
        }
    )


def check_labels_structure(found: list[str], dataset: DatasetSettings, source: str) -> None:
    """A labels file without the id or the target column fails naming both and where the
    ids come from (for a derived id: the predictions' `row_id`)."""
    needed = [dataset.id_column, dataset.target]
    missing = [c for c in needed if c not in found]
    if not missing:
        return
    where = (
        f" ('{dataset.id_column}' is derived: copy it from the day's predictions file)"
        if dataset.columns[dataset.id_column].derived
        else ""
    )
    raise DataContractError(
        f"{source}: a labels file needs the columns {needed} (dataset.id_column and "
        f"dataset.target); {missing} missing (found: {_names(found)}){where}. Fix the file "
        "and run labels again; the file was not changed",
        source=source,
    )
