"""The return channel's models: what a Fachverfahren answers, and what an answer changes in the e-file.

A Fachverfahren answers by its transport's own way back (REST callback, SQL status column, answer
folder, XTA message). The transport turns each answer into an `Answer` and hands it to
`ConnectorContext.answer`, which stores it durably (idempotent on the connector and `answer_id`) and
returns only after the commit; then the transport acknowledges it upstream (deletes the answer file,
marks the row, answers the callback 2xx, closes the XTA message).

The core then, per the route's `on_answer` setting: records the case number as a correlation (never as
the Aktenzeichen), has the e-file target file an `AnswerRecord` (index fields of the Akte, the decision
into the Vorgang), and has the notifier tell the applicant (a `Receipt` of kind `status`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from hub.models import AnswerStatus, Attachment, Document, FolderSpec, UtcDateTime, utcnow

__all__ = ["Answer", "AnswerOutcome", "AnswerRecord", "AnswerStatus", "CallbackAuth", "UnknownApplication"]


class Answer(BaseModel):
    """One answer of a Fachverfahren about one application."""

    model_config = ConfigDict(extra="forbid")

    # The system's own id of this answer (answer file name and digest, row id and version, XTA message
    # id, callback event id): an answer received twice under one id changes nothing the second time.
    answer_id: str = Field(min_length=1, max_length=200)
    # Which application: the hub's id when the system echoes it, else `reference`, the id the sink
    # recorded at delivery (looked up among the application's correlations with this connector).
    application_id: str | None = None
    reference: str | None = None
    status: AnswerStatus
    case_number: str | None = Field(None, max_length=200)  # the Fachverfahren's Aktenzeichen
    status_text: str | None = Field(None, max_length=500)  # the system's own wording of the status
    message: str | None = Field(None, max_length=2000)  # for the applicant (e.g. what to supply)
    decision: Attachment | None = None  # the decision (Bescheid), already in the blob store
    error: str | None = Field(None, max_length=2000)  # with status `failed`: why
    at: UtcDateTime = Field(default_factory=utcnow)  # when the system gave it


class AnswerOutcome(BaseModel):
    """The core's answer to `ConnectorContext.answer`: stored for this application, or a repeat."""

    application_id: str
    duplicate: bool


class AnswerRecord(BaseModel):
    """What an answer changes in the e-file: index fields of the Akte, documents filed into the Vorgang."""

    model_config = ConfigDict(extra="forbid")

    application_id: str
    answer_id: str
    source: str  # the Fachverfahren connector that answered
    status: AnswerStatus
    case_number: str | None = None
    file_number: str | None = None  # the application's Aktenzeichen (unchanged by any answer)
    akte: FolderSpec | None = None  # the Akte as mapped, to find it again
    vorgang: FolderSpec | None = None
    akte_fields: dict[str, str] = Field(default_factory=dict)  # index fields to set on the Akte
    documents: list[Document] = Field(default_factory=list)  # e.g. the decision
    at: datetime = Field(default_factory=utcnow)


class UnknownApplication(LookupError):
    """An answer names no application of the hub (unknown id or reference); it is refused, not stored."""


class CallbackAuth(BaseModel):
    """How `POST /callback/<connector>` is authenticated: an HMAC signature (default) or a shared token.

    `hmac-sha256`: the sender puts the Unix time in `timestamp_header` and
    ``hex(HMAC-SHA256(secret, "<timestamp>.<raw body>"))`` in `signature_header` (optionally prefixed
    ``sha256=``); the core compares in constant time and refuses timestamps more than `max_age_seconds`
    away. `token`: the sender puts the secret as ``Authorization: Bearer <secret>``.
    """

    model_config = ConfigDict(extra="forbid")

    secret: SecretStr = Field(min_length=16)
    scheme: Literal["hmac-sha256", "token"] = "hmac-sha256"
    signature_header: str = "X-Signature"
    timestamp_header: str = "X-Timestamp"
    max_age_seconds: int = Field(300, ge=1, le=3600)
