"""Benchmark: partitioned scoring on a Dask cluster with 1 worker vs 2 workers.

The same code path as the score flow's partitioned mode: a Prefect subflow on
`dask_task_runner(...)` (pointed at the cluster through `dask.address`, as a multi-machine
cluster would be) fans out `partitions.inspect`, then `partitions.score_one` per partition
(row groups of one generated parquet file), each writing its own part file. For each worker
count a LocalCluster (worker processes, 1 thread each, 127.0.0.1) is started, warmed up with
one untimed run (imports, model load per worker), then timed `--reps` times; medians,
rows/s and the speed-up are printed. A Prefect server is started for the run and stopped after.

    python benchmarks/scale_out.py                        # 1M rows, 8 partitions, 1 vs 2 workers
    python benchmarks/scale_out.py --rows 4000 --partitions 2 --reps 1 --train-rows 800  # smoke
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import pickle
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.cache_policies import NONE

from driftloop.configs.settings import DaskSettings, Settings, load_settings
from driftloop.data.generate import generate_day
from driftloop.tasks.adapters.partitions import Partition, PartitionKeys, inspect, plan, score_one
from driftloop.tasks.adapters.registry import ModelVersionInfo
from driftloop.tasks.adapters.scaleout import dask_task_runner
from driftloop.tasks.adapters.streaming import cross_partition_duplicates
from driftloop.tasks.core.scoring import PredictionMeta, now_utc

BENCH_MODEL = ModelVersionInfo(name="bench", version="1", run_id="bench", source="", tags={})


def _scoring_bench() -> Any:
    spec = importlib.util.spec_from_file_location(
        "bench_scoring", Path(__file__).with_name("scoring.py")
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_input(folder: Path, rows: int, partitions: int) -> Path:
    path = folder / f"input-{rows}-{partitions}.parquet"
    if not path.exists():
        frame = generate_day(_scoring_bench().DAY, rows, seed=0)
        group = -(-rows // partitions)
        pq.write_table(
            pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=group
        )
    return path


def worker_model(model_path: str) -> Any:
    """The pickled model, loaded once per Dask worker process (like `tasks.score.scoring_model`)."""
    from distributed import get_worker

    worker = get_worker()
    cache: dict[str, Any] = worker.__dict__.setdefault("_driftloop_bench_models", {})
    if model_path not in cache:
        cache[model_path] = pickle.loads(Path(model_path).read_bytes())
    return cache[model_path]


@task(cache_policy=NONE)
def inspect_part(part: Partition, settings: Settings) -> PartitionKeys:
    return inspect(part, settings.dataset, settings.scoring.batch_rows, digest="bench")


@task(cache_policy=NONE)
def score_part(
    part: Partition,
    keys: PartitionKeys,
    prior: dict[str, Any],
    settings: Settings,
    model: str,
    out: str,
) -> int:
    meta = PredictionMeta(
        model_name="bench",
        model_version="1",
        model_run_id="bench",
        input_uri=part.uri,
        input_digest=keys.digest,
        scored_at=now_utc(),
    )
    done = score_one(
        part,
        keys,
        prior,
        model=lambda: worker_model(model),
        champion=BENCH_MODEL,
        settings=settings,
        output_uri=os.path.join(out, part.name),
        quarantine_uri=os.path.join(out, "quarantine", part.name),
        meta=meta,
    )
    return done.rows_scored


@flow(name="bench-score-partitions")
def fan_out(parts: list[Partition], settings: Settings, model: str, out: str) -> int:
    inspected = [inspect_part.submit(p, settings) for p in parts]
    keys = [f.result() for f in inspected]
    priors = cross_partition_duplicates([k.hashes for k in keys])
    futures = [
        score_part.submit(p, k, pr, settings, model, out)
        for p, k, pr in zip(parts, keys, priors, strict=True)
    ]
    return sum(f.result() for f in futures)


def timed_runs(
    workers: int,
    parts: list[Partition],
    settings: Settings,
    model: Path,
    folder: Path,
    reps: int,
    warmup: int = 1,
) -> list[float]:
    from distributed import LocalCluster

    from driftloop.tasks.adapters.scaleout import local_cluster_kwargs

    dask = DaskSettings(n_workers=workers, threads_per_worker=1)
    times = []
    with LocalCluster(**local_cluster_kwargs(dask)) as cluster:
        runner = dask_task_runner(DaskSettings(address=cluster.scheduler_address))
        run = fan_out.with_options(task_runner=runner)
        for rep in range(warmup + reps):  # warm-up runs (imports, model load) are not timed
            out = folder / f"out-{workers}w-{rep}"
            start = time.perf_counter()
            rows = run(parts, settings, str(model), str(out))
            if rep >= warmup:
                times.append(time.perf_counter() - start)
            shutil.rmtree(out, ignore_errors=True)
            print(
                f"  {workers} worker(s), run {rep}{' (warm-up)' if rep < warmup else ''}: "
                f"{time.perf_counter() - start:.2f} s, {rows:,} rows",
                flush=True,
            )
    return times


@contextlib.contextmanager
def prefect_server(folder: Path) -> Iterator[None]:
    """A Prefect server of our own on a free port for the benchmark's runs, stopped after."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from driftloop.deployments.stack import Stack, StackConfig, free_port

    stack = Stack(StackConfig(home=folder / "stack", prefect_port=free_port(), database="sqlite"))
    stack.start_prefect()
    try:
        with temporary_settings(updates={PREFECT_API_URL: stack.config.api_url}):
            yield
            from prefect.logging.handlers import APILogHandler

            APILogHandler().flush()  # the runs' last logs, before their server goes away
    finally:
        stack.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=8, help="row groups = partitions")
    parser.add_argument("--reps", type=int, default=2, help="timed runs per worker count")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per worker count")
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--workdir", default=None, help="keeps generated inputs between runs")
    args = parser.parse_args()

    bench = _scoring_bench()
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="driftloop-bench-scale-out-"))
    folder.mkdir(parents=True, exist_ok=True)
    settings = load_settings("local", {"dataset.data_docs": False})
    print(f"machine: {bench.machine()}")
    model = bench.make_model(folder, args.train_rows)
    data = make_input(folder, args.rows, args.partitions)
    parts = plan(str(data), settings.scoring.partition_row_groups)
    print(
        f"input: {args.rows:,} rows in {len(parts)} partitions; model fitted on "
        f"{args.train_rows:,} rows; Dask workers are processes with 1 thread each"
    )
    medians: dict[int, float] = {}
    with prefect_server(folder):
        for workers in (int(w) for w in args.workers.split(",")):
            medians[workers] = statistics.median(
                timed_runs(workers, parts, settings, model, folder, args.reps, args.warmup)
            )
    print("\n| Dask workers | median s | rows/s | speed-up vs 1 worker |")
    print("|---:|---:|---:|---:|")
    base = medians.get(1)
    for workers, seconds in medians.items():
        speed = f"{base / seconds:.2f}x" if base else "-"
        print(f"| {workers} | {seconds:.2f} | {args.rows / seconds:,.0f} | {speed} |")


if __name__ == "__main__":
    main()
