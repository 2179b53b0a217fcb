"""How envelopes reach the ZBP: a small transport interface, with the REST transport behind it.

Today there is one transport, ``rest``: the ZBP REST endpoint inside the administration network. A
FIT-Connect bridge is a second implementation of `Transport` (and a new value of the ``transport``
setting); the notifier does not change.

REST conversation (one request per envelope)::

    POST {base_url}{messages_path}   body: the envelope (JSON); with files: multipart/form-data, part
                                     "envelope" (the JSON) and one part "attachment" per file
    POST {base_url}{status_path}     body: the envelope (JSON), header X-Mailbox-Uuid: <handle>
    headers: Content-Type: application/json, Idempotency-Key: <key>, Authorization (if configured)
    2xx -> {"id": "...", "duplicate": false|true}

The reference status payload carries no mailbox, so a status update names it in the header
``X-Mailbox-Uuid`` (a header, not the URL: handles are personal data and URLs end up in access logs).

Failures are classified for the core, which owns retrying: no answer in time, no connection, 5xx, 408,
425 and 429 are `Retryable`; other 4xx (bad signature, unknown mailbox, schema) are `Permanent` with the
server's message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp.payload import AsyncIterablePayload

from hub import Permanent, Retryable
from hub.outbound import Outbound, Refusal, SessionFactory, server_message

from .config import ZbpConfig
from .envelope import Envelope, PayloadKind

MAX_ANSWER = 256 * 1024  # bytes; the ZBP answers with small JSON documents
MAILBOX_HEADER = "X-Mailbox-Uuid"
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class SubmissionFile:
    """A file sent with a message (its SHA-512 and length are in the signed content): read when sent."""

    name: str
    media_type: str
    open: Callable[[], AsyncIterator[bytes]]


@dataclass(frozen=True)
class Submission:
    """One envelope to deliver, with what the transport needs besides it."""

    kind: PayloadKind
    envelope: Envelope
    mailbox: str
    idempotency_key: str
    files: tuple[SubmissionFile, ...] = ()


@dataclass(frozen=True)
class Accepted:
    """The ZBP took the envelope: its id for it, and whether it already had it (same idempotency key)."""

    id: str | None
    duplicate: bool


@dataclass(frozen=True)
class Probe:
    """Whether the ZBP can be reached and accepts our credentials."""

    ok: bool
    message: str


class Transport(Protocol):
    """Carries envelopes to the ZBP."""

    name: str

    async def send(self, submission: Submission) -> Accepted:
        """Deliver one envelope; raise `Retryable` or `Permanent` on failure."""
        ...

    async def probe(self) -> Probe:
        """Can the ZBP be reached with this configuration? Never raises."""
        ...

    def describe(self) -> dict[str, str]:
        """Where envelopes go (no secrets), for check results and diagnostics."""
        ...


class RestTransport:
    """The ZBP REST endpoint, through the hub's `Outbound` (shared session, auth, TLS, errors)."""

    name = "rest"

    def __init__(self, config: ZbpConfig, http: SessionFactory) -> None:
        self.config = config
        self.outbound = Outbound(http, config.endpoint(), system="the ZBP")

    def describe(self) -> dict[str, str]:
        """Where envelopes go."""
        c = self.config
        return {
            "transport": self.name,
            "messages_url": c.base_url + c.messages_path,
            "status_url": c.base_url + c.status_path,
            "auth": self.outbound.describe()["auth"],
        }

    async def send(self, submission: Submission) -> Accepted:
        """POST the envelope to the messages or status path."""
        c = self.config
        path = c.messages_path if submission.kind is PayloadKind.MESSAGE else c.status_path
        what = f"ZBP {submission.kind.value}"
        headers = {"Accept": "application/json", IDEMPOTENCY_HEADER: submission.idempotency_key}
        if submission.kind is PayloadKind.STATUS:
            headers[MAILBOX_HEADER] = submission.mailbox
        envelope = submission.envelope.model_dump_json().encode("utf-8")
        body: Any = envelope
        if submission.files:
            files = submission.files

            def body_with_files() -> aiohttp.MultipartWriter:
                # A fresh writer per attempt (it streams from the blob store); it sets its Content-Type.
                return _with_files(envelope, files)

            body = body_with_files
        else:
            headers["Content-Type"] = "application/json"
        try:
            answer = await self.outbound.request(
                "POST", path, what, data=body, headers=headers, limit=MAX_ANSWER
            )
        except Refusal as exc:
            if exc.status in (401, 403):
                # The ZBP answers 401/403 for the author token as well as for the transport's credentials.
                raise Refusal(
                    f"{exc}; or the author key and certificate, signer and roles", exc.status
                ) from None
            raise
        try:
            parsed = json.loads(answer.body) if answer.body.strip() else {}
        except ValueError:
            parsed = {}
        fields = parsed if isinstance(parsed, dict) else {}
        ident = fields.get("id")
        return Accepted(
            id=str(ident) if ident is not None else None,
            duplicate=bool(fields.get("duplicate", answer.status == 200)),
        )

    async def probe(self) -> Probe:
        """GET the health path: any answer but 5xx, 401 and 403 counts as reachable."""
        url = self.config.base_url + self.config.health_path
        try:
            answer = await self.outbound.send(
                "GET", self.config.health_path, "ZBP health check", limit=MAX_ANSWER
            )
        except (Retryable, Permanent) as exc:
            return Probe(False, str(exc))
        if answer.status in (401, 403):
            return Probe(
                False, f"{url} refused our credentials ({answer.status}): {server_message(answer.body)}"
            )
        if answer.status >= 500:
            return Probe(False, f"{url} answered {answer.status}: {server_message(answer.body)}")
        return Probe(True, f"{url} answers ({answer.status})")


def _with_files(envelope: bytes, files: tuple[SubmissionFile, ...]) -> aiohttp.MultipartWriter:
    """``multipart/form-data``: part ``envelope`` (the JSON), then one part ``attachment`` per file."""
    writer = aiohttp.MultipartWriter("form-data")
    part = writer.append(envelope, {"Content-Type": "application/json"})
    part.set_content_disposition("form-data", name="envelope")
    for file in files:
        payload = AsyncIterablePayload(file.open(), content_type=file.media_type)  # streamed, never whole
        payload.set_content_disposition(
            "form-data", quote_fields=False, name="attachment", filename=file.name
        )
        writer.append_payload(payload)
    return writer


def make_transport(config: ZbpConfig, http: SessionFactory) -> Transport:
    """The transport the configuration names."""
    if config.transport == "rest":
        return RestTransport(config, http)
    raise ValueError(f"unknown ZBP transport {config.transport!r}")  # pragma: no cover - config forbids it
