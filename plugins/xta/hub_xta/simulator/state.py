"""The simulator's state: mailboxes per reader, what was sent, what was closed, fault knobs."""

from __future__ import annotations

import hashlib
import itertools
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from hub.simulation import FaultKnobs, SimulatedFaults

from ..models import MessageMetaData

CHUNK = 256 * 1024


class ContentTooLarge(ValueError):
    """A content past the simulator's size limit (sendMessage: 9023)."""


class Knobs(FaultKnobs):
    """Fault knobs, settable at start and at runtime (``POST /_sim/faults``); `fail_next`, `fail_status`
    and `latency_seconds` apply to SOAP requests."""

    technical_fault_next: int = Field(
        0, ge=0, description="answer the next N SOAP requests with XTAWSTechnicalProblemException (9030)"
    )
    drop_next: int = Field(0, ge=0, description="close the connection on the next N SOAP requests unanswered")
    fail_close_next: int = Field(
        0, ge=0, description="answer the next N close requests with HTTP 503 (the message stays open)"
    )
    fail_operations: list[str] = Field(
        default_factory=list,
        description="these operations (e.g. getMessage) answer HTTP `fail_status`: a partial outage",
    )
    fail_messages: list[str] = Field(
        default_factory=list,
        description="getMessage of these message ids answers HTTP `fail_status`: messages it cannot deliver",
    )
    endless_content_next: int = Field(
        0,
        ge=0,
        description="the next N getMessage answers stream a content part that never ends (a hostile server)",
    )


@dataclass
class StoredContent:
    """A content (message or attachment) as a file of the simulator."""

    path: Path
    size: int
    sha256: str
    content_type: str
    filename: str | None = None
    description: str | None = None
    encoding: str | None = None
    id: str | None = None
    lang: str | None = None

    def summary(self) -> dict[str, object]:
        """JSON view (without the path)."""
        return {
            "size": self.size,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "filename": self.filename,
            "description": self.description,
        }


@dataclass
class StoredMessage:
    """A message in a mailbox, or one that was sent."""

    metadata: MessageMetaData
    message: StoredContent
    attachments: list[StoredContent] = field(default_factory=list)
    fetches: int = 0
    encrypted: bool = False  # end-to-end encrypted: fetched as xenc:EncryptedData
    not_before: datetime | None = None  # DeliveryAttributes/NotBefore: cancellable until then
    cancelled: bool = False

    def summary(self) -> dict[str, object]:
        """JSON view for the operator endpoints."""
        return {
            "message_id": self.metadata.message_id,
            "metadata": self.metadata.model_dump(mode="json"),
            "message": self.message.summary(),
            "attachments": [a.summary() for a in self.attachments],
            "fetches": self.fetches,
        }


@dataclass
class Closed:
    """A close: which reader closed which message, with which MsgBoxRequestID."""

    reader: str
    message_id: str
    request_id: str
    at: datetime


class XtaState(SimulatedFaults[Knobs]):
    """Everything the simulator holds. Content lives in files under `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        knobs: Knobs | None = None,
        accounts: set[str] | None = None,
        locked: set[str] | None = None,
        route_sent: bool = True,
        max_message_size: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        (data_dir / "content").mkdir(parents=True, exist_ok=True)
        self.knobs = knobs or Knobs()
        self.accounts = accounts  # None: every Author is an account
        self.locked = locked or set()
        self.route_sent = route_sent
        self.max_message_size = max_message_size
        self.mailboxes: dict[str, dict[str, StoredMessage]] = {}
        self.sent: list[StoredMessage] = []
        self.closed: list[Closed] = []
        self.requests: Counter[str] = Counter()
        self.list_cursors: dict[str, tuple[str, list[str]]] = {}  # request id -> (reader, ids left)
        self.fetch_cursors: dict[str, tuple[str, list[str]]] = {}  # fetch request id -> (reader, ids left)
        self.services: dict[str, set[str]] | None = None  # reader -> services offered (None: all)
        self.require_client_cert = False
        self.certificate_accounts: dict[str, str] = {}  # certificate common name -> account
        self.issued_ids: set[str] = set()
        self._names = itertools.count(1)

    # -- knobs -----------------------------------------------------------------------------------------

    def take(self, knob: str) -> bool:
        """Use up one count of a counting knob (fail_next, technical_fault_next, drop_next, ...)."""
        left = int(getattr(self.knobs, knob))
        if left <= 0:
            return False
        setattr(self.knobs, knob, left - 1)
        return True

    # -- accounts and ids ------------------------------------------------------------------------------

    def account_problem(self, identifier: str | None) -> tuple[str, str] | None:
        """(code, reason) of a PermissionDeniedException for this Author, or None if it may act."""
        if identifier is None:
            return "9012", "no Author header: the account is unknown"
        if identifier in self.locked:
            return "9011", f"account {identifier} is locked"
        if self.accounts is not None and identifier not in self.accounts:
            return "9012", f"account {identifier} does not exist"
        return None

    def new_message_id(self) -> str:
        """A fresh message id (createMessageId)."""
        message_id = f"urn:de:xta:messageid:simulator:{uuid.uuid4()}"
        self.issued_ids.add(message_id)
        return message_id

    def known_message_id(self, message_id: str) -> bool:
        """Whether a message with this id exists (in a mailbox or sent)."""
        return any(message_id in box for box in self.mailboxes.values()) or any(
            m.metadata.message_id == message_id for m in self.sent
        )

    # -- content files ---------------------------------------------------------------------------------

    def new_content_path(self) -> Path:
        """A fresh file name for content."""
        return self.data_dir / "content" / f"{next(self._names):06d}.bin"

    async def store(self, chunks: AsyncIterator[bytes], limit: int | None = None) -> tuple[Path, int, str]:
        """Stream chunks into a new file; (path, size, sha256). `ContentTooLarge` past `limit` bytes."""
        path = self.new_content_path()
        digest = hashlib.sha256()
        size = 0
        try:
            with path.open("wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise ContentTooLarge(f"content exceeds {limit} bytes")
                    digest.update(chunk)
                    f.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path, size, digest.hexdigest()

    # -- mailboxes -------------------------------------------------------------------------------------

    def enqueue(self, message: StoredMessage) -> None:
        """Put a message into its reader's mailbox (delivered now)."""
        reader = message.metadata.reader.identifier
        if message.metadata.delivered is None:
            message.metadata = message.metadata.model_copy(update={"delivered": _now()})
        self.mailboxes.setdefault(reader, {})[message.metadata.message_id] = message

    def mailbox(self, reader: str) -> dict[str, StoredMessage]:
        """A reader's mailbox (created empty on first use)."""
        return self.mailboxes.setdefault(reader, {})

    def fetched(self, message: StoredMessage) -> None:
        """Note a fetch: count it, stamp the initial fetch."""
        message.fetches += 1
        if message.metadata.initial_fetch is None:
            message.metadata = message.metadata.model_copy(update={"initial_fetch": _now()})

    def close(self, reader: str, message_ids: list[str], request_id: str) -> None:
        """Remove messages from a reader's mailbox, recording each close."""
        box = self.mailbox(reader)
        for message_id in message_ids:
            box.pop(message_id, None)
            self.closed.append(Closed(reader, message_id, request_id, _now()))

    def record_sent(self, message: StoredMessage) -> None:
        """Keep a sent message; route a copy into the reader's mailbox if so configured."""
        self.sent.append(message)
        if self.route_sent:
            copy = StoredMessage(message.metadata, message.message, list(message.attachments))
            self.enqueue(copy)

    def sent_message(self, message_id: str) -> StoredMessage | None:
        """A sent message by its id."""
        return next((m for m in self.sent if m.metadata.message_id == message_id), None)

    def was_closed(self, message_id: str) -> bool:
        """Whether the reader has closed (received) the message."""
        return any(c.message_id == message_id for c in self.closed)

    def service_offered(self, reader: str, service: str) -> bool:
        """lookupService: a known account offers a service (every one, unless `services` says which)."""
        if self.account_problem(reader) is not None:
            return False
        return self.services is None or service in self.services.get(reader, set())

    def cleanup(self) -> None:
        """Delete the content files."""
        shutil.rmtree(self.data_dir / "content", ignore_errors=True)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
