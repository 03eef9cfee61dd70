"""Bad files users really sent (issue 17): each is named as what it is, never read silently.

Readers: a fault in the file's structure (duplicated header, NUL bytes, a cut-off last line,
another encoding or compression, a CSV named .parquet) fails with a message naming the file,
where the fault is and what to do, in the whole-file reader and in the streaming one alike.
Contract: values that do not parse (a timestamp in another format, thousands separators, an
integer beyond int64) or rows off the batch's day or seen on earlier days are quarantined
with a reason naming the column, the value and what was expected.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from driftloop.configs.settings import DatasetSettings, load_settings
from driftloop.tasks.adapters import storage
from driftloop.tasks.adapters.streaming import ContractStream
from driftloop.tasks.adapters.validation import validate_frame
from driftloop.tasks.core import contract
from driftloop.tasks.core.contract import (
    REASONS_COLUMN,
    quarantine_mask,
    raise_for_result,
    validate_table,
)

DAY = date(2026, 11, 1)
NOW = datetime(2026, 11, 2, 6, tzinfo=UTC)
SOURCE = "raw/loans/2026-11-01.csv"
N = 40


@pytest.fixture(scope="module")
def dataset() -> DatasetSettings:
    return load_settings().dataset


def day_frame(n: int = N) -> pd.DataFrame:
    """A clean batch of DAY (times spread over the UTC day)."""
    from driftloop.data.generate import generate_day

    return generate_day(DAY, n, seed=3)


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


Reader = Callable[[str], pd.DataFrame]


def whole(uri: str) -> pd.DataFrame:
    return storage.read_frame(uri)


def streamed(uri: str) -> pd.DataFrame:
    return pd.concat(list(storage.iter_csv_batches(uri, 7)), ignore_index=True)


READERS = pytest.mark.parametrize("read", [whole, streamed], ids=["whole", "streamed"])


def fails(read: Reader, path: Path, *fragments: str) -> str:
    """The reader fails naming the file and each fragment, in one paragraph; raw unchanged."""
    before = sha256(path)
    with pytest.raises(storage.StorageError) as err:
        read(str(path))
    message = str(err.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message, message
    assert sha256(path) == before, "raw input must never change"
    return message


# ---------------------------------------------------------------- structure: the readers


@READERS
def test_duplicated_header_fails_naming_the_columns(tmp_path: Path, read: Reader) -> None:
    text = csv_text(day_frame()).replace(",income,", ",age,", 1)
    path = tmp_path / "dup.csv"
    path.write_text(text)
    fails(read, path, "'age' (columns [3, 4]) more than once", "every column name is unique")


@READERS
def test_nul_byte_past_the_first_kb_names_line_and_column(tmp_path: Path, read: Reader) -> None:
    frame = day_frame()
    lines = csv_text(frame).split("\n")
    cells = lines[35].split(",")
    cells[3] = cells[3][:2] + "\x00" + cells[3][2:]  # income of data row 35
    lines[35] = ",".join(cells)
    path = tmp_path / "nul.csv"
    path.write_text("\n".join(lines))
    assert path.read_bytes().index(b"\x00") > 4096
    fails(read, path, "NUL bytes", "line 36 (data row 35), column 'income'", "Deliver it again")


@READERS
def test_truncated_csv_is_named_as_cut_off(tmp_path: Path, read: Reader) -> None:
    data = csv_text(day_frame()).encode()
    path = tmp_path / "cut.csv"
    path.write_bytes(data[: len(data) - 60])  # mid-row, no final newline
    fails(read, path, f"looks cut off at line {N + 1}", "truncated", "deliver it again")


@READERS
def test_last_line_without_newline_but_complete_is_read(tmp_path: Path, read: Reader) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(csv_text(day_frame()).rstrip("\n"))
    assert len(read(str(path))) == N


@READERS
def test_first_row_with_extra_fields_is_not_taken_as_an_index(tmp_path: Path, read: Reader) -> None:
    path = tmp_path / "shift.csv"
    path.write_text("a,b,c\n1,2,3,x,y\n4,5,6\n")
    fails(read, path, "line 2 has 5 fields but the header has 3", "must be quoted")


@READERS
@pytest.mark.parametrize(
    ("encode", "fragments"),
    [
        (lambda t: t.encode("utf-16"), ("UTF-16 encoded", "Save it as UTF-8")),
        (lambda t: t.encode("utf-16-le"), ("UTF-16 encoded", "Save it as UTF-8")),
        (lambda t: gzip.compress(t.encode()), ("gzip-compressed", "gunzip")),
    ],
    ids=["utf16_bom", "utf16le", "gzip"],
)
def test_other_encodings_are_named(
    tmp_path: Path,
    read: Reader,
    encode: Callable[[str], bytes],
    fragments: tuple[str, ...],
) -> None:
    path = tmp_path / "day.csv"
    path.write_bytes(encode(csv_text(day_frame())))
    message = fails(read, path, *fragments)
    assert "binary data" not in message


def test_csv_named_parquet_is_named(tmp_path: Path) -> None:
    path = tmp_path / "day.parquet"
    path.write_text(csv_text(day_frame()))
    fails(whole, path, "this is a CSV file named .parquet", "Deliver it again as .csv")
    with pytest.raises(storage.StorageError, match=r"CSV file named \.parquet"):
        next(storage.iter_parquet_batches(str(path), 10))


# ---------------------------------------------------------------- values: the contract


def raw_csv(tmp_path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the CSV reader hands it over (values as text, as users send them)."""
    path = tmp_path / "day.csv"
    path.write_text(csv_text(frame))
    return storage.read_frame(str(path))


def reasons_of(batch: object) -> str:
    return " | ".join(batch.quarantine[REASONS_COLUMN])  # type: ignore[attr-defined]


def test_non_iso_timestamps_are_quarantined_not_guessed(
    tmp_path: Path, dataset: DatasetSettings
) -> None:
    frame = day_frame().astype({"event_time": object})
    frame.loc[:4, "event_time"] = "01/11/2026 11:44"
    batch = validate_frame(
        raw_csv(tmp_path, frame), dataset, source=SOURCE, now=NOW, day=DAY, docs_dir=None
    )
    assert batch.result.rows_quarantined == 5 and batch.result.rows_valid == N - 5
    assert (
        "event_time: '01/11/2026 11:44' is not a timestamp in the expected format ISO 8601"
        in reasons_of(batch)
    )


def test_a_configured_timestamp_format_parses_day_first(
    tmp_path: Path, dataset: DatasetSettings
) -> None:
    frame = day_frame()
    frame["event_time"] = frame["event_time"].dt.strftime("%d/%m/%Y %H:%M")
    columns = dict(dataset.columns)
    columns["event_time"] = columns["event_time"].model_copy(update={"format": "%d/%m/%Y %H:%M"})
    custom = dataset.model_copy(update={"columns": columns})
    batch = validate_frame(raw_csv(tmp_path, frame), custom, source=SOURCE, now=NOW, day=DAY)
    assert batch.result.rows_quarantined == 0
    assert (batch.valid["event_time"].dt.month == 11).all(), "read day-first, as configured"


def test_rows_off_the_batch_day_are_quarantined_naming_the_day(dataset: DatasetSettings) -> None:
    frame = day_frame()
    low, high = contract.day_bounds(dataset, DAY)
    frame.loc[0, "event_time"] = pd.Timestamp("2026-01-11 11:44", tz="UTC")  # month-first
    frame.loc[1, "event_time"] = pd.Timestamp(high) + pd.Timedelta(minutes=1)
    frame.loc[2, "event_time"] = pd.Timestamp(low)  # inside the tolerance: kept
    batch = validate_frame(frame, dataset, source=SOURCE, now=NOW, day=DAY)
    assert batch.result.rows_quarantined == 2 and batch.result.rows_valid == N - 2
    assert "event_time: 2026-01-11T11:44:00Z is not on the batch's day 2026-11-01" in (
        reasons_of(batch)
    )
    assert quarantine_mask(frame, dataset, now=NOW, day=DAY).sum() == 2
    assert validate_table(
        pa.Table.from_pandas(frame), dataset, source=SOURCE, now=NOW, day=DAY
    ) is (None), "the arrow path must not pass it either"


def test_the_day_is_counted_in_the_dataset_time_zone(dataset: DatasetSettings) -> None:
    paris = dataset.model_copy(update={"time_zone": "Pacific/Auckland"})  # UTC+13 in November
    low, high = contract.day_bounds(paris, DAY)
    assert low == datetime(2026, 10, 31, 5, tzinfo=UTC)  # 00:00 NZDT - 6 h
    assert high == datetime(2026, 11, 1, 17, tzinfo=UTC)


def test_scoring_stream_applies_the_day_check(dataset: DatasetSettings) -> None:
    frame = day_frame().drop(columns=[dataset.target])
    frame.loc[:2, "event_time"] = pd.Timestamp("2026-01-11 11:44", tz="UTC")
    stream = ContractStream(dataset, source=SOURCE, now=NOW, day=DAY)
    checked = stream.check_table(pa.Table.from_pandas(frame))
    assert checked.result.rows_quarantined == 3
    assert "is not on the batch's day 2026-11-01" in reasons_of(checked)


def test_thousands_separators_are_named_not_reported_as_nulls(
    tmp_path: Path, dataset: DatasetSettings
) -> None:
    frame = day_frame()
    frame["income"] = [f"{v:,.1f}" if v == v else "" for v in frame["income"]]
    batch = validate_frame(raw_csv(tmp_path, frame), dataset, source=SOURCE, now=NOW, day=DAY)
    assert not batch.result.success
    assert "uses ',' as a thousands separator" in reasons_of(batch)
    with pytest.raises(ValueError) as err:
        raise_for_result(batch.result)
    message = str(err.value)
    assert "present but unparsable" in message and "thousands separator" in message, message


def test_integer_overflow_is_named_not_wrapped(tmp_path: Path, dataset: DatasetSettings) -> None:
    frame = day_frame().astype({"age": object})
    frame.loc[0, "age"] = "99999999999999999999"
    frame.loc[1, "age"] = "18446744073709551615"
    batch = validate_frame(raw_csv(tmp_path, frame), dataset, source=SOURCE, now=NOW, day=DAY)
    reasons = reasons_of(batch)
    assert batch.result.rows_quarantined == 2
    assert "age: '99999999999999999999' is too large for a 64-bit integer" in reasons
    assert "e+18" not in reasons


def test_uint64_column_is_not_wrapped(dataset: DatasetSettings) -> None:
    frame = day_frame()
    frame["num_open_accounts"] = frame["num_open_accounts"].astype(np.uint64)
    frame.loc[0, "num_open_accounts"] = np.uint64(2**64 - 1)
    batch = validate_frame(frame, dataset, source=SOURCE, now=NOW, day=DAY)
    assert batch.result.rows_quarantined == 1
    assert "too large for a 64-bit integer" in reasons_of(batch)


def test_ids_curated_on_earlier_days_are_quarantined_with_that_day(
    dataset: DatasetSettings,
) -> None:
    frame = day_frame()
    known = pd.Series(["2026-10-30", "2026-10-31"], index=frame["loan_id"].iloc[:2].to_numpy())
    batch = validate_frame(frame, dataset, source=SOURCE, now=NOW, day=DAY, known_ids=known)
    assert batch.result.rows_quarantined == 2 and batch.result.rows_valid == N - 2
    reasons = reasons_of(batch)
    assert f"loan_id: '{frame.loc[0, 'loan_id']}' was already curated on 2026-10-30" in reasons
    outcome = next(o for o in batch.result.outcomes if "across_days" in o.expectation)
    assert outcome.unexpected_count == 2 and not outcome.success


def test_scoring_summary_keeps_unseen_values_of_every_batch(dataset: DatasetSettings) -> None:
    frame = day_frame().drop(columns=[dataset.target])
    frame.loc[3, "purpose"] = "SPACESHIP"
    frame.loc[30, "purpose"] = "ROCKET"  # first seen in the second batch
    stream = ContractStream(dataset, source=SOURCE, now=NOW)
    stream.check_table(pa.Table.from_pandas(frame.iloc[:20]))
    stream.check_table(pa.Table.from_pandas(frame.iloc[20:]))
    result = stream.result()
    (in_set,) = [o for o in result.outcomes if o.column == "purpose" and not o.success]
    assert in_set.unexpected_count == 2 and result.rows_quarantined == 2
    for fragment in ("'SPACESHIP'", "'ROCKET'", "not in {", "car"):
        assert fragment in in_set.observed, in_set.observed
    assert "'ROCKET'" in result.summary_markdown()
