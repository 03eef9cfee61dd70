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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        # The timeline is the demo's story; run logs still reach the Prefect UI.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    quiet_environment()
    profile = args.profile or os.environ.get("DRIFTLOOP_PROFILE", "local")
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
    elif args.command == "train":
        from driftloop.flows.train import train

        result = train(args.window_start, args.window_end, "manual", profile)
    elif args.command == "rollback":
        from driftloop.flows.rollback import rollback

        result = rollback(args.reason, args.to_version, profile)
    elif args.command == "ledger":
        from driftloop.configs.settings import load_settings
        from driftloop.tasks.promotion import ledger_for

        print(ledger_for(load_settings(profile)).export_jsonl())
        return 0
    else:
        from driftloop.flows.check_drift import check_drift

        result = check_drift(args.window_end, None, False if args.no_retrain else None, profile)
    print(result.model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
