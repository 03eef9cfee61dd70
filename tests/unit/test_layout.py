"""The rooms keep their import direction: flows -> tasks -> core/adapters -> configs.

The `driftloop` command (flows/cli.py) stands above them all: it runs flows and starts the
stack's local server, so it may import deployments too, and nothing imports it but the tests.

The core holds the decisions and must stay pure (no outside system, no Prefect), so it can be
table-tested and replayed offline; adapters are the only place an outside library's API is
used. A planted violation (tests/fixtures/layout_violation) proves the rule bites.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "layout_violation"

# Libraries that talk to an outside system or to Prefect: adapters and task modules only.
OUTSIDE = {
    "prefect",
    "prefect_dask",
    "mlflow",
    "great_expectations",
    "evidently",
    "boto3",
    "botocore",
    "requests",
    "httpx",
    "dask",
    "distributed",
    "skops",
    "subprocess",
    "socket",
    "urllib.request",
}

# room -> driftloop packages it may import (its own room included)
ALLOWED: dict[str, tuple[str, ...]] = {
    "configs": ("driftloop.configs",),
    "tasks.core": ("driftloop.configs", "driftloop.tasks.core"),
    "tasks.adapters": ("driftloop.configs", "driftloop.tasks.core", "driftloop.tasks.adapters"),
    "tasks": ("driftloop.configs", "driftloop.tasks"),
    "data": (
        "driftloop.configs",
        "driftloop.data",
        "driftloop.tasks.core",
        "driftloop.tasks.adapters",
    ),
    "flows": ("driftloop.configs", "driftloop.tasks", "driftloop.flows", "driftloop.data"),
    "deployments": (
        "driftloop.configs",
        "driftloop.tasks",
        "driftloop.flows",
        "driftloop.deployments",
    ),
    "cli": (
        "driftloop.configs",
        "driftloop.tasks",
        "driftloop.flows",
        "driftloop.data",
        "driftloop.deployments",
    ),
}
PURE = {"configs", "tasks.core"}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    imported: str
    room: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.room} must not import {self.imported}"


def room_of(relative: Path) -> str | None:
    if relative == Path("flows/cli.py"):
        return "cli"
    parts = relative.parts
    if parts[0] == "tasks" and len(parts) > 2 and parts[1] in ("core", "adapters"):
        return f"tasks.{parts[1]}"
    return parts[0] if parts[0] in ALLOWED else None


def imports_of(tree: ast.AST) -> list[tuple[int, str]]:
    """Every imported module, at any depth (imports inside functions count too)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("driftloop."):
                # `from driftloop.tasks import core` imports the sub-package driftloop.tasks.core
                found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def violations(root: Path) -> list[Violation]:
    out = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        room = room_of(relative)
        if room is None:
            continue
        for line, module in imports_of(ast.parse(path.read_text(), str(path))):
            if module.startswith("driftloop."):
                if not module.startswith(tuple(f"{p}." for p in ALLOWED[room])):
                    out.append(Violation(str(relative), line, module, room))
            elif room in PURE and (module in OUTSIDE or module.split(".")[0] in OUTSIDE):
                out.append(Violation(str(relative), line, module, room))
    return out


def test_the_tree_keeps_the_import_direction() -> None:
    found = [v for v in violations(ROOT) if not v.path.startswith("tests")]
    assert not found, "imports against the direction:\n" + "\n".join(map(str, found))


def test_a_planted_violation_is_caught() -> None:
    found = {(v.path, v.imported) for v in violations(FIXTURE)}
    assert found == {
        ("tasks/core/leaky.py", "prefect"),
        ("tasks/core/leaky.py", "driftloop.tasks.adapters.storage"),
        ("configs/settings.py", "driftloop.flows.cli.main"),
    }


def test_each_room_says_what_lives_there_and_what_it_may_import() -> None:
    for package in ("tasks/core", "tasks/adapters", "tasks"):
        doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text())) or ""
        assert "import" in doc, f"{package}/__init__.py should say what it may import"
