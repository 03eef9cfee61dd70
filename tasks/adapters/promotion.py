"""Moving an alias: under a lock, recorded in the ledger, settled even after a crash.

The lock is a Prefect global concurrency limit (one slot per model), so it holds across
processes and workers on the same Prefect server; we build no locking of our own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from driftloop.configs.settings import Settings
from driftloop.tasks.adapters import registry
from driftloop.tasks.adapters.ledger import Kind, Ledger, LedgerEntry

LOCK_TIMEOUT_SECONDS = 600


def lock_name(model: str) -> str:
    return f"driftloop-promote-{model}"


@contextmanager
def promotion_lock(model: str) -> Iterator[None]:
    """One alias move per model at a time, across every process talking to the server."""
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists

    name = lock_name(model)
    # another process may create it between the upsert's read and its create
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.upsert_global_concurrency_limit_by_name(name, 1)
    with concurrency(name, occupy=1, timeout_seconds=LOCK_TIMEOUT_SECONDS, strict=True):
        yield


def ledger_for(settings: Settings) -> Ledger:
    return Ledger(settings.storage.root, settings.registry.model_name)


def _current(settings: Settings, alias: str) -> str | None:
    info = registry.version_by_alias(settings.registry, alias)
    return info.version if info else None


def move_alias(
    settings: Settings,
    *,
    alias: str,
    to_version: str,
    kind: Kind,
    reason: str,
    flow_run_id: str = "",
    mlflow_run_id: str = "",
    gate_decision_id: str = "",
    evidence: str = "",
) -> LedgerEntry:
    """Intent, alias move, commit: the ledger and the alias never disagree for long."""
    ledger = ledger_for(settings)
    with promotion_lock(settings.registry.model_name):
        ledger.reconcile(alias, lambda: _current(settings, alias))
        entry = ledger.write_intent(
            LedgerEntry(
                model=settings.registry.model_name,
                alias=alias,
                from_version=_current(settings, alias),
                to_version=to_version,
                kind=kind,
                reason=reason,
                flow_run_id=flow_run_id,
                mlflow_run_id=mlflow_run_id,
                gate_decision_id=gate_decision_id,
                evidence=evidence,
            )
        )
        registry.set_alias(settings.registry, alias, to_version)
        return ledger.settle(entry, "committed")
