"""The register of inbound messages a source could not take: back-off, decisions, idempotent close."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from hub import BackOff, ConnectorConfig, ConnectorContext, HeldMessages, HeldState, Manifest, Source
from hub.held import HeldConflict, HeldFilter, HeldNotFound, decide
from hub.journal import SqliteJournal


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Mailbox(Source[ConnectorConfig]):
    """A polled source whose upstream remembers what was closed."""

    kind = "test-mailbox"
    manifest = Manifest(name="test mailbox", version="0")

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(ConnectorConfig(type="test-mailbox"), context)
        self.closed: list[str] = []

    async def close_upstream(self, message_id: str) -> None:
        self.closed.append(message_id)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def journal(tmp_path: Path, clock: Clock) -> AsyncIterator[SqliteJournal]:
    opened = SqliteJournal(tmp_path / "journal.db", clock=clock)
    await opened.open()
    yield opened
    await opened.close()


async def test_failed_fetches_back_off_doubling_then_quarantine(journal: SqliteJournal, clock: Clock) -> None:
    held = HeldMessages(journal, "xta", BackOff(max_fetches=3, initial_seconds=60, max_seconds=100))
    first = await held.fetch_failed("m1", sender="vbe:portal", code="fetch_failed", reason="HTTP 503")
    assert (first.state, first.fetches) == (HeldState.RETRYING, 1)
    assert first.next_fetch_at is not None and first.next_fetch_at.timestamp() == clock.now + 60
    assert first.blocks_fetch(first.updated_at)
    clock.now += 61
    second = await held.fetch_failed("m1", sender=None, code="fetch_failed", reason="timeout")
    assert second.next_fetch_at is not None and second.next_fetch_at.timestamp() == clock.now + 100  # capped
    assert second.sender == "vbe:portal"  # kept from the first sighting
    third = await held.fetch_failed("m1", sender=None, code="fetch_failed", reason="timeout")
    assert (third.state, third.fetches, third.next_fetch_at) == (HeldState.QUARANTINED, 3, None)
    assert "fetched 3 times" in third.reason
    fourth = await held.fetch_failed("m1", sender=None, code="fetch_failed", reason="again")
    assert fourth == third  # settled: nothing counts any more

    stats = await journal.stats()
    assert stats.held_by_source_state_reason == {("xta", "quarantined", "fetch_failed"): 1}


async def test_operator_decisions_are_recorded_and_never_overwritten(
    journal: SqliteJournal, tmp_path: Path
) -> None:
    held = HeldMessages(journal, "xta")
    context = ConnectorContext(name="xta", blobs=None, schemas=None, data_dir=tmp_path)  # type: ignore[arg-type]
    mailbox = Mailbox(context)
    quarantined = await held.quarantine("m1", sender="vbe:portal", code="encrypted", reason="xenc")
    other = await held.quarantine("m2", sender="vbe:portal", code="message_type", reason="0201")

    closed = await decide(journal, {"xta": mailbox}, quarantined.id, "close", "leitung", "Spam")
    assert (closed.state, closed.decided_by) == (HeldState.CLOSED, "leitung") and closed.decided_at
    again = await decide(journal, {"xta": mailbox}, quarantined.id, "close", "someone-else")
    assert again == closed and mailbox.closed == ["m1"]  # idempotent: closed upstream once
    with pytest.raises(HeldConflict):
        await decide(journal, {"xta": mailbox}, quarantined.id, "keep", "schicht")

    kept = await decide(journal, {"xta": mailbox}, other.id, "keep", "schicht")
    assert kept.state == HeldState.KEPT and mailbox.closed == ["m1"]
    # A later poll meeting the messages again changes nothing an operator decided.
    assert (
        await held.quarantine("m2", sender=None, code="message_type", reason="0201")
    ).state == HeldState.KEPT
    assert (
        await held.fetch_failed("m1", sender=None, code="fetch_failed", reason="x")
    ).state == HeldState.CLOSED
    assert {h.message_id: h.state for h in await journal.list_held(HeldFilter())} == {
        "m1": HeldState.CLOSED,
        "m2": HeldState.KEPT,
    }
    assert [h.message_id for h in await journal.list_held(HeldFilter(state=HeldState.KEPT))] == ["m2"]
    # Each decision is one row of the audit trail; the repeated close is none.
    trail = [(a.operator, a.action, a.subject, a.reason, a.details) for a in await journal.operator_actions()]
    assert trail == [
        ("schicht", "kept", f"held:{other.id}", None, {"source": "xta", "message_id": "m2"}),
        ("leitung", "closed", f"held:{quarantined.id}", "Spam", {"source": "xta", "message_id": "m1"}),
    ]
    with pytest.raises(HeldNotFound):
        await decide(journal, {"xta": mailbox}, 4711, "close", "leitung")


async def test_close_fails_upstream_and_changes_nothing(journal: SqliteJournal, tmp_path: Path) -> None:
    class Unreachable(Mailbox):
        async def close_upstream(self, message_id: str) -> None:
            raise ConnectionError("XTA server down")

    context = ConnectorContext(name="xta", blobs=None, schemas=None, data_dir=tmp_path)  # type: ignore[arg-type]
    held = await HeldMessages(journal, "xta").quarantine("m1", sender=None, code="oversize", reason="1 GiB")
    with pytest.raises(ConnectionError):
        await decide(journal, {"xta": Unreachable(context)}, held.id, "close", "leitung")
    assert await journal.held_get(held.id) == held
