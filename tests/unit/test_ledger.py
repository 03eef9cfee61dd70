"""The ledger answers "what was champion at T" and settles half-done moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from driftloop.tasks.adapters.ledger import Ledger, LedgerEntry

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ledger beside a local lake, and beside a lake on S3 (moto's server on loopback)."""
    return str(tmp_path) if request.param == "local" else request.getfixturevalue("s3_bucket")


def move(ledger: Ledger, to: str, at: datetime, kind: str = "promotion") -> LedgerEntry:
    entry = ledger.write_intent(
        LedgerEntry(
            model="m",
            alias="champion",
            from_version=None,
            to_version=to,
            kind=kind,
            reason="test",
            at=at,
        )  # type: ignore[arg-type]
    )
    settled = ledger.settle(entry, "committed")
    return settled


def test_version_at_follows_promotions_and_rollbacks(root: str) -> None:
    ledger = Ledger(root, "m")
    assert ledger.version_at("champion", T0) is None
    move(ledger, "1", T0)
    first = ledger.committed("champion")[-1].settled_at
    move(ledger, "2", T0 + timedelta(days=1))
    second = ledger.committed("champion")[-1].settled_at
    move(ledger, "1", T0 + timedelta(days=2), kind="rollback")
    assert ledger.version_at("champion", first) == "1"
    assert ledger.version_at("champion", second) == "2"
    assert ledger.version_at("champion", datetime.now(UTC)) == "1"
    assert [e.kind for e in ledger.entries()] == ["promotion", "promotion", "rollback"]
    assert len(ledger.export_jsonl().splitlines()) == 3


def test_reconcile_commits_a_move_that_happened_and_aborts_one_that_did_not(root: str) -> None:
    ledger = Ledger(root, "m")
    move(ledger, "1", T0)
    ledger.write_intent(
        LedgerEntry(
            model="m",
            alias="champion",
            from_version="1",
            to_version="2",
            kind="promotion",
            reason="crashed",
            at=T0,
        )
    )
    settled = ledger.reconcile("champion", lambda: "2")
    assert [(e.to_version, e.status) for e in settled] == [("2", "committed")]
    ledger.write_intent(
        LedgerEntry(
            model="m",
            alias="champion",
            from_version="2",
            to_version="3",
            kind="promotion",
            reason="crashed",
            at=T0,
        )
    )
    settled = ledger.reconcile("champion", lambda: "2")
    assert [(e.to_version, e.status) for e in settled] == [("3", "aborted")]
    assert ledger.version_at("champion", datetime.now(UTC)) == "2"
    assert ledger.reconcile("champion", lambda: "2") == [], "nothing left pending"
