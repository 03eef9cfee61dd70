"""Benchmark: the drift check's peak memory on a 10M-row window against a 1M-row one.

Why: issue 19 asks a check on a 10M-row window to stay within 1.5x of the 1M peak. Each size
is written as a day's predictions-like parquet (the generator's covariate shift, 1M-row row
groups), then read and summarised in a fresh subprocess exactly as `check_drift` does it
(`frames_of` over the window's files, then `window_stats` of the monitored columns), so each
peak RSS is its own. The bare baseline in the same run is pyarrow reading the same file whole.

    python benchmarks/drift_window.py                    # 1M and 10M rows (~4 GB, a few minutes)
    python benchmarks/drift_window.py --rows 20000 200000  # smoke run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

STEP = 1_000_000


def _write(path: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from driftloop.data.generate import generate_day

    writer = None
    for start in range(0, rows, STEP):
        frame = generate_day(
            date(2026, 11, 2), min(STEP, rows - start), seed=start + 7, scenario="covariate_shift"
        )
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def measure(variant: str, path: str) -> dict[str, float]:
    """One variant in this (fresh) process: its rows, seconds and peak RSS."""
    start = time.perf_counter()
    if variant == "bare":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).num_rows
    else:
        from driftloop.configs.settings import load_settings
        from driftloop.tasks.check_drift import frames_of
        from driftloop.tasks.core.monitoring import window_stats

        settings = load_settings("local")
        frame = frames_of([path])
        window_stats(
            frame,
            numeric=settings.dataset.monitored_numeric,
            categorical=settings.dataset.monitored_categorical,
            quantiles=settings.drift.quantiles,
        )
        rows = len(frame)
    return {
        "rows": rows,
        "seconds": time.perf_counter() - start,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _spawn(variant: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", variant, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant} on {path.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs=2, default=[1_000_000, 10_000_000])
    parser.add_argument("--measure", nargs=2, metavar=("VARIANT", "FILE"))
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    small, large = args.rows
    results: dict[str, dict[int, dict[str, float]]] = {"bare": {}, "driftloop": {}}
    with tempfile.TemporaryDirectory(prefix="driftloop-bench-window-") as tmp:
        for rows in (small, large):
            path = Path(tmp) / f"window-{rows}.parquet"
            _write(path, rows)
            for variant in results:
                results[variant][rows] = _spawn(variant, path)
    print(f"Drift check window statistics, {small:,} vs {large:,} rows (peak RSS, fresh process)")
    print()
    print(f"| variant | {small:,} rows: s / peak MB | {large:,} rows: s / peak MB | peak ratio |")
    print("|---|---:|---:|---:|")
    for variant, by_rows in results.items():
        a, b = by_rows[small], by_rows[large]
        print(
            f"| {variant} | {a['seconds']:.1f} / {a['peak_mb']:.0f} | "
            f"{b['seconds']:.1f} / {b['peak_mb']:.0f} | {b['peak_mb'] / a['peak_mb']:.2f}x |"
        )
    print()
    print(
        "driftloop: `frames_of` + `window_stats`, as `check_drift` reads and summarises a window; "
        "bare: pyarrow reading the same file whole. Target (issue 19): driftloop's ratio <= 1.5x."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
