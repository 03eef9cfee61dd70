"""The Prefect API as the loop sees it: which training runs are already under way."""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

from driftloop.tasks.core.policy import InFlightRun

_IN_FLIGHT = [StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED]


def in_flight_runs(flow_name: str, model_tag: str, *, exclude: str) -> list[InFlightRun]:
    """Runs of `flow_name` that are Running, Pending or Scheduled for this model.

    A run tagged `model:<name>` belongs to that model; an untagged run (e.g. started by the
    deployment trigger) counts for every model, because it might be ours. `exclude` is the
    asking run's own id.
    """
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=_IN_FLIGHT))
            ),
        )
    out = []
    for run in runs:
        models = {t for t in run.tags or [] if t.startswith("model:")}
        if str(run.id) == exclude or (models and model_tag not in models):
            continue
        out.append(
            InFlightRun(
                id=str(run.id),
                name=run.name,
                state=run.state_type.value if run.state_type else "UNKNOWN",
                expected_start=run.expected_start_time,
            )
        )
    return out


def earlier_running_run(flow_name: str, me: str) -> str | None:
    """The name and id of a Running run of `flow_name` that started before run `me`, if any.

    A run whose process died with its worker stays Running until the server's
    `driftloop-unresponsive-runs` automation marks it Crashed for missing heartbeats
    (deployments/automations.py); from then on it holds nobody back.

    Why not a deployment concurrency limit: on a busy SQLite-backed server a slot whose release
    was lost stays taken until its lease expires, and every run is cancelled until then. Asking
    who else is running costs one query and heals itself.
    """
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
            ),
        )
    mine = next((r for r in runs if str(r.id) == me), None)
    if mine is None or mine.start_time is None:
        return None
    key = (mine.start_time, me)
    for run in runs:
        if run.start_time is not None and (run.start_time, str(run.id)) < key:
            return f"{run.name} ({run.id})"
    return None
