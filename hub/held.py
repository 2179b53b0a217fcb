"""Held messages: inbound messages a polled source could not take, recorded instead of blocking the poll.

A polled source (XTA today, FIT-Connect or e-mail later) lists messages waiting upstream and takes them
one by one. A message it cannot take (too large, end-to-end encrypted, of a type no route reads, or
failing to download again and again) must neither stop the messages behind it nor be fetched on every
poll forever. So the source records it here, in the journal, and the poll goes on:

- ``retrying``: fetching failed for a reason that may pass; the next fetch waits (back-off per message).
  After `BackOff.max_fetches` failed fetches the message is ``quarantined``.
- ``quarantined``: the hub will not take it; it stays upstream until an operator decides.
- ``rejected``: the hub refused it as a business outcome and answered the sender (e.g. an XBau 1100);
  it was closed upstream.
- ``closed`` / ``kept``: an operator decided. ``close`` removes the message upstream for good (through
  its source connector); ``keep`` leaves it upstream and the hub stops looking at it.

The states are counted in ``/metrics`` (``aktenhub_inbound_held{source,state,reason}``), listed by the
admin API (``/api/v1/held-messages``) and the CLI (``aktenhub messages``); `decide` is the one
implementation of an operator's decision, which both reach through `hub.operations`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.models import UtcDateTime

if TYPE_CHECKING:
    from hub.connectors import Source
    from hub.journal.base import Journal

log = logging.getLogger(__name__)

Decision = Literal["close", "keep"]
MAX_REASON = 1000  # characters of a reason kept: enough for a fault text, never a payload
MAX_SENDER = 300  # characters of a sender kept: an identifier and a name


class HeldState(StrEnum):
    """Where a held message stands."""

    RETRYING = "retrying"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"
    CLOSED = "closed"
    KEPT = "kept"


# States in which nothing is fetched any more, whatever the clock says.
SETTLED = frozenset({HeldState.QUARANTINED, HeldState.REJECTED, HeldState.CLOSED, HeldState.KEPT})


class BackOff(BaseModel):
    """How often, and how patiently, a source fetches a message that failed to download."""

    model_config = ConfigDict(extra="forbid")

    max_fetches: int = Field(5, ge=1, le=100, description="failed fetches before the message is quarantined")
    initial_seconds: float = Field(60.0, ge=0, description="wait before the second fetch")
    max_seconds: float = Field(3600.0, ge=0, description="longest wait between two fetches")

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failed fetch (doubling, capped)."""
        return float(min(self.max_seconds, self.initial_seconds * 2 ** max(failures - 1, 0)))


class HeldMessage(BaseModel):
    """One inbound message a source could not take, as the journal holds it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    source: str = Field(description="the source connector's name")
    message_id: str = Field(description="the message's id upstream (e.g. the XTA message id)")
    sender: str | None = Field(None, description="who sent it upstream (e.g. the XTA author)")
    state: HeldState
    reason_code: str = Field(description="short, fixed kind of reason (a metric label), e.g. oversize")
    reason: str = Field(description="what happened, for operators")
    fetches: int = Field(0, description="failed fetches so far")
    next_fetch_at: UtcDateTime | None = Field(None, description="retrying: not fetched before this time")
    application_id: str | None = Field(None, description="rejected: the application that answered it")
    first_seen_at: UtcDateTime
    updated_at: UtcDateTime
    decided_by: str | None = Field(None, description="who closed or kept it (token name, CLI user)")
    decided_at: UtcDateTime | None = None

    def blocks_fetch(self, now: datetime) -> bool:
        """Whether the source must leave the message alone now."""
        if self.state in SETTLED:
            return True
        return self.next_fetch_at is not None and self.next_fetch_at > now


class HeldFilter(BaseModel):
    """Which held messages to list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: HeldState | None = None
    source: str | None = None


class HeldNotFound(LookupError):
    """No held message with that id."""


class HeldConflict(ValueError):
    """The decision does not fit the message's state (e.g. keeping a message already closed)."""


def _clip(reason: str, limit: int = MAX_REASON) -> str:
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def _sender(sender: str | None) -> str | None:
    # The sender is whatever the remote side wrote into the metadata: the record names it for
    # operators, clipped like a reason, whatever size it came in.
    return None if sender is None else _clip(sender, MAX_SENDER)


class HeldMessages:
    """A source's view of the register: consult it before fetching, record what could not be taken."""

    def __init__(self, journal: Journal, source: str, backoff: BackOff | None = None) -> None:
        self.journal = journal
        self.source = source
        self.backoff = backoff or BackOff()

    def with_backoff(self, backoff: BackOff) -> HeldMessages:
        """The same register with a source's own back-off settings."""
        return HeldMessages(self.journal, self.source, backoff)

    async def lookup(self, message_ids: Iterable[str]) -> dict[str, HeldMessage]:
        """The records of these messages that exist (one query for a whole status list)."""
        return await self.journal.held_lookup(self.source, tuple(message_ids))

    async def quarantine(self, message_id: str, *, sender: str | None, code: str, reason: str) -> HeldMessage:
        """The hub will not take this message: keep it upstream, await an operator's decision."""
        held = await self.journal.hold(
            self.source, message_id, _sender(sender), HeldState.QUARANTINED, code, _clip(reason)
        )
        log.warning(
            "inbound message quarantined source=%s message_id=%s reason=%s", self.source, message_id, code
        )
        return held

    async def reject(
        self,
        message_id: str,
        *,
        sender: str | None,
        code: str,
        reason: str,
        application_id: str | None = None,
    ) -> HeldMessage:
        """The hub refused this message, answered its sender and closed it upstream."""
        held = await self.journal.hold(
            self.source, message_id, _sender(sender), HeldState.REJECTED, code, _clip(reason), application_id
        )
        log.info("inbound message rejected source=%s message_id=%s reason=%s", self.source, message_id, code)
        return held

    async def fetch_failed(
        self, message_id: str, *, sender: str | None, code: str, reason: str
    ) -> HeldMessage:
        """A fetch failed: back off before the next one; quarantine after the last one allowed."""
        held = await self.journal.held_fetch_failed(
            self.source, message_id, _sender(sender), code, _clip(reason), self.backoff
        )
        log.warning(
            "inbound message fetch failed source=%s message_id=%s fetches=%d state=%s reason=%s",
            self.source,
            message_id,
            held.fetches,
            held.state,
            code,
        )
        return held

    async def taken(self, message_id: str) -> None:
        """The message was taken after all: a `retrying` record is no longer needed."""
        await self.journal.held_taken(self.source, message_id)


async def decide(
    journal: Journal,
    sources: Mapping[str, Source[Any]],
    held_id: int,
    decision: Decision,
    by: str,
    reason: str | None = None,
) -> HeldMessage:
    """An operator's decision on a held message, for the API and the CLI alike; idempotent.

    ``close`` first removes the message upstream through its source connector, then records it; a
    failure upstream changes nothing here and is raised (`Retryable`/`Permanent`). ``keep`` records only.
    """
    held = await journal.held_get(held_id)
    if held is None:
        raise HeldNotFound(f"no held message {held_id}")
    if decision == "close":
        if held.state in (HeldState.CLOSED, HeldState.REJECTED):
            return held  # already out of the mailbox
        source = sources.get(held.source)
        if source is None:
            raise HeldConflict(f"source {held.source!r} is not configured: cannot close its message upstream")
        await source.close_upstream(held.message_id)
        state = HeldState.CLOSED
    else:
        if held.state == HeldState.KEPT:
            return held
        if held.state in (HeldState.CLOSED, HeldState.REJECTED):
            raise HeldConflict(f"held message {held_id} is {held.state} already: it is no longer upstream")
        state = HeldState.KEPT
    decided = await journal.held_decide(held_id, state, by, reason)
    log.info(
        "held message decided id=%d source=%s message_id=%s decision=%s by=%s",
        held_id,
        held.source,
        held.message_id,
        decision,
        by,
    )
    return decided
