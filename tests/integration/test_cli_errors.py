"""What a user sees when a command fails on something they can fix: one line naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _driftloop(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DRIFTLOOP_OVERRIDES": json.dumps({"storage.root": str(root)}),
        "PREFECT_LOGGING_COLORS": "false",
    }
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "driftloop.flows.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_fixable_error_is_one_line_and_verbose_shows_the_traceback(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "loans" / "2026-11-01.parquet"
    raw.parent.mkdir(parents=True)
    raw.write_bytes(b"id,age\n1,2\n")  # a CSV under a parquet name: the contract's reader fails
    before = raw.read_bytes()

    done = _driftloop("ingest", "2026-11-01", root=tmp_path)

    assert done.returncode == 1, done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    errors = [line for line in done.stderr.splitlines() if line.startswith("driftloop ingest:")]
    assert len(errors) == 1, done.stderr[-2000:]
    assert str(raw) in errors[0], "the line names the file at fault"
    assert "(--verbose prints the traceback)" in done.stderr
    assert raw.read_bytes() == before

    verbose = _driftloop("--verbose", "ingest", "2026-11-01", root=tmp_path)
    assert verbose.returncode != 0
    assert "Traceback" in verbose.stdout + verbose.stderr
