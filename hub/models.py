"""The domain model: what an application is, what gets filed, what was delivered and answered.

All timestamps are timezone-aware UTC. Models are pydantic v2 and are the boundary format between the
core, the journal and the plugins.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    return value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]

# Form data as submitted: a field holds a string or, for repeated elements, a list of strings; sources
# that carry structured data (XBau) may nest.
FormValue = str | int | float | bool | None | list[Any] | dict[str, Any]


class _Uuid7Source:
    """UUIDv7s (RFC 9562) as `uuid6.uuid7` makes them, with their random bits from a pool.

    `uuid6.uuid7` asks the kernel for 10 random bytes per id (getrandom(2)). The call lets go of the
    GIL, so every new application id handed the event loop's GIL to the writer threads and made it
    wait to get it back. Here the kernel's random bytes are taken 4 KiB at a time. After a fork the
    child starts a pool of its own: two processes never share random bits.
    """

    POOL = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._pool = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool, self._at = b"", 0

    def next(self) -> str:
        """A new UUIDv7 in hex: later ones sort after earlier ones, in this process."""
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:  # as uuid6 does: a clock that stands or goes back still counts up
                ms = self._last_ms + 1
            self._last_ms = ms
            if self._at + 10 > len(self._pool):
                self._pool, self._at = os.urandom(self.POOL), 0
            random = int.from_bytes(self._pool[self._at : self._at + 10])
            self._at += 10
        # 48 bits of milliseconds, version 7 (4 bits), 12 random bits, variant 0b10, 62 random bits.
        value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (random >> 68) << 64 | 0b10 << 62
        return f"{value | random & (1 << 62) - 1:032x}"


_uuid7 = _Uuid7Source()


def new_id(prefix: str = "app") -> str:
    """A new unique id with a readable prefix, later ids sorting after earlier ones."""
    # A UUIDv7 (RFC 9562: milliseconds, then 74 random bits): a new application's rows go in at one end
    # of every index on its id (applications, events, tasks, correlations), on pages the cache holds.
    # A random UUIDv4 put each on a page of its own among a million finished ones: with a long
    # history, an intake then cost about half as much again (bench/claim.py).
    return f"{prefix}_{_uuid7.next()}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class TrustLevel(StrEnum):
    """Assurance levels as BundID reports them (STORK-QAA-Level-1..4)."""

    UNTERGEORDNET = "untergeordnet"  # level 1: user name and password
    NORMAL = "normal"  # level 2
    SUBSTANTIELL = "substantiell"  # level 3: ELSTER, Smart-eID
    HOCH = "hoch"  # level 4: eID card, eIDAS, FINK

    @property
    def rank(self) -> int:
        """1..4 as in STORK-QAA-Level-N."""
        return list(TrustLevel).index(self) + 1


class ApplicationState(StrEnum):
    """Where an application stands as a whole."""

    RECEIVED = "received"  # stored, no step has run yet
    PROCESSING = "processing"  # steps are running or scheduled for retry
    DEAD = "dead"  # a step is dead: needs an operator (fix, then replay)
    REJECTED = "rejected"  # business rejection (e.g. trust level), answered to the applicant
    COMPLETED = "completed"  # filed everywhere and answered
    ABANDONED = "abandoned"  # an admin ended it: its open steps will not run (see the timeline)


class Address(_Model):
    """A postal address."""

    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None


class Party(_Model):
    """A natural or legal person: the applicant, or someone acting for them."""

    given_name: str | None = None
    family_name: str | None = None
    organisation: str | None = None
    birth_date: str | None = None
    birth_name: str | None = None
    birth_place: str | None = None
    address: Address | None = None
    email: str | None = None
    phone: str | None = None
    bpk2: str | None = None  # BundID pseudonym, stable per service
    mailbox: str | None = None  # BundID mailbox (Postkorb) handle

    @property
    def display_name(self) -> str:
        """Name as a clerk reads it."""
        names = " ".join(n for n in (self.given_name, self.family_name) if n)
        return names or self.organisation or ""


class Identity(_Model):
    """Who the applicant is proven to be, and how strongly."""

    verified: bool = False
    provider: str | None = None  # e.g. "bundid"
    asserted_by: str | None = None  # "idp" (signed assertion verified here) or "form-server"
    level: TrustLevel | None = None
    means: str | None = None  # e.g. "eID", "Elster", "Benutzername"
    subject: str | None = None  # stable pseudonym (bPK2) or NameID
    assertion_id: str | None = None
    verified_at: UtcDateTime | None = None
    attribute_levels: dict[str, TrustLevel] = Field(default_factory=dict)


class Attachment(_Model):
    """A file of an application; the content lives in the blob store under `blob`."""

    name: str
    media_type: str = "application/octet-stream"
    size: int
    sha256: str
    blob: str  # blob store reference, "sha256:<hex>"
    field: str | None = None  # the form element it was uploaded through


class OriginalSubmission(_Model):
    """The submission as received, kept for audit and replay (spent credentials removed, see below)."""

    media_type: str
    blob: str
    size: int
    sha256: str
    # Spent credentials (e.g. a forwarded SAML response) were removed once the identity step ended:
    # the content is the submission as received less those fields (the event original.redacted
    # names them; sinks see this model, so it does not).
    redacted: bool = False
    # Credential fields it still holds because its source cannot redact it: it is never filed.
    unredacted: list[str] = Field(default_factory=list)


class Purged(_Model):
    """When and by which retention policy an application's payload was deleted (see `hub.retention`)."""

    at: UtcDateTime
    policy: str


class Application(_Model):
    """One application (Antrag) as taken in from a source."""

    id: str = Field(default_factory=new_id)
    source: str  # name of the source connector in the configuration
    external_id: str  # the id the source gave it (or a hash of the submission)
    service: str  # the online service (Leistung), e.g. "jagdschein"
    route: str | None = None
    received_at: UtcDateTime = Field(default_factory=utcnow)
    applicant: Party = Field(default_factory=Party)
    identity: Identity = Field(default_factory=Identity)
    form: dict[str, FormValue] = Field(default_factory=dict)
    attachments: list[Attachment] = Field(default_factory=list)
    original: OriginalSubmission | None = None
    # ids this application has in other systems: {"formcycle": "...", "enaio.akte": "4711", ...}
    correlations: dict[str, str] = Field(default_factory=dict)
    file_number: str | None = None  # Aktenzeichen, once assigned
    # A changed re-send under the same external id may become a new revision (hub.resubmission).
    revision: int = Field(1, ge=1)
    revised_at: UtcDateTime | None = None
    fingerprint: str | None = None  # sha256 of the submitted content, set at intake
    # Its payload was purged after its retention period: metadata, ids and timeline only (hub.erasure).
    purged: Purged | None = None


class DocumentContent(StrEnum):
    """Where a document's content comes from."""

    RENDITION = "rendition"
    ATTACHMENT = "attachment"
    ORIGINAL = "original"


class Document(_Model):
    """A document to file, with its index data."""

    type: str
    name: str
    content: DocumentContent
    blob: str | None = None
    media_type: str = "application/octet-stream"
    attachment: str | None = None  # attachment name, for content=attachment
    fields: dict[str, str] = Field(default_factory=dict)


class FolderSpec(_Model):
    """An Akte (folder) or Vorgang (register): its type, how to find it, what to create it with."""

    type: str
    search: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)


class FileRecord(_Model):
    """What an application becomes in the e-file and the Fachverfahren: the mapping's output."""

    application_id: str
    service: str
    revision: int = 1  # the application's revision this record files (sinks key new documents by it)
    file_number: str | None = None
    akte: FolderSpec | None = None
    vorgang: FolderSpec | None = None
    documents: list[Document] = Field(default_factory=list)
    # per-target payloads (target connector name -> data for it), validated against each target's
    # `Sink.Payload` when mapped; a sink reads its own with `Sink.payload(record, ItsPayload)`
    payloads: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Delivery(_Model):
    """The outcome of delivering a record to one target."""

    target: str
    delivered_at: UtcDateTime = Field(default_factory=utcnow)
    reference: str | None = None  # the target's id for what was created (folder path, DMS id, case no.)
    # The Aktenzeichen the target gives: an e-file's Akte, or the Fachverfahren a route's
    # `file_number.assigned_by` names (which may instead give it as correlation `case_number`)
    file_number: str | None = None
    correlations: dict[str, str] = Field(default_factory=dict)
    duplicate: bool = False  # the target already had it (idempotent re-delivery)
    # Where it went when not where the record said (e.g. the tray: no Akte found); shown in the timeline.
    note: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class ReceiptKind(StrEnum):
    """What an answer to the applicant says."""

    RECEIVED = "received"
    REJECTED = "rejected"
    STATUS = "status"  # a Fachverfahren's answer: the case's new status (see `hub.answers`)


class AnswerStatus(StrEnum):
    """Where the case stands in the Fachverfahren, as the applicant and the e-file learn it."""

    ACCEPTED = "accepted"  # the Fachverfahren took the case in (a case number, typically)
    IN_PROGRESS = "in_progress"  # "in Bearbeitung"
    ACTION_REQUIRED = "action_required"  # "Nachforderung": the applicant has to supply something
    DECIDED = "decided"  # "Bescheid erlassen" (the decision may be attached)
    FAILED = "failed"  # the Fachverfahren refused the import (malformed, unknown service): an error


class Receipt(_Model):
    """The answer to the applicant or the portal."""

    application_id: str
    kind: ReceiptKind
    file_number: str | None = None
    reason: str | None = None
    code: str | None = None  # the rejection's code (`hub.RejectionCode` for identity rejections)
    deliveries: list[Delivery] = Field(default_factory=list)
    created_at: UtcDateTime = Field(default_factory=utcnow)
    # kind `status` (a Fachverfahren's answer): which answer, the new status, the Fachverfahren's case
    # number, text for the applicant, and documents the route allows to send along (the decision)
    answer_id: str | None = None
    status: AnswerStatus | None = None
    case_number: str | None = None
    message: str | None = None
    documents: list[Attachment] = Field(default_factory=list)


class Event(_Model):
    """One entry of an application's timeline in the journal."""

    id: int | None = None  # assigned by the journal
    application_id: str
    type: str  # e.g. "application.received", "delivery.completed"
    at: UtcDateTime = Field(default_factory=utcnow)
    step: str | None = None
    target: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
