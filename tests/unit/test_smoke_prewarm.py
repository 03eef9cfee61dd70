"""The pre-warmed smoke-check process answers exactly one request, like a fresh one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from driftloop.tasks.adapters import smoke


def test_prewarmed_process_is_used_once_and_reports_a_missing_model(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    smoke.prewarm(uri)
    warm = next(iter(smoke._WARM.values()))
    smoke.prewarm(uri)  # a second call keeps the running process
    assert list(smoke._WARM.values()) == [warm]
    result = smoke.check_in_fresh_process("models:/nothing-here/1", pd.DataFrame({"a": [1.0]}), uri)
    assert not result.ok and "nothing-here" in (result.error or "")
    assert warm.returncode is not None, "the warm process answered and exited"
    assert not smoke._WARM, "it is never reused"


def test_unused_warm_processes_are_stopped(tmp_path: Path) -> None:
    smoke.prewarm(f"sqlite:///{tmp_path / 'mlflow.db'}")
    procs = list(smoke._WARM.values())
    smoke.discard_warm()
    assert not smoke._WARM and all(p.poll() is not None for p in procs)
