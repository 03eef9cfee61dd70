"""notify: the on-call message for one failed, crashed or timed-out pipeline run.

An automation (see deployments/automations.py) runs this deployment with the bad run's id.
It runs as its own flow so the message can carry what a server-side template cannot see:
the failing task, the exception, the last log lines and the MLflow run.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from driftloop.flows.params import flow_timeout
from driftloop.tasks.adapters.oncall import collect_report, deliver


@flow(
    name="notify",
    flow_run_name="notify-{flow_run}",
    log_prints=True,
    timeout_seconds=flow_timeout("notify"),
)
async def notify(
    flow_run: str,
) -> dict[str, Any] | None:
    """Gather the report and post it to the on-call webhook (env var or Secret block).

    Run by the failure automation for a Failed/Crashed/TimedOut run, and by the stuck-run
    automation for a run Late or Pending too long: the run's state is read again just before
    sending, and a run that has moved on is not paged as stuck.

    Args:
        flow_run: the failed flow run: its id, or its event resource id
            (prefect.flow-run.ID).
    """
    report = await collect_report(flow_run)
    message = await deliver(report, "notify automation")
    print(
        message["text"]
        if message
        else "nothing sent: no webhook, already alerted, or the run is no longer stuck"
    )
    return message
