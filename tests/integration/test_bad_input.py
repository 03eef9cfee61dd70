"""Every kind of bad input the issue lists, through the real `ingest` flow.

For each case the user-visible outcome is asserted: a failed run's message (what Prefect
records and the UI shows) names the file and the fault; a run that goes on accounts for every
row (rows_in == rows_valid + rows_quarantined) and gives each quarantined row its reasons; and
the raw file's bytes are never changed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)

from driftloop.data.generate import generate_day
from driftloop.flows.ingest import ingest
from driftloop.tasks.adapters import storage

pytestmark = pytest.mark.usefixtures("prefect_backend")

DAY = date(2026, 11, 1)
ROWS = 200
N_BAD = 5  # rows broken in the row-level cases: under the 20% quarantine limit


def clean() -> pd.DataFrame:
    return generate_day(DAY, ROWS, seed=4)


def csv_bytes(frame: pd.DataFrame, **kwargs: Any) -> bytes:
    return frame.to_csv(index=False, **kwargs).encode(kwargs.get("encoding", "utf-8"))


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def with_values(column: str, values: list[Any], *, as_object: bool = True) -> pd.DataFrame:
    """The clean frame with the first len(values) rows of `column` replaced."""
    frame = clean()
    col = frame[column].astype(object) if as_object else frame[column].copy()
    col.iloc[: len(values)] = values
    frame[column] = col
    return frame


def latin1_csv() -> bytes:
    frame = clean()
    frame.loc[0, "loan_id"] = "L-Zoë-1"
    return csv_bytes(frame, encoding="latin-1")


def truncated_parquet() -> bytes:
    data = parquet_bytes(clean())
    return data[: len(data) // 2]


def dup_header_csv() -> bytes:
    """pandas would rename the second 'age' to 'age.1' and drop it as an extra column."""
    return csv_bytes(clean()).replace(b",income,", b",age,", 1)


def late_nul_csv() -> bytes:
    """A NUL byte in credit_score of data row 150, far past the first KB."""
    lines = csv_bytes(clean()).split(b"\n")
    cells = lines[150].split(b",")
    cells[7] = cells[7][:1] + b"\x00" + cells[7][1:]
    lines[150] = b",".join(cells)
    return b"\n".join(lines)


def cut_csv() -> bytes:
    data = csv_bytes(clean())
    return data[: len(data) * 2 // 3]


def thousands_csv() -> bytes:
    frame = clean()
    frame["income"] = [f"{v:,.1f}" if v == v else "" for v in frame["income"]]
    return csv_bytes(frame)


def day_first_csv() -> bytes:
    frame = clean()
    frame["event_time"] = frame["event_time"].dt.strftime("%d/%m/%Y %H:%M:%S")
    return csv_bytes(frame)


OFF_DAY = pd.Timestamp("2026-01-11 11:44", tz="UTC")  # 01/11/2026 read month-first


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


@dataclass(frozen=True)
class Case:
    name: str
    suffix: str
    content: Callable[[], bytes]
    says: tuple[str, ...]  # fragments of the failure message, or of the quarantine reasons
    fails: bool = True
    quarantined: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("empty_csv", ".csv", lambda: b"", ("is empty",)),
    Case("empty_parquet", ".parquet", lambda: b"", ("is empty (0 bytes)",)),
    Case("header_only", ".csv", lambda: csv_bytes(clean().head(0)), ("0 rows",)),
    Case(
        "wrong_delimiter",
        ".csv",
        lambda: csv_bytes(clean(), sep=";"),
        ("semicolon-separated", "comma-separated"),
    ),
    Case("tab_delimiter", ".csv", lambda: csv_bytes(clean(), sep="\t"), ("tab-separated",)),
    Case("wrong_encoding", ".csv", latin1_csv, ("is not UTF-8 text", "offset")),
    Case("truncated_parquet", ".parquet", truncated_parquet, ("not a readable parquet file",)),
    Case(
        "missing_required_column",
        ".parquet",
        lambda: parquet_bytes(clean().drop(columns=["credit_score"])),
        ("required columns ['credit_score'] are missing",),
    ),
    Case(
        "extra_columns_error",
        ".parquet",
        lambda: parquet_bytes(clean().assign(notes="call back")),
        ("unexpected columns ['notes']", "dataset.extra_columns"),
        overrides={"dataset.extra_columns": "error"},
    ),
    Case(
        "extra_columns_drop",
        ".parquet",
        lambda: parquet_bytes(clean().assign(notes="call back")),
        (),
        fails=False,
    ),
    Case(
        "numbers_as_text",
        ".csv",
        lambda: csv_bytes(with_values("age", ["forty", "4O", "n/a?", "12,5", "x"])),
        ("age: 'forty' is not a number", "age: '12,5' is not a number"),
        fails=False,
        quarantined=N_BAD,
    ),
    Case(
        "all_null_column",
        ".parquet",
        lambda: parquet_bytes(clean().assign(credit_score=np.nan)),
        ("'credit_score' is 100.0% null", "max_null_fraction"),
    ),
    Case(
        "all_null_required_column",
        ".csv",
        lambda: csv_bytes(clean().assign(age=None)),
        ("none of the 200 rows passed", "age: missing"),
    ),
    Case(
        "nan_and_inf",
        ".parquet",
        lambda: parquet_bytes(
            with_values("loan_amount", [np.inf, -np.inf, np.nan, np.inf, np.nan], as_object=False)
        ),
        (
            "loan_amount: inf is not a finite number",
            "loan_amount: -inf is not a finite number",
            "loan_amount: missing",
        ),
        fails=False,
        quarantined=N_BAD,
    ),
    Case(
        "duplicate_ids",
        ".parquet",
        lambda: parquet_bytes(with_values("loan_id", [clean().loc[10, "loan_id"]] * N_BAD)),
        ("repeats an earlier row",),
        fails=False,
        quarantined=N_BAD,
    ),
    Case(
        "future_timestamps",
        ".parquet",
        lambda: parquet_bytes(
            with_values(
                "event_time",
                [pd.Timestamp(datetime.now(UTC) + timedelta(days=400))] * N_BAD,
                as_object=False,
            )
        ),
        ("is later than",),
        fails=False,
        quarantined=N_BAD,
    ),
    Case(
        "unparsable_timestamps",
        ".csv",
        lambda: csv_bytes(with_values("event_time", ["yesterday", "31/02/2026", "x", "?", "-"])),
        ("event_time: 'yesterday' is not a timestamp",),
        fails=False,
        quarantined=N_BAD,
    ),
    Case(
        "unseen_categories",
        ".parquet",
        lambda: parquet_bytes(with_values("purpose", ["SPACESHIP"] * N_BAD)),
        ("purpose: 'SPACESHIP' not in allowed set",),
        fails=False,
        quarantined=N_BAD,
    ),
    Case(
        "non_iso_timestamps",
        ".csv",
        lambda: csv_bytes(with_values("event_time", ["01/11/2026 11:44"] * N_BAD)),
        ("event_time: '01/11/2026 11:44' is not a timestamp in the expected format ISO 8601",),
        fails=False,
        quarantined=N_BAD,
    ),
    Case(
        "configured_timestamp_format",
        ".csv",
        day_first_csv,
        (),
        fails=False,
        overrides={"dataset.columns.event_time.format": "%d/%m/%Y %H:%M:%S"},
    ),
    Case(
        "timestamps_off_the_batch_day",
        ".parquet",
        lambda: parquet_bytes(with_values("event_time", [OFF_DAY] * N_BAD, as_object=False)),
        ("event_time: 2026-01-11T11:44:00Z is not on the batch's day 2026-11-01",),
        fails=False,
        quarantined=N_BAD,
    ),
    Case(
        "duplicated_column",
        ".csv",
        dup_header_csv,
        ("'age' (columns [3, 4]) more than once", "every column name is unique"),
    ),
    Case(
        "nul_bytes_past_the_head",
        ".csv",
        late_nul_csv,
        ("NUL bytes", "line 151 (data row 150), column 'credit_score'", "Deliver it again"),
    ),
    Case("truncated_csv", ".csv", cut_csv, ("looks cut off at line", "deliver it again")),
    Case(
        "utf16_csv",
        ".csv",
        lambda: csv_bytes(clean()).decode().encode("utf-16"),
        ("UTF-16 encoded", "Save it as UTF-8"),
    ),
    Case(
        "gzip_csv",
        ".csv",
        lambda: gzip.compress(csv_bytes(clean())),
        ("gzip-compressed", "gunzip"),
    ),
    Case(
        "thousands_separators",
        ".csv",
        thousands_csv,
        ("'income' is 100.0% null because its values do not parse", "thousands separator"),
    ),
    Case(
        "integer_overflow",
        ".csv",
        lambda: csv_bytes(with_values("age", ["99999999999999999999"] * N_BAD)),
        ("age: '99999999999999999999' is too large for a 64-bit integer",),
        fails=False,
        quarantined=N_BAD,
    ),
    Case("binary_not_data", ".csv", lambda: PNG, ("is not CSV text", "binary data")),
    Case(
        "text_not_data",
        ".csv",
        lambda: b"<html><body><h1>503 Service Unavailable</h1></body></html>\n",
        ("none of the columns of dataset 'loans' were found", "header row"),
    ),
    Case("parquet_named_csv", ".csv", lambda: parquet_bytes(clean()), ("holds a parquet file",)),
    Case(
        "text_as_parquet",
        ".parquet",
        lambda: csv_bytes(clean()),
        ("not a readable parquet", "this is a CSV file named .parquet"),
    ),
    Case("unknown_format", ".json", lambda: b'{"rows": []}', ("unknown file type '.json'",)),
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def failure(state: Any) -> str:
    """The message a user sees: the exception Prefect recorded, also in the state message."""
    assert state.is_failed(), f"expected a failed run, got {state.type}: {state.message}"
    with pytest.raises(Exception) as err:
        state.result()
    message = str(err.value)
    assert message in (state.message or ""), state.message
    return message


def check_outcome(case: Case, state: Any, source: str, workspace: Any) -> None:
    if case.fails:
        message = failure(state)
        assert source in message, message
        for fragment in case.says:
            assert fragment in message, message
        assert "\n" not in message.strip(), "one paragraph, not a traceback"
        return
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary.rows_in == ROWS == summary.rows_valid + summary.rows_quarantined
    assert summary.rows_quarantined == case.quarantined
    curated = storage.read_frame(summary.curated_uri)
    assert len(curated) == summary.rows_valid
    assert "notes" not in curated.columns
    if case.quarantined:
        quarantine = storage.read_frame(summary.quarantine_uri)
        assert len(quarantine) == summary.rows_quarantined
        assert quarantine["_dq_reasons"].str.len().gt(0).all(), "every row carries a reason"
        assert (quarantine["_dq_source"] == source).all()
        reasons = " | ".join(quarantine["_dq_reasons"])
        for fragment in case.says:
            assert fragment in reasons, reasons


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_local_input_loses_nothing_and_says_why(case: Case, workspace: Any) -> None:
    data = case.content()
    source = str(workspace.root / f"incoming/{DAY}{case.suffix}")
    Path(source).parent.mkdir(parents=True)
    Path(source).write_bytes(data)
    state = ingest(
        DAY,
        source=source,
        overrides={**workspace.overrides, "dataset.data_docs": False, **case.overrides},
        return_state=True,
    )
    check_outcome(case, state, source, workspace)
    assert sha256(Path(source).read_bytes()) == sha256(data), "raw input must never change"


def test_path_that_does_not_exist_is_named(workspace: Any) -> None:
    source = str(workspace.root / "incoming" / "2026-11-01.parquet")
    state = ingest(DAY, source=source, overrides=workspace.overrides, return_state=True)
    message = failure(state)
    assert f"{source} does not exist" in message


def test_missing_day_names_both_candidate_files(workspace: Any) -> None:
    state = ingest(DAY, overrides=workspace.overrides, return_state=True)
    message = failure(state)
    assert "no raw loans data for 2026-11-01" in message
    assert "2026-11-01.parquet" in message and "2026-11-01.csv" in message


@pytest.fixture
def s3_source(s3_bucket: str) -> Callable[[str, bytes], str]:
    def put(key: str, data: bytes) -> str:
        uri = f"{s3_bucket}/{key}"
        storage.write_bytes(uri, data)
        return uri

    return put


def test_s3_object_that_does_not_exist_is_named(workspace: Any, s3_bucket: str) -> None:
    source = f"{s3_bucket}/raw/loans/2026-11-01.parquet"
    state = ingest(DAY, source=source, overrides=workspace.overrides, return_state=True)
    assert f"{source} does not exist" in failure(state)


def test_s3_bucket_that_does_not_exist_is_named(workspace: Any, s3_server: str) -> None:
    source = "s3://no-such-bucket-driftloop/raw/loans/2026-11-01.parquet"
    state = ingest(DAY, source=source, overrides=workspace.overrides, return_state=True)
    message = failure(state)
    assert source in message and "does not exist" in message


def test_s3_object_that_cannot_be_parsed_is_named_and_kept(
    workspace: Any, s3_source: Callable[[str, bytes], str]
) -> None:
    data = truncated_parquet()
    source = s3_source("raw/loans/2026-11-01.parquet", data)
    state = ingest(DAY, source=source, overrides=workspace.overrides, return_state=True)
    message = failure(state)
    assert source in message and "not a readable parquet file" in message
    assert sha256(storage.read_bytes(source)) == sha256(data)


def _artifact(key: str, flow_run_id: Any) -> Any:
    """The artifact `key` published by one flow run."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            ),
        )
    assert found, f"no artifact {key!r}"
    return found[0]


def test_data_docs_site_is_built_and_linked_for_each_validation(workspace: Any) -> None:
    lake = storage.Lake(workspace.lake_root, "loans")
    storage.write_frame(with_values("purpose", ["SPACESHIP"] * N_BAD), lake.raw(DAY))
    state = ingest(DAY, overrides=workspace.overrides, return_state=True)
    summary, run_id = state.result(), state.state_details.flow_run_id
    assert summary.data_docs_uri and summary.data_docs_uri.endswith("index.html")
    site = Path(summary.data_docs_uri).parent
    assert site.is_relative_to(Path(workspace.lake_root) / "reports" / "data-docs" / "loans")
    (page,) = site.glob("validations/loans_contract/*/*/*.html")
    assert page.parent.parent.name == f"{DAY}.parquet", "the run is named after the file"
    text = page.read_text()
    assert "values must belong to this set" in text and "SPACESHIP" not in text
    assert (site / "index.html").read_text().count(page.name) >= 1
    link = _artifact("data-docs-loans", run_id)
    assert f"(file://{summary.data_docs_uri})" in str(link.data)  # a clickable link
    markdown = _artifact("validation-loans", run_id)
    assert summary.data_docs_uri in str(markdown.data)


def test_data_docs_are_uploaded_to_an_s3_lake(workspace: Any, s3_bucket: str) -> None:
    root = f"{s3_bucket}/lake"
    lake = storage.Lake(root, "loans")
    storage.write_frame(clean(), lake.raw(DAY))
    always = {**workspace.overrides, "storage.root": root, "dataset.data_docs": "always"}
    summary = ingest(DAY, overrides=always)
    assert summary.data_docs_uri and summary.data_docs_uri.startswith(f"{root}/reports/data-docs/")
    bucket, key = summary.data_docs_uri.removeprefix("s3://").split("/", 1)
    head = boto3.client("s3").head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "text/html"
    assert b"<html" in storage.read_bytes(summary.data_docs_uri).lower()


def test_a_clean_batch_gets_no_data_docs_by_default(workspace: Any) -> None:
    """Sites are for batches where a check failed (`dataset.data_docs: failures`)."""
    lake = storage.Lake(workspace.lake_root, "loans")
    storage.write_frame(clean(), lake.raw(DAY))
    summary = ingest(DAY, overrides=workspace.overrides)
    assert summary.rows_quarantined == 0 and summary.data_docs_uri is None
    assert not (Path(workspace.lake_root) / "reports" / "data-docs").exists()


def test_data_docs_can_be_turned_off(workspace: Any) -> None:
    lake = storage.Lake(workspace.lake_root, "loans")
    storage.write_frame(with_values("purpose", ["SPACESHIP"] * N_BAD), lake.raw(DAY))
    summary = ingest(DAY, overrides={**workspace.overrides, "dataset.data_docs": "never"})
    assert summary.rows_quarantined == N_BAD and summary.data_docs_uri is None
    assert not (Path(workspace.lake_root) / "reports" / "data-docs").exists()


# ---------------------------------------------------------------- batches across days

NEXT = DAY + timedelta(days=1)


def quiet(workspace: Any) -> dict[str, Any]:
    return {**workspace.overrides, "dataset.data_docs": False}


def test_ids_curated_on_an_earlier_day_are_quarantined_with_that_day(workspace: Any) -> None:
    lake = storage.Lake(workspace.lake_root, "loans")
    first = clean()
    storage.write_frame(first, lake.raw(DAY))
    ingest(DAY, overrides=quiet(workspace))
    second = generate_day(NEXT, ROWS, seed=5)
    second.loc[: N_BAD - 1, "loan_id"] = first["loan_id"].iloc[:N_BAD].to_numpy()
    storage.write_frame(second, lake.raw(NEXT))
    before = storage.sha256_of(lake.raw(NEXT))
    summary = ingest(NEXT, overrides=quiet(workspace))
    assert summary.rows_in == ROWS == summary.rows_valid + summary.rows_quarantined
    assert summary.rows_quarantined == N_BAD
    reasons = storage.read_frame(summary.quarantine_uri)["_dq_reasons"]
    assert reasons.str.contains(f"was already curated on {DAY}").all(), reasons.tolist()
    assert f"'{first.loc[0, 'loan_id']}'" in reasons.iloc[0]
    assert storage.sha256_of(lake.raw(NEXT)) == before


def test_the_same_file_under_another_day_is_refused_by_name(workspace: Any) -> None:
    lake = storage.Lake(workspace.lake_root, "loans")
    data = parquet_bytes(clean())
    storage.write_bytes(lake.raw(DAY), data)
    ingest(DAY, overrides=quiet(workspace))
    source = str(workspace.root / "incoming" / f"{NEXT}.parquet")
    Path(source).parent.mkdir(parents=True)
    Path(source).write_bytes(data)
    state = ingest(NEXT, source=source, overrides=quiet(workspace), return_state=True)
    message = failure(state)
    assert f"{source} is the same file as {DAY}" in message, message
    assert f"Deliver the batch for {NEXT}" in message, message
    assert not storage.exists(lake.curated(NEXT)), "nothing is stored for the repeated day"
    assert sha256(Path(source).read_bytes()) == sha256(data)


def test_the_same_raw_file_of_a_failed_earlier_day_is_refused(workspace: Any) -> None:
    lake = storage.Lake(workspace.lake_root, "loans")
    data = csv_bytes(clean())  # never curated: refused by the raw file's digest
    storage.write_bytes(lake.raw(DAY, "csv"), data)
    storage.write_bytes(lake.raw(NEXT, "csv"), data)
    message = failure(ingest(NEXT, overrides=quiet(workspace), return_state=True))
    assert f"is the same file as {DAY}" in message and lake.raw(DAY, "csv") in message, message


def test_reingesting_a_day_keeps_one_quarantine_file(workspace: Any) -> None:
    lake = storage.Lake(workspace.lake_root, "loans")
    storage.write_frame(with_values("purpose", ["SPACESHIP"] * N_BAD), lake.raw(DAY))
    first = ingest(DAY, overrides=quiet(workspace))
    again = ingest(DAY, overrides=quiet(workspace))
    assert first.quarantine_uri == again.quarantine_uri
    files = storage.list_uris(lake.quarantine_day(DAY), ".parquet")
    assert files == [first.quarantine_uri], files
    assert len(storage.read_frame(files[0])) == N_BAD == again.rows_quarantined
