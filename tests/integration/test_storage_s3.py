"""Storage against a real S3 HTTP endpoint (moto server mode on loopback), through plain boto3."""

from __future__ import annotations

import hashlib
import os
from datetime import date

import boto3
import numpy as np
import pandas as pd
import pytest

from driftloop.data.generate import generate_day, write_batches
from driftloop.tasks.adapters import storage
from driftloop.tasks.adapters.storage import Lake, NotFoundError, StorageError

DAY = date(2026, 11, 1)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_day(DAY, 500, seed=3)


def raw_put(uri: str, data: bytes) -> None:
    """Store bytes behind storage's back, as another tool would."""
    bucket, key = uri[len("s3://") :].split("/", 1)
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)


def test_bytes_round_trip_and_exists(s3_bucket: str) -> None:
    uri = f"{s3_bucket}/reports/gate/run-1.json"
    assert not storage.exists(uri)
    assert storage.write_text(uri, '{"blessed": true, "note": "naïve"}') == uri
    assert storage.exists(uri)
    assert storage.read_bytes(uri).decode() == '{"blessed": true, "note": "naïve"}'
    assert not storage.exists(f"{s3_bucket}/reports/gate")


def test_parquet_round_trip(s3_bucket: str, frame: pd.DataFrame) -> None:
    uri = storage.write_frame(frame, Lake(s3_bucket, "loans").raw(DAY))
    assert uri == f"{s3_bucket}/raw/loans/2026-11-01.parquet"
    pd.testing.assert_frame_equal(storage.read_frame(uri), frame, check_exact=True)
    subset = storage.read_frame(uri, columns=["loan_id", "default"])
    assert list(subset.columns) == ["loan_id", "default"]


def test_csv_round_trip(s3_bucket: str, frame: pd.DataFrame) -> None:
    uri = storage.write_frame(frame, Lake(s3_bucket, "loans").raw(DAY, "csv"))
    back = storage.read_frame(uri)
    back["event_time"] = pd.to_datetime(back["event_time"], utc=True)
    expected = frame.assign(region=frame["region"].where(frame["region"].notna(), np.nan))
    pd.testing.assert_frame_equal(back, expected, check_exact=False)


def test_missing_object_and_bucket_are_not_found(s3_bucket: str) -> None:
    uri = f"{s3_bucket}/raw/loans/1999-01-01.parquet"
    for call in (storage.read_frame, storage.read_bytes, storage.sha256_of):
        with pytest.raises(NotFoundError, match=r"1999-01-01\.parquet"):
            call(uri)
    with pytest.raises(NotFoundError, match=r"1999-01-01\.parquet"):
        storage.iter_parquet_batches(uri, 10)
    with pytest.raises(NotFoundError, match=r"bucket"):
        storage.read_bytes("s3://driftloop-no-such-bucket/x.parquet")


def test_empty_corrupt_and_garbage_objects_are_named(s3_bucket: str, frame: pd.DataFrame) -> None:
    empty = f"{s3_bucket}/empty.parquet"
    raw_put(empty, b"")
    with pytest.raises(StorageError, match=r"empty\.parquet.*empty"):
        storage.read_frame(empty)
    good = storage.write_frame(frame, f"{s3_bucket}/good.parquet")
    truncated = f"{s3_bucket}/truncated.parquet"
    raw_put(truncated, storage.read_bytes(good)[:1000])
    with pytest.raises(StorageError, match=r"truncated\.parquet.*not a readable parquet"):
        storage.read_frame(truncated)
    latin = f"{s3_bucket}/latin.csv"
    raw_put(latin, "city\nMünchen\n".encode("latin-1"))
    with pytest.raises(StorageError, match=r"latin\.csv.*not UTF-8"):
        storage.read_frame(latin)


def test_list_uris_treats_prefix_as_folder(s3_bucket: str) -> None:
    for key in ["raw/loans/b.parquet", "raw/loans/a.parquet", "raw/loans/x/c.parquet"]:
        storage.write_text(f"{s3_bucket}/{key}", "x")
    storage.write_text(f"{s3_bucket}/raw/loans/notes.txt", "x")
    storage.write_text(f"{s3_bucket}/raw/loans2/d.parquet", "x")
    assert storage.list_uris(f"{s3_bucket}/raw/loans", suffix=".parquet") == [
        f"{s3_bucket}/raw/loans/a.parquet",
        f"{s3_bucket}/raw/loans/b.parquet",
        f"{s3_bucket}/raw/loans/x/c.parquet",
    ]
    assert len(storage.list_uris(s3_bucket)) == 5
    assert storage.list_uris(f"{s3_bucket}/nothing-here") == []


def test_list_uris_follows_pagination(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "_LIST_PAGE_SIZE", 2)
    for i in range(7):
        storage.write_text(f"{s3_bucket}/many/{6 - i:02d}.txt", "x")
    uris = storage.list_uris(f"{s3_bucket}/many")
    assert uris == [f"{s3_bucket}/many/{i:02d}.txt" for i in range(7)]


def test_sha256_matches_the_stored_bytes(s3_bucket: str) -> None:
    data = os.urandom(2 * (1 << 20) + 3)
    uri = storage.write_bytes(f"{s3_bucket}/blobs/model.bin", data)
    assert storage.sha256_of(uri) == hashlib.sha256(data).hexdigest()


def test_large_writes_go_up_whole_in_parts(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "_MULTIPART_THRESHOLD", 5 << 20)
    data = os.urandom(11 << 20)
    uri = storage.write_bytes(f"{s3_bucket}/big/blob.bin", data)
    assert storage.read_bytes(uri) == data
    bucket, key = uri[len("s3://") :].split("/", 1)
    etag = boto3.client("s3").head_object(Bucket=bucket, Key=key)["ETag"]
    assert "-" in etag  # a multipart ETag: the object appeared only once all parts were in


def test_iter_parquet_batches_streams_from_s3(s3_bucket: str, frame: pd.DataFrame) -> None:
    uri = storage.write_frame(frame, f"{s3_bucket}/predictions/m/2026-11-01.parquet")
    batches = list(storage.iter_parquet_batches(uri, 200))
    assert [len(b) for b in batches] == [200, 200, 100]
    pd.testing.assert_frame_equal(pd.concat(batches), frame, check_exact=True)


def test_raw_any_and_generator_on_s3(s3_bucket: str) -> None:
    lake = Lake(f"{s3_bucket}/lake", "loans")
    with pytest.raises(NotFoundError, match=r"2026-11-01\.csv"):
        lake.raw_any(DAY)
    uris = write_batches(f"{s3_bucket}/lake", "loans", DAY, 2, 150, fmt="csv")
    assert lake.raw_any(DAY) == uris[0] == lake.raw(DAY, "csv")
    assert storage.list_uris(f"{s3_bucket}/lake/raw/loans") == uris


def test_client_retries_transient_errors_in_standard_mode(s3_server: str) -> None:
    client = storage._s3()
    assert client.meta.endpoint_url == s3_server
    # botocore counts retries: max_attempts=5 means up to 6 attempts in total.
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert storage._s3() is client
