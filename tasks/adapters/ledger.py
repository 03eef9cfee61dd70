"""The promotion ledger: every alias move, when, from which version to which, why, by whom.

Entries live beside the data lake as write-once JSON objects (`ledger/<model>/...`), so the
same code works on a folder and on S3, and concurrent writers never overwrite each other.

An alias move is a small two-phase protocol, run under a Prefect global concurrency limit so
two promotions of one model never interleave:

1. `reconcile` settles any move a crashed process left half-done;
2. an *intent* entry is written (status pending);
3. the alias moves in the MLflow registry;
4. a *commit* marker is written.

A process killed between 2 and 4 leaves a pending intent; the next `reconcile` commits it if
the alias did move and aborts it if not, so the ledger and the alias always end up agreeing.
The drift reference needs no step of its own: it is a tag of the version, written before any
alias can point there, so the baseline always follows the champion.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from driftloop.tasks.adapters import storage
from driftloop.tasks.core.policy import RetrainOutcome

Kind = Literal["promotion", "rollback", "manual", "challenger"]
Status = Literal["pending", "committed", "aborted"]


class LedgerEntry(BaseModel):
    """One alias move and its evidence."""

    entry_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])
    model: str
    alias: str
    from_version: str | None
    to_version: str
    kind: Kind
    reason: str
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    flow_run_id: str = ""
    mlflow_run_id: str = ""
    gate_decision_id: str = ""
    evidence: str = Field("", description="where the gate decision / report can be read")
    status: Status = "pending"
    settled_at: datetime | None = None


class Ledger:
    """Read and append entries under `<root>/ledger/<model>/`."""

    def __init__(self, root: str, model: str) -> None:
        self.model = model
        self.folder = storage.join(root, "ledger", model)

    def _intent_uri(self, entry: LedgerEntry) -> str:
        stamp = entry.at.strftime("%Y%m%dT%H%M%S%fZ")
        return storage.join(self.folder, f"{stamp}-{entry.entry_id}.intent.json")

    def _marker_uri(self, entry_id: str) -> str:
        return storage.join(self.folder, f"{entry_id}.settled.json")

    def write_intent(self, entry: LedgerEntry) -> LedgerEntry:
        storage.write_text(self._intent_uri(entry), entry.model_dump_json())
        return entry

    def settle(self, entry: LedgerEntry, status: Status) -> LedgerEntry:
        settled = entry.model_copy(update={"status": status, "settled_at": datetime.now(UTC)})
        storage.write_text(self._marker_uri(entry.entry_id), settled.model_dump_json())
        return settled

    def entries(self) -> list[LedgerEntry]:
        """All entries in intent order, each with its settled status (pending if none)."""
        uris = storage.list_uris(self.folder, suffix=".json")
        markers = {
            uri.rsplit("/", 1)[-1].removesuffix(".settled.json"): uri
            for uri in uris
            if uri.endswith(".settled.json")
        }
        out = []
        for uri in sorted(u for u in uris if u.endswith(".intent.json")):
            entry = LedgerEntry.model_validate_json(storage.read_bytes(uri))
            if entry.entry_id in markers:
                entry = LedgerEntry.model_validate_json(storage.read_bytes(markers[entry.entry_id]))
            out.append(entry)
        return out

    def retrain_outcomes(self) -> list[RetrainOutcome]:
        """Every training the gate judged: promoted to champion, or parked as challenger."""
        return [
            RetrainOutcome(at=e.at, version=e.to_version, promoted=e.kind == "promotion")
            for e in self.entries()
            if e.status == "committed" and e.kind in ("promotion", "challenger")
        ]

    def committed(self, alias: str) -> list[LedgerEntry]:
        return [e for e in self.entries() if e.status == "committed" and e.alias == alias]

    def version_at(self, alias: str, when: datetime) -> str | None:
        """Which version the alias pointed to at `when` (None before the first move)."""
        current = None
        for entry in sorted(self.committed(alias), key=lambda e: e.settled_at or e.at):
            if (entry.settled_at or entry.at) <= when:
                current = entry.to_version
        return current

    def previous(self, alias: str) -> LedgerEntry | None:
        """The latest committed move of the alias (the one a rollback undoes)."""
        moves = self.committed(alias)
        return moves[-1] if moves else None

    def reconcile(self, alias: str, current: Callable[[], str | None]) -> list[LedgerEntry]:
        """Settle intents a crashed process left pending, from what the registry says now."""
        settled = []
        pending = [e for e in self.entries() if e.status == "pending" and e.alias == alias]
        now = current()
        for entry in pending:
            status: Status = "committed" if now == entry.to_version else "aborted"
            settled.append(self.settle(entry, status))
        return settled

    def export_jsonl(self) -> str:
        """The whole ledger as JSON lines, for people and spreadsheets."""
        return "\n".join(json.dumps(e.model_dump(mode="json")) for e in self.entries())
