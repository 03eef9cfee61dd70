"""Files as they come: a dated file pattern per dataset, the format and compression by suffix."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from driftloop.configs.settings import ConfigError, load_settings
from driftloop.tasks.adapters import day_states, storage
from driftloop.tasks.adapters.streaming import iter_raw_batches

DAY = date(2026, 11, 3)
FRAME = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "NA", "z"]})


def _zip(data: bytes, names: tuple[str, ...] = ("inner.csv",)) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, data)
    return buffer.getvalue()


COMPRESSORS = {"": lambda b: b, ".gz": gzip.compress, ".bz2": bz2.compress,
               ".xz": lzma.compress, ".zip": _zip}  # fmt: skip


@pytest.mark.parametrize("compression", list(COMPRESSORS))
@pytest.mark.parametrize("fmt", [".csv", ".parquet"])
def test_a_file_is_read_by_its_suffixes(tmp_path: Path, fmt: str, compression: str) -> None:
    plain = storage.write_frame(FRAME, str(tmp_path / f"plain{fmt}"))
    path = tmp_path / f"day{fmt}{compression}"
    path.write_bytes(COMPRESSORS[compression](Path(plain).read_bytes()))
    before = path.read_bytes()
    pd.testing.assert_frame_equal(storage.read_frame(str(path)), FRAME)
    batches = list(iter_raw_batches(str(path), 2))
    assert [len(b) for b in batches] == [2, 1]
    assert path.read_bytes() == before  # the raw file is read, never changed


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("day.csv.gz", b"a,b\n1,x\n", "cannot be decompressed"),
        ("day.csv.zip", _zip(b"a\n1\n", ("one.csv", "two.csv")), "a batch is one file"),
        ("day.gz", gzip.compress(b"a\n1\n", mtime=0), "name it <name>.csv.gz"),
        ("day.txt", b"a\n1\n", "unknown file type '.txt'"),
    ],
)
def test_a_file_that_is_not_what_its_name_says_is_named(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(storage.StorageError, match=message) as err:
        storage.read_frame(str(path))
    assert str(path) in str(err.value)


def test_a_gzip_file_named_csv_says_how_to_name_it(tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    path.write_bytes(gzip.compress(b"a\n1\n"))
    with pytest.raises(storage.StorageError, match=r"Name it <name>\.csv\.gz"):
        storage.read_frame(str(path))


def test_the_pattern_names_the_days_file_and_reads_the_day_back(tmp_path: Path) -> None:
    root = str(tmp_path / "lake")
    lake = storage.Lake(root, "sales", "exports/sales_{date:%Y%m%d}.csv.gz")
    uri = lake.raw_by_pattern(DAY)
    assert uri == f"{root}/exports/sales_20261103.csv.gz"
    assert lake.raw_day_of(uri) == DAY
    assert lake.raw_day_of(f"{root}/exports/sales_20261103.csv") is None
    assert lake.raw_day_of(f"{root}/exports/sales_20261399.csv.gz") is None  # no such day
    assert lake.raw_folder() == f"{root}/exports"
    with pytest.raises(storage.NotFoundError) as err:
        lake.raw_any(DAY)
    message = str(err.value)
    assert "exports/sales_{date:%Y%m%d}.csv.gz" in message and "2026-11-03" in message
    Path(uri).parent.mkdir(parents=True)
    Path(uri).write_bytes(gzip.compress(b"a\n1\n"))
    (Path(uri).parent / "sales_latest.csv.gz").write_bytes(b"")
    (Path(uri).parent / "README.md").write_text("other exports live here too")
    assert lake.raw_any(DAY) == uri
    days, unmatched = day_states.landed_days(lake)
    assert days == {DAY: uri}
    assert unmatched == [str(Path(uri).parent / "sales_latest.csv.gz")]  # a look-alike


def test_placeholders_in_folders_must_agree(tmp_path: Path) -> None:
    lake = storage.Lake(str(tmp_path), "s", "in/{date:%Y/%m}/{date}.parquet")
    assert lake.raw_day_of(f"{tmp_path}/in/2026/11/2026-11-03.parquet") == DAY
    assert lake.raw_day_of(f"{tmp_path}/in/2026/12/2026-11-03.parquet") is None


def test_an_absolute_or_s3_pattern_is_used_as_is() -> None:
    lake = storage.Lake("/lake", "s", "s3://bucket/drop/{date}.csv")
    assert lake.raw_by_pattern(DAY) == "s3://bucket/drop/2026-11-03.csv"
    assert lake.raw_folder() == "s3://bucket/drop"
    assert lake.raw_day_of("s3://bucket/drop/2026-11-03.csv") == DAY


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("exports/sales.csv", "has no date placeholder"),
        ("exports/{date:%H}.csv", "%H cannot be read back"),
        ("exports/{date}.xlsx", "must end in the file's format"),
        ("exports/{date:%Y%m}.csv", "no placeholder holds a whole date"),
    ],
)
def test_a_bad_pattern_fails_at_load_naming_the_key(pattern: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_settings("local", {"dataset.raw_pattern": pattern})
    assert "'dataset.raw_pattern'" in str(err.value)


@pytest.mark.parametrize("compression", [".gz", ".bz2", ".xz"])
def test_a_compressed_csv_cut_mid_way_is_named_when_the_cut_is_reached(
    tmp_path: Path, compression: str
) -> None:
    """Compressed CSV is decompressed as it is read (never whole in memory), so a fault deep in
    the file surfaces after the first batches: it must still name the file and the fault."""
    rows = pd.DataFrame({"a": range(60_000), "b": [f"value-{i}" for i in range(60_000)]})
    whole = COMPRESSORS[compression](rows.to_csv(index=False).encode())
    path = tmp_path / f"day.csv{compression}"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    read: list[int] = []
    with pytest.raises(storage.StorageError, match="cannot be decompressed") as err:
        for batch in iter_raw_batches(str(path), 5_000):
            read.append(len(batch))
    assert str(path) in str(err.value) and "deliver it again" in str(err.value)
    # gzip and xz hand over rows before the cut; bzip2 decompresses 900 kB blocks whole
    assert read or compression == ".bz2", "streamed: batches before the cut was reached"
