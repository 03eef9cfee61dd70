"""The loop status page: the first thing a data scientist opens.

One markdown page per dataset answers, without opening a file: which model is champion, since
when and why; how it does on the labels that came back; what the drift checks said this week;
how many retrains were tried and promoted; what waits for a person. The flows publish it as a
Prefect artifact after each run; this module only writes the text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class ChampionMove:
    """One committed alias move of the promotion ledger, as the page shows it."""

    version: str
    kind: str  # promotion, rollback, manual, challenger
    at: datetime
    reason: str
    evidence: str = ""


@dataclass(frozen=True)
class CheckLine:
    """One drift check: when, its window, the rule that decided, retrain or not, and why."""

    checked_at: datetime
    window: str
    rule: str
    retrain: bool
    reason: str
    breached: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoopStatus:
    model: str
    dataset: str
    now: datetime
    champion: str | None
    moves: list[ChampionMove]  # oldest first
    checks: list[CheckLine]  # oldest first
    realised: dict[str, float] = field(default_factory=dict)  # latest check with labels
    realised_window: str = ""
    waiting: list[str] = field(default_factory=list)  # runs paused for a person


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_markdown(status: LoopStatus) -> str:
    """The page; every section says plainly when there is nothing to show yet."""
    week_ago = status.now - WEEK
    lines = [f"# Loop status: {status.dataset} (model {status.model})", ""]
    lines.append(f"Updated {_when(status.now)}.")
    lines += ["", "## Champion", ""]
    champion_moves = [m for m in status.moves if m.kind != "challenger"]
    current = next((m for m in reversed(champion_moves) if m.version == status.champion), None)
    if status.champion is None:
        lines.append("No champion yet: the first training promotes v1.")
    elif current is None:
        lines.append(f"**v{status.champion}** (no promotion recorded in the ledger).")
    else:
        lines.append(
            f"**v{current.version}** since {_when(current.at)} ({current.kind}): "
            f"{_cell(current.reason, 400)}"
        )
        if current.evidence:
            lines.append(f"Evidence: {current.evidence}")
    lines += ["", "## On recent labels", ""]
    if status.realised:
        metrics = ", ".join(
            f"{name} {'n/a' if math.isnan(value) else f'{value:.4g}'}"
            for name, value in status.realised.items()
        )
        lines.append(f"Window {status.realised_window}: {metrics}.")
    else:
        lines.append("No delayed labels have come back for a checked window yet.")
    week = [c for c in status.checks if c.checked_at >= week_ago]
    retrains = sum(c.retrain for c in week)
    lines += ["", "## Drift checks this week", ""]
    if not week:
        lines.append("No drift check in the last 7 days.")
    else:
        lines.append(f"{len(week)} check(s), {retrains} decided to retrain.")
        lines += ["", "| checked | window | decision | breached | why |", "|---|---|---|---|---|"]
        for c in reversed(week[-10:]):
            lines.append(
                f"| {_when(c.checked_at)} | {c.window} | "
                f"{'RETRAIN' if c.retrain else 'no retrain'} ({c.rule}) | "
                f"{', '.join(c.breached) or 'none'} | {_cell(c.reason)} |"
            )
    judged = [m for m in status.moves if m.at >= week_ago and m.kind in ("promotion", "challenger")]
    promoted = [m for m in judged if m.kind == "promotion"]
    lines += ["", "## Retrains this week", ""]
    lines.append(
        f"{len(judged)} candidate(s) judged by the gate, {len(promoted)} promoted"
        + (f" (v{', v'.join(m.version for m in promoted)})" if promoted else "")
        + "."
    )
    for m in reversed(judged[-5:]):
        verdict = "promoted" if m.kind == "promotion" else "kept as challenger"
        lines.append(f"- v{m.version} {verdict} {_when(m.at)}: {_cell(m.reason)}")
    lines += ["", "## Waiting for a person", ""]
    if status.waiting:
        lines += [f"- {w}" for w in status.waiting]
    else:
        lines.append("Nothing waits for approval.")
    return "\n".join(lines) + "\n"
