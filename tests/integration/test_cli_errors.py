"""What a user sees when a command fails on something they can fix: one line naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _driftloop(
    *args: str, root: Path, extra: dict[str, object] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DRIFTLOOP_OVERRIDES": json.dumps({"storage.root": str(root), **(extra or {})}),
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


def _one_error_line(done: subprocess.CompletedProcess[str], command: str) -> str:
    assert done.returncode != 0, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith(f"driftloop {command}")]
    errors += [line for line in done.stderr.splitlines() if line.startswith("driftloop: ")]
    assert len(errors) == 1, done.stderr[-2000:]
    return errors[0]


def test_a_contract_breach_is_one_line(tmp_path: Path) -> None:
    from datetime import date

    from driftloop.data.generate import generate_day
    from driftloop.tasks.adapters import storage

    day = date(2026, 11, 1)
    raw = tmp_path / "raw" / "loans" / f"{day}.parquet"
    storage.write_frame(generate_day(day, 200).assign(age=5), str(raw))
    line = _one_error_line(_driftloop("ingest", str(day), root=tmp_path), "ingest")
    assert "DataContractError" in line and str(raw) in line


def test_a_window_with_no_curated_day_is_one_line(tmp_path: Path) -> None:
    line = _one_error_line(_driftloop("train", "2026-11-01", "2026-11-03", root=tmp_path), "train")
    assert "MissingDataError" in line and "ingest them first" in line


def test_an_unknown_config_key_is_one_line(tmp_path: Path) -> None:
    done = _driftloop("ingest", "2026-11-01", root=tmp_path, extra={"dataset.no_such_key": 1})
    assert done.returncode == 2 and "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.splitlines()
    (first,) = [i for i, line in enumerate(lines) if line.startswith("driftloop: ")]
    assert "invalid driftloop config" in lines[first]
    assert any("dataset.no_such_key" in line for line in lines[first : first + 6]), lines[first:]


def test_a_profile_that_does_not_exist_is_one_line_naming_the_existing_ones(
    tmp_path: Path,
) -> None:
    """Before any run (and any server) starts: not Prefect's parameter check a page later."""
    for args in (
        ("ingest", "2026-11-01", "--profile", "staging"),
        ("--profile", "staging", "train", "2026-11-01", "2026-11-03"),
    ):
        done = _driftloop(*args, root=tmp_path)
        assert done.returncode == 2, done.stderr[-2000:]
        assert done.stderr.strip().splitlines() == [
            "driftloop: profile 'staging' (--profile) does not exist: no configs/staging.yaml; "
            "existing profiles: local, prod"
        ], done.stderr[-2000:]
        assert not (tmp_path / "curated").exists() and "Flow run" not in done.stdout
    env_named = subprocess.run(
        [sys.executable, "-m", "driftloop.flows.cli", "ingest", "2026-11-01"],
        env={**os.environ, "DRIFTLOOP_PROFILE": "staging"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert env_named.returncode == 2
    assert "profile 'staging' (DRIFTLOOP_PROFILE) does not exist" in env_named.stderr


def test_the_commands_fast_exit_stops_the_temporary_server(tmp_path: Path) -> None:
    """`driftloop demo` (and any command with DRIFTLOOP_LOCAL_SERVER=off) runs on a temporary
    Prefect server; the CLI leaves with os._exit, which skips Prefect's own stop at exit, and
    each demo left its server running. The exit path stops it (in a child process: stopping
    servers must not touch this test process's own)."""
    script = (
        "import os, sys\n"
        "from prefect.server.api.server import SubprocessASGIServer\n"
        "from driftloop.flows.cli import _stop_temporary_servers\n"
        "server = SubprocessASGIServer()\n"
        "server.start()\n"
        "print(server.server_process.pid, flush=True)\n"
        "_stop_temporary_servers()\n"
        "os._exit(0)\n"
    )
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pid = int(done.stdout.split()[0])
    assert (
        not Path(f"/proc/{pid}").exists()
        or b"prefect.server" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    ), f"the temporary server {pid} is still running"
