"""Serving smoke check: load a registered model the way a server would, in a fresh process.

Run as `python -m driftloop.tasks.adapters.smoke MODEL_URI SAMPLE.parquet`; prints one JSON
line. A fresh process proves the model loads from the registry alone (no objects left over in
the trainer's memory) and pyfunc enforces the logged signature on the sample. The output must
have the task's shape: class probabilities that sum to 1 (two columns for binary, one per class
for multiclass) or one finite value per row (regression).

Starting that interpreter and importing MLflow is slow (see benchmarks/README.md), so the train
flow starts it early (`prewarm`, once the fits are done, so it never competes with
multi-threaded fitting): it imports its libraries while the candidate is tracked and
registered, then waits for one request on stdin (`--serve`). It still never sees the trainer's
objects, only a model URI and a sample file.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.tasks.core.gate import SmokeResult

if TYPE_CHECKING:
    import pandas as pd


#: Started, idle smoke-check processes (see `prewarm`), by tracking URI and environment: a
#: process started under other settings (e.g. another S3 endpoint) is never reused.
_WARM: dict[tuple[str, int], subprocess.Popen[str]] = {}


def _key(tracking_uri: str) -> tuple[str, int]:
    return tracking_uri, hash(frozenset(os.environ.items()))


def _spawn(args: list[str], tracking_uri: str, stdin: int | None) -> subprocess.Popen[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    return subprocess.Popen(
        [sys.executable, "-m", "driftloop.tasks.adapters.smoke", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def prewarm(tracking_uri: str) -> None:
    """Start the fresh interpreter now, so its imports overlap the training.

    It exits by itself when this process goes away (its stdin closes), and at interpreter
    exit an unused one is stopped.
    """
    proc = _WARM.get(_key(tracking_uri))
    if proc is not None and proc.poll() is None:
        return
    if not _WARM:
        atexit.register(discard_warm)
    _WARM[_key(tracking_uri)] = _spawn(["--serve"], tracking_uri, subprocess.PIPE)


def discard_warm() -> None:
    """Stop every idle smoke-check process (e.g. the flow failed before its smoke check)."""
    while _WARM:
        _, proc = _WARM.popitem()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def check_in_fresh_process(
    model_uri: str,
    sample: pd.DataFrame,
    tracking_uri: str,
    timeout: float = 180.0,
    *,
    task: str = "binary",
    classes: int | None = None,
) -> SmokeResult:
    """Write the sample, hand it to a fresh interpreter (pre-warmed if any), read its verdict.

    `task` and `classes` (multiclass: how many classes the model knows) say what shape the
    served output must have."""
    expect = json.dumps({"task": task, "classes": classes})
    with tempfile.TemporaryDirectory(prefix="driftloop-smoke-") as tmp:
        path = Path(tmp) / "sample.parquet"
        sample.to_parquet(path, index=False)
        proc = _WARM.pop(_key(tracking_uri), None)
        request: str | None = (
            json.dumps({"model_uri": model_uri, "sample": str(path), "expect": expect}) + "\n"
        )
        if proc is None or proc.poll() is not None:
            proc, request = _spawn([model_uri, str(path), expect], tracking_uri, None), None
        try:
            stdout, stderr = proc.communicate(request, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return SmokeResult(
                ok=False,
                rows=0,
                latency_ms_per_1000=None,
                error=f"no answer within {timeout:.0f} s",
            )
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if lines:  # the verdict, with the real error when the model did not load or predict
        return SmokeResult.model_validate_json(lines[-1])
    if proc.returncode != 0:
        tail = (stderr or stdout).strip().splitlines()[-3:]
        return SmokeResult(
            ok=False,
            rows=0,
            latency_ms_per_1000=None,
            error=" | ".join(tail)[:500] or f"exit code {proc.returncode}",
        )
    return SmokeResult(ok=False, rows=0, latency_ms_per_1000=None, error="no verdict printed")


def check_output(predictions: object, rows: int, expect: dict[str, object]) -> None:
    """Raise ValueError unless `predictions` has the shape and values the task promises."""
    import numpy as np

    values = np.asarray(predictions, dtype=float)
    if len(values) != rows:
        raise ValueError(f"{len(values)} predictions for {rows} rows")
    task = expect.get("task", "binary")
    if task == "regression":
        if values.ndim != 1 or not np.isfinite(values).all():
            raise ValueError(f"a regression model must return one finite value per row, got "
                             f"shape {values.shape}")  # fmt: skip
        return
    columns = 2 if task == "binary" else expect.get("classes")
    if values.ndim != 2 or (columns is not None and values.shape[1] != columns):
        raise ValueError(f"expected {columns} probability columns, got shape {values.shape}")
    if rows and not np.allclose(values.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("class probabilities do not sum to 1")


def main(argv: list[str]) -> int:
    import mlflow
    import mlflow.pyfunc
    import pandas as pd

    if argv == ["--serve"]:
        import mlflow.sklearn  # what loading our models needs, imported ahead
        import skops.io  # noqa: F401

        line = sys.stdin.readline()
        if not line.strip():
            return 0  # the trainer went away or had nothing to check
        request = json.loads(line)
        argv = [request["model_uri"], request["sample"], request.get("expect", "{}")]
    model_uri, sample_path = argv[:2]
    expect = json.loads(argv[2]) if len(argv) > 2 else {}
    sample = pd.read_parquet(sample_path)
    try:
        model = mlflow.pyfunc.load_model(model_uri)
        started = time.perf_counter()
        predictions = model.predict(sample)
        elapsed = time.perf_counter() - started
        check_output(predictions, len(sample), expect)
        result = SmokeResult(
            ok=True,
            rows=len(sample),
            latency_ms_per_1000=elapsed * 1000 * 1000 / max(len(sample), 1),
        )
    except Exception as err:
        result = SmokeResult(
            ok=False,
            rows=len(sample),
            latency_ms_per_1000=None,
            error=f"{type(err).__name__}: {err}"[:500],
        )
    print(json.dumps(result.model_dump()))
    return 0 if result.ok else 1


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    sys.exit(main(sys.argv[1:]))
