"""Serving smoke check: load a registered model the way a server would, in a fresh process.

Run as `python -m driftloop.tasks.smoke MODEL_URI SAMPLE.parquet`; prints one JSON line. A fresh
process proves the model loads from the registry alone (no objects left over in the trainer's
memory) and pyfunc enforces the logged signature on the sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.tasks.gate import SmokeResult

if TYPE_CHECKING:
    import pandas as pd


def check_in_fresh_process(
    model_uri: str, sample: pd.DataFrame, tracking_uri: str, timeout: float = 180.0
) -> SmokeResult:
    """Write the sample, run this module in a new interpreter, read its verdict."""
    with tempfile.TemporaryDirectory(prefix="driftloop-smoke-") as tmp:
        path = Path(tmp) / "sample.parquet"
        sample.to_parquet(path, index=False)
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "driftloop.tasks.smoke", model_uri, str(path)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return SmokeResult(ok=False, rows=0, latency_ms_per_1000=None,
                               error=f"no answer within {timeout:.0f} s")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return SmokeResult(ok=False, rows=0, latency_ms_per_1000=None,
                           error=" | ".join(tail)[:500] or f"exit code {done.returncode}")
    return SmokeResult.model_validate_json(lines[-1])


def main(argv: list[str]) -> int:
    import mlflow
    import pandas as pd

    model_uri, sample_path = argv
    sample = pd.read_parquet(sample_path)
    try:
        model = mlflow.pyfunc.load_model(model_uri)
        started = time.perf_counter()
        predictions = model.predict(sample)
        elapsed = time.perf_counter() - started
        if len(predictions) != len(sample):
            raise ValueError(f"{len(predictions)} predictions for {len(sample)} rows")
        result = SmokeResult(
            ok=True,
            rows=len(sample),
            latency_ms_per_1000=elapsed * 1000 * 1000 / max(len(sample), 1),
        )
    except Exception as err:
        result = SmokeResult(ok=False, rows=len(sample), latency_ms_per_1000=None,
                             error=f"{type(err).__name__}: {err}"[:500])
    print(json.dumps(result.model_dump()))
    return 0 if result.ok else 1


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    sys.exit(main(sys.argv[1:]))
