"""Flow parameter helpers shared by the deployable flows.

The UI's typed form comes from each flow's signature (types, defaults) and the `Args:` section
of its docstring (descriptions): Prefect reads both at deploy time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field

#: YYYY-MM-DD with a month 01-12 and a day 01-31.
DAY_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"

#: A day parameter the server itself checks when a run is created (UI form, API, trigger):
#: Prefect's schema says `format: date`, but its server-side validation ignores formats, so a
#: run for "2026-13-45" was created, failed on the worker and paged on-call. A `pattern` is
#: enforced; an impossible date that matches it (2026-02-31) still fails at the run's start.
Day = Annotated[date, Field(json_schema_extra={"pattern": DAY_PATTERN})]


def merged_overrides(
    overrides: dict[str, Any] | None, hyperparameters: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Hyperparameters are config overrides under model.params; explicit overrides win."""
    if not hyperparameters:
        return overrides
    merged: dict[str, Any] = {f"model.params.{k}": v for k, v in hyperparameters.items()}
    merged.update(overrides or {})
    return merged


def yesterday() -> date:
    """The default day of scheduled runs: the last complete day, in UTC."""
    return datetime.now(UTC).date() - timedelta(days=1)


def run_name(prefix: str, *fields: str) -> Callable[[], str]:
    """A flow-run name from parameters, naming the day a scheduled run (no day given) used."""

    def name() -> str:
        from prefect.runtime import flow_run

        params = flow_run.parameters or {}
        return prefix + "-" + "..".join(str(params.get(f) or yesterday()) for f in fields)

    return name
