"""A Fachverfahren's answers (callback JSON, a polled operation's result) into `Answer`s, by JSONPath.

One reader for every transport whose answers are structured data: the REST callback body, a REST
polling operation's JSON, a SOAP operation's result (zeep's objects as plain dicts and lists). The
decision (Bescheid) comes inline (base64 text, or bytes from a SOAP ``base64Binary``) or as a URL the
hub fetches with the connector's own credentials, from the Fachverfahren only; either way it is
streamed into the blob store before the answer is handed on, so the stored answer already holds it.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub import (
    Answer,
    AnswerStatus,
    Attachment,
    BadSubmission,
    BlobInfo,
    Blobs,
    BlobTooLarge,
    ConnectorContext,
    Outbound,
    UnknownApplication,
    jsonpaths,
)

log = logging.getLogger(__name__)

# What the Fachverfahren's status words mean, when the operator maps none: the hub's own names.
DEFAULT_STATUS_MAP = {status.value: status for status in AnswerStatus}


class AnswerFields(BaseModel):
    """Where the system's data holds each part of an answer (JSONPath)."""

    model_config = ConfigDict(extra="forbid")

    # Several answers in one document: the path to each (e.g. `$.events[*]`); the other paths are
    # relative to each answer. Default: the document is one answer.
    each: str = "$"
    answer_id: str = "$.eventId"
    # Which application: the hub's id if the system echoes it, else the system's own id of the case
    # (the reference recorded at delivery).
    application_id: str | None = None
    reference: str | None = "$.caseId"
    case_number: str | None = "$.aktenzeichen"
    status: str = "$.status"
    status_text: str | None = None
    message: str | None = "$.message"
    error: str | None = None
    # The decision: its content (base64 text or bytes), or a URL below the connector's base URL.
    decision_content: str | None = "$.decision.content"
    decision_url: str | None = "$.decision.url"
    decision_name: str | None = "$.decision.name"
    decision_media_type: str | None = "$.decision.mediaType"

    @field_validator("*")
    @classmethod
    def _jsonpath(cls, value: str | None) -> str | None:
        return jsonpaths.check_path(value)


class CaseAnswerSettings(BaseModel):
    """Where a service-style transport (rest, soap) finds the case in its answers, and how it reads answers.

    Each transport declares `case_number` itself (its default differs); the JSONPaths are checked here.
    """

    reference: str | None = Field(
        None, description="JSONPath to the system's id of the case in the answer (default: the case number)"
    )
    answer_fields: AnswerFields = Field(default_factory=lambda: AnswerFields())
    # The system's status words -> the hub's (e.g. {"IN_BEARBEITUNG": in_progress}).
    status_map: dict[str, AnswerStatus] = Field(default_factory=lambda: dict(DEFAULT_STATUS_MAP))
    max_decision_bytes: int = Field(64 * 1024**2, ge=1, description="largest decision PDF taken")

    @field_validator("case_number", "reference", check_fields=False)
    @classmethod
    def _jsonpath(cls, value: str | None) -> str | None:
        return jsonpaths.check_path(value)


MAX_ANSWERS = 100  # answers taken from one callback or one poll


class Unreadable(ValueError):
    """The system's data holds no usable answer; the message says why (a 4xx for a callback)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class AnswerReader:
    """Reads one connector's answers by its configured fields and status words."""

    def __init__(
        self,
        fields: AnswerFields,
        status_map: Mapping[str, AnswerStatus],
        blobs: Blobs,
        *,
        max_decision_bytes: int,
        http: Outbound | None = None,
    ) -> None:
        self.fields = fields
        self.blobs = blobs
        self.http = http
        self.max_decision_bytes = max_decision_bytes
        self._statuses = {word.casefold(): status for word, status in status_map.items()}

    def items(self, data: Any) -> list[Any]:
        """The answers' parts of one document (none is fine for a poll: nothing new)."""
        items = jsonpaths.every(self.fields.each, data)
        if len(items) > MAX_ANSWERS:
            raise Unreadable(f"more than {MAX_ANSWERS} answers at once", 413)
        return items

    async def answer(self, item: Any) -> Answer:
        """One answer; `Unreadable` when a part is missing or does not fit."""
        f = self.fields
        word = jsonpaths.text(f.status, item)
        if word is None:
            raise Unreadable(f"no status at {f.status}")
        status = self._statuses.get(word.casefold())
        if status is None:
            raise Unreadable(f"unknown status {word[:50]!r}: map it in `status_map`")
        values: dict[str, Any] = {
            "answer_id": jsonpaths.text(f.answer_id, item),
            "application_id": jsonpaths.text(f.application_id, item),
            "reference": jsonpaths.text(f.reference, item),
            "status": status,
            "case_number": jsonpaths.text(f.case_number, item),
            "status_text": jsonpaths.text(f.status_text, item) or word,
            "message": jsonpaths.text(f.message, item),
            "error": jsonpaths.text(f.error, item),
        }
        if values["answer_id"] is None:
            raise Unreadable(f"no answer id at {f.answer_id}")
        if values["application_id"] is None and values["reference"] is None:
            raise Unreadable("the answer names no case (neither application id nor reference)")
        try:
            answer = Answer.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise Unreadable(f"no usable answer: {problems}"[:500]) from None
        decision = await self._decision(item)
        return answer.model_copy(update={"decision": decision}) if decision else answer

    async def _decision(self, item: Any) -> Attachment | None:
        f = self.fields
        name = jsonpaths.text(f.decision_name, item) or "Bescheid.pdf"
        media_type = jsonpaths.text(f.decision_media_type, item) or "application/pdf"
        content = jsonpaths.first(f.decision_content, item)
        url = jsonpaths.text(f.decision_url, item)
        limit = self.max_decision_bytes
        try:
            if isinstance(content, bytes):
                info = await self.blobs.write_bytes(content, limit)
            elif isinstance(content, str):
                try:
                    data = base64.b64decode(content, validate=True)
                except binascii.Error:
                    raise Unreadable("the decision's content is not base64") from None
                info = await self.blobs.write_bytes(data, limit)
            elif url is not None:
                info = await self._fetch(url, limit)
            else:
                return None
        except BlobTooLarge:
            raise Unreadable(f"the decision is larger than {limit} bytes", 413) from None
        return Attachment(name=name, media_type=media_type, size=info.size, sha256=info.sha256, blob=info.ref)

    async def _fetch(self, url: str, limit: int) -> BlobInfo:
        if self.http is None:
            raise Unreadable("this transport fetches no decision by URL")
        base = self.http.endpoint.base_url.rstrip("/") + "/"
        # Only from the Fachverfahren itself: the request carries its credentials.
        if "://" in url and not url.startswith(base):
            raise Unreadable(f"the decision's URL is not below {base}")
        async with self.http.stream("GET", url, "fetching the decision") as response:

            async def chunks() -> AsyncIterator[bytes]:
                async for chunk in response.content.iter_chunked(64 * 1024):
                    yield chunk

            return await self.blobs.write(chunks(), limit)


async def take_answers(
    reader: AnswerReader,
    items: list[Any],
    context: ConnectorContext,
    acknowledge: Callable[[Answer], Awaitable[None]] | None,
) -> int:
    """Hand each polled answer to the return channel, then acknowledge it upstream; the number taken.

    An answer the hub cannot use (unreadable, no application of ours) stays unacknowledged upstream,
    so the system offers it again, and is logged; a return channel that cannot store (journal full)
    raises before anything is acknowledged.
    """
    taken = 0
    for item in items:
        try:
            answer = await reader.answer(item)
            await context.answer(answer)
        except (Unreadable, UnknownApplication) as exc:
            log.warning("answer not taken connector=%s reason=%s", context.name, str(exc)[:200])
            continue
        if acknowledge is not None:
            await acknowledge(answer)
        taken += 1
    return taken


def bad_submission(exc: Unreadable) -> BadSubmission:
    """A callback's unreadable answer as the 4xx the sender gets."""
    return BadSubmission(f"the callback holds no usable answer: {exc}", exc.status)
