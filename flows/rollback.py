"""rollback: put the previous champion (or a named version) back, checked and recorded."""

from __future__ import annotations

from prefect import flow

from driftloop.configs.settings import load_settings
from driftloop.flows.params import Overrides, Profile, flow_timeout
from driftloop.tasks import common
from driftloop.tasks import rollback as steps
from driftloop.tasks.adapters.oncall import on_failure_hook
from driftloop.tasks.core.results import RollbackSummary


@flow(
    name="rollback",
    timeout_seconds=flow_timeout("rollback"),
    flow_run_name="rollback-to-{to_version}",
    log_prints=True,
    on_failure=[on_failure_hook],
    on_crashed=[on_failure_hook],
)
def rollback(
    reason: str,
    to_version: str | None = None,
    profile: Profile | None = None,
    overrides: Overrides = None,
) -> RollbackSummary:
    """Re-point `champion` to the version it replaced last (or `to_version`).

    The target must pass the serving smoke check first. Drift re-baselines by itself: the
    drift check reads the reference snapshot of whichever version is champion.

    Args:
        reason: why (an incident, a ticket): recorded in the promotion ledger.
        to_version: the version to restore (empty: the champion the current one replaced).
        profile: config profile, configs/PROFILE.yaml read over base.yaml, e.g. prod (empty:
            the worker's DRIFTLOOP_PROFILE, else local).
        overrides: dotted config keys for this run only, validated like the YAML.
    """
    settings = load_settings(profile, overrides)
    current = common.require_champion(settings)
    target = steps.rollback_target(settings, current, to_version)
    smoke = steps.smoke_version(settings, target)
    entry = steps.roll_back(settings, current, target, smoke, reason)
    summary = RollbackSummary(
        from_version=current.version,
        to_version=target.version,
        reason=reason,
        smoke_latency_ms_per_1000=smoke.latency_ms_per_1000,
        reference_uri=target.tag("reference_uri"),
        ledger_entry=entry.entry_id,
    )
    steps.publish_rollback(summary, settings.registry.model_name)
    common.publish_loop_status(settings)
    return summary
