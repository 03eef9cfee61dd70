"""Benchmark: the `train` flow against a running Prefect server vs a bare script, same work.

Why: orchestration must be nearly free. Both sides run in a fresh interpreter (import and
start-up costs count), alternately, on the same curated parquet files, the same settings
(estimator, params, split, baseline, bootstrap, slices) and an MLflow store in the same state
(a SQLite file restored before every run, with a champion v1 to compare against). The flow
side is `driftloop train` (the CLI a user runs) talking to a Prefect server started here; the
bare side is `benchmarks/bare_training.py`: the same library calls in a plain script. Medians,
the ratio flow/bare and the absolute difference are printed (goals: <= 1.10x at 1M rows with
the default model, <= 1.5x with LogisticRegression, <= +3 s at 1,000 rows).

    python benchmarks/training.py                                   # 1k, 100k, 1M; both models
    python benchmarks/training.py --sizes 1000 --reps 1 --models logreg   # smoke run (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from driftloop.configs.settings import CONFIG_DIR, Settings, load_settings
from driftloop.data.generate import generate_day
from driftloop.deployments.stack import Stack, StackConfig, free_port
from driftloop.tasks.adapters import storage
from driftloop.tasks.adapters.registry import SKOPS_TRUSTED_TYPES

HERE = Path(__file__).resolve().parent
START = date(2026, 11, 1)
DAYS = 3
#: The models compared: the config's default, and a fast one (scaled numeric inputs, as the
#: churn example configures it).
MODELS: dict[str, dict[str, Any] | None] = {
    "default": None,
    "logreg": {
        "estimator": "sklearn.linear_model.LogisticRegression",
        "params": {"max_iter": 500, "C": 1.0},
        "preprocessing": {
            "numeric_impute": "median",
            "scale_numeric": True,
            "categorical_impute": "constant",
        },
    },
}
BOTH_SIDES = """\
both sides, each in a fresh interpreter: read the 3 curated parquet days and hash each file
(lineage) -> feature casts -> seeded stratified split -> champion v1 from the MLflow registry
(download, digest check, load, predict) -> fit the candidate -> fit the baseline (Dummy) ->
7 metrics each -> 300-resample paired bootstrap (row-count AUC) -> per-slice roc_auc -> ROC
and confusion plots -> one MLflow run (tags, params, metrics, dataset input with its schema
from dtypes, figures, JSON, skops model with signature and pinned pip requirements) ->
register v2 -> training snapshot parquet -> version tags with the model digest -> serving
smoke check in a fresh process -> gate -> alias move + ledger -> model card.
the flow side also: config load and validation, a Prefect flow run with ~15 task runs and 2
artifacts on the server, the promotion lock (a Prefect global concurrency limit); it starts
the smoke check's fresh interpreter once the fits are done, so its imports overlap tracking
and registration (the bare script starts it when it needs it)."""


@dataclass(frozen=True)
class Case:
    """One size x model: its config folder and a template state restored before each run."""

    rows: int
    model: str
    config_dir: Path
    template: Path
    api_url: str


def config_dir_for(model: str, folder: Path) -> Path:
    """A copy of configs/ whose base.yaml has the model section replaced whole.

    (Overrides deep-merge, so they cannot drop the default model's params.)
    """
    shutil.copytree(CONFIG_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    section = MODELS[model]
    if section is not None:
        base = yaml.safe_load((folder / "base.yaml").read_text())
        base["model"] = section
        (folder / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    return folder


def overrides(work: Path) -> dict[str, Any]:
    return {
        "storage.root": str(work / "lake"),
        "tracking.uri": f"sqlite:///{work / 'mlflow.db'}",
        "tracking.artifact_location": str(work / "mlartifacts"),
    }


def write_curated(settings: Settings, rows: int, lake_root: str) -> list[str]:
    """What `ingest` leaves behind: the contract's valid rows, typed, one file per day."""
    from driftloop.tasks.adapters.validation import validate_frame

    lake = storage.Lake(lake_root, settings.dataset.name)
    uris = []
    now = datetime.combine(START + timedelta(days=DAYS), datetime.min.time(), tzinfo=UTC)
    for i in range(DAYS):
        day = START + timedelta(days=i)
        raw = generate_day(day, max(rows // DAYS, 100), seed=i)
        batch = validate_frame(raw, settings.dataset, source=f"bench/{day}", now=now)
        uris.append(storage.write_frame(batch.valid, lake.curated(day)))
    return uris


def restore(template: Path, work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template, work)


def flow_command() -> list[str]:
    end = START + timedelta(days=DAYS - 1)
    return [sys.executable, "-m", "driftloop.flows.cli", "train", str(START), str(end)]


def flow_env(case: Case, work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PREFECT_API_URL": case.api_url,
        "DRIFTLOOP_CONFIG_DIR": str(case.config_dir),
        "DRIFTLOOP_OVERRIDES": json.dumps(overrides(work)),
        "DRIFTLOOP_PROFILE": "local",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }


def bare_spec(case: Case, work: Path) -> Path:
    """The settings the flow uses, as plain values for the bare script."""
    s = load_settings("local", overrides(work), config_dir=case.config_dir)
    lake = storage.Lake(s.storage.root, s.dataset.name)
    rule = s.gate.metrics["roc_auc"]
    spec = {
        "files": [lake.curated(START + timedelta(days=i)) for i in range(DAYS)],
        "numeric": s.dataset.numeric_features,
        "categorical": s.dataset.categorical_features,
        "target": s.dataset.target,
        "positive_label": s.dataset.positive_label,
        "estimator": s.model.estimator,
        "params": s.model.params,
        "numeric_impute": s.model.preprocessing.numeric_impute,
        "scale_numeric": s.model.preprocessing.scale_numeric,
        "test_size": s.split.test_size,
        "split_seed": s.split.seed,
        "baseline_estimator": s.gate.baseline.estimator if s.gate.baseline else None,
        "baseline_params": s.gate.baseline.params if s.gate.baseline else {},
        "min_precision": s.gate.recall_at_precision,
        "resamples": s.gate.bootstrap.resamples,
        "confidence": s.gate.bootstrap.confidence,
        "bootstrap_seed": s.gate.bootstrap.seed,
        "min_lower_bound": s.gate.bootstrap.min_lower_bound,
        "roc_auc_floor": rule.threshold,
        "min_gain": rule.min_absolute_change,
        "slices": s.gate.slices.columns,
        "smoke_rows": s.gate.smoke_rows,
        "tracking_uri": s.tracking.uri,
        "experiment": s.registry.experiment,
        "model_name": s.registry.model_name,
        "trusted_types": SKOPS_TRUSTED_TYPES,
        "window": f"{START}..{START + timedelta(days=DAYS - 1)}",
        "reference_dir": str(work / "bare-references"),
        "ledger_dir": str(work / "bare-ledger"),
    }
    path = work / "bare-spec.json"
    path.write_text(json.dumps(spec))
    return path


#: CPU seconds (user + system) of each timed run and the processes it waited for.
CPU: dict[str, list[float]] = {"flow": [], "bare": []}


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv: list[str], env: dict[str, str], what: str, side: str | None = None) -> float:
    """Wall time of one fresh process; its CPU time is kept in CPU[side] (load-independent)."""
    started, cpu = time.perf_counter(), cpu_of_children()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    if side is not None:
        CPU[side].append(cpu_of_children() - cpu)
    return elapsed


def prepare(case: Case, root: Path) -> None:
    """Curated data, then one untimed flow run that registers champion v1: the template.

    It is built at the work path itself (MLflow records absolute artifact paths), then kept
    aside and copied back before every timed run.
    """
    work = root / "work"
    shutil.rmtree(work, ignore_errors=True)
    curated = root / f"curated-{case.rows}"  # the same files for every model
    if not curated.exists():
        settings = load_settings("local", overrides(work), config_dir=case.config_dir)
        write_curated(settings, case.rows, str(curated))
    shutil.copytree(curated, work / "lake")
    run(flow_command(), flow_env(case, work), f"warm-up flow ({case.rows}, {case.model})")
    ensure_champion(load_settings("local", overrides(work), config_dir=case.config_dir))
    shutil.move(work, case.template)


def ensure_champion(settings: Settings) -> None:
    """The timed runs need a champion to compare against, whatever the warm-up's gate said.

    At tiny sizes, or when a loaded machine slows the serving smoke check past its limit, the
    warm-up's gate can park v1 as a challenger; the template then points `champion` at it.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking.uri, registry_uri=settings.tracking.uri)
    name, alias = settings.registry.model_name, settings.registry.champion_alias
    if client.get_registered_model(name).aliases.get(alias):
        return
    latest = max(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    client.set_registered_model_alias(name, alias, str(latest))


def bench_case(case: Case, root: Path, reps: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"flow": [], "bare": []}
    for values in CPU.values():
        values.clear()
    work = root / "work"
    for rep in range(reps):
        order = ("flow", "bare") if rep % 2 == 0 else ("bare", "flow")
        for side in order:
            restore(case.template, work)
            if side == "flow":
                argv, env = flow_command(), flow_env(case, work)
            else:
                spec = bare_spec(case, work)
                argv = [sys.executable, str(HERE / "bare_training.py"), str(spec)]
                env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
            times[side].append(run(argv, env, f"{side} ({case.rows} rows, {case.model})", side))
    shutil.rmtree(work, ignore_errors=True)
    return times


def import_costs(reps: int) -> dict[str, float]:
    """Median time for a fresh interpreter to import each side's entry point."""
    probes = {
        "python -c pass": "pass",
        "bare imports (mlflow, sklearn, pandas, pyarrow, matplotlib)": (
            "import mlflow, mlflow.sklearn, sklearn.ensemble, sklearn.linear_model, pandas, "
            "pyarrow.parquet, matplotlib.pyplot"
        ),
        "import driftloop.flows.train": "import driftloop.flows.train",
    }
    out = {}
    for label, code in probes.items():
        runs = [run([sys.executable, "-c", code], dict(os.environ), label) for _ in range(reps)]
        out[label] = statistics.median(runs)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="1000,100000,1000000",
        help="comma-separated row counts (split over 3 curated days)",
    )
    parser.add_argument(
        "--models", default="default,logreg", help=f"comma-separated, from: {', '.join(MODELS)}"
    )
    parser.add_argument("--reps", type=int, default=5, help="alternating repetitions per side")
    parser.add_argument(
        "--startup-reps", type=int, default=None, help="import-cost probes (default: --reps)"
    )
    parser.add_argument(
        "--prefect-api-url", default=None, help="use this Prefect server instead of starting one"
    )
    args = parser.parse_args(argv)
    startup_reps = args.reps if args.startup_reps is None else args.startup_reps
    sizes = [int(s) for s in args.sizes.split(",") if s]
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown --models {unknown}; choose from {list(MODELS)}")
    for key, value in {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
                       "GX_ANALYTICS_ENABLED": "false"}.items():  # fmt: skip
        os.environ.setdefault(key, value)

    root = Path(tempfile.mkdtemp(prefix="driftloop-bench-train-"))
    stack = None
    results: list[tuple[Case, dict[str, list[float]]]] = []
    try:
        api_url = args.prefect_api_url
        if api_url is None:
            started = time.perf_counter()
            config = StackConfig(home=root / "stack", prefect_port=free_port(), database="sqlite")
            stack = Stack(config)
            stack.start_prefect()
            api_url = stack.config.api_url
            print(f"Prefect server started in {time.perf_counter() - started:.1f} s")
        print(f"Prefect API {api_url}; MLflow on SQLite; work folder {root}")
        print(BOTH_SIDES)
        if startup_reps:
            print(f"\nstart-up (fresh interpreter, median of {startup_reps} runs):")
            for label, value in import_costs(startup_reps).items():
                print(f"  {label:<62} {value:6.2f} s")
        config_dirs = {m: config_dir_for(m, root / f"configs-{m}") for m in models}
        for rows in sizes:
            for model in models:
                template = root / f"template-{model}-{rows}"
                case = Case(rows, model, config_dirs[model], template, api_url)
                prepare(case, root)
                times = bench_case(case, root, args.reps)
                times.update({f"cpu {side}": list(values) for side, values in CPU.items()})
                results.append((case, times))
                f, b = statistics.median(times["flow"]), statistics.median(times["bare"])
                cf, cb = statistics.median(CPU["flow"]), statistics.median(CPU["bare"])
                print(f"  done {rows:>9,} rows {model:<8} wall: flow {f:6.2f} s bare {b:6.2f} s; "
                      f"cpu: flow {cf:6.2f} s bare {cb:6.2f} s")  # fmt: skip
                shutil.rmtree(template, ignore_errors=True)
    finally:
        if stack is not None:
            stack.down()
        shutil.rmtree(root, ignore_errors=True)

    print(f"\nmedians of {args.reps} alternating runs (seconds, wall time of a fresh process):")
    print(f"  {'rows':>9}  {'model':<8} {'flow':>7} {'bare':>7} {'ratio':>6} {'diff':>7}   runs")
    for case, times in results:
        f, b = statistics.median(times["flow"]), statistics.median(times["bare"])
        runs = "flow " + ", ".join(f"{t:.1f}" for t in times["flow"])
        runs += "; bare " + ", ".join(f"{t:.1f}" for t in times["bare"])
        print(f"  {case.rows:>9,}  {case.model:<8} {f:7.2f} {b:7.2f} {f / b:5.2f}x {f - b:+6.2f}s"
              f"   [{runs}]")  # fmt: skip
    print("\nCPU seconds (user + system of the process and what it waited for; the Prefect")
    print("server's own CPU is not included), medians: what the work costs whatever the load")
    print(f"  {'rows':>9}  {'model':<8} {'flow':>7} {'bare':>7} {'ratio':>6} {'diff':>7}")
    for case, times in results:
        f, b = statistics.median(times["cpu flow"]), statistics.median(times["cpu bare"])
        print(f"  {case.rows:>9,}  {case.model:<8} {f:7.2f} {b:7.2f} {f / b:5.2f}x {f - b:+6.2f}s")
    print(f"\nload average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
          f"on {os.cpu_count()} cores")  # fmt: skip
    print("goals: <= 1.10x at 1M rows (default model), <= 1.50x (logreg), <= +3 s at 1k rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
