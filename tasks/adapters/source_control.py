"""Source control: which commit of the code is running."""

from __future__ import annotations

import subprocess

from driftloop.configs.settings import PROJECT_ROOT


def code_version() -> str:
    """The git commit of the running code, or 'unknown' outside a checkout."""
    try:
        done = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"
