"""A worker process is killed (SIGKILL) while it writes a stream-mode prediction file: the
rerun leaves exactly one predictions file for the day, whole. (The partitioned mode's rerun:
tests/integration/test_scoring_scale.py.)

The scoring runs in a real child process against the session's Prefect server, as a worker's
flow run would; the test kills it once its temp file is being written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from driftloop.data.generate import generate_day
from driftloop.flows.score import score
from driftloop.tasks.adapters import registry, storage
from driftloop.tasks.core.training import fit_pipeline, split_frame

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("prefect_backend")]

DAY = date(2026, 11, 11)
ROWS = 120_000
FAST = {"model.params.max_iter": 30, "dataset.data_docs": False, "scoring.batch_rows": 2000}

CHILD = """
import json, sys
from datetime import date
from driftloop.flows.score import score
score(date.fromisoformat(sys.argv[1]), overrides=json.loads(sys.argv[2]), mode="stream")
"""


@pytest.fixture(scope="module")
def champion(workspace_factory) -> tuple[Any, dict[str, Any]]:
    """A small champion registered through the registry adapter (the train flow has its own
    tests) and a large day to score, so the kill lands mid-write."""
    ws = workspace_factory("killed")
    overrides = {**ws.overrides, **FAST}
    settings = ws.settings(**FAST)
    frame = generate_day(DAY, 1500, seed=1)
    split = split_frame(frame, settings.dataset, settings.split)
    pipeline = fit_pipeline(split, settings.dataset, settings.model)
    experiment = registry.configure_tracking(settings.tracking, settings.registry)
    _run, model_uri = registry.log_candidate(
        experiment_id=experiment, run_name="kill-test", pipeline=pipeline,
        input_example=split.x_train.head(20), params={}, metrics={}, figures={}, tags={},
        training_frame=frame.head(20), training_source="generated",
        target=settings.dataset.target, documents={},
    )  # fmt: skip
    version = registry.register(model_uri, settings.registry, {})
    registry.set_alias(settings.registry, settings.registry.champion_alias, version)
    lake = storage.Lake(ws.lake_root, "loans")
    storage.write_frame(generate_day(DAY, ROWS, seed=2), lake.raw(DAY))
    return ws, overrides


def test_a_worker_killed_mid_write_leaves_one_whole_file_after_the_rerun(champion) -> None:
    from prefect.settings import PREFECT_API_URL

    ws, overrides = champion
    folder = Path(ws.lake_root) / "predictions" / "loan-default"
    target = folder / f"{DAY}.parquet"
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, DAY.isoformat(), json.dumps(overrides)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not (folder.is_dir() and any(p.name.endswith(".tmp") for p in folder.iterdir())):
            assert child.poll() is None, (
                f"the scoring ended before the kill:\n{child.stdout.read()[-3000:]}"
            )  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the scoring never started writing"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    left = sorted(p.name for p in folder.iterdir())
    assert not target.exists(), "a killed write must not leave the final file"
    assert left and all(name.endswith(".tmp") for name in left), left

    again = score(DAY, overrides=overrides, mode="stream")
    assert sorted(p.name for p in folder.iterdir()) == [target.name], "one file for the day"
    predictions = storage.read_frame(str(target))
    assert len(predictions) == again.rows and again.rows + again.rows_quarantined == ROWS
    assert predictions["loan_id"].is_unique
