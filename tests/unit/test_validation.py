"""The data contract: bad inputs end up in quarantine with reasons, or block the batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftloop.configs.settings import DatasetSettings, load_settings
from driftloop.tasks.adapters.validation import validate_frame
from driftloop.tasks.core.contract import (
    REASONS_COLUMN,
    ROW_COLUMN,
    SOURCE_COLUMN,
    DataContractError,
    ValidatedBatch,
    ValidationResult,
    coerce_frame,
    raise_for_result,
    validate_table,
)

NOW = datetime(2024, 6, 1, tzinfo=UTC)
SOURCE = "s3://lake/raw/loans/2024-06-01.parquet"
N = 60


@pytest.fixture(scope="module")
def dataset() -> DatasetSettings:
    return load_settings().dataset


def valid_frame(n: int = N) -> pd.DataFrame:
    """A batch that meets base.yaml's contract, with a few allowed nulls."""
    i = np.arange(n)
    return pd.DataFrame(
        {
            "loan_id": [f"L{k:05d}" for k in i],
            "event_time": pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(i, unit="h"),
            "age": 18 + i % 60,
            "income": np.where(i % 25 == 3, np.nan, 20_000.0 + 1_000 * i),
            "loan_amount": 1_000.0 + 50 * i,
            "term_months": np.array([12, 24, 36, 60])[i % 4],
            "interest_rate": 5 + (i % 10) * 0.5,
            "credit_score": 600.0 + i % 200,
            "debt_to_income": (i % 9) * 0.3,
            "num_open_accounts": i % 12,
            "employment_years": (i % 30).astype(float),
            "home_ownership": np.array(["RENT", "OWN", "MORTGAGE", "OTHER"], dtype=object)[i % 4],
            "purpose": np.array(["car", "medical", "other", "credit_card"], dtype=object)[i % 4],
            "region": np.where(
                i % 20 == 7, None, np.array(["north", "south", "east", "west"], dtype=object)[i % 4]
            ),
            "default": i % 2,
        }
    )


def put(df: pd.DataFrame, column: str, rows: dict[int, object]) -> pd.DataFrame:
    """Set values (any type) in a copy; the column becomes object dtype if it must."""
    out = df.copy()
    values = out[column].astype(object).to_numpy()
    for row, value in rows.items():
        values[row] = value
    out[column] = pd.Series(values, dtype=object).infer_objects()
    return out


def validate(df: pd.DataFrame, dataset: DatasetSettings, **kwargs: object) -> ValidatedBatch:
    """validate_frame plus the checks every call must pass: input untouched, rows add up."""
    before = df.copy(deep=True)
    batch = validate_frame(df, dataset, source=SOURCE, now=NOW, **kwargs)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(df, before)
    r = batch.result
    assert r.rows_in == len(df) == r.rows_valid + r.rows_quarantined
    assert len(batch.valid) == r.rows_valid and len(batch.quarantine) == r.rows_quarantined
    assert (batch.quarantine[REASONS_COLUMN].str.len() > 0).all()
    assert (batch.quarantine[SOURCE_COLUMN] == SOURCE).all()
    return batch


@dataclass(frozen=True)
class Case:
    name: str
    mutate: Callable[[pd.DataFrame], pd.DataFrame]
    bad_rows: set[int] = field(default_factory=set)
    says: tuple[str, ...] = ()  # fragments of the reasons (or of the blocking messages)
    blocking: bool = False


CASES = [
    Case("clean", lambda df: df),
    Case(
        "numbers_as_text_some_unparsable",
        lambda df: put(df.assign(age=df["age"].astype(str)), "age", {3: "abc", 7: "12,5"}),
        {3, 7},
        ("age: 'abc' is not a number", "age: '12,5' is not a number"),
    ),
    Case(
        "mixed_types_in_one_column",
        lambda df: put(df, "age", {3: "abc", 4: 42.5}),
        {3, 4},
        ("age: 'abc' is not a number", "age: 42.5 is not a whole number"),
    ),
    Case(
        "nan_and_inf",
        lambda df: put(
            put(df, "income", {2: np.nan, 4: np.inf}), "loan_amount", {5: -np.inf, 6: np.nan}
        ),
        {4, 5, 6},
        (
            "income: inf is not a finite number",
            "loan_amount: -inf is not a finite number",
            "loan_amount: missing (column is not nullable)",
        ),
    ),
    Case(
        "out_of_range",
        lambda df: put(put(df, "age", {4: 250}), "interest_rate", {8: -1.5}),
        {4, 8},
        ("age: 250 not in [18, 100]", "interest_rate: -1.5 not in [0, 40]"),
    ),
    Case(
        "unknown_category",
        lambda df: put(df, "purpose", {5: "SPACESHIP"}),
        {5},
        ("purpose: 'SPACESHIP' not in allowed set",),
    ),
    Case(
        "null_in_required_category",
        lambda df: put(df, "home_ownership", {11: None}),
        {11},
        ("home_ownership: missing (column is not nullable)",),
    ),
    Case(
        "duplicate_ids_keep_first",
        lambda df: put(df, "loan_id", {10: "L00001", 20: "L00001"}),
        {10, 20},
        ("loan_id: 'L00001' repeats an earlier row",),
    ),
    Case(
        "future_timestamps",
        lambda df: put(
            df,
            "event_time",
            {
                3: pd.Timestamp(NOW + timedelta(days=2)),
                4: pd.Timestamp(NOW + timedelta(minutes=30)),
            },
        ),
        {3},
        ("event_time: 2024-06-03T00:00:00Z is later than 2024-06-01T01:00:00Z (now + 60 min)",),
    ),
    Case(
        "unparsable_and_mixed_format_timestamps",
        lambda df: put(
            df.assign(event_time=df["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")),
            "event_time",
            {9: "not a date", 10: "2024-03-05 10:00"},
        ),
        {9},
        ("event_time: 'not a date' is not a timestamp",),
    ),
    Case(
        "nullable_column_too_empty",
        lambda df: df.assign(credit_score=np.nan),
        set(),
        ("'credit_score' is 100.0% null", "at most 15.0%", "max_null_fraction", SOURCE),
        blocking=True,
    ),
    Case(
        "mostly_bad_batch",
        lambda df: put(df, "age", dict.fromkeys(range(30), 250)),
        set(range(30)),
        ("30 of 60 rows (50.0%)", "max_quarantine_fraction", "age", "not in [18, 100]", SOURCE),
        blocking=True,
    ),
    Case(
        "every_row_bad",
        lambda df: df.assign(purpose="SPACESHIP"),
        set(range(N)),
        ("none of the 60 rows passed", "purpose", "SPACESHIP", SOURCE),
        blocking=True,
    ),
    Case(
        "too_few_rows",
        lambda df: df.head(10),
        set(),
        ("has 10 rows", "at least 50 rows", "dataset.min_rows", SOURCE),
        blocking=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_inputs_are_quarantined_or_block(
    case: Case, dataset: DatasetSettings, tmp_path: Path
) -> None:
    batch = validate(case.mutate(valid_frame()), dataset)

    assert set(batch.quarantine[ROW_COLUMN]) == case.bad_rows
    assert batch.result.success is not case.blocking
    said = " ".join(batch.quarantine[REASONS_COLUMN]) + " ".join(batch.result.blocking_failures)
    for fragment in case.says:
        assert fragment in said
    for message in batch.result.blocking_failures:
        assert SOURCE in message
    # valid rows: typed, contract columns in contract order, fresh index
    assert list(batch.valid.columns) == list(dataset.columns)
    assert batch.valid.index.equals(pd.RangeIndex(len(batch.valid)))
    if len(batch.valid):
        assert str(batch.valid["event_time"].dtype) == "datetime64[ns, UTC]"
        assert batch.valid["age"].dtype == np.int64
        assert batch.valid["income"].dtype == np.float64
    # quarantine keeps what arrived and can be written as parquet
    batch.quarantine.to_parquet(tmp_path / "quarantine.parquet")


def test_quarantine_keeps_raw_values_and_every_reason(dataset: DatasetSettings) -> None:
    raw = put(put(valid_frame(), "age", {3: "abc", 4: " 250 "}), "purpose", {4: "SPACESHIP"})
    batch = validate(raw, dataset)
    quarantined = batch.quarantine.set_index(ROW_COLUMN)
    assert quarantined.loc[3, "age"] == "abc"
    assert quarantined.loc[4, "age"] == " 250 "  # what arrived, not the coerced 250
    assert quarantined[REASONS_COLUMN].to_dict() == {
        3: "age: 'abc' is not a number",
        4: "age: 250 not in [18, 100]; purpose: 'SPACESHIP' not in allowed set",
    }


def test_warning_severity_reports_but_does_not_block(dataset: DatasetSettings) -> None:
    lenient_age = dataset.columns["age"].model_copy(update={"severity": "warning"})
    lenient = dataset.model_copy(update={"columns": {**dataset.columns, "age": lenient_age}})
    raw = put(valid_frame(), "age", dict.fromkeys(range(30), 250))
    batch = validate(raw, lenient)

    assert batch.result.success
    assert batch.result.rows_quarantined == 0
    failed = [o for o in batch.result.outcomes if not o.success]
    assert [(o.column, o.severity, o.unexpected_count) for o in failed] == [("age", "warning", 30)]
    raise_for_result(batch.result)  # no-op


@dataclass(frozen=True)
class RuleCase:
    name: str
    rule: dict[str, object]
    rows: dict[str, dict[int, object]]  # column -> {row: value}
    flagged: set[int]  # rows the rule reports
    says: tuple[str, ...] = ()


RULE_CASES = [
    RuleCase(
        "error_quarantines_with_both_values",
        {"op": "<=", "factor": 10},
        {"loan_amount": {4: 900_000.0}, "income": {4: 20_000.0}},
        {4},
        ("loan_within_income: loan_amount 900000 > 10 x income 20000",),
    ),
    RuleCase(
        "warning_reports_only",
        {"op": "<=", "factor": 10, "severity": "warning"},
        {"loan_amount": {4: 900_000.0}, "income": {4: 20_000.0}},
        {4},
    ),
    RuleCase(
        "null_in_one_column_is_not_judged",
        {"op": "<=", "factor": 10},
        {"loan_amount": {4: 900_000.0, 3: 900_000.0}, "income": {4: np.nan}},  # income[3] is NaN
        set(),
    ),
    RuleCase(
        "equal_to_the_bound_passes_or_equal_only",
        {"op": "<", "factor": 10},
        {"loan_amount": {4: 50_000.0, 6: 49_999.0}, "income": {4: 5_000.0, 6: 5_000.0}},
        {4},
        ("loan_within_income: loan_amount 50000 >= 10 x income 5000",),
    ),
    RuleCase(
        "greater_than_without_factor",
        {"op": ">", "column_a": "income", "column_b": "loan_amount", "factor": 1},
        {"loan_amount": {4: 30_000.0}, "income": {4: 30_000.0}},
        # valid_frame's loans are far below incomes except where we set them
        {4},
        ("loan_within_income: income 30000 <= loan_amount 30000",),
    ),
    RuleCase(
        "equality",
        {"op": "==", "column_a": "age", "column_b": "age_copy"},
        {"age_copy": {7: 99}},
        {7},
        ("loan_within_income: age 25 != age_copy 99",),
    ),
]


@pytest.mark.parametrize("case", RULE_CASES, ids=lambda c: c.name)
def test_cross_column_rules(case: RuleCase, dataset: DatasetSettings) -> None:
    rule = {
        "name": "loan_within_income",
        "column_a": "loan_amount",
        "column_b": "income",
        **case.rule,
    }
    raw = valid_frame()
    columns = dict(dataset.columns)
    if "age_copy" in case.rows:
        raw = raw.assign(age_copy=raw["age"])
        columns["age_copy"] = dataset.columns["age"]
    for column, rows in case.rows.items():
        raw = put(raw, column, rows)
    contract = DatasetSettings.model_validate(
        {**dataset.model_dump(), "columns": columns, "rules": [rule]}
    )
    batch = validate(raw, contract)

    [outcome] = [o for o in batch.result.outcomes if o.rule == "loan_within_income"]
    assert outcome.row_level and outcome.unexpected_count == len(case.flagged)
    assert outcome.success is not case.flagged
    error = rule.get("severity", "error") == "error"
    assert set(batch.quarantine[ROW_COLUMN]) == (case.flagged if error else set())
    assert batch.result.success
    said = " ".join(batch.quarantine[REASONS_COLUMN]) + outcome.observed
    for fragment in case.says:
        assert fragment in said
    if case.flagged and not error:
        assert outcome.severity == "warning" and "loan_within_income" in outcome.observed
        assert batch.result.rows_valid == N


def test_datetime_rule_compares_timestamps(dataset: DatasetSettings) -> None:
    columns = {**dataset.columns, "decided_at": dataset.columns["event_time"]}
    rule = {"name": "decided_after_event", "column_a": "decided_at", "op": ">=",
            "column_b": "event_time"}  # fmt: skip
    contract = DatasetSettings.model_validate(
        {**dataset.model_dump(), "columns": columns, "rules": [rule]}
    )
    raw = valid_frame()
    raw["decided_at"] = raw["event_time"] + pd.Timedelta("1h")
    raw.loc[2, "decided_at"] = raw.loc[2, "event_time"] - pd.Timedelta("1D")
    batch = validate(raw, contract)
    assert batch.quarantine[REASONS_COLUMN].tolist() == [
        "decided_after_event: decided_at 2024-02-29T02:00:00Z < event_time 2024-03-01T02:00:00Z"
    ]


def test_contract_rejects_bad_rules(dataset: DatasetSettings) -> None:
    base = dataset.model_dump()
    rule = {"name": "r", "column_a": "loan_amount", "op": "<=", "column_b": "income"}
    for bad, fragment in (
        ({"column_b": "salary"}, "column_b 'salary' is not one of the declared columns"),
        ({"column_b": "purpose"}, "both columns must be numeric"),
        ({"column_b": "event_time"}, "both columns must be numeric"),
        ({"op": "!="}, "op"),
        ({"colour": "red"}, "colour"),
    ):
        with pytest.raises(ValueError, match=fragment):
            DatasetSettings.model_validate({**base, "rules": [{**rule, **bad}]})
    with pytest.raises(ValueError, match="rule names must be unique"):
        DatasetSettings.model_validate({**base, "rules": [rule, rule]})


def test_extra_columns_are_dropped_with_a_warning(dataset: DatasetSettings) -> None:
    batch = validate(valid_frame().assign(notes="call back", score=1.0), dataset)
    assert batch.result.success
    assert "notes" not in batch.valid.columns
    warning = batch.result.outcomes[0]
    assert (warning.severity, warning.success) == ("warning", False)
    assert "notes" in warning.observed and "score" in warning.observed


@pytest.mark.parametrize(
    ("mutate", "fragments", "strict"),
    [
        (lambda df: df.drop(columns=["age", "purpose"]), ["'age'", "'purpose'", "found"], False),
        (lambda df: df.assign(notes="x"), ["'notes'", "extra_columns"], True),
        (lambda df: df.head(0), ["0 rows"], False),
        (lambda df: pd.concat([df, df[["age"]]], axis=1), ["'age'", "more than once"], False),
    ],
    ids=["missing_columns", "extra_column_error", "empty", "duplicated_column"],
)
def test_structural_problems_raise_at_once(
    dataset: DatasetSettings,
    mutate: Callable[[pd.DataFrame], pd.DataFrame],
    fragments: list[str],
    strict: bool,
) -> None:
    contract = dataset.model_copy(update={"extra_columns": "error"}) if strict else dataset
    raw = mutate(valid_frame())
    before = raw.copy(deep=True)
    with pytest.raises(DataContractError) as err:
        validate_frame(raw, contract, source=SOURCE, now=NOW)
    message = str(err.value)
    assert SOURCE in message and err.value.source == SOURCE
    for fragment in fragments:
        assert fragment in message
    pd.testing.assert_frame_equal(raw, before)


def test_scoring_inputs_drop_the_target_silently(dataset: DatasetSettings) -> None:
    strict = dataset.model_copy(update={"extra_columns": "error"})
    with_label = validate(valid_frame(), strict, with_target=False)
    without_label = validate(
        valid_frame().drop(columns=[dataset.target]), strict, with_target=False
    )
    for batch in (with_label, without_label):
        assert batch.result.success
        assert list(batch.valid.columns) == list(dataset.contract_columns(with_target=False))
        assert all(o.column != dataset.target for o in batch.result.outcomes)


def test_valid_frame_does_not_share_memory_with_the_input(dataset: DatasetSettings) -> None:
    raw = valid_frame()
    before = raw.copy(deep=True)
    batch = validate(raw, dataset)
    batch.valid.loc[0, "loan_id"] = "changed"
    batch.valid.loc[0, "income"] = -1.0
    batch.valid.loc[0, "event_time"] = pd.Timestamp("2000-01-01", tz="UTC")
    pd.testing.assert_frame_equal(raw, before)


def test_raise_for_result_names_source_fault_and_fix(dataset: DatasetSettings) -> None:
    blocked = validate(valid_frame().assign(credit_score=np.nan, purpose="SPACESHIP"), dataset)
    with pytest.raises(DataContractError) as err:
        raise_for_result(blocked.result)
    message = str(err.value)
    assert SOURCE in message
    assert "credit_score" in message and "purpose" in message
    assert "max_null_fraction" in message and "fix the producer" in message
    assert err.value.problems == blocked.result.blocking_failures
    assert "\n" not in message  # one paragraph


def test_summary_markdown_has_counts_table_and_top_reasons(dataset: DatasetSettings) -> None:
    raw = put(put(valid_frame(), "age", {1: 250, 2: 300}), "purpose", {3: "SPACESHIP"})
    result = validate(raw, dataset).result
    text = result.summary_markdown()
    assert f"`{SOURCE}` passed" in text
    assert "| 60 | 57 | 3 |" in text
    assert "| FAIL | expect_column_values_to_be_between | age | error | 2 |" in text
    assert "### Top quarantine reasons" in text
    assert text.index("`age` (2 rows)") < text.index("`purpose` (1 rows)")
    assert ValidationResult.model_validate_json(result.model_dump_json()) == result


def test_coerce_frame_types_values_and_reports_unparsable(dataset: DatasetSettings) -> None:
    raw = put(put(valid_frame(), "age", {2: "x"}), "loan_amount", {5: "1500.5"})
    raw = put(raw, "income", {6: "NaN", 7: " ", 8: "null"})  # null spellings, as read_csv
    raw = raw.assign(event_time=raw["event_time"].astype(str))
    typed, reasons = coerce_frame(raw, dataset, with_target=True, source=SOURCE)
    assert len(typed) == len(raw) == len(reasons)
    assert str(typed["age"].dtype) == "Int64" and pd.isna(typed.loc[2, "age"])
    assert typed.loc[5, "loan_amount"] == 1500.5
    assert typed.loc[6:8, "income"].isna().all()
    assert str(typed["event_time"].dtype) == "datetime64[ns, UTC]"
    assert typed["purpose"].map(type).eq(str).all()
    assert reasons[reasons != ""].to_dict() == {2: "age: 'x' is not a number"}


VIOLATIONS: dict[str, tuple[str, object]] = {  # name -> (column, value that breaks it)
    "age_out_of_range": ("age", 250),
    "age_as_text": ("age", "forty"),
    "unknown_purpose": ("purpose", "moon"),
    "missing_amount": ("loan_amount", None),
    "infinite_income": ("income", np.inf),
    "future_time": ("event_time", pd.Timestamp(NOW + timedelta(days=1))),
    "garbled_time": ("event_time", "31/02/yesterday"),
    "repeated_id": ("loan_id", "L00000"),  # the id of row 0, which is never injected
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    injected=st.dictionaries(
        keys=st.integers(min_value=1, max_value=N - 1),  # row 0 stays clean: ids repeat it
        values=st.sampled_from(sorted(VIOLATIONS)),
        max_size=15,
    )
)
def test_exactly_the_injected_rows_are_quarantined(injected: dict[int, str]) -> None:
    dataset = load_settings().dataset
    raw = valid_frame()
    for row, violation in injected.items():
        column, value = VIOLATIONS[violation]
        raw = put(raw, column, {row: value})
    batch = validate(raw, dataset)  # also checks rows add up and every reason is non-empty
    assert set(batch.quarantine[ROW_COLUMN]) == set(injected)
    quarantined = batch.quarantine.set_index(ROW_COLUMN)[REASONS_COLUMN]
    for row, reason in quarantined.items():
        column = VIOLATIONS[injected[row]][0]
        assert reason.startswith(f"{column}: "), (row, reason)  # the reason names the fault
    share = len(injected) / N
    assert batch.result.success is (share <= dataset.max_quarantine_fraction)


def test_screening_pass_finds_what_one_complete_pass_finds(
    dataset: DatasetSettings, tmp_path: Path
) -> None:
    """The fast path (the screen, then GE's details for what failed) loses no failing row;
    nor does the one that also builds Data Docs (GE's BASIC counts, then details)."""
    from driftloop.tasks.adapters.validation import run_gx
    from driftloop.tasks.core.contract import build_checks, coerce_batch

    raw = put(put(valid_frame(), "age", {4: 250, 9: 17}), "purpose", {5: "SPACESHIP"})
    raw = put(put(raw, "loan_id", {10: "L00001"}), "home_ownership", {11: None})
    raw = raw.assign(credit_score=np.where(np.arange(N) % 3 == 0, np.nan, 700.0))  # too empty
    coerced = coerce_batch(raw, dataset, with_target=True, source=SOURCE)
    checks = build_checks(coerced.contract, dataset, NOW)
    categorical = [c for c, spec in coerced.contract.items() if spec.dtype == "category"]

    def run(screen: bool, docs_dir: str | None = None) -> list[tuple[object, ...]]:
        outcomes = run_gx(
            coerced.frame, checks, categorical=categorical, screen=screen, docs_dir=docs_dir
        )
        return [
            (o.index, o.success, o.unexpected_count, sorted(o.positions), o.observed_value)
            for o in outcomes
        ]

    complete = run(False)
    assert run(True) == complete
    assert run(True, str(tmp_path)) == complete
    pages = list(tmp_path.glob("validations/*/*/*/*.html"))
    assert [p.parent.parent.parent.name for p in pages] == ["batch_contract"]  # the first pass
    failed = {checks[i].kind for i, ok, *_ in complete if not ok}
    assert failed == {"range", "in_set", "unique", "not_null", "null_fraction"}


EDGES: dict[str, tuple[str, object]] = {  # values at and just past each bound, and nulls
    "age_at_min": ("age", 18),
    "age_at_max": ("age", 100),
    "age_below": ("age", 17),
    "age_above": ("age", 101),
    "age_null": ("age", None),
    "income_zero": ("income", 0.0),
    "income_negative": ("income", -0.01),
    "amount_at_min": ("loan_amount", 500.0),
    "amount_below": ("loan_amount", 499.99),
    "amount_at_max": ("loan_amount", 1_000_000.0),
    "rate_at_max": ("interest_rate", 40.0),
    "rate_above": ("interest_rate", 40.000001),
    "time_at_limit": ("event_time", pd.Timestamp(NOW + timedelta(minutes=60))),
    "time_past_limit": ("event_time", pd.Timestamp(NOW + timedelta(minutes=60, seconds=1))),
    "id_repeat": ("loan_id", "L00000"),
    "id_null": ("loan_id", None),
    "purpose_unknown": ("purpose", "moon"),
    "purpose_null": ("purpose", None),
    "region_case": ("region", "North"),
    "home_null": ("home_ownership", None),
}


def edge_case(
    injected: dict[int, str],
    null_scores: int,
    null_regions: int,
    op: str,
    factor: float,
    loan_to_income: float | None,
) -> tuple[DatasetSettings, pd.DataFrame]:
    """A batch with EDGES values injected, null shares around their limits and a rule
    variant (the contract it is judged by is returned with it)."""
    base = load_settings().dataset
    rule = base.rules[0].model_copy(update={"op": op, "factor": factor})
    dataset = base.model_copy(update={"rules": [rule]})
    raw = valid_frame()
    for row, edge in injected.items():
        column, value = EDGES[edge]
        raw = put(raw, column, {row: value})
    raw.loc[raw.index[-null_scores:] if null_scores else [], "credit_score"] = np.nan
    raw = put(raw, "region", dict.fromkeys(range(40, 40 + null_regions)))
    if loan_to_income is not None:
        raw = put(raw, "loan_amount", {2: loan_to_income * float(raw.loc[2, "income"])})
    return dataset, raw


EDGE_CASES = st.builds(
    edge_case,
    injected=st.dictionaries(
        keys=st.integers(min_value=1, max_value=N - 1),
        values=st.sampled_from(sorted(EDGES)),
        max_size=6,
    ),
    null_scores=st.integers(min_value=0, max_value=12),  # the 15% limit is 9 of 60 rows
    null_regions=st.integers(min_value=0, max_value=9),  # already 3 nulls; the limit is 6
    op=st.sampled_from(["<", "<=", ">", ">=", "=="]),
    factor=st.sampled_from([1.0, 10.0]),
    loan_to_income=st.sampled_from([None, 1.0, 10.0]),  # row 2's loan = this x its income
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=EDGE_CASES)
def test_screen_agrees_with_great_expectations_on_every_check(
    case: tuple[DatasetSettings, pd.DataFrame],
) -> None:
    """The screen that spares GE on clean batches passes exactly the checks GE passes."""
    from driftloop.tasks.adapters.validation import run_gx
    from driftloop.tasks.core.contract import build_checks, coerce_batch, screen_checks

    dataset, raw = case
    coerced = coerce_batch(raw, dataset, with_target=True, source=SOURCE)
    checks = build_checks(coerced.contract, dataset, NOW)
    categorical = [c for c, spec in coerced.contract.items() if spec.dtype == "category"]
    ge = [o.success for o in run_gx(coerced.frame, checks, categorical=categorical, screen=False)]
    screened = screen_checks(coerced.frame, checks)
    disagree = [
        (c.kind, c.column, ge_ok)
        for c, ge_ok, ok in zip(checks, ge, screened, strict=True)
        if ge_ok != ok
    ]
    assert not disagree


def test_valid_rows_share_no_memory_with_the_raw_input(dataset: DatasetSettings) -> None:
    """Columns already in the contract's dtypes pass through coercion; a write to the valid
    frame (or to anything a caller builds on it) must still never reach the raw input."""
    raw = valid_frame().assign(event_time=lambda f: f["event_time"].dt.tz_convert("UTC"))
    batch = validate(raw, dataset)
    assert batch.result.rows_quarantined == 0  # the valid frame is the whole typed frame
    for name in batch.valid.columns:
        assert not np.shares_memory(batch.valid[name].values, raw[name].values), name


def test_screen_agrees_with_great_expectations_on_all_null_columns() -> None:
    """A column with no values at all: nothing to judge, for GE and the screen alike."""
    from driftloop.tasks.adapters.validation import run_gx
    from driftloop.tasks.core.contract import build_checks, coerce_batch, screen_checks

    base = load_settings().dataset
    relaxed = {"max_null_fraction": 1.0}
    columns = {
        name: spec.model_copy(update=relaxed) if name in ("income", "region") else spec
        for name, spec in base.columns.items()
    }
    dataset = base.model_copy(update={"columns": columns})
    raw = valid_frame().assign(income=np.nan, region=None)  # income is also in the rule
    coerced = coerce_batch(raw, dataset, with_target=True, source=SOURCE)
    checks = build_checks(coerced.contract, dataset, NOW)
    ge = [o.success for o in run_gx(coerced.frame, checks, screen=False)]
    assert screen_checks(coerced.frame, checks) == ge
    assert all(ge)


def assert_same_verdict(table: pa.Table, dataset: DatasetSettings, with_target: bool) -> bool:
    """validate_table either declines or says what validate_frame says of the same rows (as
    pandas reads them), down to the table written and the hashes; True if it judged."""
    clean = validate_table(table, dataset, with_target=with_target, source=SOURCE, now=NOW)
    batch = validate_frame(
        table.to_pandas(), dataset, with_target=with_target, source=SOURCE, now=NOW
    )
    passed_all = all(o.success or o.severity == "warning" for o in batch.result.outcomes)
    if clean is None:
        return False
    assert passed_all and batch.result.rows_quarantined == 0
    assert clean.result == batch.result
    written = pa.Table.from_pandas(batch.valid, preserve_index=False)
    assert clean.table.equals(written)
    assert clean.table.schema.equals(written.schema, check_metadata=True)
    for column, (mask, hashes) in batch.unique_hashes.items():
        assert np.array_equal(clean.unique_hashes[column][0], mask)
        assert np.array_equal(clean.unique_hashes[column][1], hashes)
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=EDGE_CASES)
def test_arrow_path_judges_exactly_the_clean_batches(
    case: tuple[DatasetSettings, pd.DataFrame],
) -> None:
    """A batch read from parquet is judged in arrow when (and only when) every check passes;
    then its verdict, valid table and id hashes are validate_frame's."""
    assert_judged_if_and_only_if_clean(*case)


def assert_judged_if_and_only_if_clean(dataset: DatasetSettings, raw: pd.DataFrame) -> None:
    batch = validate_frame(raw, dataset, source=SOURCE, now=NOW)
    clean = all(o.success for o in batch.result.outcomes)
    table = pa.Table.from_pandas(raw, preserve_index=False)
    assert assert_same_verdict(table, dataset, with_target=True) == clean


@pytest.mark.parametrize(
    "case",
    [{"injected": {3: edge}} for edge in sorted(EDGES)]
    + [{"null_scores": k} for k in (9, 10)]  # at and past the 15% limit
    + [{"null_regions": k} for k in (3, 4)]  # 3 + 3 nulls are 10%, the limit
    + [{"op": op, "loan_to_income": x} for op in ("<", "<=", "==") for x in (1.0, 10.0)],
    ids=str,
)
def test_arrow_path_on_each_edge(case: dict[str, Any]) -> None:
    """Every bound at and just past its limit, one at a time (the property test above mixes
    them at random, so it may miss one on a given run)."""
    args = {"injected": {}, "null_scores": 0, "null_regions": 0, "op": "<=", "factor": 10.0}
    assert_judged_if_and_only_if_clean(*edge_case(**{**args, "loan_to_income": None, **case}))


def _retyped(table: pa.Table, column: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(column), column, values)


def _as(column: str, kind: pa.DataType) -> Callable[[pa.Table], pa.Table]:
    return lambda t: _retyped(t, column, t.column(column).cast(kind))


def _float_with(value: float) -> Callable[[pa.Table], pa.Table]:
    def change(t: pa.Table) -> pa.Table:
        values = t.column("income").to_numpy().copy()
        values[5] = value
        return _retyped(t, "income", pa.array(values, from_pandas=False))  # NaN stays NaN

    return change


@pytest.mark.parametrize(
    ("change", "judged"),
    [
        pytest.param(lambda t: t, True, id="as written by pandas"),
        pytest.param(_as("age", pa.int32()), True, id="int32"),
        pytest.param(_as("credit_score", pa.float32()), True, id="float32"),
        pytest.param(_as("loan_amount", pa.int64()), True, id="whole floats stored as ints"),
        pytest.param(_as("loan_id", pa.large_string()), True, id="large strings"),
        pytest.param(_as("event_time", pa.timestamp("us")), True, id="naive timestamps"),
        pytest.param(
            _as("event_time", pa.timestamp("ms", tz="Europe/Berlin")), True, id="other zone"
        ),
        pytest.param(_float_with(float("nan")), False, id="NaN, not null"),
        pytest.param(_float_with(float("inf")), False, id="infinity"),
        pytest.param(_as("age", pa.string()), False, id="numbers as text"),
        pytest.param(_as("event_time", pa.string()), False, id="timestamps as text"),
        pytest.param(_as("age", pa.float64()), False, id="int column stored as float"),
        pytest.param(_as("purpose", pa.dictionary(pa.int32(), pa.string())), False, id="dict"),
    ],
)
def test_arrow_path_declines_what_needs_parsing(
    dataset: DatasetSettings, change: Callable[[pa.Table], pa.Table], judged: bool
) -> None:
    """Types that cast losslessly are judged in arrow; values that need parsing (or a type
    it does not know) go to validate_frame, which may still pass them."""
    table = change(pa.Table.from_pandas(valid_frame(), preserve_index=False))
    assert assert_same_verdict(table, dataset, with_target=True) == judged


def test_arrow_path_raises_structural_problems_like_validate_frame(
    dataset: DatasetSettings,
) -> None:
    table = pa.Table.from_pandas(valid_frame().drop(columns=["age"]), preserve_index=False)
    with pytest.raises(DataContractError, match=r"required columns \['age'\] are missing"):
        validate_table(table, dataset, source=SOURCE, now=NOW)
    extra = pa.Table.from_pandas(valid_frame().assign(note="x"), preserve_index=False)
    assert assert_same_verdict(extra, dataset, with_target=True)  # dropped, with a warning
    assert assert_same_verdict(extra, dataset, with_target=False)  # the target is ignored


@pytest.mark.parametrize("first_row_null", [True, False])
def test_arrow_path_judges_nulls_in_int_columns_like_validate_frame(
    dataset: DatasetSettings, first_row_null: bool
) -> None:
    """A nullable int column with nulls is Int64 in validate_frame's typed frame: the table
    written must say so in its pandas metadata, whichever row holds the null, and a unique
    one must hash its values as ints (the stream compares hashes across batches)."""
    spec = dataset.columns["num_open_accounts"].model_copy(
        update={"nullable": True, "max_null_fraction": 0.5, "unique": True}
    )
    relaxed = dataset.model_copy(update={"columns": {**dataset.columns, "num_open_accounts": spec}})
    table = pa.Table.from_pandas(valid_frame(), preserve_index=False)
    counts: list[int | None] = list(range(N))
    counts[0 if first_row_null else 7] = None
    table = _retyped(table, "num_open_accounts", pa.array(counts, pa.int64()))
    assert assert_same_verdict(table, relaxed, with_target=True)
    clean = validate_table(table, relaxed, source=SOURCE, now=NOW)
    assert clean is not None and set(clean.unique_hashes) == {"loan_id", "num_open_accounts"}
