"""Benchmark: driftloop's streaming scorer against a bare read -> predict_proba -> write script.

What is compared (same fitted model, same generated parquet in, parquet out):

- bare: ``pd.read_parquet -> model.predict_proba -> DataFrame.to_parquet`` on the whole file;
- driftloop: `driftloop.tasks.adapters.streaming.score_stream`, the function the score flow's
  ``score-stream`` task runs: batch by batch it validates the contract (in arrow for a clean
  batch, else with pandas and Great Expectations; quarantine, uniqueness across the file),
  predicts, adds the lineage columns and appends to an atomically published parquet file.
  The flow around it adds a constant (~2.5 s against a running Prefect server, see
  DESIGN.md), not a per-row cost; Data Docs are off here.

Every run is a fresh subprocess (alternating bare / driftloop, `--reps` times per size), which
times its own work (imports excluded) and reports its peak RSS (`getrusage`), so memory is
never shared between runs. Printed: medians, the throughput ratio driftloop/bare (goal >= 0.9
at 1M rows), rows/s, peak RSS per size and the 10M/1M peak RSS ratio (goal <= 1.5), plus where
driftloop's time went (read, validate on the prefetch thread, predict, write).

    python benchmarks/scoring.py                                  # 100k, 1M, 10M rows
    python benchmarks/scoring.py --sizes 2000 --reps 1 --train-rows 800   # smoke run (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

DAY = date(2026, 11, 1)
GENERATE_ROWS = 1_000_000  # rows generated (and one row group written) at a time


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_input(folder: Path, rows: int) -> Path:
    """`rows` generated loan applications in one parquet file, built 1M rows at a time."""
    from driftloop.data.generate import generate_day

    path = folder / f"input-{rows}.parquet"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    writer = None
    try:
        for i, start in enumerate(range(0, rows, GENERATE_ROWS)):
            n = min(GENERATE_ROWS, rows - start)
            # one day per million rows: ids stay unique across the file
            frame = generate_day(DAY + timedelta(days=i), n, seed=i)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=GENERATE_ROWS)
    finally:
        if writer is not None:
            writer.close()
    tmp.rename(path)
    return path


def make_model(folder: Path, train_rows: int) -> Path:
    """The configured estimator fitted once on generated rows, pickled for every run."""
    from driftloop.configs.settings import load_settings
    from driftloop.data.generate import generate_day
    from driftloop.tasks.core.training import fit_pipeline, split_frame

    path = folder / f"model-{train_rows}.pkl"
    if path.exists():
        return path
    settings = load_settings("local")
    frame = generate_day(DAY - timedelta(days=1), train_rows, seed=99)
    model = fit_pipeline(
        split_frame(frame, settings.dataset, settings.split), settings.dataset, settings.model
    )
    path.write_bytes(pickle.dumps(model))
    return path


# ---------------------------------------------------------------- one run (a subprocess)


def run_bare(input_path: str, model_path: str, out: str) -> dict[str, Any]:
    import pandas as pd

    from driftloop.configs.settings import load_settings

    features = load_settings("local").dataset.feature_columns
    model = pickle.loads(Path(model_path).read_bytes())
    start = time.perf_counter()
    frame = pd.read_parquet(input_path)
    read = time.perf_counter()
    proba = model.predict_proba(frame[features])[:, 1]
    predicted = time.perf_counter()
    frame["score"] = proba
    frame["prediction"] = (proba >= 0.5).astype("int64")
    frame.to_parquet(out, index=False)
    end = time.perf_counter()
    phases = {"read": read - start, "predict": predicted - read, "write": end - predicted}
    return {"seconds": end - start, "rows": len(frame), "phases": phases}


def run_driftloop(input_path: str, model_path: str, out: str, batch_rows: int) -> dict[str, Any]:
    from driftloop.configs.settings import load_settings
    from driftloop.tasks.adapters.streaming import score_stream
    from driftloop.tasks.core.scoring import PredictionMeta

    settings = load_settings("local")
    dataset = settings.dataset.model_copy(update={"data_docs": False})
    model = pickle.loads(Path(model_path).read_bytes())
    import great_expectations  # noqa: F401 - imports are not timed, on either side

    now = datetime.now(UTC)
    meta = PredictionMeta(
        model_name="bench",
        model_version="1",
        model_run_id="bench",
        input_uri=input_path,
        input_digest="0" * 64,
        scored_at=now,
    )
    start = time.perf_counter()
    outcome = score_stream(
        source=input_path,
        model=model,
        dataset=dataset,
        meta=meta,
        output_uri=out,
        quarantine_uri=out + ".quarantine.parquet",
        now=max(now, datetime(2027, 1, 1, tzinfo=UTC)),  # generated days are never "future"
        batch_rows=batch_rows,
        chunk_rows=settings.storage.score_chunk_rows,
        prefetch_batches=settings.scoring.prefetch_batches,
    )
    seconds = time.perf_counter() - start
    if not outcome.result.success:
        problems = outcome.result.blocking_failures
        raise SystemExit(f"the benchmark input failed its contract: {problems}")
    return {"seconds": seconds, "rows": outcome.result.rows_in, "phases": outcome.seconds}


def one_run(args: argparse.Namespace) -> None:
    if args.run_one == "bare":
        report = run_bare(args.input, args.model, args.out)
    else:
        report = run_driftloop(args.input, args.model, args.out, args.batch_rows)
    report["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(report))


def spawn(kind: str, input_path: Path, model: Path, out: Path, batch_rows: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--run-one",
        kind,
        "--input",
        str(input_path),
        "--model",
        str(model),
        "--out",
        str(out),
        "--batch-rows",
        str(batch_rows),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{kind} run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


# ---------------------------------------------------------------- the report


def machine() -> str:
    import psutil

    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} logical CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000", help="rows, comma-separated")
    parser.add_argument("--reps", type=int, default=3, help="alternating runs per side and size")
    parser.add_argument(
        "--large-reps",
        type=int,
        default=1,
        help="runs per side for sizes above 1M (each takes minutes)",
    )
    parser.add_argument(
        "--bare-max-rows",
        type=int,
        default=None,
        help="skip the bare script above this size (driftloop's memory at 10M is the point)",
    )
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument(
        "--batch-rows",
        type=int,
        default=None,
        help="driftloop batch size (default: scoring.batch_rows)",
    )
    parser.add_argument("--workdir", default=None, help="keeps generated inputs between runs")
    parser.add_argument("--run-one", choices=["bare", "driftloop"], help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        one_run(args)
        return

    from driftloop.configs.settings import load_settings

    batch_rows = args.batch_rows or load_settings("local").scoring.batch_rows
    sizes = [int(s) for s in args.sizes.split(",")]
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="driftloop-bench-scoring-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(
        f"model: configured estimator fitted on {args.train_rows:,} rows; "
        f"driftloop batch_rows={batch_rows:,}; workdir {folder}"
    )
    model = make_model(folder, args.train_rows)
    rows_out: list[dict[str, Any]] = []
    for size in sizes:
        data = make_input(folder, size)
        reps = args.reps if size <= 1_000_000 else args.large_reps
        runs: dict[str, list[dict[str, Any]]] = {"bare": [], "driftloop": []}
        for rep in range(reps):
            order = ("bare", "driftloop") if rep % 2 == 0 else ("driftloop", "bare")
            for kind in order:
                if kind == "bare" and args.bare_max_rows and size > args.bare_max_rows:
                    continue
                out = folder / f"out-{kind}-{size}.parquet"
                runs[kind].append(spawn(kind, data, model, out, batch_rows))
                out.unlink(missing_ok=True)
        row = {"rows": size, "reps": reps}
        for kind, results in runs.items():
            nan = float("nan")  # a skipped side
            row[f"{kind}_s"] = statistics.median(r["seconds"] for r in results) if results else nan
            row[f"{kind}_rss"] = (
                statistics.median(r["peak_rss_mb"] for r in results) if results else nan
            )
        for kind in ("bare", "driftloop"):
            phases: dict[str, float] = {}
            for r in runs[kind]:
                for name, value in r["phases"].items():
                    phases[name] = phases.get(name, 0.0) + value / len(runs[kind])
            row[f"{kind}_phases"] = phases
        phases = row["driftloop_phases"]
        row["ratio"] = row["bare_s"] / row["driftloop_s"]
        # validation runs inline (prefetch off), so its time can be taken out: what the rest of
        # driftloop (batching, lineage, atomic writer) costs against the bare script
        row["ratio_no_validation"] = row["bare_s"] / (
            row["driftloop_s"] - phases.get("validate", 0)
        )
        rows_out.append(row)
        print_row(row)
    print_table(rows_out)


def print_row(row: dict[str, Any]) -> None:
    def phases(kind: str) -> str:
        return ", ".join(f"{k} {v:.2f} s" for k, v in sorted(row[f"{kind}_phases"].items()))

    print(
        f"  {row['rows']:>11,} rows: bare {row['bare_s']:.2f} s ({phases('bare')}), "
        f"driftloop {row['driftloop_s']:.2f} s ({phases('driftloop')})",
        flush=True,
    )


def print_table(rows: list[dict[str, Any]]) -> None:
    print()
    print(
        "| rows | reps | bare s | driftloop s | throughput ratio driftloop/bare "
        "| same, contract validation excluded | bare rows/s "
        "| driftloop rows/s | peak RSS bare MB | peak RSS driftloop MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['rows']:,} | {r['reps']} | {r['bare_s']:.2f} | {r['driftloop_s']:.2f} "
            f"| {r['ratio']:.2f} | {r['ratio_no_validation']:.2f} | {r['rows'] / r['bare_s']:,.0f} "
            f"| {r['rows'] / r['driftloop_s']:,.0f} | {r['bare_rss']:.0f} "
            f"| {r['driftloop_rss']:.0f} |"
        )
    by_size = {r["rows"]: r for r in rows}
    if 1_000_000 in by_size and 10_000_000 in by_size:
        ratio = by_size[10_000_000]["driftloop_rss"] / by_size[1_000_000]["driftloop_rss"]
        bare = by_size[10_000_000]["bare_rss"] / by_size[1_000_000]["bare_rss"]
        print(f"\npeak RSS 10M / 1M rows: driftloop {ratio:.2f}x (goal <= 1.5), bare {bare:.2f}x")


if __name__ == "__main__":
    main()
