"""Local storage: round trips, all-or-nothing writes, and errors that name the file."""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.data.generate import generate_day
from driftloop.tasks.adapters import storage
from driftloop.tasks.adapters.storage import Lake, NotFoundError, StorageError

DAY = date(2026, 11, 1)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_day(DAY, 500, seed=3)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_parquet_round_trip_keeps_values_and_dtypes(tmp_path: Path, frame: pd.DataFrame) -> None:
    uri = str(tmp_path / "nested" / "deeper" / "day.parquet")
    assert storage.write_frame(frame, uri) == uri
    back = storage.read_frame(uri)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert str(back["event_time"].dtype) == "datetime64[ns, UTC]"


def test_parquet_does_not_store_the_index(tmp_path: Path, frame: pd.DataFrame) -> None:
    uri = str(tmp_path / "sliced.parquet")
    storage.write_frame(frame.iloc[100:200], uri)
    back = storage.read_frame(uri)
    assert list(back.index) == list(range(100))
    assert list(back.columns) == list(frame.columns)


def test_csv_round_trip_keeps_values(tmp_path: Path, frame: pd.DataFrame) -> None:
    uri = str(tmp_path / "day.csv")
    storage.write_frame(frame, uri)
    back = storage.read_frame(uri)
    back["event_time"] = pd.to_datetime(back["event_time"], utc=True)
    # CSV has no typed null: a missing string comes back as NaN, not None.
    expected = frame.assign(region=frame["region"].where(frame["region"].notna(), np.nan))
    pd.testing.assert_frame_equal(back, expected, check_exact=False)
    assert back["region"].isna().sum() == frame["region"].isna().sum() > 0


def test_csv_keeps_na_like_strings_as_strings(tmp_path: Path) -> None:
    original = pd.DataFrame({"region": ["NA", "null", "None", None], "n": [1, 2, 3, 4]})
    uri = storage.write_frame(original, str(tmp_path / "na.csv"))
    back = storage.read_frame(uri)
    assert back["region"].tolist()[:3] == ["NA", "null", "None"]
    assert pd.isna(back["region"].iloc[3])


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_read_selected_columns(tmp_path: Path, frame: pd.DataFrame, suffix: str) -> None:
    uri = storage.write_frame(frame, str(tmp_path / f"day{suffix}"))
    back = storage.read_frame(uri, columns=["loan_id", "age"])
    assert list(back.columns) == ["loan_id", "age"]
    assert back["loan_id"].tolist() == frame["loan_id"].tolist()


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_missing_requested_column_is_named(
    tmp_path: Path, frame: pd.DataFrame, suffix: str
) -> None:
    uri = storage.write_frame(frame, str(tmp_path / f"day{suffix}"))
    with pytest.raises(StorageError, match=r"no_such_column") as info:
        storage.read_frame(uri, columns=["loan_id", "no_such_column"])
    assert uri in str(info.value)


class _ExplodesWhenFormatted:
    def __str__(self) -> str:
        raise RuntimeError("disk pulled mid-write")


def test_failed_csv_write_leaves_old_file_intact_and_no_temp(tmp_path: Path) -> None:
    uri = str(tmp_path / "day.csv")
    old = pd.DataFrame({"x": [1, 2, 3]})
    storage.write_frame(old, uri)
    # pandas writes the CSV in chunks of rows: the first chunks reach the temp file before
    # the bad value near the end raises.
    values: list[object] = [f"row-{i}" for i in range(250_000)]
    values[-10] = _ExplodesWhenFormatted()
    with pytest.raises(RuntimeError, match=r"disk pulled"):
        storage.write_frame(pd.DataFrame({"x": values}), uri)
    pd.testing.assert_frame_equal(storage.read_frame(uri), old)
    assert files_in(tmp_path) == ["day.csv"]


def test_failed_parquet_write_leaves_no_file_and_no_temp(tmp_path: Path) -> None:
    uri = str(tmp_path / "out" / "day.parquet")
    mixed = pd.DataFrame({"x": [1, "two", 3.0]})
    with pytest.raises(StorageError, match=r"day\.parquet"):
        storage.write_frame(mixed, uri)
    assert not os.path.exists(uri)
    assert files_in(tmp_path / "out") == []


def test_failed_byte_write_keeps_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = str(tmp_path / "model.json")
    storage.write_text(uri, "old")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(StorageError, match=r"model\.json"):
        storage.write_bytes(uri, b"new content that never lands")
    monkeypatch.undo()
    assert storage.read_bytes(uri) == b"old"
    assert files_in(tmp_path) == ["model.json"]


def test_text_round_trip_is_utf8(tmp_path: Path) -> None:
    uri = storage.write_text(str(tmp_path / "r" / "note.md"), "drift ≥ 0.1 — naïve")
    assert storage.read_bytes(uri).decode("utf-8") == "drift ≥ 0.1 — naïve"


def test_missing_file_is_not_found_and_named(tmp_path: Path) -> None:
    uri = str(tmp_path / "absent.parquet")
    for call in (storage.read_frame, storage.read_bytes, storage.sha256_of):
        with pytest.raises(NotFoundError, match=r"absent\.parquet"):
            call(uri)


@pytest.mark.parametrize("name", ["empty.parquet", "empty.csv"])
def test_empty_file_is_reported_as_empty(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(StorageError, match=r"empty") as info:
        storage.read_frame(str(path))
    assert str(path) in str(info.value)
    assert not isinstance(info.value, NotFoundError)


def test_truncated_parquet_is_reported_as_corrupt(tmp_path: Path, frame: pd.DataFrame) -> None:
    uri = storage.write_frame(frame, str(tmp_path / "day.parquet"))
    data = Path(uri).read_bytes()
    Path(uri).write_bytes(data[: len(data) // 2])
    with pytest.raises(StorageError, match=r"not a readable parquet") as info:
        storage.read_frame(uri)
    assert uri in str(info.value)


def test_garbage_bytes_as_parquet(tmp_path: Path) -> None:
    path = tmp_path / "junk.parquet"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(StorageError, match=r"junk\.parquet.*not a readable parquet"):
        storage.read_frame(str(path))
    with pytest.raises(StorageError, match=r"junk\.parquet"):
        next(storage.iter_parquet_batches(str(path), 10))


def test_non_utf8_csv_names_file_and_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("city,amount\nMünchen,3\n".encode("latin-1"))
    with pytest.raises(StorageError, match=r"latin\.csv.*not UTF-8") as info:
        storage.read_frame(str(path))
    assert "0xfc" in str(info.value)


def test_utf8_bom_csv_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffcity,amount\nMünchen,3\n".encode())
    back = storage.read_frame(str(path))
    assert back.to_dict("records") == [{"city": "München", "amount": 3}]


def test_malformed_csv_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text('a,b\n1,"unterminated\n')
    with pytest.raises(StorageError, match=r"bad\.csv"):
        storage.read_frame(str(path))


@pytest.mark.parametrize("name", ["day.xlsx", "day", "day.json"])
def test_unknown_suffix_is_rejected_before_io(
    tmp_path: Path, frame: pd.DataFrame, name: str
) -> None:
    uri = str(tmp_path / name)
    with pytest.raises(StorageError, match=r"\.parquet, \.csv") as info:
        storage.read_frame(uri)
    assert uri in str(info.value)
    with pytest.raises(StorageError, match=r"unknown file type"):
        storage.write_frame(frame, uri)
    assert not os.path.exists(uri)


def test_list_uris_recursive_sorted_filtered(tmp_path: Path) -> None:
    for rel in ["b/2.parquet", "a/1.parquet", "a/x/3.parquet", "a/notes.txt", "c.parquet"]:
        storage.write_text(str(tmp_path / rel), "x")
    (tmp_path / "a" / ".c.parquet.1234.tmp").write_text("in-flight")
    root = str(tmp_path)
    assert storage.list_uris(root, suffix=".parquet") == [
        str(tmp_path / "a" / "1.parquet"),
        str(tmp_path / "a" / "x" / "3.parquet"),
        str(tmp_path / "b" / "2.parquet"),
        str(tmp_path / "c.parquet"),
    ]
    assert storage.list_uris(str(tmp_path / "a")) == [
        str(tmp_path / "a" / "1.parquet"),
        str(tmp_path / "a" / "notes.txt"),
        str(tmp_path / "a" / "x" / "3.parquet"),
    ]
    assert storage.list_uris(str(tmp_path / "nowhere")) == []


def test_exists_means_a_stored_file(tmp_path: Path) -> None:
    uri = storage.write_text(str(tmp_path / "d" / "f.txt"), "x")
    assert storage.exists(uri)
    assert not storage.exists(str(tmp_path / "d"))
    assert not storage.exists(str(tmp_path / "d" / "g.txt"))


def test_sha256_streams_large_files(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)
    uri = storage.write_bytes(str(tmp_path / "blob.bin"), data)
    assert storage.sha256_of(uri) == hashlib.sha256(data).hexdigest()


def test_iter_parquet_batches_concatenates_to_original(tmp_path: Path, frame: pd.DataFrame) -> None:
    uri = storage.write_frame(frame, str(tmp_path / "day.parquet"))
    batches = list(storage.iter_parquet_batches(uri, 120))
    assert [len(b) for b in batches] == [120, 120, 120, 120, 20]
    pd.testing.assert_frame_equal(pd.concat(batches), frame, check_exact=True)


def test_iter_parquet_batches_fails_eagerly(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"nope\.parquet"):
        storage.iter_parquet_batches(str(tmp_path / "nope.parquet"), 10)
    with pytest.raises(ValueError, match=r"batch_rows"):
        storage.iter_parquet_batches(str(tmp_path / "nope.parquet"), 0)
    with pytest.raises(StorageError, match=r"day\.csv"):
        storage.iter_parquet_batches(str(tmp_path / "day.csv"), 10)


def test_join_local_and_s3() -> None:
    assert storage.join("s3://bucket/lake/", "raw", "loans/", "f.parquet") == (
        "s3://bucket/lake/raw/loans/f.parquet"
    )
    assert storage.join("s3://bucket", "a") == "s3://bucket/a"
    assert storage.join("/data/lake", "raw", "f.csv") == os.path.join("/data/lake", "raw", "f.csv")
    assert storage.is_s3("s3://b/k") and not storage.is_s3("/tmp/s3://x")


@pytest.mark.parametrize(
    "root", ["/srv/lake", "/srv/lake/", "s3://bucket/lake", "s3://bucket/lake/"]
)
def test_lake_layout(root: str) -> None:
    lake = Lake(root, "loans")
    base = root.rstrip("/")
    assert lake.raw(DAY) == f"{base}/raw/loans/2026-11-01.parquet"
    assert lake.raw(DAY, "csv") == f"{base}/raw/loans/2026-11-01.csv"
    assert lake.curated(DAY) == f"{base}/curated/loans/2026-11-01.parquet"
    assert lake.quarantine(DAY, "run-7") == f"{base}/quarantine/loans/2026-11-01/run-7.parquet"
    assert lake.predictions("loan-default", DAY) == (
        f"{base}/predictions/loan-default/2026-11-01.parquet"
    )
    assert lake.reference("loan-default", 3) == f"{base}/references/loan-default/v3.parquet"
    assert lake.report("drift", "x.html") == f"{base}/reports/drift/x.html"


def test_lake_rejects_bad_names() -> None:
    with pytest.raises(ValueError, match=r"dataset"):
        Lake("/srv/lake", "a/b")
    with pytest.raises(ValueError, match=r"xlsx"):
        Lake("/srv/lake", "loans").raw(DAY, "xlsx")


def test_raw_any_prefers_parquet_then_csv(tmp_path: Path, frame: pd.DataFrame) -> None:
    lake = Lake(str(tmp_path), "loans")
    with pytest.raises(NotFoundError) as info:
        lake.raw_any(DAY)
    assert lake.raw(DAY, "parquet") in str(info.value)
    assert lake.raw(DAY, "csv") in str(info.value)
    storage.write_frame(frame, lake.raw(DAY, "csv"))
    assert lake.raw_any(DAY) == lake.raw(DAY, "csv")
    storage.write_frame(frame, lake.raw(DAY, "parquet"))
    assert lake.raw_any(DAY) == lake.raw(DAY, "parquet")


def test_upload_folder_copies_a_site_keeping_its_layout(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "validations" / "x").mkdir(parents=True)
    (site / "index.html").write_text("<html>index</html>")
    (site / "validations" / "x" / "run.html").write_text("<html>run</html>")
    target = str(tmp_path / "lake" / "reports" / "data-docs" / "loans")
    uris = storage.upload_folder(site, target)
    assert sorted(Path(u).relative_to(target).as_posix() for u in uris) == [
        "index.html",
        "validations/x/run.html",
    ]
    assert storage.read_bytes(storage.join(target, "index.html")) == b"<html>index</html>"
    with pytest.raises(NotFoundError, match="not a folder"):
        storage.upload_folder(tmp_path / "missing", target)


def test_csv_that_holds_binary_data_says_so(tmp_path: Path, frame: pd.DataFrame) -> None:
    uri = storage.write_frame(frame, str(tmp_path / "day.parquet"))
    disguised = tmp_path / "day.csv"
    disguised.write_bytes(Path(uri).read_bytes())
    with pytest.raises(StorageError, match="holds a parquet file"):
        storage.read_frame(str(disguised))
