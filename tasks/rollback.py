"""Prefect tasks of the `rollback` flow: choose the version to go back to, check it, move the alias.

Tasks that take DataFrames or models use `cache_policy=NONE`: hashing a large frame for a cache
key is costly and caching is not wanted for these steps. Clients (MLflow, boto3) are built
inside the task bodies, never passed in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from driftloop.configs.settings import Settings
from driftloop.tasks.adapters import registry, storage
from driftloop.tasks.adapters.ledger import LedgerEntry
from driftloop.tasks.adapters.promotion import ledger_for, move_alias
from driftloop.tasks.adapters.registry import ModelVersionInfo, RegistryError
from driftloop.tasks.adapters.smoke import check_in_fresh_process
from driftloop.tasks.common import IO_RETRIES, artifact_key, current_run_id
from driftloop.tasks.core.gate import SmokeResult
from driftloop.tasks.core.results import RollbackSummary
from driftloop.tasks.core.training import model_input

if TYPE_CHECKING:
    pass


class RollbackError(RuntimeError):
    """There is nothing sound to roll back to; the message says what to choose instead."""


@task(name="choose-rollback-target", **IO_RETRIES)
def rollback_target(
    settings: Settings, current: ModelVersionInfo, to_version: str | None
) -> ModelVersionInfo:
    """A named version, or the champion that the current one replaced (from the ledger)."""
    if to_version is None:
        ledger = ledger_for(settings)
        moves = [
            e
            for e in ledger.committed(settings.registry.champion_alias)
            if e.to_version == current.version and e.from_version
        ]
        if not moves:
            raise RollbackError(
                f"the ledger has no champion before v{current.version} of "
                f"{settings.registry.model_name!r}: name the version to roll back to"
            )
        to_version = str(moves[-1].from_version)
    if to_version == current.version:
        raise RollbackError(f"v{to_version} is already the champion: nothing to roll back")
    target = registry.get_version(settings.registry, to_version)
    if not target.tag("reference_uri"):
        raise RollbackError(
            f"v{to_version} has no drift reference snapshot, so drift could not be checked "
            "against it: choose a version registered by the train flow"
        )
    return target


@task(name="rollback-smoke-check", cache_policy=NONE)
def smoke_version(settings: Settings, target: ModelVersionInfo) -> SmokeResult:
    """The rollback target's files must be the ones registered (their digest), and it must load
    and predict on its own reference rows, before it serves."""
    try:
        registry.verify_version(target)
    except RegistryError as err:
        raise RollbackError(f"v{target.version} cannot be rolled back to: {err}") from err
    reference = storage.read_frame(target.tag("reference_uri"))
    sample = model_input(reference.head(settings.gate.smoke_rows), settings.dataset)
    result = check_in_fresh_process(target.uri, sample, settings.tracking.uri)
    if not result.ok:
        raise RollbackError(
            f"v{target.version} failed the serving smoke check ({result.error}): not rolled "
            "back; choose another version"
        )
    return result


@task(name="move-champion-back", cache_policy=NONE, **IO_RETRIES)
def roll_back(
    settings: Settings,
    current: ModelVersionInfo,
    target: ModelVersionInfo,
    smoke: SmokeResult,
    reason: str,
) -> LedgerEntry:
    return move_alias(
        settings,
        alias=settings.registry.champion_alias,
        to_version=target.version,
        kind="rollback",
        reason=f"{reason} (from v{current.version}; smoke check "
        f"{smoke.latency_ms_per_1000:.1f} ms per 1000 rows)",
        flow_run_id=current_run_id(),
        mlflow_run_id=target.run_id,
    )


@task(name="publish-rollback", cache_policy=NONE)
def publish_rollback(summary: RollbackSummary, model_name: str) -> None:
    create_markdown_artifact(
        key=artifact_key("rollback", model_name),
        markdown=(
            f"## Rollback of {model_name}: v{summary.from_version} -> v{summary.to_version}\n\n"
            f"{summary.reason}\n\nDrift baseline now: `{summary.reference_uri}`; "
            f"ledger entry `{summary.ledger_entry}`."
        ),
    )
