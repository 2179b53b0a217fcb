"""Simulator of the ZBP (BundID mailbox) REST endpoint, as far as the notifier uses it.

It checks envelopes as strictly as the real mailbox should, so tests, the demo and
``aktenhub simulate zbp`` exercise the real conversation. Everything lives in memory.

API (the paths are the notifier's defaults):

- ``POST /api/v1/messages`` — body: the signed envelope of a message; the mailbox is the message's
  ``mailboxUuid``. A message with files (its content lists them in ``attachments``: ``filename``,
  hex ``sha512sum``, ``contentLength``) is ``multipart/form-data``: part ``envelope`` (the JSON) first,
  then one part ``attachment`` (with filename) per file, in the listed order; files that do not match
  the signed list exactly (count, name, SHA-512, length) → 422; more than ``max_attachment`` bytes → 413.
- ``POST /api/v1/status`` — body: the signed envelope of a status update; header ``X-Mailbox-Uuid``
  names the mailbox (400 without it).
- Both take an optional ``Idempotency-Key`` header: the same key again → 200 with the first item's id
  and ``"duplicate": true`` (nothing stored twice); the key reused for another application, mailbox or
  payload kind → 422. New item → 201 ``{"id": "...", "duplicate": false}``.
- ``GET /api/v1/health`` → 200 ``{"status": "ok"}``.

Refusals are JSON ``{"status": <code>, "error": "<message>"}`` (plus ``details`` for 422), unknown paths
(404) and methods (405) too: 400 not an envelope / content not a JSON string or not JSON (also nested too
deeply) / bad base64; 415 a body not sent as ``application/json``; 401 certificate expired or untrusted,
``sha512sum`` or the author token does not verify, token expired, not RS512, lacks ``signer``/``roles``,
lives too long; 403 the signer lacks the required role; 404 unknown mailbox (if ``mailboxes`` is set);
413 body too large; 422 payload schema (required keys, allowed status values); 503 ``fail_next``.

If ``token`` (bearer) or ``username``/``password`` (Basic) is set, API requests need it (401).

Operator endpoints (no authentication; loopback only):

- ``GET /_sim/mailboxes`` → ``{"mailboxes": [{"mailbox", "messages", "status_updates"}]}``;
- ``GET /_sim/mailboxes/{handle}`` → ``{"mailbox", "messages": [...], "status_updates": [...]}``, each
  item with ``id``, ``received_at``, ``idempotency_key``, ``signer``, ``roles``,
  ``certificate_subject``, ``certificate_sha256``, ``payload`` (the verified content, parsed);
- ``GET /_sim/refusals`` → the last refused requests (status, message);
- ``GET|POST /_sim/faults`` ``{"fail_next": N, "fail_status": 503, "latency_seconds": 0}`` → answer
  the next N API requests with that status, delay every answer;
- ``POST /_sim/reset`` → forget everything stored.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.typedefs import Handler
from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.simulation import (
    FaultKnobs,
    MalformedRequest,
    SimulatedFaults,
    basic_user,
    bearer_token,
    fault_middleware,
    fault_routes,
    multipart_errors,
    parse_json,
    read_body,
    refusal_middleware,
    secret_matches,
)

from .envelope import EnvelopeRefused, OpenedEnvelope, PayloadKind, Policy, ZbpMessage, open_envelope
from .keys import AuthorError, certificate_text, load_certificate
from .transport import IDEMPOTENCY_HEADER, MAILBOX_HEADER

OPERATOR_PREFIX = "/_sim/"
MAX_REFUSALS = 100
MAX_FILES = 20


class SimulatorOptions(BaseModel):
    """Options of the simulator (from a test, or strings from ``aktenhub simulate zbp -o KEY=VALUE``)."""

    model_config = ConfigDict(extra="forbid")

    fail_next: int = Field(0, ge=0, description="answer the next N API requests with 503")
    token: str | None = Field(None, description="bearer token API requests must carry")
    username: str | None = Field(None, description="HTTP Basic user API requests must use")
    password: str | None = None
    trusted_certificates: tuple[str, ...] = Field(
        (), description="author certificates accepted (PEM or paths; comma-separated); empty: any"
    )
    mailboxes: tuple[str, ...] = Field((), description="known mailbox handles; empty: every handle exists")
    required_role: str | None = Field("THIRD_PARTY", description="role the author token must grant")
    signer_is_common_name: bool = Field(
        True, description="the author token's signer must be the author certificate's CN"
    )
    leeway_seconds: float = Field(30.0, ge=0, le=600, description="clock skew allowed for iat/exp")
    max_token_lifetime_seconds: int = Field(3600, ge=1, description="longest exp - iat accepted")
    max_body: int = Field(1024**2, ge=1024, description="largest request body in bytes")
    max_attachment: int = Field(
        20 * 1024**2, ge=1, description="largest file sent with a message, in bytes (beside max_body)"
    )

    @field_validator("trusted_certificates", "mailboxes", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.strip().startswith("-----BEGIN"):
                return (value,)
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


@dataclass(frozen=True)
class ReceivedFile:
    """A file received with a message (its content is checked against the signed list, then dropped)."""

    filename: str
    media_type: str
    size: int
    sha512: str
    sha256: str

    def describe(self) -> dict[str, Any]:
        """The file as the operator endpoints show it."""
        return {
            "filename": self.filename,
            "mimeType": self.media_type,
            "size": self.size,
            "sha512": self.sha512,
            "sha256": self.sha256,
        }


@dataclass
class StoredItem:
    """A message or status update the mailbox holds."""

    id: str
    kind: PayloadKind
    mailbox: str
    application_id: str
    idempotency_key: str | None
    received_at: datetime
    opened: OpenedEnvelope
    files: tuple[ReceivedFile, ...] = ()

    def answer(self) -> dict[str, Any]:
        """The item as the operator endpoints show it."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "received_at": self.received_at.isoformat(),
            "idempotency_key": self.idempotency_key,
            "signer": self.opened.signer,
            "roles": list(self.opened.roles),
            "certificate_subject": self.opened.certificate_subject,
            "certificate_sha256": self.opened.certificate_sha256,
            "payload": json.loads(self.opened.content),
            "attachments": [f.describe() for f in self.files],
        }


class ZbpState(SimulatedFaults[FaultKnobs]):
    """What the simulated mailbox service holds, and its knobs."""

    def __init__(self, options: SimulatorOptions) -> None:
        self.options = options
        self.knobs = FaultKnobs(fail_next=options.fail_next)
        trusted: list[x509.Certificate] = []
        for value in options.trusted_certificates:
            try:
                trusted.append(load_certificate(certificate_text(value)))
            except AuthorError as exc:
                raise ValueError(f"trusted_certificates: {exc}") from None
        self.policy = Policy(
            trusted=tuple(trusted),
            required_role=options.required_role,
            signer_is_common_name=options.signer_is_common_name,
            leeway_seconds=options.leeway_seconds,
            max_token_lifetime_seconds=options.max_token_lifetime_seconds,
        )
        self.items: list[StoredItem] = []
        self.by_key: dict[str, StoredItem] = {}
        self.refusals: deque[dict[str, Any]] = deque(maxlen=MAX_REFUSALS)
        self.requests: Counter[str] = Counter()

    def messages(self, mailbox: str) -> list[StoredItem]:
        """The messages in a mailbox, oldest first."""
        return [i for i in self.items if i.mailbox == mailbox and i.kind is PayloadKind.MESSAGE]

    def status_updates(self, mailbox: str) -> list[StoredItem]:
        """The status updates for a mailbox, oldest first."""
        return [i for i in self.items if i.mailbox == mailbox and i.kind is PayloadKind.STATUS]

    def mailbox(self, mailbox: str) -> dict[str, Any]:
        """A mailbox's content as the operator endpoint shows it."""
        return {
            "mailbox": mailbox,
            "messages": [i.answer() for i in self.messages(mailbox)],
            "status_updates": [i.answer() for i in self.status_updates(mailbox)],
        }

    def reset(self) -> None:
        """Forget everything stored."""
        self.items.clear()
        self.by_key.clear()
        self.refusals.clear()


STATE = web.AppKey("zbp_simulator_state", ZbpState)


def _error(status: int, message: str, details: list[dict[str, str]] | None = None) -> web.Response:
    body: dict[str, Any] = {"status": status, "error": message}
    if details:
        body["details"] = details
    return web.json_response(body, status=status)


def _refuse(state: ZbpState, request: web.Request, status: int, message: str, **kw: Any) -> web.Response:
    state.refusals.append(
        {"at": datetime.now(UTC).isoformat(), "path": request.path, "status": status, "error": message}
    )
    return _error(status, message, **kw)


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(OPERATOR_PREFIX):
        return await handler(request)
    state = request.app[STATE]
    options = state.options
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    if options.token is not None:
        if not secret_matches(bearer_token(header) or "", options.token):
            return _refuse(state, request, 401, "a valid bearer token is required")
    elif (
        options.username is not None
        and basic_user(header, {options.username: options.password or ""}) is None
    ):
        return _refuse(state, request, 401, "wrong or missing user name or password")
    state.requests[f"{request.method} {request.path}"] += 1
    return await handler(request)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": "ZBP simulator"})


async def _file(part: BodyPartReader, limit: int) -> ReceivedFile:
    sha512, sha256, size = hashlib.sha512(), hashlib.sha256(), 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise MalformedRequest(f"an attachment may have at most {limit} bytes", 413)
        sha512.update(chunk)
        sha256.update(chunk)
    if not part.filename:
        raise MalformedRequest("an attachment part needs a filename")
    media_type = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
    return ReceivedFile(part.filename, media_type, size, sha512.hexdigest(), sha256.hexdigest())


async def _envelope_and_files(
    request: web.Request, kind: PayloadKind, options: SimulatorOptions
) -> tuple[bytes, tuple[ReceivedFile, ...]]:
    """The envelope's bytes and the files sent with it (multipart: part envelope, parts attachment)."""
    if request.content_type == "application/json":
        return await read_body(request, options.max_body), ()
    if request.content_type != "multipart/form-data" or kind is not PayloadKind.MESSAGE:
        raise MalformedRequest(
            "the body must be the envelope as application/json (a message with files: multipart/form-data)",
            415,
        )
    envelope: bytes | None = None
    files: list[ReceivedFile] = []
    with multipart_errors():
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise MalformedRequest("nested multipart bodies are not supported")
            if part.name == "envelope" and envelope is None and not files:
                envelope = await read_body(part, options.max_body, "the envelope")
            elif part.name == "attachment" and envelope is not None:
                if len(files) >= MAX_FILES:
                    raise MalformedRequest(f"at most {MAX_FILES} attachments per message")
                files.append(await _file(part, options.max_attachment))
            else:
                raise MalformedRequest("expected a part 'envelope' first, then parts 'attachment'")
    if envelope is None:
        raise MalformedRequest("the multipart body has no part 'envelope'")
    return envelope, tuple(files)


def _files_problem(payload: ZbpMessage, files: tuple[ReceivedFile, ...]) -> str | None:
    """Why the files sent are not exactly those the signed content lists, in its order (None: they are)."""
    listed = [(a.filename, a.sha512sum, a.contentLength) for a in payload.attachments or []]
    sent = [(f.filename, f.sha512, f.size) for f in files]
    if len(listed) != len(sent):
        return f"the message lists {len(listed)} attachment(s), {len(sent)} were sent"
    for index, (expected, got) in enumerate(zip(listed, sent, strict=True)):
        if expected != got:
            return (
                f"attachment {index} does not match the signed content (filename, sha512sum and "
                "contentLength must agree)"
            )
    return None


async def _receive(request: web.Request, kind: PayloadKind) -> web.Response:
    state = request.app[STATE]
    try:
        raw, files = await _envelope_and_files(request, kind, state.options)
        body = parse_json(raw)
    except MalformedRequest as bad:
        return _refuse(state, request, bad.status, bad.message)
    try:
        opened = open_envelope(body, kind, state.policy)
    except EnvelopeRefused as refused:
        return _refuse(state, request, refused.status, refused.message, details=refused.details)
    problem = _files_problem(opened.payload, files) if isinstance(opened.payload, ZbpMessage) else None
    if problem is not None:
        return _refuse(state, request, 422, problem)

    payload = opened.payload
    if isinstance(payload, ZbpMessage):
        mailbox = payload.mailboxUuid
    else:
        mailbox = request.headers.get(MAILBOX_HEADER, "").strip()
        if not mailbox:
            return _refuse(state, request, 400, f"header {MAILBOX_HEADER} is required for status updates")
    if state.options.mailboxes and mailbox not in state.options.mailboxes:
        return _refuse(state, request, 404, "unknown mailbox")

    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip() or None
    if key is not None and key in state.by_key:
        first = state.by_key[key]
        if (first.kind, first.mailbox, first.application_id) != (kind, mailbox, payload.applicationId):
            return _refuse(
                state, request, 422, f"{IDEMPOTENCY_HEADER} was used for another payload or mailbox"
            )
        return web.json_response({"id": first.id, "duplicate": True}, status=200)

    item = StoredItem(
        id=f"{'msg' if kind is PayloadKind.MESSAGE else 'sts'}_{uuid.uuid4().hex}",
        kind=kind,
        mailbox=mailbox,
        application_id=payload.applicationId,
        idempotency_key=key,
        received_at=datetime.now(UTC),
        opened=opened,
        files=files,
    )
    state.items.append(item)
    if key is not None:
        state.by_key[key] = item
    return web.json_response({"id": item.id, "duplicate": False}, status=201)


async def _messages(request: web.Request) -> web.Response:
    return await _receive(request, PayloadKind.MESSAGE)


async def _status(request: web.Request) -> web.Response:
    return await _receive(request, PayloadKind.STATUS)


# -- operator endpoints --------------------------------------------------------------------------------


async def _list_mailboxes(request: web.Request) -> web.Response:
    state = request.app[STATE]
    handles = sorted({i.mailbox for i in state.items})
    return web.json_response(
        {
            "mailboxes": [
                {
                    "mailbox": h,
                    "messages": len(state.messages(h)),
                    "status_updates": len(state.status_updates(h)),
                }
                for h in handles
            ]
        }
    )


async def _show_mailbox(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].mailbox(request.match_info["handle"]))


async def _refusals(request: web.Request) -> web.Response:
    return web.json_response({"refusals": list(request.app[STATE].refusals)})


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.json_response({"reset": True})


def make_app(**options: Any) -> web.Application:
    """The simulator as an aiohttp application; `options` as in `SimulatorOptions`."""
    try:
        settings = SimulatorOptions.model_validate(options)
    except ValidationError as exc:
        raise ValueError(f"ZBP simulator options: {exc}") from None
    state = ZbpState(settings)
    refusals = refusal_middleware(
        lambda request, status, message: _refuse(request.app[STATE], request, status, message)
    )
    app = web.Application(
        middlewares=[fault_middleware(STATE, _error, OPERATOR_PREFIX), _auth, refusals],
        client_max_size=settings.max_body + 1024,
    )
    app[STATE] = state
    app.router.add_get("/api/v1/health", _health)
    app.router.add_post("/api/v1/messages", _messages)
    app.router.add_post("/api/v1/status", _status)
    app.router.add_get("/_sim/mailboxes", _list_mailboxes)
    app.router.add_get("/_sim/mailboxes/{handle}", _show_mailbox)
    app.router.add_get("/_sim/refusals", _refusals)
    app.router.add_routes(fault_routes(STATE))
    app.router.add_post("/_sim/reset", _reset)
    return app
