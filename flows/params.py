"""Flow parameter helpers shared by the deployable flows.

The UI's typed form comes from each flow's signature (types, defaults) and the `Args:` section
of its docstring (descriptions): Prefect reads both at deploy time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from driftloop.configs.settings import CONFIG_DIR, ConfigError

#: YYYY-MM-DD with a month 01-12 and a day 01-31.
DAY_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"

#: A day parameter the server itself checks when a run is created (UI form, API, trigger):
#: Prefect's schema says `format: date`, but its server-side validation ignores formats, so a
#: run for "2026-13-45" was created, failed on the worker and paged on-call. A `pattern` is
#: enforced; an impossible date that matches it (2026-02-31) still fails at the run's start.
Day = Annotated[date, Field(json_schema_extra={"pattern": DAY_PATTERN})]


def available_profiles(config_dir: Path | None = None) -> tuple[str, ...]:
    """The profiles a run may choose: every NAME.yaml but base.yaml in configs/ (or in
    $DRIFTLOOP_CONFIG_DIR, as load_settings reads them)."""
    folder = config_dir or Path(os.environ.get("DRIFTLOOP_CONFIG_DIR") or CONFIG_DIR)
    return tuple(sorted(p.stem for p in folder.glob("*.yaml") if p.stem != "base"))


#: `profile` is a choice in the UI's form (an enum in the deployment's schema, refused by the
#: server when it names no file in configs/); the list is read when the flows are deployed.
Profile = Literal[available_profiles()]  # type: ignore[valid-type]

#: An optional JSON object as the UI's form should show it: a JSON field with its example and
#: `{}` when left alone. Python callers may still pass None (a parent flow's "no overrides"),
#: but the deployment's schema has no null branch: with one, the form offered "None" as a type
#: and showed "Property is type None" instead of the field. The server keeps enforcing the
#: schema (an object, or nothing).
OptionalObject = dict[str, Any] | SkipJsonSchema[None]

#: Config overrides: dotted keys, validated like the YAML when the run starts.
Overrides = Annotated[
    OptionalObject,
    Field(
        examples=[{"gate.metrics.roc_auc.threshold": 0.7, "drift.window_days": 7}],
        json_schema_extra={"default": {}},
    ),
]

#: Estimator hyperparameters, merged over the config's model.params.
Hyperparameters = Annotated[
    OptionalObject,
    Field(examples=[{"max_iter": 80, "learning_rate": 0.05}], json_schema_extra={"default": {}}),
]

#: A value the system records (a deployment trigger, a parent flow) and people do not type:
#: left out of the deployment's schema, so the UI's form has no field for it.
SystemValue = SkipJsonSchema[str]

#: Seconds after which a run of each flow is TimedOut (and pages on-call): a hung run (an
#: unanswered S3 or MLflow call) otherwise holds its worker slot for ever. Generous: several
#: times the longest run seen on the local stack. DRIFTLOOP_TIMEOUT_<FLOW> (seconds; 0: none)
#: sets one for the worker that imports the flows.
DEFAULT_TIMEOUTS: dict[str, float] = {
    "process": 12 * 3600,
    "ingest": 3600,
    "labels": 3600,
    "score": 3 * 3600,
    "check_drift": 3600,
    "train": 6 * 3600,
    "rollback": 1800,
    "notify": 300,
}


def flow_timeout(flow: str, environ: Mapping[str, str] | None = None) -> float | None:
    """The timeout of `flow` in seconds (None: no timeout), from DRIFTLOOP_TIMEOUT_<FLOW>."""
    env = os.environ if environ is None else environ
    name = f"DRIFTLOOP_TIMEOUT_{flow.upper()}"
    raw = (env.get(name) or "").strip()
    if not raw:
        return DEFAULT_TIMEOUTS[flow]
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise ConfigError(f"{name}={raw!r}: give the timeout in seconds (0: no timeout)")
    return seconds or None


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
