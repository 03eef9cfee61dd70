"""docs/onboarding.md's walkthrough, run as written: a sample file to a first champion in at most
three commands. The commands are read from the page, so the page cannot drift from what works.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from driftloop.configs.settings import CONFIG_DIR

pytestmark = pytest.mark.e2e

PAGE = Path(__file__).resolve().parents[2] / "docs" / "onboarding.md"


def block(marker: str) -> list[str]:
    """The command lines of the fenced block right after `<!-- marker -->`."""
    found = re.search(rf"<!-- {marker} -->\n```bash\n(.*?)```", PAGE.read_text(), re.DOTALL)
    assert found, f"docs/onboarding.md has no block after <!-- {marker} -->"
    return [line for line in found.group(1).splitlines() if line.strip()]


def test_the_walkthrough_takes_a_sample_to_a_champion_in_three_commands(tmp_path: Path) -> None:
    commands = block("walkthrough")
    assert len(commands) <= 3, commands
    home = tmp_path / "project"
    home.mkdir()
    configs = tmp_path / "configs"  # a copy: init must not write into the checkout
    configs.mkdir()
    for path in CONFIG_DIR.glob("*.yaml"):
        shutil.copy(path, configs / path.name)
    (configs / "datasets").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, module in (("driftloop", "driftloop.flows.cli"), ("python", None)):
        target = f"{sys.executable} -m {module}" if module else sys.executable
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec {target} "$@"\n')
        script.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DRIFTLOOP_HOME": str(home),  # data/lake and the MLflow store resolve here
        "DRIFTLOOP_CONFIG_DIR": str(configs),
        "PREFECT_LOGGING_COLORS": "false",
    }
    env.pop("PREFECT_API_URL", None)
    env.pop("DRIFTLOOP_OVERRIDES", None)
    outputs = []
    for line in block("walkthrough:prepare") + commands:
        done = subprocess.run(
            ["bash", "-c", line], cwd=home, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, f"{line}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)

    assert "task multiclass on target 'cultivar'" in outputs[1]
    assert (configs / "datasets" / "shop.yaml").is_file()
    summary = json.loads(outputs[-1][outputs[-1].index("{") :])
    assert summary["champion"] == "1" and not summary["failed_days"]
    predictions = sorted((home / "data" / "lake" / "predictions" / "shop").glob("*.parquet"))
    assert [p.stem for p in predictions][-1] == "2026-11-06"
