"""Benchmark: a year of daily batches through the real flows, against the bare libraries' work.

Why: a new deployment backfills its history, and an outage is caught up, through `process` (the
`driftloop backfill` command): each day is ingested (contract + Great Expectations), scored by the
champion of that moment and checked for drift, and the policy retrains when it decides to. The
target is 365 days of 2,000 rows in at most 15 minutes on 2 cores, with what is paid once per
process (imports, config, the champion's model, Great Expectations' context) paid once.

Both sides get the same raw files (seeded loan data, a covariate shift from mid-year, labels
delivered each day), written before timing starts. driftloop's side is one `process` run over the
whole range on the embedded defaults (Prefect's temporary server, SQLite MLflow, a local lake),
in a fresh subprocess. The bare side, in its own subprocess, does each day's library work with
nothing around it: read the raw parquet and write it back, `predict_proba` with a model trained
once on the first days and write the predictions, and a two-sample Kolmogorov-Smirnov test per
numeric feature on the window against the training data. Its retrains are not counted.

    python benchmarks/year.py                 # 365 days x 2,000 rows (about 11 minutes, quiet)
    python benchmarks/year.py --days 20       # a smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

START = date(2025, 1, 1)


def _driftloop(home: Path, days: int) -> dict[str, Any]:
    """One backfill over every day, as `driftloop backfill` runs it on the local server."""
    import os

    from driftloop.deployments.stack import Stack, StackConfig, free_port, local_server

    config = StackConfig(home=home / "stack", prefect_port=free_port())
    server_began = time.perf_counter()
    os.environ["PREFECT_API_URL"] = local_server(config, idle_minutes=0)
    os.environ["PREFECT_HOME"] = str(config.home / "prefect")
    server = time.perf_counter() - server_began
    began = time.perf_counter()
    from driftloop.flows.cli import embedded_runs, quiet_environment

    quiet_environment()
    from driftloop.flows.demo import demo_overrides
    from driftloop.flows.process import process
    from driftloop.tasks.adapters import registry

    imported = time.perf_counter() - began
    overrides = demo_overrides(home)
    with embedded_runs():
        summary = process(
            str(START), str(START + timedelta(days=days - 1)), True, "local", overrides
        )
    from driftloop.configs.settings import load_settings

    settings = load_settings("local", overrides)
    registry.configure_tracking(settings.tracking, settings.registry)
    versions = registry.list_versions(settings.registry)
    seconds = time.perf_counter() - began
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all()  # while the server is up, not at exit against a stopped one
    EventsWorker.drain_all()
    Stack(config).down()
    return {
        "seconds": seconds,
        "server_seconds": server,
        "import_seconds": imported,
        "days_done": sum(1 for d in summary.days if set(d.stages.values()) <= {"done"}),
        "days_failed": len(summary.failed_days),
        "failures": [f"{o.day}: {o.detail}" for o in summary.days if "failed" in o.stages.values()],
        "model_versions": len(versions),
        "champion": summary.champion,
    }


def _bare(home: Path, days: int) -> dict[str, Any]:
    """The same days' library work with nothing around it."""
    began = time.perf_counter()
    import pandas as pd
    from scipy.stats import ks_2samp
    from sklearn.ensemble import HistGradientBoostingClassifier

    raw = sorted((home / "lake" / "raw" / "loans").glob("*.parquet"))[:days]
    out = home / "bare"
    out.mkdir(exist_ok=True)
    train = pd.concat(pd.read_parquet(p) for p in raw[:7])
    numeric = [
        c for c in train.columns if c not in ("loan_id", "default") and train[c].dtype.kind in "if"
    ]
    model = HistGradientBoostingClassifier(random_state=0).fit(train[numeric], train["default"])
    window: list[pd.DataFrame] = []
    for path in raw:
        frame = pd.read_parquet(path)
        frame.to_parquet(out / f"curated-{path.name}")
        proba = model.predict_proba(frame[numeric])[:, 1]
        pd.DataFrame({"loan_id": frame["loan_id"], "score": proba}).to_parquet(
            out / f"predictions-{path.name}"
        )
        window = [*window[-2:], frame]
        current = pd.concat(window)
        for column in numeric:
            ks_2samp(train[column].dropna(), current[column].dropna())
    return {"seconds": time.perf_counter() - began}


def _measure(side: str, home: Path, days: int) -> dict[str, Any]:
    """Each side in a fresh interpreter, so imports are paid by both."""
    here = str(Path(__file__).parent)
    code = (
        f"import json, sys; from pathlib import Path; sys.path.insert(0, {here!r}); import year; "
        f"print(json.dumps(year._{side}(Path({str(home)!r}), {days})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"the {side} side failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args(argv)
    from driftloop.data.generate import write_batches

    with tempfile.TemporaryDirectory(prefix="driftloop-year-") as tmp:
        home = Path(tmp)
        write_batches(
            str(home / "lake"),
            "loans",
            START,
            args.days,
            args.rows,
            scenario="covariate_shift",
            drift_start=START + timedelta(days=args.days // 2),
            labels=True,
        )
        bare = _measure("bare", home, args.days)
        ours = _measure("driftloop", home, args.days)
    per_day = (ours["seconds"] - bare["seconds"]) / args.days
    print(f"{args.days} days x {args.rows} rows (ingest, score, drift check per day)")
    print(f"  bare libraries: {bare['seconds']:8.1f} s")
    print(
        f"  driftloop:      {ours['seconds']:8.1f} s  ({ours['import_seconds']:.1f} s imports; "
        f"the local server's start, {ours['server_seconds']:.1f} s, not counted; "
        f"{ours['days_done']} days done, {ours['days_failed']} failed, "
        f"{ours['model_versions']} model versions, champion v{ours['champion']})"
    )
    for failure in ours["failures"]:
        print(f"  failed day {failure}")
    print(f"  ratio {ours['seconds'] / bare['seconds']:.1f}x; {per_day:.2f} s per day over bare")
    print(f"  365 days at this rate: {ours['seconds'] / args.days * 365 / 60:.1f} min (target 15)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
