"""Optional human approval before a promotion (the prod profile asks for it).

The train flow pauses with a typed form in the Prefect UI; a reviewer approves or rejects with a
comment, and the answer becomes one more check in the gate decision, so it is recorded with the
version, in the ledger and on the model card like every other check.
"""

from __future__ import annotations

from prefect.input import RunInput
from pydantic import Field

from driftloop.configs.settings import Settings
from driftloop.tasks.core.gate import GateCheck, GateDecision


class PromotionApproval(RunInput):
    """The form a reviewer fills in on the paused `train` run."""

    approve: bool = Field(description="Promote this candidate to champion?")
    comment: str = Field("", description="Why (recorded with the model version and the ledger)")
    reviewer: str = Field("", description="Who is deciding")


def with_approval(decision: GateDecision, answer: PromotionApproval) -> GateDecision:
    """Fold the reviewer's answer into the decision as the last check."""
    who = answer.reviewer or "a reviewer"
    check = GateCheck(
        name="human_approval",
        metric="approved",
        value=1.0 if answer.approve else 0.0,
        limit=1.0,
        passed=answer.approve,
        detail=f"{who}: {answer.comment or 'no comment'}",
    )
    verdict = "approved" if answer.approve else "rejected"
    return decision.model_copy(
        update={
            "checks": [*decision.checks, check],
            "passed": decision.passed and answer.approve,
            "reason": f"{decision.reason}; {verdict} by {who}"
            + (f" ({answer.comment})" if answer.comment else ""),
        }
    )


def request_approval(decision: GateDecision, settings: Settings, version: str) -> GateDecision:
    """Pause the flow run until a reviewer answers (only for candidates the gate passed)."""
    from prefect.flow_runs import pause_flow_run

    approval = settings.gate.approval
    if not approval.required or not decision.passed:
        return decision
    print(
        f"Waiting for approval to promote {settings.registry.model_name} v{version}: "
        f"{decision.reason}. Resume this run in the Prefect UI to answer."
    )
    answer = pause_flow_run(
        wait_for_input=PromotionApproval,
        timeout=approval.timeout_minutes * 60,
        poll_interval=approval.poll_seconds,
        key=f"approve-v{version}",
    )
    return with_approval(decision, answer)
