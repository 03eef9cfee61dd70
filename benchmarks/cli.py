"""Benchmark: what a `driftloop` command costs over the bare work it does.

Why: people run single steps from the shell (`driftloop ingest DAY`), and a backfill script may
run hundreds. The target: a command on a 2,000-row day costs at most 3 s more than a bare script
that imports pandas, reads the file and writes parquet. The commands share the local server
(started by the first command, not timed: `make down` or the idle watcher stops it), so what is
left is Python's imports, the flow run's API calls and the contract's checks.

Both sides run as fresh processes, alternating, on the same CSV days (each command ingests a day
of its own: a curated day is final). Medians are printed with the difference and the ratio.

    python benchmarks/cli.py              # 7 runs of each
    python benchmarks/cli.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

START = date(2025, 1, 1)
BARE = "import sys, pandas as pd; pd.read_csv(sys.argv[1]).to_parquet(sys.argv[2])"


def _timed(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"{' '.join(argv)} failed (exit {done.returncode})")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args(argv)
    from driftloop.data.generate import write_batches
    from driftloop.deployments.stack import Stack, StackConfig, free_port

    with tempfile.TemporaryDirectory(prefix="driftloop-cli-bench-") as tmp:
        home = Path(tmp)
        lake = home / "lake"
        write_batches(str(lake), "loans", START, args.runs + 1, args.rows, fmt="csv")
        env = {
            **os.environ,
            "DRIFTLOOP_STACK_HOME": str(home / "stack"),
            "DRIFTLOOP_PREFECT_PORT": str(free_port()),
            "DRIFTLOOP_LOCAL_SERVER": "on",
            "DRIFTLOOP_OVERRIDES": json.dumps(
                {
                    "storage.root": str(lake),
                    "storage.raw_format": "csv",
                    "tracking.uri": f"sqlite:///{home / 'mlflow.db'}",
                    "tracking.artifact_location": str(home / "artifacts"),
                }
            ),
        }
        env.pop("PREFECT_API_URL", None)
        cli = [str(Path(sys.executable).with_name("driftloop")), "ingest"]
        try:
            first = _timed([*cli, str(START)], env)  # starts the local server
            ours, bare = [], []
            for i in range(1, args.runs + 1):
                day = START + timedelta(days=i)
                raw = lake / "raw" / "loans" / f"{day}.csv"
                bare.append(_timed([sys.executable, "-c", BARE, str(raw), str(home / "x.pq")], env))
                ours.append(_timed([*cli, str(day)], env))
        finally:
            stack_env = {k: v for k, v in env.items() if k.startswith("DRIFTLOOP_")}
            Stack(StackConfig.from_env(stack_env)).down()
    b, o = statistics.median(bare), statistics.median(ours)
    print(
        f"`driftloop ingest` of a {args.rows}-row CSV day vs a bare pandas read + write, "
        f"medians of {args.runs}"
    )
    print(f"  first command (starts the local server): {first:6.2f} s")
    print(f"  bare pandas script:                      {b:6.2f} s")
    print(f"  driftloop ingest (server running):       {o:6.2f} s")
    print(f"  overhead {o - b:+.2f} s (target <= 3 s), ratio {o / b:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
