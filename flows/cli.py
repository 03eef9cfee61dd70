"""`driftloop` command line: the demo and each flow, runnable without a server.

The environment defaults are set here, before Prefect is imported, because Prefect reads its
settings at import time: telemetry off, Prefect's home inside the project, and a patient start
for the temporary local server on a busy 2-core machine. Flow-run heartbeats are switched off
for the embedded runs: nothing watches them on a temporary server, and each sync flow run
otherwise waits up to a second for its heartbeat thread on exit.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from pydantic import BaseModel

from driftloop.configs.settings import PROJECT_ROOT, ConfigError

EMBEDDED_ENV = {
    "PREFECT_HOME": str(PROJECT_ROOT / ".prefect"),
    "MPLCONFIGDIR": str(PROJECT_ROOT / ".cache" / "matplotlib"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "GX_ANALYTICS_ENABLED": "false",
}


def quiet_environment() -> None:
    for key, value in EMBEDDED_ENV.items():
        os.environ.setdefault(key, value)


@contextmanager
def embedded_runs() -> Iterator[None]:
    """Flow runs in this process without heartbeats (see the module docstring)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftloop", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default=None, help="config profile (default: local)")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the whole loop on generated data")
    demo.add_argument("--rows-per-day", type=int, default=2000)
    demo.add_argument("--scenario", default="covariate_shift")
    for name in ("ingest", "score"):
        cmd = sub.add_parser(name, help=f"run the {name} flow for one day")
        cmd.add_argument("day", type=date.fromisoformat)
        cmd.add_argument("--source", default=None, help="file or s3:// URI (default: the lake)")
        if name == "score":
            cmd.add_argument(
                "--mode",
                choices=["stream", "partitioned"],
                default=None,
                help="stream (one process) or partitioned (Dask); default: scoring.mode",
            )
    cmd = sub.add_parser(
        "process",
        help="ingest, score and drift-check every landed day not done yet, oldest first",
    )
    cmd.add_argument("--since", type=date.fromisoformat, default=None, help="first day")
    cmd.add_argument("--until", type=date.fromisoformat, default=None, help="last day")
    cmd.add_argument("--no-check", action="store_true", help="ingest and score only")
    cmd = sub.add_parser(
        "backfill",
        help="process the days START..END (resumable: days already done are skipped)",
    )
    cmd.add_argument("since", type=date.fromisoformat)
    cmd.add_argument("until", type=date.fromisoformat)
    cmd.add_argument("--no-check", action="store_true", help="ingest and score only")
    cmd = sub.add_parser("train", help="run the train flow on a window of curated days")
    cmd.add_argument("window_start", type=date.fromisoformat)
    cmd.add_argument("window_end", type=date.fromisoformat)
    cmd = sub.add_parser("rollback", help="put the previous champion (or --to N) back")
    cmd.add_argument("reason", help="why: recorded in the promotion ledger")
    cmd.add_argument("--to", dest="to_version", default=None, help="version to roll back to")
    cmd = sub.add_parser("ledger", help="print the promotion ledger as JSON lines")
    cmd = sub.add_parser("check-drift", help="run the drift check for the window ending DAY")
    cmd.add_argument("window_end", type=date.fromisoformat)
    cmd.add_argument("--no-retrain", action="store_true")
    cmd.add_argument("--labels", default=None, help="labels file/folder (default: the lake's)")
    _backtest_parser(sub)
    return parser


def _backtest_parser(sub: Any) -> None:
    cmd = sub.add_parser(
        "backtest",
        help="replay windows through drift check -> policy (-> train -> gate) offline",
        description="Replay daily windows (generated scenarios, or a folder of daily files with "
        "the target) through the monitoring signals and the retraining policy, without Prefect "
        "or MLflow, and print the timeline: signals, decisions, retrains, promotions.",
    )
    src = cmd.add_mutually_exclusive_group()
    src.add_argument(
        "--segments",
        default=None,
        help="generated windows as scenario:count,... e.g. none:20,covariate_shift:20 "
        "(default: none:20,covariate_shift:10,none:10,prior_shift:10,concept_drift:10)",
    )
    src.add_argument("--folder", default=None, help="folder (or s3:// prefix) of daily files")
    cmd.add_argument("--rows", type=int, default=10_000, help="rows per generated window")
    cmd.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1))
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--warmup", type=int, default=3, help="windows that train v1 (not replayed)")
    cmd.add_argument("--label-delay", type=int, default=1, help="windows until labels arrive")
    cmd.add_argument(
        "--train-latency", type=int, default=0, help="windows a retrain stays in flight"
    )
    cmd.add_argument(
        "--train", action="store_true", help="judge each retrain with the gate before promoting"
    )
    cmd.add_argument(
        "--acceptance",
        action="store_true",
        help="run the retraining policy's acceptance cases and print their table (uses --rows and "
        "--quiet-rows; --set applies to every case)",
    )
    cmd.add_argument(
        "--quiet-rows", type=int, default=100_000, help="rows per window of the 'none' case"
    )
    cmd.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for the replay, e.g. --set policy.consecutive_windows=3",
    )


def _acceptance(args: argparse.Namespace, profile: str, overrides: dict[str, Any]) -> int:
    from driftloop.configs.settings import load_settings
    from driftloop.data.acceptance import (
        acceptance_table,
        cases,
        mixed_case,
        run_case,
    )
    from driftloop.tasks.core.backtest import timeline_table

    def load(extra: dict[str, Any]) -> Any:
        return load_settings(profile, {**overrides, **extra})

    outcomes = []
    for case in [*cases(args.rows, args.quiet_rows), mixed_case(args.rows)]:
        outcome, result = run_case(case, load)
        outcomes.append(outcome)
        print(f"  {outcome.case}: {'PASS' if outcome.passed else 'FAIL'} ({outcome.seconds:.1f} s)",
              flush=True)  # fmt: skip
        if case.expect == "timeline":
            print(timeline_table(result))
    print(acceptance_table(outcomes))
    return 0 if all(o.passed for o in outcomes) else 1


DEFAULT_SEGMENTS = "none:20,covariate_shift:10,none:10,prior_shift:10,concept_drift:10"


def _backtest(args: argparse.Namespace, profile: str) -> int:
    """Replay and print; no Prefect import, so no server start-up."""
    import yaml

    from driftloop.configs.settings import load_settings
    from driftloop.data.replay import generated_windows, parse_segments
    from driftloop.tasks.adapters.daily_files import folder_windows
    from driftloop.tasks.core.backtest import (
        BacktestError,
        BacktestOptions,
        run_backtest,
        timeline_table,
    )

    overrides: dict[str, Any] = {}
    for item in args.sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"driftloop backtest: --set {item!r} must look like KEY=VALUE", file=sys.stderr)
            return 2
        overrides[key.strip()] = yaml.safe_load(value)
    if args.acceptance:
        return _acceptance(args, profile, overrides)
    settings = load_settings(profile, overrides)
    try:
        if args.folder:
            windows: Any = folder_windows(args.folder)
            what = f"folder {args.folder}"
        else:
            text = args.segments or DEFAULT_SEGMENTS
            segments = [("none", args.warmup), *parse_segments(text)] if args.warmup else None
            windows = generated_windows(
                segments or parse_segments(text), args.rows, args.start, args.seed
            )
            what = f"generated {text} at {args.rows:,} rows per window (+{args.warmup} warm-up)"
        print(f"driftloop backtest: {what}; policy {settings.policy.model_dump()}", flush=True)
        result = run_backtest(
            windows,
            settings,
            BacktestOptions(
                label_delay=args.label_delay,
                train_latency=args.train_latency,
                train=args.train,
                warmup=args.warmup,
            ),
        )
    except BacktestError as err:
        print(f"driftloop backtest: {err}", file=sys.stderr)
        return 2
    print(timeline_table(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        # The timeline is the demo's story; run logs still reach the Prefect UI.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
        # The demo's windows are small: one OpenMP thread per process. On a busy 2-core host the
        # default (one per core) oversubscribes gradient boosting, and the loop took ~40% longer
        # (2m40s vs 1m54s, same load). Set before numpy/scikit-learn are imported.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    quiet_environment()
    profile = args.profile or os.environ.get("DRIFTLOOP_PROFILE", "local")
    if args.command == "backtest":
        try:
            return _backtest(args, profile)
        except ConfigError as err:
            print(f"driftloop: {err}", file=sys.stderr)
            return 2
    try:
        with embedded_runs():
            return _run(args, profile)
    except ConfigError as err:
        print(f"driftloop: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, profile: str) -> int:
    if args.command == "demo":
        import logging

        from driftloop.flows.demo import DemoPlan, run_demo

        logging.getLogger("mlflow").setLevel(logging.WARNING)

        run_demo(DemoPlan(rows_per_day=args.rows_per_day, scenario=args.scenario))
        return 0
    if args.command == "ingest":
        from driftloop.flows.ingest import ingest

        result: BaseModel = ingest(args.day, args.source, profile)
    elif args.command == "score":
        from driftloop.flows.score import score

        result = score(args.day, args.source, profile, mode=args.mode)
    elif args.command in ("process", "backfill"):
        from driftloop.flows.process import process

        result = process(args.since, args.until, False if args.no_check else None, profile)
    elif args.command == "train":
        from driftloop.flows.train import train

        result = train(args.window_start, args.window_end, "manual", profile)
    elif args.command == "rollback":
        from driftloop.flows.rollback import rollback

        result = rollback(args.reason, args.to_version, profile)
    elif args.command == "ledger":
        from driftloop.configs.settings import load_settings
        from driftloop.tasks.adapters.promotion import ledger_for

        print(ledger_for(load_settings(profile)).export_jsonl())
        return 0
    else:
        from driftloop.flows.check_drift import check_drift

        result = check_drift(
            args.window_end,
            None,
            False if args.no_retrain else None,
            profile,
            labels=args.labels,
        )
    print(result.model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
