"""Simulator of the example Fachverfahren's REST import interface (protocol version 1).

It speaks exactly the protocol the sink uses, and strictly, so that tests, the demo and
``aktenhub simulate fachverfahren-example`` exercise the real conversation. Everything lives in memory.

Every request needs HTTP Basic authentication (else 401). Answers are JSON; errors are
``{"error": "<message>", "details": [{"field": ..., "message": ...}]}`` (``details`` only for 422).

- ``GET /api/health`` → 200 ``{"status": "ok", "version": "1"}``.
- ``GET /api/cases?idempotency_key=K`` → 200 ``{"cases": [<case>]}``: the case created with key K, or
  an empty list.
- ``POST /api/cases`` with header ``Idempotency-Key: K`` (mandatory, else 400) and a JSON body
  ``{"service", "application_id", "applicant_name", "form", "documents": [{"name", "type",
  "media_type"}]}`` → 201 with the new case. The same key again → 200 with the case created first
  (422 if the key was used for another application). A missing, empty or surplus field, or a form
  lacking a field the simulator was told to require → 422; a body that is not JSON → 400.
- ``GET /api/cases/{id}`` → 200 with the case, 404 if unknown.
- ``POST /api/cases/{id}/documents?name=N&type=T`` with the document's content as the body
  (``Content-Type``: its media type) and an optional ``Idempotency-Key`` → 201 with the stored document
  ``{"id", "name", "type", "media_type", "size", "sha256"}``. The same key again → 200 with the document
  stored first (422 if the content differs). More documents than the case declared → 409; larger than
  ``max_document_size`` → 413.

Answers (the return channel): the Fachverfahren queues an answer when it takes a case in (status
``received``, with the case number) and whenever its clerk changes the case's status.

- ``GET /api/answers?limit=N`` (1-100, default 50) → 200 ``{"answers": [<answer>...]}``: the answers not
  acknowledged yet, oldest first. An answer is ``{"id", "case_id", "case_number", "application_id",
  "status", "message", "decision"}``; ``status`` is one of ``received``, ``in-progress``,
  ``documents-requested``, ``decided``, ``import-refused``; ``decision`` is null or ``{"document_id",
  "name", "media_type"}``.
- ``DELETE /api/answers/{id}`` → 204: acknowledged, never returned again; 404 for an id not in the queue
  (unknown, or acknowledged before).
- ``GET /api/cases/{id}/documents/{document id}/content`` → the content of a decision document (the
  content of uploaded documents is not served: 404).
- Operator, no authentication: ``POST /_sim/cases/{id}/answers`` with ``{"status", "message",
  "decision": {"name", "media_type", "content_base64"}}`` → 201 with the queued answer (what the
  clerk's work in the Fachverfahren produces).

A case is ``{"id", "case_number", "idempotency_key", "service", "application_id", "status",
"documents_expected", "documents": [<document>...]}``; its status is ``awaiting-documents`` until as
many documents as declared are uploaded, then ``complete``. The applicant's name and the form are kept
but never returned.

Knobs (options of `make_app`; while it runs, ``POST /_sim/faults`` or `FachverfahrenState.knobs`):
``fail_next`` answers the next N requests with ``fail_status`` (503); ``latency_seconds`` delays every answer;
``required_form_fields`` makes cases without those form fields fail with 422; ``answer_on_create``
(default true) queues the ``received`` answer for each new case; ``drop_upload`` drops the
connection without an answer on the N-th document upload (``drop_after_store``: after storing it, so
only the answer is lost).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.simulation import (
    FaultKnobs,
    SimulatedFaults,
    basic_user,
    fault_middleware,
    fault_routes,
    parse_json,
    refusal_middleware,
)

PROTOCOL_VERSION = "1"
CHUNK = 64 * 1024
OPERATOR = "/_sim/"  # the simulator's own endpoints: no authentication, never delayed or failed
STATUSES = ("received", "in-progress", "documents-requested", "decided", "import-refused")


class Knobs(FaultKnobs):
    """What a test or an operator may change while the simulator runs (``POST /_sim/faults``), besides
    the shared ``fail_next``, ``fail_status`` and ``latency_seconds``."""

    required_form_fields: tuple[str, ...] = Field((), description="form fields a case must have (else 422)")
    drop_upload: int = Field(0, ge=0, description="drop the connection on document upload N (0: never)")
    drop_after_store: bool = Field(False, description="drop only after storing that document")
    answer_on_create: bool = Field(True, description="queue the answer 'received' for each new case")

    @field_validator("required_form_fields", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value


class SimulatorOptions(Knobs):
    """Options of the simulator (from a test, or strings from the command line): the knobs' first
    values, and what stays fixed while it runs."""

    username: str = "aktenhub"
    password: str = "aktenhub-simulator"  # noqa: S105 - the simulator's own, not a real system's
    max_document_size: int = Field(100 * 1024**2, ge=1)


@dataclass
class StoredDocument:
    """A document the Fachverfahren holds: its description and content hash (not the content)."""

    id: str
    name: str
    type: str
    media_type: str
    size: int
    sha256: str
    idempotency_key: str | None
    content: bytes | None = None  # kept for the Fachverfahren's own documents (decisions) only

    def answer(self) -> dict[str, Any]:
        """The document as the API returns it."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "media_type": self.media_type,
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass
class StoredCase:
    """A case (Vorgang) in the Fachverfahren."""

    id: str
    case_number: str
    idempotency_key: str
    service: str
    application_id: str
    applicant_name: str
    form: dict[str, Any]
    documents_expected: int
    created_at: datetime
    documents: list[StoredDocument] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``complete`` once every declared document is there."""
        return "complete" if len(self.documents) >= self.documents_expected else "awaiting-documents"

    def answer(self) -> dict[str, Any]:
        """The case as the API returns it (without personal data)."""
        return {
            "id": self.id,
            "case_number": self.case_number,
            "idempotency_key": self.idempotency_key,
            "service": self.service,
            "application_id": self.application_id,
            "status": self.status,
            "documents_expected": self.documents_expected,
            "documents": [d.answer() for d in self.documents],
        }


class FachverfahrenState(SimulatedFaults[Knobs]):
    """What the simulated Fachverfahren holds, and its knobs (`knobs`, changed at runtime too)."""

    def __init__(self, options: SimulatorOptions) -> None:
        self.users = {options.username: options.password}
        self.max_document_size = options.max_document_size
        self.knobs = Knobs.model_validate(options.model_dump(include=set(Knobs.model_fields)))
        self.cases: dict[str, StoredCase] = {}
        self.answers: list[StoredAnswer] = []  # the queue, oldest first, acknowledged ones included
        self.requests: Counter[str] = Counter()  # by "METHOD route", every request that got this far
        self.uploads = 0  # document uploads received, dropped ones included

    def cases_for(self, application_id: str) -> list[StoredCase]:
        """The cases holding that application (one, if the client is idempotent)."""
        return [c for c in self.cases.values() if c.application_id == application_id]

    def case_by_key(self, key: str) -> StoredCase | None:
        """The case created with that idempotency key."""
        return next((c for c in self.cases.values() if c.idempotency_key == key), None)

    def queue_answer(
        self,
        case: StoredCase,
        status: str,
        message: str | None = None,
        decision: tuple[str, str, bytes] | None = None,
    ) -> StoredAnswer:
        """The clerk changed the case's status: queue an answer (with a decision: name, type, content)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        document = None
        if decision is not None:
            name, media_type, content = decision
            document = StoredDocument(
                id=uuid.uuid4().hex,
                name=name,
                type="decision",
                media_type=media_type,
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                idempotency_key=None,
                content=content,
            )
            case.documents.append(document)
            case.documents_expected += 1
        queued = StoredAnswer(uuid.uuid4().hex, case, status, message, document)
        self.answers.append(queued)
        return queued

    def pending_answers(self) -> list[StoredAnswer]:
        """The answers not acknowledged yet, oldest first."""
        return [a for a in self.answers if not a.acknowledged]


@dataclass
class StoredAnswer:
    """An entry of the answer queue."""

    id: str
    case: StoredCase
    status: str
    message: str | None
    decision: StoredDocument | None
    acknowledged: bool = False
    acknowledgements: int = 0  # DELETEs it got (more than one: it was given again after one)

    def answer(self) -> dict[str, Any]:
        """The answer as the API returns it."""
        decision = self.decision
        return {
            "id": self.id,
            "case_id": self.case.id,
            "case_number": self.case.case_number,
            "application_id": self.case.application_id,
            "status": self.status,
            "message": self.message,
            "decision": None
            if decision is None
            else {"document_id": decision.id, "name": decision.name, "media_type": decision.media_type},
        }


STATE = web.AppKey("fachverfahren_example_state", FachverfahrenState)


class _DeclaredDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=100)
    media_type: str = Field(min_length=1, max_length=255)


class _NewCase(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    service: str = Field(min_length=1, max_length=100)
    subject: str | None = Field(None, max_length=255)
    application_id: str = Field(min_length=1, max_length=200)
    applicant_name: str = Field(max_length=500)
    form: dict[str, Any]
    documents: list[_DeclaredDocument] = Field(max_length=1000)


def _error(status: int, message: str, details: list[dict[str, str]] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return web.json_response(body, status=status)


def _drop(request: web.Request) -> NoReturn:
    """Close the connection without an answer, as a crashing server or a broken network does."""
    if request.transport is not None:
        request.transport.close()
    raise web.HTTPServiceUnavailable()  # never reaches the client: the connection is gone


@web.middleware
async def _basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    if request.path.startswith(OPERATOR):
        return await handler(request)
    if basic_user(request.headers.get(hdrs.AUTHORIZATION, ""), state.users) is None:
        response = _error(401, "authentication required: wrong or missing user name or password")
        response.headers[hdrs.WWW_AUTHENTICATE] = 'Basic realm="fachverfahren", charset="UTF-8"'
        return response
    route = request.match_info.route.resource
    state.requests[f"{request.method} {route.canonical if route else request.path}"] += 1
    return await handler(request)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": PROTOCOL_VERSION})


async def _find_cases(request: web.Request) -> web.Response:
    state = request.app[STATE]
    key = request.query.get("idempotency_key")
    if not key:
        return _error(400, "query parameter idempotency_key is required")
    case = state.case_by_key(key)
    return web.json_response({"cases": [case.answer()] if case else []})


async def _create_case(request: web.Request) -> web.Response:
    state = request.app[STATE]
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return _error(400, "header Idempotency-Key is required")
    raw = parse_json(await request.read())
    try:
        new = _NewCase.model_validate(raw)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return _error(422, f"the case is incomplete or malformed: {summary}", details)
    missing = [name for name in state.knobs.required_form_fields if name not in new.form]
    if missing:
        details = [{"field": f"form.{name}", "message": "mandatory field is missing"} for name in missing]
        return _error(422, f"form field {missing[0]!r} is mandatory", details)
    existing = state.case_by_key(key)
    if existing is not None:
        if existing.application_id != new.application_id:
            return _error(422, f"Idempotency-Key {key!r} was used for another application")
        return web.json_response(existing.answer(), status=200)
    now = datetime.now(UTC)
    case = StoredCase(
        id=uuid.uuid4().hex,
        case_number=f"FV-{now.year}-{len(state.cases) + 1:06d}",
        idempotency_key=key,
        service=new.service,
        application_id=new.application_id,
        applicant_name=new.applicant_name,
        form=new.form,
        documents_expected=len(new.documents),
        created_at=now,
    )
    state.cases[case.id] = case
    if state.knobs.answer_on_create:
        state.queue_answer(case, "received")
    return web.json_response(case.answer(), status=201)


async def _get_case(request: web.Request) -> web.Response:
    case = request.app[STATE].cases.get(request.match_info["case_id"])
    if case is None:
        return _error(404, "no such case")
    return web.json_response(case.answer())


async def _upload_document(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    case = state.cases.get(request.match_info["case_id"])
    if case is None:
        return _error(404, "no such case")
    name = request.query.get("name", "")
    doc_type = request.query.get("type", "document")
    if not name or len(name) > 255 or not doc_type:
        return _error(422, "query parameters name (1-255 characters) and type are required")
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > state.max_document_size:
            return _error(413, f"documents may have at most {state.max_document_size} bytes")
        digest.update(chunk)
    state.uploads += 1
    dropped = state.knobs.drop_upload == state.uploads
    if dropped and not state.knobs.drop_after_store:
        _drop(request)
    key = request.headers.get("Idempotency-Key") or None
    earlier = next((d for d in case.documents if key is not None and d.idempotency_key == key), None)
    if earlier is not None:
        if earlier.sha256 != digest.hexdigest():
            return _error(422, f"Idempotency-Key {key!r} was used for a different document")
        return web.json_response(earlier.answer(), status=200)
    if len(case.documents) >= case.documents_expected:
        return _error(409, f"case {case.id} already has all {case.documents_expected} declared documents")
    document = StoredDocument(
        id=uuid.uuid4().hex,
        name=name,
        type=doc_type,
        media_type=request.content_type,
        size=size,
        sha256=digest.hexdigest(),
        idempotency_key=key,
    )
    case.documents.append(document)
    if dropped:
        _drop(request)
    return web.json_response(document.answer(), status=201)


async def _answers(request: web.Request) -> web.Response:
    limit = request.query.get("limit", "50")
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 100:
        return _error(400, "query parameter limit must be a number from 1 to 100")
    pending = request.app[STATE].pending_answers()[: int(limit)]
    return web.json_response({"answers": [a.answer() for a in pending]})


async def _acknowledge(request: web.Request) -> web.Response:
    answer_id = request.match_info["answer_id"]
    queued = next((a for a in request.app[STATE].pending_answers() if a.id == answer_id), None)
    if queued is None:
        return _error(404, "no such answer in the queue")
    queued.acknowledged = True
    queued.acknowledgements += 1
    return web.Response(status=204)


async def _document_content(request: web.Request) -> web.Response:
    case = request.app[STATE].cases.get(request.match_info["case_id"])
    if case is None:
        return _error(404, "no such case")
    document = next((d for d in case.documents if d.id == request.match_info["document_id"]), None)
    if document is None or document.content is None:
        return _error(404, "no such document with content in this case")
    return web.Response(body=document.content, content_type=document.media_type)


class _ClerkAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    class Decision(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)

        name: str = Field(min_length=1, max_length=255)
        media_type: str = Field(min_length=1, max_length=255)
        content_base64: str

    status: str
    message: str | None = Field(None, max_length=2000)
    decision: Decision | None = None


async def _clerk_answers(request: web.Request) -> web.Response:
    state = request.app[STATE]
    case = state.cases.get(request.match_info["case_id"])
    if case is None:
        return _error(404, "no such case")
    try:
        wish = _ClerkAnswer.model_validate(parse_json(await request.read()))
        decision = None
        if wish.decision is not None:
            content = base64.b64decode(wish.decision.content_base64, validate=True)
            decision = (wish.decision.name, wish.decision.media_type, content)
        queued = state.queue_answer(case, wish.status, wish.message, decision)
    except (ValidationError, ValueError, binascii.Error) as exc:
        return _error(422, f"not an answer: {exc}"[:300])
    return web.json_response(queued.answer(), status=201)


async def _release(app: web.Application) -> None:
    app[STATE].release()


def make_app(**options: Any) -> web.Application:
    """The simulator as an aiohttp application; `options` as in `SimulatorOptions`."""
    state = FachverfahrenState(SimulatorOptions.model_validate(options))
    refusals = refusal_middleware(lambda request, status, message: _error(status, message))
    faults = fault_middleware(STATE, _error, operator_prefix=OPERATOR)
    app = web.Application(middlewares=[refusals, faults, _basic_auth])
    app[STATE] = state
    app.on_shutdown.append(_release)
    app.router.add_get("/api/health", _health)
    app.router.add_get("/api/cases", _find_cases)
    app.router.add_post("/api/cases", _create_case)
    app.router.add_get("/api/cases/{case_id}", _get_case)
    app.router.add_post("/api/cases/{case_id}/documents", _upload_document)
    app.router.add_get("/api/cases/{case_id}/documents/{document_id}/content", _document_content)
    app.router.add_get("/api/answers", _answers)
    app.router.add_delete("/api/answers/{answer_id}", _acknowledge)
    app.router.add_post("/_sim/cases/{case_id}/answers", _clerk_answers)
    app.router.add_routes(fault_routes(STATE, _error))
    return app
