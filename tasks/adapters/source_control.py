"""Source control: which commit of the code is running."""

from __future__ import annotations

import os
import subprocess

from driftloop.configs.settings import PROJECT_ROOT

#: Set in the flows' image (build argument CODE_VERSION): an image has no checkout to ask.
CODE_VERSION_ENV = "DRIFTLOOP_CODE_VERSION"


def code_version() -> str:
    """The git commit of the running code: $DRIFTLOOP_CODE_VERSION (the image's), else the
    checkout's HEAD, else 'unknown'."""
    if os.environ.get(CODE_VERSION_ENV):
        return os.environ[CODE_VERSION_ENV]
    try:
        done = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"
