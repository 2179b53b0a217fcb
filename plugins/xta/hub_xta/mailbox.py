"""Reading an XTA mailbox for a source, so that no single message can block it.

One poll lists the mailbox and looks at each message in turn. What the hub cannot take becomes a held
message (`hub.held`, in the journal) and the poll goes on with the next one:

- a message the source does not take by its metadata (e.g. another message type), or whose MsgSize is
  larger than allowed, is quarantined **before** it is downloaded; unless the source's screen says it
  belongs to another connector reading the same account (`Leave`): that one is neither fetched nor
  held, it waits in the mailbox for its reader;
- content larger than allowed (or than the message declared) stops the download at the limit;
  end-to-end encrypted content is refused from the envelope; both are quarantined;
- a fetch failing otherwise counts against the message: back-off per message id, quarantined after
  the last fetch allowed. If the server itself is in trouble (its account check fails too), the poll
  stops without charging the message;
- a message the source fetched but cannot read as what it takes, with nobody to answer, is quarantined
  (the source's `take` raises `NotTaken`);
- a message refused as a business outcome (e.g. an XBau 0200 for another authority, or an XBau message
  of a type the source does not process, answered with a 1100) is recorded as rejected once it is closed.

A message is closed only after its durable intake; a close that fails is tried again at the next poll
without downloading the message again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from hub import (
    HeldMessage,
    HeldMessages,
    HeldState,
    IntakeOutcome,
    Permanent,
    Retryable,
    StorageFull,
    utcnow,
)

from .client import XtaClient
from .errors import InvalidMessageIdFault, PermissionDeniedFault, XtaContentTooLarge, XtaUnsupported
from .models import MessageMetaData, StatusList, UnreadableEntry, XtaMessage

log = logging.getLogger(__name__)

# A message may carry a little more than its MsgSize says (servers count it differently); more than
# this is a lie about its size, and the download stops there.
SIZE_SLACK = 1024 * 1024

OVERSIZE, ENCRYPTED, FETCH_FAILED, INTAKE_REFUSED = "oversize", "encrypted", "fetch_failed", "intake_refused"
METADATA = "metadata"  # its status list entry does not fit the schema
INTAKE_FAILED = "intake_failed"  # reading it into an application failed


@dataclass(frozen=True)
class Refusal:
    """Why a message is not taken: a short fixed code (a metric label) and a reason for operators."""

    code: str
    reason: str


@dataclass(frozen=True)
class Leave:
    """A screen's verdict: another connector reading the same account takes this message; not fetched,
    not held (holding it here would let an operator close what the other still needs)."""

    reason: str


@dataclass(frozen=True)
class Taken:
    """What the source made of a fetched message: its intake, and whether it was refused and answered."""

    outcome: IntakeOutcome
    rejected: Refusal | None = None


class NotTaken(Permanent):
    """Raised by a source's `take`: the message cannot be taken (e.g. not readable as what the source
    reads, and nobody to answer); it is quarantined with this refusal for an operator."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


Screen = Callable[[MessageMetaData], Refusal | Leave | None]
Take = Callable[[XtaMessage], Awaitable[Taken]]


class MailboxReader:
    """Polls one XTA mailbox for one source; keeps which taken messages still await their close."""

    def __init__(self) -> None:
        # Taken, but the close failed: message id -> (MsgBoxRequestID, what was made of it).
        self._unclosed: dict[str, tuple[str | None, Taken]] = {}

    async def poll(
        self, client: XtaClient, held: HeldMessages, *, limit: int, screen: Screen, take: Take
    ) -> int:
        """Fetch up to `limit` waiting messages; returns how many new applications were taken in.

        Held messages are passed over without counting against `limit`: however many wait at the head
        of the mailbox, the messages behind them are reached.
        """
        taken = fetched = 0
        async with contextlib.aclosing(client.status_pages()) as pages:
            async for page in pages:
                records = await self._records(held, page)
                for metadata in page.messages:
                    if fetched >= limit:
                        return taken
                    record = records.get(metadata.message_id)
                    if await self._without_fetch(client, held, metadata, record, screen):
                        continue
                    fetched += 1
                    taken += await self._one(client, held, metadata, record, take)
        return taken

    async def _records(self, held: HeldMessages, page: StatusList) -> dict[str, HeldMessage]:
        """The held records of a page's messages; unreadable entries are quarantined on first sight."""
        records = await held.lookup([*(m.message_id for m in page.messages), *_ids(page.unreadable)])
        for entry in page.unreadable:
            if entry.message_id not in records:
                await held.quarantine(entry.message_id, sender=None, code=METADATA, reason=entry.reason)
        return records

    async def _without_fetch(
        self,
        client: XtaClient,
        held: HeldMessages,
        metadata: MessageMetaData,
        record: HeldMessage | None,
        screen: Screen,
    ) -> bool:
        """Deal with a message that needs no download: held, awaiting its close, or refused by metadata."""
        if record is not None and record.blocks_fetch(utcnow()):
            return True
        if metadata.message_id in self._unclosed:
            request_id, earlier = self._unclosed[metadata.message_id]
            if await self._close(client, metadata.message_id, request_id, earlier):
                await _settled(held, metadata, earlier, record)
            return True
        refusal = self._oversize(client, metadata) or screen(metadata)
        if refusal is None:
            return False
        if isinstance(refusal, Leave):
            return True  # another reader's: nothing recorded here
        await held.quarantine(
            metadata.message_id, sender=str(metadata.author), code=refusal.code, reason=refusal.reason
        )
        return True

    async def _one(
        self,
        client: XtaClient,
        held: HeldMessages,
        metadata: MessageMetaData,
        record: HeldMessage | None,
        take: Take,
    ) -> int:
        """Fetch, take and close one message; 1 if it became a new application."""
        message = await self._fetch(client, held, metadata)
        if message is None:
            return 0
        try:
            result = await take(message)
        except Permanent as exc:
            # e.g. no route takes the service: the hub cannot take it, an operator must look.
            refusal = exc.refusal if isinstance(exc, NotTaken) else Refusal(INTAKE_REFUSED, str(exc))
            await held.quarantine(
                metadata.message_id, sender=str(metadata.author), code=refusal.code, reason=refusal.reason
            )
            return 0
        except (OSError, Retryable):
            raise  # the hub's own trouble (journal, a full disk): not this message's fault
        except Exception as exc:
            # Something in this message trips the reader: it must not block the mailbox. It is tried
            # again after a back-off, and quarantined after the last try. Were the journal itself
            # down, recording this would fail too, and the poll stop.
            reason = f"{type(exc).__name__}: {exc}"
            await held.fetch_failed(
                metadata.message_id, sender=str(metadata.author), code=INTAKE_FAILED, reason=reason
            )
            return 0
        if await self._close(client, metadata.message_id, message.request_id, result):
            await _settled(held, metadata, result, record)
        return 0 if result.outcome.duplicate else 1

    async def close_upstream(self, client: XtaClient, message_id: str) -> None:
        """Close a message for good (an operator's decision); a message already gone counts as closed."""
        try:
            await client.close(message_id)
        except InvalidMessageIdFault:
            log.info("xta message already gone message_id=%s", message_id)
        self._unclosed.pop(message_id, None)

    def _oversize(self, client: XtaClient, metadata: MessageMetaData) -> Refusal | None:
        allowed = _total_limit(client)
        if allowed is not None and metadata.size is not None and metadata.size > allowed:
            return Refusal(OVERSIZE, f"MsgSize {metadata.size} bytes exceeds the limit of {allowed} bytes")
        return None

    async def _fetch(
        self, client: XtaClient, held: HeldMessages, metadata: MessageMetaData
    ) -> XtaMessage | None:
        message_id, sender = metadata.message_id, str(metadata.author)
        cap = _total_limit(client)
        if metadata.size is not None:
            declared = metadata.size + SIZE_SLACK
            cap = declared if cap is None else min(cap, declared)
        try:
            return await client.get_message(message_id, total_limit=cap)
        except InvalidMessageIdFault:
            return None  # gone since the list was made (another reader took it)
        except (PermissionDeniedFault, StorageFull):
            raise  # our account or our disk, not this message: the whole poll fails, visibly
        except XtaContentTooLarge as exc:
            await held.quarantine(message_id, sender=sender, code=OVERSIZE, reason=str(exc))
        except XtaUnsupported as exc:
            await held.quarantine(message_id, sender=sender, code=ENCRYPTED, reason=str(exc))
        except Retryable as exc:
            try:
                await client.check_account_active()
            except (Retryable, Permanent):
                log.warning("xta server in trouble, poll stopped message_id=%s error=%s", message_id, exc)
                raise exc from None
            await held.fetch_failed(message_id, sender=sender, code=FETCH_FAILED, reason=str(exc))
        except OSError:
            raise  # the hub's own storage (e.g. a full disk): not this message's fault
        except Exception as exc:  # this message's answer cannot be read: count it against the message
            reason = f"{type(exc).__name__}: {exc}"
            await held.fetch_failed(message_id, sender=sender, code=FETCH_FAILED, reason=reason)
        return None

    async def _close(self, client: XtaClient, message_id: str, request_id: str | None, result: Taken) -> bool:
        try:
            await client.close(message_id, request_id=request_id)
        except InvalidMessageIdFault:
            pass  # closed meanwhile: gone is what was wanted
        except (Retryable, Permanent) as exc:
            # Taken durably; the next poll closes it without downloading it again.
            log.warning("xta close failed, tried again next poll message_id=%s error=%s", message_id, exc)
            self._unclosed[message_id] = (request_id, result)
            return False
        self._unclosed.pop(message_id, None)
        return True


async def _settled(
    held: HeldMessages, metadata: MessageMetaData, result: Taken, record: HeldMessage | None
) -> None:
    """After the close: a refused message is recorded as rejected; a retrying record is done with."""
    if result.rejected is not None:
        await held.reject(
            metadata.message_id,
            sender=str(metadata.author),
            code=result.rejected.code,
            reason=result.rejected.reason,
            application_id=result.outcome.application_id,
        )
    elif record is not None and record.state == HeldState.RETRYING:
        await held.taken(metadata.message_id)


def _ids(entries: Iterable[UnreadableEntry]) -> list[str]:
    return [e.message_id for e in entries]


def _total_limit(client: XtaClient) -> int | None:
    settings = client.settings
    found = settings.max_message if settings.max_message is not None else settings.max_content
    if found is None and client.blobs is not None:
        return client.blobs.max_size
    return int(found) if found is not None else None
