"""On-call automations as code, applied idempotently (by name) to the Prefect server.

- `driftloop-on-call`: a pipeline run (ingest/train/score/check_drift) Failed, Crashed or
  TimedOut (a timeout is its own event: a Failed-only trigger misses it) -> run the `notify`
  deployment with the run's id; `notify` gathers the failing task, exception, logs and the
  MLflow run and posts the Slack-compatible message.
- `driftloop-stuck-runs`: a pipeline run entered Late or Pending and did not start Running within
  the limit -> run `notify` for it, which re-reads the run's state and pages only if it is still
  Late or Pending (an event the server dropped must not page a run that already moved on).
- `driftloop-no-worker`: the `driftloop-process` pool went not-ready (no worker polled it lately)
  -> the server itself posts to the webhook: with no worker alive, `notify` cannot run.
- `driftloop-drift-storm`: several drift events for one model within a day -> the server posts.
- `driftloop-unresponsive-runs`: a flow run stopped sending heartbeats while Running (its
  process died with its worker or machine) -> the server marks it Crashed, which pages on-call
  through `driftloop-on-call` and lets the next `process` run take its days. Heartbeats come
  every $PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (the stack sets it for every process).

The webhook URL comes from $DRIFTLOOP_WEBHOOK_URL at `make up` and is stored in the Prefect
Secret block `driftloop-oncall-webhook` (read by `notify`) and the Webhook block
`driftloop-oncall` (used by the server-side actions); it never lives in git.

Run as `python -m driftloop.deployments.automations` with PREFECT_API_URL set (the stack does).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
from datetime import timedelta
from typing import Any
from uuid import UUID

from driftloop.tasks.adapters import notifications
from driftloop.tasks.adapters.oncall import (
    PIPELINE_FLOWS,
    RUNBOOK_ENV,
    WEBHOOK_ENV,
    WEBHOOK_SECRET_BLOCK,
)

WORK_POOL = "driftloop-process"
WEBHOOK_BLOCK = "driftloop-oncall"
STUCK_AFTER_ENV = "DRIFTLOOP_STUCK_AFTER_MINUTES"
DRIFT_STORM_COUNT = 3
ON_CALL = "driftloop-on-call"
STUCK = "driftloop-stuck-runs"
DRIFT_STORM = "driftloop-drift-storm"
UNRESPONSIVE = "driftloop-unresponsive-runs"
NO_WORKER = "driftloop-no-worker"
MISSED_HEARTBEATS = 3
HEARTBEAT_SLACK = timedelta(minutes=2)  # a busy SQLite server can stall event intake a minute


def unresponsive_after(heartbeat_seconds: float) -> timedelta:
    """How long without a heartbeat before a Running run is declared dead.

    Three missed beats, and never under beat + two minutes: a false alarm would crash a live
    run (and page someone), a late one only delays the next `process` run.
    """
    beat = timedelta(seconds=heartbeat_seconds)
    return max(MISSED_HEARTBEATS * beat, beat + HEARTBEAT_SLACK)


def _pipeline_runs() -> dict[str, Any]:
    """Match flow-run events of the pipeline flows only (never `notify` itself: no loops)."""
    return {"prefect.resource.role": "flow", "prefect.resource.name": list(PIPELINE_FLOWS)}


def build_automations(
    notify_deployment_id: UUID,
    webhook_block_id: UUID | None,
    stuck_after: timedelta,
    runbook_base: str,
    heartbeat_seconds: float = 180,
) -> list[Any]:
    """The automation objects; the server-side ones need the webhook block."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import CallWebhook, ChangeFlowRunState, RunDeployment
    from prefect.events.schemas.automations import AutomationCore as Automation
    from prefect.events.schemas.automations import EventTrigger, Posture

    silence = unresponsive_after(heartbeat_seconds)
    automations = [
        Automation(
            name=ON_CALL,
            description="Pipeline run failed, crashed or timed out: run `notify` for it.",
            trigger=EventTrigger(
                match={"prefect.resource.id": "prefect.flow-run.*"},
                match_related=_pipeline_runs(),
                expect={
                    "prefect.flow-run.Failed",
                    "prefect.flow-run.Crashed",
                    "prefect.flow-run.TimedOut",
                },
                posture=Posture.Reactive,
                threshold=1,
                within=timedelta(0),
            ),
            actions=[
                RunDeployment(
                    source="selected",
                    deployment_id=notify_deployment_id,
                    parameters={"flow_run": "{{ event.resource.id }}"},
                )
            ],
        ),
        Automation(
            name=UNRESPONSIVE,
            description="Running flow run sent no heartbeat: mark it Crashed.",
            trigger=EventTrigger(
                match={"prefect.resource.id": "prefect.flow-run.*"},
                after={"prefect.flow-run.heartbeat"},
                expect={
                    "prefect.flow-run.heartbeat",
                    "prefect.flow-run.Completed",
                    "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled",
                    "prefect.flow-run.Crashed",
                    "prefect.flow-run.TimedOut",
                },
                for_each={"prefect.resource.id"},
                posture=Posture.Proactive,
                threshold=1,
                within=silence,
            ),
            actions=[
                ChangeFlowRunState(
                    state=StateType.CRASHED,
                    message=f"No heartbeat for {silence.total_seconds() / 60:g} min: its "
                    "process is gone (worker or machine stopped). Rerun it if it was started "
                    "by hand; `process` runs take over its days by themselves.",
                )
            ],
        ),
    ]
    minutes = int(stuck_after.total_seconds() // 60)
    automations.append(
        Automation(
            name=STUCK,
            description=f"Pipeline run Late or Pending for more than {minutes} min: run "
            "`notify`, which re-reads the run's state and pages only if it is still waiting.",
            trigger=EventTrigger(
                match={"prefect.resource.id": "prefect.flow-run.*"},
                match_related=_pipeline_runs(),
                after={"prefect.flow-run.Late", "prefect.flow-run.Pending"},
                expect={
                    "prefect.flow-run.Running",
                    "prefect.flow-run.Cancelled",
                    "prefect.flow-run.Cancelling",
                    "prefect.flow-run.Crashed",
                    "prefect.flow-run.Failed",
                    "prefect.flow-run.Completed",
                },
                for_each={"prefect.resource.id"},
                posture=Posture.Proactive,
                threshold=1,
                within=stuck_after,
            ),
            actions=[
                RunDeployment(
                    source="selected",
                    deployment_id=notify_deployment_id,
                    parameters={"flow_run": "{{ event.resource.id }}"},
                )
            ],
        )
    )
    if webhook_block_id is None:
        return automations
    automations += [
        Automation(
            name=NO_WORKER,
            description=f"Work pool {WORK_POOL} has no live worker: the server pages itself.",
            trigger=EventTrigger(
                match={
                    "prefect.resource.id": "prefect.work-pool.*",
                    "prefect.resource.name": WORK_POOL,
                },
                expect={"prefect.work-pool.not-ready"},
                posture=Posture.Reactive,
                threshold=1,
                within=timedelta(0),
            ),
            actions=[
                CallWebhook(
                    block_document_id=webhook_block_id,
                    payload=notifications.no_worker_template(runbook_base),
                )
            ],
        ),
        Automation(
            name=DRIFT_STORM,
            description=f"{DRIFT_STORM_COUNT}+ drift events for one model within a day.",
            trigger=EventTrigger(
                match={"prefect.resource.id": "driftloop.model.*"},
                expect={"driftloop.drift.detected"},
                for_each={"prefect.resource.id"},
                posture=Posture.Reactive,
                threshold=DRIFT_STORM_COUNT,
                within=timedelta(days=1),
            ),
            actions=[
                CallWebhook(
                    block_document_id=webhook_block_id,
                    payload=notifications.drift_storm_template(runbook_base, DRIFT_STORM_COUNT),
                )
            ],
        ),
    ]
    return automations


async def ensure_work_pool(name: str = WORK_POOL, pool_type: str = "process") -> None:
    """Create the work pool unless it exists (deploy needs it first); a docker pool gets
    prefect-docker's own base job template."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    template: dict[str, Any] = {}
    if pool_type == "docker":
        from prefect_docker.worker import DockerWorker

        template = DockerWorker.get_default_base_job_template()
    async with get_client() as client:
        with contextlib.suppress(ObjectAlreadyExists):
            await client.create_work_pool(
                WorkPoolCreate(name=name, type=pool_type, base_job_template=template)
            )


async def store_webhook(url: str) -> UUID:
    """Secret block (for `notify`) and Webhook block (for server-side actions), overwritten."""
    from prefect.blocks.system import Secret
    from prefect.blocks.webhook import Webhook
    from pydantic import SecretStr

    await Secret(value=url).save(WEBHOOK_SECRET_BLOCK, overwrite=True)
    webhook = Webhook(
        url=SecretStr(url),
        method="POST",
        headers={"Content-Type": "application/json"},  # type: ignore[arg-type]
    )
    return await webhook.save(WEBHOOK_BLOCK, overwrite=True)


async def stored_webhook() -> UUID | None:
    """The Webhook block an earlier `make up` stored: a later run without
    $DRIFTLOOP_WEBHOOK_URL in its shell keeps it (and the alerts that use it)."""
    from prefect.blocks.webhook import Webhook

    try:
        block = await Webhook.aload(WEBHOOK_BLOCK)
    except ValueError:  # no such block
        return None
    return block._block_document_id


async def apply(webhook_url: str | None, stuck_after: timedelta, runbook_base: str) -> list[str]:
    """Create or update the automations by name; returns their names."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    webhook_block_id = await store_webhook(webhook_url) if webhook_url else await stored_webhook()
    async with get_client() as client:
        notify = await client.read_deployment_by_name("notify/notify")
        beat = get_current_settings().flows.heartbeat_frequency or 180
        wanted = build_automations(notify.id, webhook_block_id, stuck_after, runbook_base, beat)
        for automation in wanted:
            existing = await client.read_automations_by_name(automation.name)
            for extra in existing[1:]:
                await client.delete_automation(extra.id)
            if existing:
                await client.update_automation(existing[0].id, automation)
            else:
                await client.create_automation(automation)
        if webhook_block_id is None:  # the Webhook block was deleted: the alerts go with it
            for name in (NO_WORKER, DRIFT_STORM):
                for stale in await client.read_automations_by_name(name):
                    await client.delete_automation(stale.id)
    return [a.name for a in wanted]


async def set_process_interval(seconds: float) -> str:
    """Point the `process` deployment's schedule at this interval, keeping its id and whether
    an operator paused it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.schedules import IntervalSchedule

    async with get_client() as client:
        deployment = await client.read_deployment_by_name("process/process")
        schedule = IntervalSchedule(interval=timedelta(seconds=seconds), timezone="UTC")
        for existing in deployment.schedules:
            anchor = getattr(existing.schedule, "anchor_date", None)  # prefect.yaml's
            if anchor is not None:
                schedule = IntervalSchedule(
                    interval=timedelta(seconds=seconds), anchor_date=anchor, timezone="UTC"
                )
            await client.update_deployment_schedule(deployment.id, existing.id, schedule=schedule)
        if not deployment.schedules:
            await client.create_deployment_schedules(deployment.id, [(schedule, True)])
    return f"process: every {seconds:g} s"


def form_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A deployment's parameter schema with each optional text, number, date or choice as a
    plain field of its type, left empty for the default.

    Why: Prefect writes `X | None = None` as `anyOf: [X, null]` with `default: null`, and the
    UI's form then offers "None" as a type and shows 'Property is type "None"' in place of the
    field. Without the null branch and the default, the form shows the field itself; the
    server still accepts the field left out (and null, except for a choice). Booleans keep
    theirs: for `retrain` or `check` "None" is the third choice, the config's default."""
    out = copy.deepcopy(schema)
    for name, prop in (out.get("properties") or {}).items():
        options = prop.get("anyOf") or []
        typed = [o for o in options if o.get("type") != "null"]
        if len(options) != 2 or len(typed) != 1 or prop.get("default", 0) is not None:
            continue
        if typed[0].get("type") not in ("string", "integer", "number"):
            continue
        plain = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
        out["properties"][name] = {**plain, **typed[0]}
    return out


async def plain_optional_fields() -> list[str]:
    """Apply `form_schema` to every deployment (after each `prefect deploy`, which writes
    Prefect's own schema again); returns the deployments it changed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate

    changed = []
    async with get_client() as client:
        for deployment in await client.read_deployments():
            schema = deployment.parameter_openapi_schema or {}
            plain = form_schema(schema)
            if plain != schema:
                update = DeploymentUpdate(parameter_openapi_schema=plain)
                await client.update_deployment(deployment.id, update)
                changed.append(deployment.name)
    return changed


async def paused_state() -> dict[str, dict[str, Any]]:
    """What an operator paused: per deployment, the deployment itself and which schedules (by
    position). `prefect deploy` re-applies prefect.yaml (`active: true`), so `make up` reads
    this first and puts it back after."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        deployments = await client.read_deployments()
    return {
        d.name: {
            "paused": bool(d.paused),
            "inactive": [i for i, s in enumerate(d.schedules) if not s.active],
        }
        for d in deployments
    }


async def restore_paused(state: dict[str, dict[str, Any]]) -> list[str]:
    """Pause again what was paused before the deploy; returns what it paused."""
    from prefect.client.orchestration import get_client

    restored = []
    async with get_client() as client:
        for deployment in await client.read_deployments():
            was = state.get(deployment.name)
            if not was:
                continue
            for index in was["inactive"]:
                if index < len(deployment.schedules) and deployment.schedules[index].active:
                    schedule = deployment.schedules[index]
                    await client.update_deployment_schedule(
                        deployment.id, schedule.id, active=False
                    )
                    restored.append(f"{deployment.name} schedule {index + 1}")
            if was["paused"] and not deployment.paused:
                await client.pause_deployment(deployment.id)
                restored.append(deployment.name)
    return restored


def main() -> None:
    import json
    import sys

    if sys.argv[1:2] == ["work-pool"]:  # before `prefect deploy`: prints what is paused
        asyncio.run(ensure_work_pool(*sys.argv[2:4]))
        print(json.dumps(asyncio.run(paused_state())))
        return
    if sys.argv[1:2] == ["process-interval"]:  # after it: forms, the interval, re-pause
        asyncio.run(plain_optional_fields())
        print(asyncio.run(set_process_interval(float(sys.argv[2]))))
        if sys.argv[3:]:
            restored = asyncio.run(restore_paused(json.loads(sys.argv[3])))
            print(f"kept paused: {', '.join(restored)}" if restored else "nothing was paused")
        return
    url = os.environ.get(WEBHOOK_ENV, "").strip() or None
    stuck_after = timedelta(minutes=float(os.environ.get(STUCK_AFTER_ENV, "30")))
    runbook = os.environ.get(RUNBOOK_ENV, "").strip() or notifications.DEFAULT_RUNBOOK_URL
    names = asyncio.run(apply(url, stuck_after, runbook))
    print(f"automations applied: {', '.join(names)}")
    if not url and NO_WORKER in names:
        print(
            f"note: ${WEBHOOK_ENV} was not set: kept the webhook stored by an earlier run "
            f"(blocks {WEBHOOK_SECRET_BLOCK!r} and {WEBHOOK_BLOCK!r}); delete them in the UI to "
            "stop alerts"
        )
    elif not url:
        print(
            f"note: ${WEBHOOK_ENV} was not set: failures run `notify`, which sends only if the "
            f"Secret block {WEBHOOK_SECRET_BLOCK!r} exists; no-worker and drift-storm alerts "
            "are off"
        )


if __name__ == "__main__":
    main()
