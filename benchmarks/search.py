"""Benchmark: hyperparameter-search trials on a Dask LocalCluster with 1 vs 2 workers.

Why: trials are independent fits, so they should scale with workers. This runs the same
search (`train.run_search`: the training rows shipped to the cluster once, one Prefect task
run per trial, the best chosen) with `dask.n_workers` 1 and 2, alternately, several times, and
prints the medians and the speed-up. The wall time includes starting and stopping the
LocalCluster, as a `train` run pays it. For reference it also times the same trials fitted
one after another in this process, with no Prefect and no Dask (`score_trial` in a loop).
Dask workers run one thread each (dask sets OMP_NUM_THREADS=1 in its worker processes); the
in-process loop lets scikit-learn use every core.

    python benchmarks/search.py                                     # 100k rows, 8 trials
    python benchmarks/search.py --rows 2000 --trials 2 --reps 1     # smoke run (tests)
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from driftloop.configs.settings import Settings, load_settings
from driftloop.data.generate import generate_day
from driftloop.deployments.stack import Stack, StackConfig, free_port

#: The searched grid; `--trials` takes the first N combinations.
GRID: dict[str, list[Any]] = {
    "max_depth": [3, 5],
    "learning_rate": [0.05, 0.1],
    "l2_regularization": [0.0, 1.0],
    "max_iter": [100],
}


def search_settings(trials: int, workers: int) -> Settings:
    combos = list(itertools.product(*GRID.values()))[:trials]
    params = {name: sorted({c[i] for c in combos}) for i, name in enumerate(GRID)}
    return load_settings(
        "local",
        {
            "model.search": {"strategy": "random", "params": params, "trials": trials, "seed": 0},
            "dask.n_workers": workers,
            "dask.threads_per_worker": 1,
        },
    )


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="training window rows")
    parser.add_argument(
        "--trials",
        type=int,
        default=8,
        help=f"at most {len(list(itertools.product(*GRID.values())))}",
    )
    parser.add_argument("--reps", type=int, default=3, help="alternating repetitions")
    parser.add_argument(
        "--prefect-api-url", default=None, help="use this Prefect server instead of starting one"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    from driftloop.tasks import train
    from driftloop.tasks.core.search import carve_validation, plan_trials, score_trial
    from driftloop.tasks.core.training import split_frame

    base = search_settings(args.trials, 1)
    assert base.model.search is not None
    trials = plan_trials(base.model.search, base.model)
    frame = generate_day(date(2026, 11, 1), args.rows, seed=0)
    split = split_frame(frame, base.dataset, base.split)
    data = carve_validation(split, base.model.search, base.model.search.seed)
    print(
        f"{len(trials)} trials of {base.model.estimator.rsplit('.', 1)[-1]} "
        f"(params {GRID}), {len(data.x_fit):,} fit rows / {len(data.x_val):,} validation rows"
    )

    root = Path(tempfile.mkdtemp(prefix="driftloop-bench-search-"))
    stack = None
    if args.prefect_api_url is None:
        stack = Stack(StackConfig(home=root / "stack", prefect_port=free_port(), database="sqlite"))
        stack.start_prefect()
        api_url = stack.config.api_url
    else:
        api_url = args.prefect_api_url
    from prefect.settings import PREFECT_API_URL, temporary_settings

    def in_process() -> Any:
        search = base.model.search
        assert search is not None
        return [
            score_trial(i, p, data, base.dataset, base.model, search.metric, 0.5)
            for i, p in enumerate(trials)
        ]

    def on_dask(workers: int) -> Callable[[], Any]:
        settings = search_settings(args.trials, workers)
        return lambda: train.run_search(trials, split, settings)

    variants: dict[str, Callable[[], Any]] = {
        "dask, 1 worker": on_dask(1),
        "dask, 2 workers": on_dask(2),
    }
    variants["in-process loop (no Prefect, no Dask)"] = in_process
    times: dict[str, list[float]] = {name: [] for name in variants}
    best: dict[str, Any] = {}
    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            for _ in range(args.reps):
                for name, fn in variants.items():
                    seconds, outcome = timed(fn)
                    times[name].append(seconds)
                    if hasattr(outcome, "best"):
                        best[name] = outcome.best.params
    finally:
        if stack is not None:
            stack.down()
        shutil.rmtree(root, ignore_errors=True)

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\nmedians of {args.reps} alternating runs (seconds, incl. LocalCluster start/stop):")
    for name, value in medians.items():
        spread = ", ".join(f"{t:.1f}" for t in times[name])
        print(f"  {name:<40} {value:7.2f}   [{spread}]")
    one, two = medians["dask, 1 worker"], medians["dask, 2 workers"]
    print(f"\nspeed-up 2 workers vs 1: {one / two:.2f}x  ({os.cpu_count()} cores on this machine)")
    if len({str(p) for p in best.values()}) == 1:
        print(f"every variant chose the same trial: {next(iter(best.values()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
