"""The requirements of the flows' image, for the Containerfile and build-local.sh alike.

`requirements.py pyproject.toml` prints the project's own dependencies (no extras: the flows
need neither the stack's PostgreSQL nor the test tools). It runs on the base image's bare
python3 (3.11+: tomllib), so it imports nothing else at the top.

`requirements.py --marker-gaps report.json 3.11.2` reads a `pip install --dry-run --report`
made on the host and prints the dependencies the image's Python wants and the host's does not
(e.g. redis needs async-timeout below 3.11.3): pip evaluates markers for the Python it runs
on, even with --python-version, so the host's wheelhouse would lack them.
"""

from __future__ import annotations

import json
import platform
import sys
import tomllib


def requirements(pyproject: str, extras: tuple[str, ...] = ()) -> list[str]:
    with open(pyproject, "rb") as handle:
        project = tomllib.load(handle)["project"]
    optional = project.get("optional-dependencies", {})
    return [*project["dependencies"], *(req for extra in extras for req in optional[extra])]


def marker_gaps(report_path: str, python_version: str) -> list[str]:
    from packaging.requirements import Requirement

    major_minor = ".".join(python_version.split(".")[:2])
    target = {"python_full_version": python_version, "python_version": major_minor, "extra": ""}
    here = {
        "python_full_version": platform.python_version(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "extra": "",
    }
    with open(report_path) as handle:
        report = json.load(handle)
    gaps: set[str] = set()
    for item in report["install"]:
        for line in item["metadata"].get("requires_dist", []):
            req = Requirement(line)
            if req.marker is None or "extra" in str(req.marker):
                continue
            if req.marker.evaluate(target) and not req.marker.evaluate(here):
                req.marker = None
                gaps.add(str(req))
    return sorted(gaps)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--marker-gaps"]:
        print("\n".join(marker_gaps(sys.argv[2], sys.argv[3])))
    else:
        print("\n".join(requirements(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")))
