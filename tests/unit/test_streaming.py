"""Streaming scoring gives exactly what whole-frame scoring gave, in bounded batches."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftloop.configs.settings import ModelSettings, load_settings
from driftloop.data.generate import generate_day
from driftloop.tasks.adapters import storage, streaming
from driftloop.tasks.adapters.streaming import (
    OUTCOME_KEY,
    HashSet64,
    cross_partition_duplicates,
    hash_values,
    score_stream,
    sorted_unique,
)
from driftloop.tasks.adapters.validation import validate_frame
from driftloop.tasks.core.contract import ROW_COLUMN, validate_table
from driftloop.tasks.core.scoring import PredictionMeta, predict_chunked
from driftloop.tasks.core.training import fit_pipeline, split_frame

NOW = datetime(2026, 11, 5, tzinfo=UTC)
DAY = date(2026, 11, 3)


@pytest.fixture(scope="module")
def fitted():
    settings = load_settings("local")
    dataset = settings.dataset.model_copy(update={"data_docs": False})
    small = ModelSettings(
        estimator=settings.model.estimator,
        params={"max_iter": 20, "max_depth": 3, "random_state": 0},
        preprocessing=settings.model.preprocessing,
    )
    split = split_frame(generate_day(date(2026, 11, 1), 1500, seed=1), dataset, settings.split)
    return dataset, fit_pipeline(split, dataset, small)


def meta(uri: str) -> PredictionMeta:
    return PredictionMeta(
        model_name="m",
        model_version="3",
        model_run_id="run",
        input_uri=uri,
        input_digest="d" * 64,
        scored_at=NOW,
    )


def corrupt_input(tmp_path: Path) -> tuple[str, pd.DataFrame]:
    """Bad rows of every kind, a repeat across batches, a repeat inside a batch, 3 row groups."""
    raw = generate_day(DAY, 2400, scenario="corrupt", seed=4)
    raw = raw.drop(columns=["default"])
    raw.loc[2000, "loan_id"] = raw.loc[15, "loan_id"]  # repeats a row of the first batch
    raw.loc[1200, "loan_id"] = raw.loc[1190, "loan_id"]  # repeats a row of its own batch
    raw.loc[30, "age"] = 250  # quarantined for age, and its id is repeated later
    raw.loc[2300, "loan_id"] = raw.loc[30, "loan_id"]
    uri = str(tmp_path / "in.parquet")
    pq.write_table(pa.Table.from_pandas(raw, preserve_index=False), uri, row_group_size=800)
    return uri, raw


def test_stream_equals_whole_frame_scoring(tmp_path, fitted) -> None:
    dataset, model = fitted
    uri, raw = corrupt_input(tmp_path)
    whole = validate_frame(storage.read_frame(uri), dataset, with_target=False, source=uri, now=NOW)
    expected = predict_chunked(model, whole.valid, dataset, meta(uri), 500)

    out = str(tmp_path / "out" / "pred.parquet")
    quarantine = str(tmp_path / "q.parquet")
    done = score_stream(
        source=uri,
        model=model,
        dataset=dataset,
        meta=meta(uri),
        output_uri=out,
        quarantine_uri=quarantine,
        now=NOW,
        batch_rows=700,  # batches straddle the row groups
        chunk_rows=500,
        prefetch_batches=1,
    )
    got = storage.read_frame(out)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert list(got.columns) == list(expected.columns)
    assert done.rows_scored == len(expected) == done.result.rows_valid
    r, w = done.result, whole.result
    counts = ("rows_in", "rows_valid", "rows_quarantined")
    assert [getattr(r, c) for c in counts] == [getattr(w, c) for c in counts]
    assert r.rows_in == r.rows_valid + r.rows_quarantined == len(raw)
    assert r.success == w.success
    q = storage.read_frame(quarantine)
    assert sorted(q[ROW_COLUMN]) == sorted(whole.quarantine[ROW_COLUMN])
    assert {2000, 1200, 30, 2300} <= set(q[ROW_COLUMN])
    assert "loan_id" in q.set_index(ROW_COLUMN).loc[2300, "_dq_reasons"]
    unique = "expect_column_values_to_be_unique"
    counts = [next(o for o in x.outcomes if o.expectation == unique) for x in (r, w)]
    assert counts[0].unexpected_count == counts[1].unexpected_count >= 3
    assert not Path(out).with_name(".pred.parquet").exists()
    assert [p.name for p in Path(out).parent.iterdir()] == ["pred.parquet"], "no temp left"


def test_clean_batches_stay_in_arrow_and_write_what_pandas_writes(
    tmp_path, fitted, monkeypatch
) -> None:
    """Clean batches skip pandas (`validate_table`); a clean batch that repeats an id of an
    earlier one goes the pandas way and quarantines the repeat. Either way the files are the
    ones the all-pandas path writes, byte for byte."""
    dataset, model = fitted
    raw = generate_day(DAY, 2400, seed=6)
    raw.loc[2000, "loan_id"] = raw.loc[15, "loan_id"]  # batch 5 repeats a row of batch 1
    uri = str(tmp_path / "in.parquet")
    pq.write_table(pa.Table.from_pandas(raw, preserve_index=False), uri, row_group_size=800)
    in_pandas = {True: 0, False: 0}

    def arrow_unless_off(*args, **kwargs):
        return validate_table(*args, **kwargs) if arrow else None

    def counted(*args, **kwargs):
        in_pandas[arrow] += 1
        return validate_frame(*args, **kwargs)

    monkeypatch.setattr(streaming, "validate_table", arrow_unless_off)
    monkeypatch.setattr(streaming, "validate_frame", counted)
    outcomes, files = {}, {}
    out, quarantine = tmp_path / "pred.parquet", tmp_path / "q.parquet"
    for arrow in (True, False):
        outcomes[arrow] = score_stream(
            source=uri,
            model=model,
            dataset=dataset,
            meta=meta(uri),
            output_uri=str(out),
            quarantine_uri=str(quarantine),
            now=NOW,
            batch_rows=700,
            chunk_rows=500,
        )
        files[arrow] = [out.read_bytes(), quarantine.read_bytes()]  # the footers name them
        q = storage.read_frame(str(quarantine))
        out.unlink()
        quarantine.unlink()
    assert in_pandas == {True: 1, False: 6}  # 700 + 100 rows per row group; one repeats
    fast, slow = outcomes[True], outcomes[False]
    assert fast.result == slow.result and fast.rows_scored == slow.rows_scored == 2399
    assert files[True] == files[False]
    assert q[ROW_COLUMN].tolist() == [2000]
    assert "repeats an earlier row" in q["_dq_reasons"].iloc[0]


def test_blocked_file_writes_quarantine_but_no_predictions(tmp_path, fitted) -> None:
    dataset, model = fitted
    raw = generate_day(DAY, 300, seed=2).drop(columns=["default"])
    raw.loc[200:, "age"] = 300  # a third of the rows, all in the last batch
    uri = str(tmp_path / "bad.parquet")
    storage.write_frame(raw, uri)
    out = str(tmp_path / "pred.parquet")
    done = score_stream(
        source=uri,
        model=model,
        dataset=dataset,
        meta=meta(uri),
        output_uri=out,
        quarantine_uri=str(tmp_path / "q.parquet"),
        now=NOW,
        batch_rows=150,
        chunk_rows=100,
    )
    assert not done.result.success
    assert "100 of 300 rows" in " ".join(done.result.blocking_failures)
    assert done.output_uri is None and not Path(out).exists()
    assert len(storage.read_frame(done.quarantine_uri)) == 100


def test_small_last_batch_is_judged_with_the_file(tmp_path, fitted) -> None:
    dataset, model = fitted  # min_rows is 50: a last batch of 10 rows must not block
    uri = str(tmp_path / "in.parquet")
    storage.write_frame(generate_day(DAY, 260, seed=3), uri)
    done = score_stream(
        source=uri,
        model=model,
        dataset=dataset,
        meta=meta(uri),
        output_uri=None,
        quarantine_uri=str(tmp_path / "q.parquet"),
        now=NOW,
        batch_rows=125,
        chunk_rows=100,
    )
    assert done.result.success, done.result.blocking_failures
    assert done.rows_scored == 260 and done.output_uri is None


def test_csv_input_streams_in_chunks(tmp_path, fitted) -> None:
    dataset, model = fitted
    frame = generate_day(DAY, 300, seed=5)
    uri = str(tmp_path / "in.csv")
    frame.to_csv(uri, index=False)
    out = str(tmp_path / "pred.parquet")
    done = score_stream(
        source=uri,
        model=model,
        dataset=dataset,
        meta=meta(uri),
        output_uri=out,
        quarantine_uri=str(tmp_path / "q.parquet"),
        now=NOW,
        batch_rows=160,
        chunk_rows=64,
        prefetch_batches=0,
    )
    assert done.result.success
    assert storage.read_frame(out)["loan_id"].tolist() == frame["loan_id"].tolist()


def test_hash_set_membership() -> None:
    seen = HashSet64()
    for start in range(0, 1000, 100):
        seen.add(np.arange(start, start + 100, dtype=np.uint64) * 7)
    probe = np.array([0, 7, 6993, 6994, 7000], dtype=np.uint64)
    assert seen.contains(probe).tolist() == [True, True, True, False, False]
    assert len(seen.values()) == 1000


@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=60))
def test_sorted_unique_is_numpy_unique(values: list[int]) -> None:
    array = np.array(values, dtype=np.uint64)
    assert sorted_unique(array).tolist() == np.unique(array).tolist()


def test_hashes_do_not_depend_on_how_pandas_hashes_them() -> None:
    """Partitions hashed in different processes must agree (ids repeated across partitions)."""
    ids = pd.Series(["L1", "L2", "L1", "x" * 300], dtype=object)
    default = pd.util.hash_pandas_object(ids, index=False).to_numpy(dtype=np.uint64)
    assert hash_values(ids).tolist() == default.tolist()


@pytest.mark.parametrize(
    ("partitions", "expected"),
    [
        ([["a", "b"], ["c"], ["d"]], [[], [], []]),
        ([["a", "b"], ["b", "c"], ["c", "a", "e"]], [[], ["b"], ["a", "c"]]),
        ([["a", "a"], ["a"]], [[], ["a"]]),  # a repeat inside a partition is its own business
        ([[], ["x"]], [[], []]),
    ],
)
def test_cross_partition_duplicates(partitions, expected) -> None:
    def h(values: list[str]) -> np.ndarray:
        return hash_values(pd.Series(values, dtype=object))

    found = cross_partition_duplicates([{"loan_id": h(p)} for p in partitions])
    got = [sorted(d["loan_id"].tolist()) for d in found]
    assert got == [sorted(h(e).tolist()) for e in expected]


def test_stream_from_and_to_s3(s3_bucket, tmp_path, fitted) -> None:
    """Ranged reads of the input, one upload of the output, footer and delete on moto's S3."""
    dataset, model = fitted
    frame = generate_day(DAY, 400, seed=6)
    local = str(tmp_path / "in.parquet")
    storage.write_frame(frame, local)
    source = storage.write_bytes(f"{s3_bucket}/raw/in.parquet", Path(local).read_bytes())
    out = f"{s3_bucket}/predictions/m/{DAY}.parquet"
    done = score_stream(
        source=source,
        model=model,
        dataset=dataset,
        meta=meta(source),
        output_uri=out,
        quarantine_uri=f"{s3_bucket}/quarantine/q.parquet",
        now=NOW,
        batch_rows=250,
        chunk_rows=100,
    )
    assert done.output_uri == out and done.result.success
    got = storage.read_frame(out)
    assert got["loan_id"].tolist() == frame["loan_id"].tolist()
    assert storage.parquet_key_value(out, OUTCOME_KEY) is not None
    assert storage.parquet_key_value(f"{s3_bucket}/missing.parquet", OUTCOME_KEY) is None
    assert storage.delete(out) and not storage.exists(out)
