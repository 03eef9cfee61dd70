"""`driftloop` command line: the demo and each flow, runnable without installing a server.

The environment defaults are set here, before Prefect is imported, because Prefect reads its
settings at import time: telemetry off, Prefect's home inside the project, and a patient start
for a temporary server on a busy 2-core machine.

Where runs are recorded: with PREFECT_API_URL set, that server. Otherwise the flow commands
share one local server (`deployments/stack.py`'s Prefect server on its embedded PostgreSQL,
started by the first command and stopped by `make down` or after
DRIFTLOOP_LOCAL_SERVER_IDLE_MINUTES idle, default 30), so a command pays no server start-up;
DRIFTLOOP_LOCAL_SERVER=off gives each command a temporary server of its own, as `demo` always
has. Flow-run heartbeats are off unless the stack's worker runs (`make up`): nothing watches
them otherwise, and each flow run waits up to a second for its heartbeat thread on exit. On a
stack they stay on, so a killed `driftloop backfill` is marked Crashed and holds no `process`
run back.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
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
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print tracebacks (by default an error you can fix is one line naming the cause)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the whole loop on generated data")
    demo.add_argument("--rows-per-day", type=int, default=2000)
    demo.add_argument("--scenario", default="covariate_shift")
    demo.add_argument(
        "--dataset",
        choices=["loans", "breast_cancer", "wine", "diabetes"],
        default="loans",
        help="loans: the generated loan data (binary); breast_cancer (binary, text labels), "
        "wine (multi-class), diabetes (regression): built from scikit-learn's datasets",
    )
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
    cmd = sub.add_parser("labels", help="check a day's delayed labels (id + target) and store them")
    cmd.add_argument("day", type=date.fromisoformat)
    cmd.add_argument("--source", required=True, help="labels file or s3:// URI")
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
    _init_parser(sub)
    for command in set(sub.choices.values()):  # also after the command: `ingest DAY --profile X`
        command.add_argument("--profile", default=argparse.SUPPRESS, help="config profile")
        command.add_argument(
            "--verbose", action="store_true", default=argparse.SUPPRESS, help="print tracebacks"
        )
    return parser


def _init_parser(sub: Any) -> None:
    cmd = sub.add_parser(
        "init",
        help="write a draft contract configs/datasets/<name>.yaml from a sample file",
        description="Read a CSV or parquet sample and write a draft data contract (dtypes, "
        "nullability, ranges, categories, id/timestamp, target and task type, thresholds), each "
        "guess with a REVIEW comment. No server is started. See docs/onboarding.md.",
    )
    cmd.add_argument("sample", help="a CSV or parquet file with some rows of the data")
    cmd.add_argument("--name", default=None, help="dataset name (default: from the file name)")
    cmd.add_argument("--target", default=None, help="the column to predict (default: guessed)")
    cmd.add_argument("--force", action="store_true", help="replace an existing contract")


def _init(args: argparse.Namespace, profile: str) -> int:
    """Offline: no Prefect import, no server."""
    from driftloop.tasks.onboarding import OnboardingError, init_dataset, next_steps

    try:
        result = init_dataset(args.sample, args.name, args.target, args.force, profile)
    except OnboardingError as err:
        print(f"driftloop init: {err}", file=sys.stderr)
        return 2
    print(next_steps(result))
    return 0


def _backtest_parser(sub: Any) -> None:
    cmd = sub.add_parser(
        "backtest",
        help="replay days through drift check -> policy -> train -> gate offline",
        description="Replay daily windows (generated scenarios, or a folder of daily files with "
        "the target) through what production does (contract, scoring, the drift check on its "
        "rolling window, the retraining policy, training on its own window, the gate), without "
        "Prefect or MLflow, and print the timeline; with --lift, the loop lift: the realised "
        "metric under the policy vs never retraining vs retraining every window.",
    )
    src = cmd.add_mutually_exclusive_group()
    src.add_argument(
        "--segments",
        default=None,
        help="generated windows as scenario:count,... e.g. none:20,covariate_shift:20 or "
        f"seasonal:365 (default: {DEFAULT_SEGMENTS}; with --lift: {LIFT_SEGMENTS})",
    )
    src.add_argument(
        "--scenario",
        default=None,
        help="one scenario for a year of days, e.g. seasonal (= --segments seasonal:365)",
    )
    src.add_argument("--folder", default=None, help="folder (or s3:// prefix) of daily files")
    cmd.add_argument(
        "--date-pattern",
        default=None,
        help="regex finding the day in each --folder file name, with a group (?P<date>...) "
        r"(YYYY-MM-DD) or (?P<year>)(?P<month>)(?P<day>) (default: (?P<date>\d{4}-\d{2}-\d{2}))",
    )
    cmd.add_argument(
        "--rows", type=int, default=None, help="rows per generated day (default 10000; --lift 1000)"
    )
    cmd.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1))
    cmd.add_argument("--seed", type=int, default=None, help="generator seed (default 0)")
    cmd.add_argument(
        "--seeds", default=None, help="several seeds, e.g. 0,1,2: one replay (or lift) each"
    )
    cmd.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="days that train v1, before the replayed ones (default 3; --lift 60)",
    )
    cmd.add_argument("--label-delay", type=int, default=1, help="days until labels arrive")
    cmd.add_argument("--train-latency", type=int, default=0, help="days a retrain stays in flight")
    gate = cmd.add_mutually_exclusive_group()
    gate.add_argument(
        "--train",
        action="store_true",
        help="judge each candidate with the gate before promoting (the default, as production)",
    )
    gate.add_argument(
        "--no-gate",
        action="store_true",
        help="promote every candidate (the policy's triggers alone; --lift always gates)",
    )
    cmd.add_argument(
        "--max-iter",
        type=int,
        default=None,
        help="cap the estimator's max_iter for every fit of the replay (default: none; --lift 60)",
    )
    cmd.add_argument(
        "--lift",
        action="store_true",
        help="loop lift: replay the same days under the policy, never retraining and retraining "
        "every window, and print each one's realised metric, retrains and promotions",
    )
    cmd.add_argument(
        "--acceptance",
        action="store_true",
        help="run the retraining policy's acceptance cases and print their table (uses --rows and "
        "--quiet-rows; --set applies to every case); with --lift, the loop-lift acceptance "
        "(seasonal:365, 1000 rows, seeds 0,1,2, labels a day late): exit 1 if a claim fails",
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

    if args.lift:
        return _lift_acceptance(args, load_settings(profile, overrides))

    def load(extra: dict[str, Any]) -> Any:
        return load_settings(profile, {**overrides, **extra})

    rows = args.rows or 10_000
    outcomes = []
    for case in [*cases(rows, args.quiet_rows), mixed_case(rows)]:
        outcome, result = run_case(case, load)
        outcomes.append(outcome)
        print(f"  {outcome.case}: {'PASS' if outcome.passed else 'FAIL'} ({outcome.seconds:.1f} s)",
              flush=True)  # fmt: skip
        if case.expect == "timeline":
            print(timeline_table(result))
    print(acceptance_table(outcomes))
    return 0 if all(o.passed for o in outcomes) else 1


def _lift_acceptance(args: argparse.Namespace, settings: Any) -> int:
    """The loop-lift claims at their stated size, one seed at a time, then the table."""
    from driftloop.data.acceptance import LIFT_PLANS, lift_verdicts, run_lift

    plan = LIFT_PLANS["full"]
    print(f"driftloop backtest --lift --acceptance: {plan.label}, seeds {plan.seeds}, label "
          f"delay {plan.label_delay}, warm-up {plan.warmup}, max_iter {plan.max_iter}",
          flush=True)  # fmt: skip
    outcomes = []
    for seed in plan.seeds:
        outcome = run_lift(plan, settings, seed)
        outcomes.append(outcome)
        seconds = sum(r.seconds for r in outcome.lift.regimes.values())
        print(f"  {outcome.label}: {'PASS' if outcome.passed else 'FAIL'} ({seconds:.0f} s)",
              flush=True)  # fmt: skip
    print(lift_verdicts(outcomes))
    return 0 if all(o.passed for o in outcomes) else 1


DEFAULT_SEGMENTS = "none:20,covariate_shift:10,none:10,prior_shift:10,concept_drift:10"
LIFT_SEGMENTS = "seasonal:365"


def _seeds(args: argparse.Namespace) -> list[int]:
    from driftloop.tasks.core.backtest import BacktestError

    if args.seeds is None:
        return [0 if args.seed is None else args.seed]
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError as err:
        raise BacktestError(f"--seeds {args.seeds!r} must look like 0,1,2") from err
    if not seeds or min(seeds) < 0:
        raise BacktestError(f"--seeds {args.seeds!r} must list seeds >= 0, e.g. 0,1,2")
    return seeds


def _backtest(args: argparse.Namespace, profile: str) -> int:
    """Replay and print; no Prefect import, so no server start-up."""
    import yaml

    from driftloop.configs.settings import load_settings
    from driftloop.data.acceptance import judge_lift, lift_verdicts
    from driftloop.data.replay import generated_windows, parse_segments, with_warmup
    from driftloop.tasks.adapters.daily_files import DATE_PATTERN, folder_windows
    from driftloop.tasks.core.backtest import (
        BacktestError,
        BacktestOptions,
        loop_lift,
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
    try:
        if args.acceptance:
            return _acceptance(args, profile, overrides)
        settings = load_settings(profile, overrides)
        lift = args.lift
        warmup = args.warmup if args.warmup is not None else (60 if lift else 3)
        rows = args.rows or (1000 if lift else 10_000)
        max_iter = args.max_iter if args.max_iter is not None else (60 if lift else None)
        smallest = min(warmup, rows, 1 if max_iter is None else max_iter)
        if smallest < 1 or min(args.label_delay, args.train_latency) < 0:
            raise BacktestError(
                "--warmup, --rows and --max-iter must be >= 1, --label-delay and "
                "--train-latency >= 0"
            )
        options = BacktestOptions(
            label_delay=args.label_delay,
            train_latency=args.train_latency,
            train=not args.no_gate,
            warmup=warmup,
            max_iter=max_iter,
        )
        scenario = args.scenario
        if scenario and ":" not in scenario:
            scenario = f"{scenario}:365"
        text = args.segments or scenario or (LIFT_SEGMENTS if lift else DEFAULT_SEGMENTS)
        replays: list[tuple[str, Any]] = []
        if args.folder:
            windows = folder_windows(args.folder, args.date_pattern or DATE_PATTERN)
            replays.append((f"folder {args.folder}", windows))
        else:
            segments = with_warmup(parse_segments(text), warmup)
            for seed in _seeds(args):
                label = f"{text} seed {seed}"
                replays.append((label, generated_windows(segments, rows, args.start, seed)))
        what = "folder" if args.folder else f"{rows:,} rows per day (+{warmup} warm-up days)"
        print(f"driftloop backtest: {what}; policy {settings.policy.model_dump()}", flush=True)
        if lift:
            outcomes = []
            for label, windows in replays:
                result, _ = loop_lift(windows, settings, options)
                outcomes.append(judge_lift(label, result))
                print(f"  {label}: replayed under {', '.join(result.regimes)}", flush=True)
            print(lift_verdicts(outcomes))
            return 0
        for _label, windows in replays:
            print(timeline_table(run_backtest(windows, settings, options)))
    except BacktestError as err:
        print(f"driftloop backtest: {err}", file=sys.stderr)
        return 2
    return 0


def _unknown_profile(profile: str, given_by: str) -> str | None:
    """Why `profile` cannot be used, in one line, or None. Checked before any run starts: a
    run would only fail later, in Prefect's parameter check, with a page of its wording."""
    from driftloop.flows.params import available_profiles

    existing = available_profiles()
    if profile in existing:
        return None
    folder = os.environ.get("DRIFTLOOP_CONFIG_DIR") or "configs"
    return (
        f"profile {profile!r} ({given_by}) does not exist: no {folder}/{profile}.yaml; "
        f"existing profiles: {', '.join(existing) or '(none)'}"
    )


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
    unknown = _unknown_profile(profile, "--profile" if args.profile else "DRIFTLOOP_PROFILE")
    if unknown:
        print(f"driftloop: {unknown}", file=sys.stderr)
        return 2
    if args.command == "init":
        return _init(args, profile)
    if args.command == "backtest":
        try:
            return _backtest(args, profile)
        except ConfigError as err:
            print(f"driftloop: {err}", file=sys.stderr)
            return 2
    try:
        on_a_stack = bool(os.environ.get("PREFECT_API_URL"))
        local = None
        if not on_a_stack and args.command not in ("demo", "ledger"):
            local = _use_local_server()
            on_a_stack = local is not None and local.worker.pid() is not None
        with nullcontext() if on_a_stack else embedded_runs():
            if not args.verbose:
                _console_without_tracebacks()
            return _run(args, profile)
    except ConfigError as err:
        print(f"driftloop: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        if args.verbose or not isinstance(err, _fixable_errors()):
            raise
        print(f"driftloop {args.command}: {type(err).__name__}: {err}", file=sys.stderr)
        print("(--verbose prints the traceback)", file=sys.stderr)
        return 1
    finally:
        if local is not None:
            from driftloop.deployments.stack import mark_used

            mark_used(local.config)  # the idle time counts from the end of the last command


def _use_local_server() -> Any:
    """Point this process at the shared local server (started if needed); None when off."""
    if os.environ.get("DRIFTLOOP_LOCAL_SERVER", "on").strip().lower() in ("off", "0", "false"):
        return None
    from driftloop.deployments.stack import Stack, StackConfig, local_server

    config = StackConfig.from_env()
    idle = float(os.environ.get("DRIFTLOOP_LOCAL_SERVER_IDLE_MINUTES") or 30)
    api_url = local_server(config, idle)
    os.environ["PREFECT_API_URL"] = api_url
    os.environ["PREFECT_HOME"] = config.client_env()["PREFECT_HOME"]
    os.environ.update(Stack(config).reports_env())  # links over HTTP, not file://
    # plain HTTP on 127.0.0.1: no TLS, so no certificate store to load for each API client
    os.environ.setdefault("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", "true")
    return Stack(config)


def _fixable_errors() -> tuple[type[Exception], ...]:
    """Errors whose message names the file, key or server at fault and what to do: the
    traceback around them is noise to the person who has to act."""
    from driftloop.deployments.stack import StackError
    from driftloop.tasks.adapters.history import HistoryError
    from driftloop.tasks.adapters.registry import RegistryError
    from driftloop.tasks.adapters.storage import StorageError
    from driftloop.tasks.common import MissingDataError
    from driftloop.tasks.core.contract import DataContractError
    from driftloop.tasks.core.days import InputMissingError, ParameterError
    from driftloop.tasks.core.monitoring import MonitoringError
    from driftloop.tasks.core.policy import RetrainsKeepFailing
    from driftloop.tasks.core.search import SearchConfigError
    from driftloop.tasks.core.training import ModelConfigError, TargetError
    from driftloop.tasks.rollback import RollbackError

    return (
        DataContractError,
        HistoryError,
        InputMissingError,
        MissingDataError,
        ModelConfigError,
        MonitoringError,
        ParameterError,
        RegistryError,
        RetrainsKeepFailing,
        RollbackError,
        SearchConfigError,
        StackError,
        StorageError,  # and its kinds: NotFoundError, UnreadableFileError, S3Error
        TargetError,
    )


class _WithoutTraceback(logging.Formatter):
    """The console keeps each log line but not the traceback Prefect attaches to a failed
    run's lines; the Prefect UI (API log handler) still gets it."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        plain = logging.makeLogRecord(record.__dict__)
        plain.exc_info = None
        plain.exc_text = None
        return self.inner.format(plain)


def _console_without_tracebacks() -> None:
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    ensure_logging_setup()

    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not isinstance(
                handler.formatter, _WithoutTraceback
            ):
                handler.setFormatter(_WithoutTraceback(handler.formatter))


def _run(args: argparse.Namespace, profile: str) -> int:
    if args.command == "demo":
        from driftloop.flows.demo import DemoPlan, run_demo

        logging.getLogger("mlflow").setLevel(logging.WARNING)

        if args.dataset != "loans":
            from driftloop.flows.demo import run_sklearn_demo

            run_sklearn_demo(args.dataset, rows_per_day=args.rows_per_day)
            return 0
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
    elif args.command == "labels":
        from driftloop.flows.labels import labels

        result = labels(args.day, args.source, profile)
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


def _stop_temporary_servers() -> None:
    """Stop the temporary Prefect server a command started (`demo`, DRIFTLOOP_LOCAL_SERVER=off):
    Prefect stops it at interpreter exit, which `os._exit` skips, and it was left running."""
    server_module = sys.modules.get("prefect.server.api.server")
    if server_module is None:
        return
    for server in list(server_module.SubprocessASGIServer._instances.values()):
        server.stop()


def entry() -> None:
    """The `driftloop` console script: `main`, then a prompt exit.

    With Prefect loaded, the interpreter's own shutdown (module teardown, joining Prefect's
    service threads) takes about a second, a third of a short command's overhead. Prefect's
    log and event workers are drained first and the standard streams flushed, so nothing a
    command wrote or sent is lost by leaving without that teardown.
    """
    code = main()
    if "prefect" in sys.modules:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all()
        EventsWorker.drain_all()
    _stop_temporary_servers()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
