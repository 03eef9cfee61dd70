"""Partitioned scoring on a real Dask cluster equals streaming scoring, and survives a crash.

One LocalCluster (2 worker processes on 127.0.0.1) serves the whole module through
`dask.address`, which is also how a multi-machine cluster is used.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftloop.data.generate import generate_day
from driftloop.flows.score import score
from driftloop.tasks.adapters import registry, storage
from driftloop.tasks.core.training import fit_pipeline, split_frame

pytestmark = pytest.mark.usefixtures("prefect_backend")

START = date(2026, 11, 1)
DAY = START + timedelta(days=10)
FAST_MODEL = {"model.params.max_iter": 30, "dataset.data_docs": False}
LINEAGE_TIME = "scored_at"


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def scaled(workspace_factory, cluster):
    """A workspace with a champion in MLflow and dask.address pointing at the module's cluster.

    The champion is fitted and registered through our registry adapter directly (the train
    flow has its own tests): a small model, logged, registered and given the champion alias.
    """
    ws = workspace_factory("scaled")
    overrides = {**ws.overrides, **FAST_MODEL, "dask.address": cluster}
    settings = ws.settings(**FAST_MODEL)
    frame = generate_day(START, 1500, seed=1)
    split = split_frame(frame, settings.dataset, settings.split)
    pipeline = fit_pipeline(split, settings.dataset, settings.model)
    experiment = registry.configure_tracking(settings.tracking, settings.registry)
    _run, model_uri = registry.log_candidate(
        experiment_id=experiment,
        run_name="scale-test",
        pipeline=pipeline,
        input_example=split.x_train.head(20),
        params={},
        metrics={},
        figures={},
        tags={},
        training_frame=frame.head(20),
        training_source="generated",
        target=settings.dataset.target,
        documents={},
    )
    version = registry.register(model_uri, settings.registry, {})
    registry.set_alias(settings.registry, settings.registry.champion_alias, version)
    return ws, overrides, storage.Lake(ws.lake_root, "loans")


def write_row_groups(uri: str, rows: int, group: int, seed: int = 0) -> pd.DataFrame:
    frame = generate_day(DAY, rows, seed=seed)
    Path(uri).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), uri, row_group_size=group)
    return frame


def parts_of(folder: str) -> list[str]:
    return sorted(os.listdir(folder))


def read_parts(folder: str) -> pd.DataFrame:
    files = storage.list_uris(folder, ".parquet")
    return pd.concat([storage.read_frame(u) for u in files], ignore_index=True)


def test_dask_partitions_equal_the_single_process_result(scaled) -> None:
    _ws, overrides, lake = scaled
    raw = write_row_groups(lake.raw(DAY), 2000, 500)
    single = score(DAY, overrides=overrides, mode="stream")
    fanned = score(DAY, overrides=overrides, mode="partitioned")
    assert fanned.partitions == 4 and fanned.mode == "partitioned"
    assert parts_of(fanned.output_uri) == [f"part-{i:05d}.parquet" for i in range(4)]
    expected = storage.read_frame(single.output_uri).drop(columns=LINEAGE_TIME)
    got = read_parts(fanned.output_uri).drop(columns=LINEAGE_TIME)
    pd.testing.assert_frame_equal(got, expected)
    assert got["loan_id"].tolist() == raw["loan_id"].tolist()
    assert fanned.rows == single.rows == len(raw) - single.rows_quarantined


def test_rerun_after_a_crash_leaves_one_file_per_partition(scaled) -> None:
    ws, overrides, _lake = scaled
    day = DAY + timedelta(days=1)
    raw = generate_day(day, 1800, scenario="corrupt", seed=3)
    folder = Path(ws.lake_root) / "incoming" / str(day)
    folder.mkdir(parents=True)
    raw.iloc[700:710, raw.columns.get_loc("loan_id")] = raw["loan_id"].iloc[:10].to_numpy()
    for i, start in enumerate(range(0, 1800, 600)):  # three files: one partition each
        storage.write_frame(raw.iloc[start : start + 600], str(folder / f"batch-{i}.parquet"))

    first = score(day, source=str(folder), overrides=overrides, mode="partitioned")
    out = first.output_uri
    assert parts_of(out) == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    before = {name: (Path(out) / name).read_bytes() for name in parts_of(out)}

    # the crash: part 2 never finished (its temp file is left), part 1 was cut mid-write by a
    # non-atomic copy, and a part of an earlier, larger input is still there
    (Path(out) / "part-00002.parquet").unlink()
    (Path(out) / ".part-00002.parquet.1a2b3c.tmp").write_bytes(before["part-00002.parquet"][:500])
    (Path(out) / "part-00001.parquet").write_bytes(before["part-00001.parquet"][:700])
    (Path(out) / "part-00007.parquet").write_bytes(before["part-00000.parquet"])

    again = score(day, source=str(folder), overrides=overrides, mode="partitioned")
    assert sorted(os.listdir(out)) == list(before), "exactly one file per partition"
    assert again.partitions_reused == 1
    assert (Path(out) / "part-00000.parquet").read_bytes() == before["part-00000.parquet"]
    redone = read_parts(out)
    assert len(redone) == again.rows == first.rows
    assert again.rows + again.rows_quarantined == len(raw)
    assert redone["loan_id"].is_unique, "ids repeated across files are quarantined once"
    for name in ("part-00001.parquet", "part-00002.parquet"):
        old = pd.read_parquet(pd.io.common.BytesIO(before[name])).drop(columns=LINEAGE_TIME)
        new = storage.read_frame(str(Path(out) / name)).drop(columns=LINEAGE_TIME)
        pd.testing.assert_frame_equal(new, old)


def test_compressed_files_are_scored_in_partitions_like_plain_ones(scaled, tmp_path) -> None:
    """A folder of gzipped CSV and parquet files (and one compressed file alone) scores in
    partitions to the same predictions as the plain file."""
    import gzip

    _ws, overrides, _lake = scaled
    day = DAY + timedelta(days=2)
    raw = generate_day(day, 1200, seed=5)
    plain = storage.write_frame(raw, str(tmp_path / "plain" / "day.parquet"))
    folder = tmp_path / "compressed"
    folder.mkdir()
    halves = (raw.iloc[:600], raw.iloc[600:])
    (folder / "a.csv.gz").write_bytes(gzip.compress(halves[0].to_csv(index=False).encode()))
    half = storage.write_frame(halves[1], str(tmp_path / "b.parquet"))
    (folder / "b.parquet.gz").write_bytes(gzip.compress(Path(half).read_bytes()))

    expected = storage.read_frame(score(day, source=plain, overrides=overrides).output_uri)
    fanned = score(day, source=str(folder), overrides=overrides, mode="partitioned")
    assert fanned.partitions == 2
    got = read_parts(fanned.output_uri)
    columns = ["loan_id", "score", "model_version"]
    pd.testing.assert_frame_equal(got[columns], expected[columns])

    alone = tmp_path / "day.csv.gz"
    alone.write_bytes(gzip.compress(raw.to_csv(index=False).encode()))
    single = score(day, source=str(alone), overrides=overrides, mode="partitioned")
    assert single.partitions == 1
    pd.testing.assert_frame_equal(read_parts(single.output_uri)[columns], expected[columns])
