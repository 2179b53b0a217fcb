"""The XTA simulator's HTTP side: the three WSDL ports (SOAP 1.2, WS-Addressing, MTOM) and operator endpoints.

SOAP endpoints: ``POST /MsgBoxPort``, ``POST /SendXtaPort``, ``POST /ManagementPort``. The operation is
chosen by ``wsa:Action`` (required, as the WSDL's addressing policy says; it must belong to the port
and match the HTTP ``action`` parameter). Every request is validated against the XTA schemas; a
request that violates them gets an ``env:Sender`` fault. Faults: SOAP 1.2, HTTP 400 (``env:Sender``)
or 500 (``env:Receiver``), with the XTA exception element as detail.

Operator endpoints (never subject to fault knobs) live under ``/_sim/``: see `make_app`.
"""

from __future__ import annotations

import base64
import binascii
import json
import shutil
import ssl
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, hdrs, web
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.schemas import require_schema_directory
from hub.simulation import SERVER_SSL, fault_routes

from ..models import PAYLOAD_ELEMENT_LIST, MessageMetaData, PartyId
from ..mtom import (
    CHUNK,
    SOAP_TYPE,
    MtomError,
    OutgoingPart,
    cid_of,
    content_type_params,
    href_of,
    new_cid,
    part_chunks,
    read_part,
    read_related,
    related_writer,
    soap_action,
)
from ..schema import XtaSchema, load_schema
from ..xml import META, OSCI, SOAP11, SOAP12, WSA, XOP, XTA, UnsafeXml, parse_xml, qname
from . import soap
from .state import ContentTooLarge, Knobs, StoredContent, StoredMessage, XtaState, _now

STATE = web.AppKey("xta_simulator_state", XtaState)
SCHEMA = web.AppKey("xta_simulator_schema", XtaSchema)

MAX_ENVELOPE = 16 * 1024**2
SOAP11_TYPE = "text/xml"
MAX_JSON = 1024**2
PORTS = ("MsgBoxPort", "SendXtaPort", "ManagementPort")
ULTIMATE_RECEIVER = "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"
NEXT = "http://www.w3.org/2003/05/soap-envelope/role/next"
# Header blocks the server processes: WS-Addressing and the XTA/OSCI headers of the WSDL.
_WSA_SINGLE = ("Action", "MessageID", "To", "From", "ReplyTo", "FaultTo")
SINGLE_HEADERS = frozenset(
    [qname(WSA, n) for n in _WSA_SINGLE] + [qname(META, "Author"), qname(META, "MessageMetaData")]
)
UNDERSTOOD = SINGLE_HEADERS | {
    qname(WSA, "RelatesTo"),
    qname(OSCI, "MsgBoxResponse"),
    qname(OSCI, "X509TokenContainer"),
}


class SimulatorOptions(BaseModel):
    """Settings of the simulator (``aktenhub simulate xta --option KEY=VALUE``)."""

    model_config = ConfigDict(extra="forbid")

    schemas: Path | None = Field(
        None, description="schema directory (default $AKTENHUB_SCHEMAS or ../shared/reference)"
    )
    data_dir: Path | None = Field(None, description="where content files go (default: a temporary directory)")
    accounts: list[str] | None = Field(None, description="Author identifiers with an account (None: any)")
    locked: list[str] = Field(default_factory=list, description="accounts that are locked (9011)")
    route_sent: bool = Field(True, description="sent messages also land in their reader's mailbox")
    inline_content: bool = Field(False, description="getMessage answers with inline base64 instead of MTOM")
    validate_requests: bool = Field(True, description="refuse requests that violate the XTA schemas")
    max_message_size: int | None = Field(
        None, ge=1, description="largest content accepted by sendMessage (9023)"
    )
    page_size: int = Field(100, ge=1, description="status list entries when the request names no maximum")
    require_client_cert: bool = Field(
        False, description="refuse SOAP requests without a verified TLS client certificate (9014)"
    )
    certificate_accounts: dict[str, str] = Field(
        default_factory=dict,
        description="client certificate common name -> the only account (Author) it may act for (9014)",
    )
    services: dict[str, list[str]] | None = Field(
        None, description="lookupService: services each reader offers (None: every account offers all)"
    )
    tls_cert: Path | None = Field(None, description="`aktenhub simulate`: serve https with this certificate")
    tls_key: Path | None = Field(None, description="the key of `tls_cert`")
    tls_client_ca: Path | None = Field(None, description="CAs of the client certificates (https only)")
    fail_next: int = 0
    fail_status: int = 503
    technical_fault_next: int = 0
    latency_seconds: float = 0.0
    drop_next: int = 0
    fail_close_next: int = 0
    endless_content_next: int = 0

    @field_validator("accounts", "locked", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


OPTIONS = web.AppKey("xta_simulator_options", SimulatorOptions)


def default_schemas() -> Path:
    """The schema directory holding the XTA WSDL ($AKTENHUB_SCHEMAS, else ../shared/reference)."""
    return require_schema_directory(containing="xta", purpose="the XTA simulator")


def make_app(**options: Any) -> web.Application:
    """The simulator as an aiohttp application; `app[STATE]` is its state.

    Operator endpoints:
    - ``POST /_sim/mailboxes/{reader}`` (multipart/form-data: ``metadata`` JSON, ``message`` file,
      ``attachment`` files) enqueues a message for a reader; content streams to disk. Answer 201
      ``{"message_id", "size", "sha256"}``.
    - ``GET /_sim/mailboxes/{reader}``: the messages waiting; ``GET /_sim/sent``: what was sent;
      ``GET /_sim/sent/{message_id}/parts/{n}``: a sent content (0 = message, 1.. = attachments);
      ``GET /_sim/closed``: every close; ``GET /_sim/state``: request counts.
    - ``GET|POST /_sim/faults``: the fault knobs (fail_next, fail_status, technical_fault_next,
      latency_seconds, drop_next, fail_close_next).
    """
    settings = SimulatorOptions.model_validate(options)
    created = settings.data_dir is None
    data_dir = settings.data_dir or Path(tempfile.mkdtemp(prefix="xta-simulator-"))
    knobs = Knobs(
        fail_next=settings.fail_next,
        fail_status=settings.fail_status,
        technical_fault_next=settings.technical_fault_next,
        latency_seconds=settings.latency_seconds,
        drop_next=settings.drop_next,
        fail_close_next=settings.fail_close_next,
        endless_content_next=settings.endless_content_next,
    )
    state = XtaState(
        data_dir,
        knobs=knobs,
        accounts=set(settings.accounts) if settings.accounts is not None else None,
        locked=set(settings.locked),
        route_sent=settings.route_sent,
        max_message_size=settings.max_message_size,
    )
    state.certificate_accounts = dict(settings.certificate_accounts)
    state.require_client_cert = settings.require_client_cert or bool(settings.certificate_accounts)
    if settings.services is not None:
        state.services = {reader: set(offered) for reader, offered in settings.services.items()}
    app = web.Application(client_max_size=MAX_ENVELOPE)
    app[STATE] = state
    app.on_shutdown.append(_release_delays)
    if settings.tls_cert is not None:
        app[SERVER_SSL] = _server_ssl(settings)
    app[OPTIONS] = settings
    app[SCHEMA] = load_schema((settings.schemas or default_schemas()).resolve())
    for port in PORTS:
        app.router.add_post(f"/{port}", _soap_endpoint)
    app.router.add_post("/_sim/mailboxes/{reader}", _enqueue)
    app.router.add_get("/_sim/mailboxes/{reader}", _mailbox)
    app.router.add_get("/_sim/sent", _sent)
    app.router.add_get("/_sim/sent/{message_id}/parts/{index}", _sent_part)
    app.router.add_get("/_sim/closed", _closed)
    app.router.add_get("/_sim/state", _state)
    app.router.add_routes(fault_routes(STATE, _json_error))

    async def cleanup(app: web.Application) -> None:
        state.cleanup()
        if created:
            shutil.rmtree(data_dir, ignore_errors=True)

    app.on_cleanup.append(cleanup)
    return app


def _server_ssl(settings: SimulatorOptions) -> ssl.SSLContext:
    """The https context for `aktenhub simulate`: client certificates required if so configured."""
    context = ssl.create_default_context(
        ssl.Purpose.CLIENT_AUTH, cafile=str(settings.tls_client_ca) if settings.tls_client_ca else None
    )
    context.load_cert_chain(str(settings.tls_cert), str(settings.tls_key) if settings.tls_key else None)
    if settings.tls_client_ca is not None:
        required = settings.require_client_cert or settings.certificate_accounts
        context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    return context


# -- the SOAP side ---------------------------------------------------------------------------------------


class Fault(Exception):
    """An answer with a SOAP fault."""

    def __init__(
        self,
        soap_code: str,
        reason: str,
        exception: str | None = None,
        code: str | None = None,
        subcode: str | None = None,
        subsubcode: str | None = None,
        not_understood: tuple[str, ...] = (),
    ) -> None:
        super().__init__(reason)
        self.soap_code = soap_code
        self.reason = reason
        self.exception = exception
        self.code = code
        self.subcode = subcode
        self.subsubcode = subsubcode
        self.not_understood = not_understood


class Soap11Request(Exception):
    """A SOAP 1.1 envelope: answered with a SOAP 1.1 VersionMismatch fault (SOAP 1.2 part 1, annex A)."""


def _xta_fault(exception: str, code: str, reason: str) -> Fault:
    receiver = exception == "XTAWSTechnicalProblemException"
    return Fault("Receiver" if receiver else "Sender", reason, exception, code)


@dataclass
class Incoming:
    """A parsed SOAP request: envelope, WS-Addressing data, MTOM parts stored as files."""

    envelope: etree._Element
    action: str | None = None
    message_id: str | None = None
    parts: dict[str, StoredContent] = field(default_factory=dict)
    certificate: str | None = None  # common name of the verified TLS client certificate

    def header(self, namespace: str, local: str) -> etree._Element | None:
        return self.envelope.find(f"{qname(SOAP12, 'Header')}/{qname(namespace, local)}")

    def body(self, namespace: str, local: str) -> etree._Element | None:
        return self.envelope.find(f"{qname(SOAP12, 'Body')}/{qname(namespace, local)}")

    def author(self) -> str | None:
        found = self.envelope.find(
            f"{qname(SOAP12, 'Header')}/{qname(META, 'Author')}/{qname(META, 'Identifier')}"
        )
        return found.text.strip() if found is not None and found.text and found.text.strip() else None

    def discard(self) -> None:
        for part in self.parts.values():
            part.path.unlink(missing_ok=True)


def _xml_response(envelope: etree._Element, status: int = 200) -> web.Response:
    action = envelope.findtext(f"{qname(SOAP12, 'Header')}/{qname(WSA, 'Action')}")
    body = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
    content_type = (
        f'{SOAP_TYPE}; charset=utf-8; action="{action}"' if action else f"{SOAP_TYPE}; charset=utf-8"
    )
    return web.Response(body=body, status=status, headers={hdrs.CONTENT_TYPE: content_type})


def _fault_response(fault: Fault, incoming: Incoming | None) -> web.Response:
    envelope = soap.fault(
        incoming.action if incoming is not None else None,
        incoming.message_id if incoming is not None else None,
        soap_code=fault.soap_code,
        reason=fault.reason,
        exception=fault.exception,
        code=fault.code,
        subcode=fault.subcode,
        subsubcode=fault.subsubcode,
        not_understood=fault.not_understood,
    )
    return _xml_response(envelope, 400 if fault.soap_code == "Sender" else 500)


async def _soap_endpoint(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    port = request.path.strip("/")
    await state.delay()
    if state.take("drop_next"):
        if request.transport is not None:
            request.transport.close()
        raise web.HTTPServiceUnavailable()  # never reaches the client: the connection is gone
    if state.take("fail_next"):
        status = state.knobs.fail_status
        return web.Response(status=status, text=f"simulated failure (HTTP {status})")
    incoming: Incoming | None = None
    try:
        certificate = _client_certificate(request)
        if state.require_client_cert and certificate is None:
            raise _xta_fault("PermissionDeniedException", "9014", "a TLS client certificate is required")
        incoming = await _read_request(request, state)
        incoming.certificate = certificate
        _check_headers(incoming)
        operation = _check_addressing(incoming, port, request.headers.get(hdrs.CONTENT_TYPE, ""))
        state.requests[operation] += 1
        if operation in state.knobs.fail_operations:
            status = state.knobs.fail_status
            return web.Response(status=status, text=f"simulated failure of {operation} (HTTP {status})")
        if request.app[OPTIONS].validate_requests:
            problems = request.app[SCHEMA].errors(incoming.envelope)
            if problems:
                raise Fault("Sender", "the request violates the XTA schemas: " + "; ".join(problems[:3]))
        if state.take("technical_fault_next"):
            raise _xta_fault("XTAWSTechnicalProblemException", "9030", "simulated internal error")
        handler = _HANDLERS.get(operation)
        if handler is None:
            raise Fault(
                "Sender", f"{operation} is not offered by the simulator", subcode="wsa:ActionNotSupported"
            )
        return await handler(request, incoming)
    except Fault as fault:
        if incoming is not None:
            incoming.discard()
        return _fault_response(fault, incoming)
    except Soap11Request:
        body = etree.tostring(soap.soap11_version_mismatch(), xml_declaration=True, encoding="utf-8")
        # SOAP 1.1 over HTTP answers every fault with 500, in its own media type.
        return web.Response(body=body, status=500, content_type=SOAP11_TYPE, charset="utf-8")


async def _read_request(request: web.Request, state: XtaState) -> Incoming:
    media, _ = content_type_params(request.headers.get(hdrs.CONTENT_TYPE, ""))
    parts: dict[str, StoredContent] = {}
    if media == "multipart/related":

        async def store(cid: str, part: BodyPartReader) -> None:
            path, size, digest = await state.store(part_chunks(part), state.max_message_size)
            media_type = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
            parts[cid] = StoredContent(path, size, digest, media_type)

        try:
            related = await read_related(
                request.headers, request.content, envelope_limit=MAX_ENVELOPE, on_part=store
            )
        except MtomError as exc:
            _discard(parts)
            raise Fault("Sender", f"malformed MTOM request: {exc}") from None
        except ContentTooLarge as exc:  # the size limit of sendMessage
            _discard(parts)
            raise _xta_fault("ParameterIsNotValidException", "9023", str(exc)) from None
        if related.root_type.split(";")[0].strip() != SOAP_TYPE:
            _discard(parts)
            raise Fault("Sender", f"the root part is {related.root_type!r}, expected SOAP 1.2")
        xml = related.root
    elif media in (SOAP_TYPE, SOAP11_TYPE):
        # Read to the end (`read(n)` gives what has arrived, not n bytes), bounded.
        buffer = bytearray()
        async for chunk in request.content.iter_chunked(CHUNK):
            buffer += chunk
            if len(buffer) > MAX_ENVELOPE:
                raise Fault("Sender", f"the envelope exceeds {MAX_ENVELOPE} bytes")
        xml = bytes(buffer)
    else:
        raise Fault("Sender", f"expected {SOAP_TYPE} or multipart/related (MTOM), got {media!r}")
    try:
        envelope = _envelope(xml, media)
    except BaseException:
        _discard(parts)
        raise
    incoming = Incoming(envelope, parts=parts)
    incoming.action = _header_text(incoming, "Action")
    incoming.message_id = _header_text(incoming, "MessageID")
    return incoming


def _envelope(xml: bytes, media: str) -> etree._Element:
    """The request's SOAP 1.2 envelope, parsed hardened; faults for anything else."""
    try:
        envelope = parse_xml(xml, limit=MAX_ENVELOPE)
    except UnsafeXml as exc:
        raise Fault("Sender", str(exc)) from None
    if envelope.tag == qname(SOAP11, "Envelope"):
        raise Soap11Request()
    if envelope.tag != qname(SOAP12, "Envelope"):
        # SOAP 1.2 part 1, 5.4.7: a root that is not the 1.2 Envelope is a version mismatch.
        raise Fault("VersionMismatch", f"not a SOAP 1.2 envelope: {etree.QName(envelope).text[:200]}")
    if media == SOAP11_TYPE:
        raise Fault("Sender", f"a SOAP 1.2 envelope must come as {SOAP_TYPE}, not {media!r}")
    return envelope


def _discard(parts: dict[str, StoredContent]) -> None:
    for part in parts.values():
        part.path.unlink(missing_ok=True)


def _client_certificate(request: web.Request) -> str | None:
    """The common name of the request's verified TLS client certificate, if any."""
    peer = request.transport.get_extra_info("peercert") if request.transport is not None else None
    if not peer:
        return None
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def _check_headers(incoming: Incoming) -> None:
    """SOAP 1.2 header rules: blocks we must understand but do not, and duplicated addressing headers."""
    header = incoming.envelope.find(qname(SOAP12, "Header"))
    blocks = [(str(b.tag), b) for b in header if isinstance(b.tag, str)] if header is not None else []
    not_understood = tuple(
        tag
        for tag, b in blocks
        if b.get(qname(SOAP12, "mustUnderstand"), "false").strip() in ("true", "1")
        and b.get(qname(SOAP12, "role"), ULTIMATE_RECEIVER) in (ULTIMATE_RECEIVER, NEXT)
        and tag not in UNDERSTOOD
    )
    if not_understood:
        names = ", ".join(etree.QName(n).text for n in not_understood[:5])
        if len(not_understood) > 5:
            names += f" and {len(not_understood) - 5} more"
        raise Fault("MustUnderstand", f"header blocks not understood: {names}", not_understood=not_understood)
    seen: set[str] = set()
    for tag, _ in blocks:
        if tag in SINGLE_HEADERS and tag in seen:
            raise Fault(
                "Sender",
                f"header {etree.QName(tag).localname} appears more than once",
                subcode="wsa:InvalidAddressingHeader",
                subsubcode="wsa:InvalidCardinality",
            )
        seen.add(tag)


def _header_text(incoming: Incoming, local: str) -> str | None:
    found = incoming.header(WSA, local)
    return found.text.strip() if found is not None and found.text and found.text.strip() else None


def _check_addressing(incoming: Incoming, port: str, content_type: str) -> str:
    """The operation of the request, after checking its WS-Addressing headers."""
    if incoming.action is None or incoming.message_id is None:
        missing = "wsa:Action" if incoming.action is None else "wsa:MessageID"
        raise Fault("Sender", f"{missing} is required", subcode="wsa:MessageAddressingHeaderRequired")
    known = soap.OPERATIONS.get(incoming.action)
    if known is None or known[0] != port:
        raise Fault(
            "Sender", f"action {incoming.action!r} is not offered at {port}", subcode="wsa:ActionNotSupported"
        )
    http_action = soap_action(content_type)
    if http_action is None:
        # The WSDL's SOAP 1.2 binding says soapActionRequired="true" for every operation.
        raise Fault("Sender", "the Content-Type lacks the action parameter the WSDL requires")
    if http_action != incoming.action:
        raise Fault(
            "Sender", f"HTTP action {http_action!r} differs from wsa:Action", subcode="wsa:ActionMismatch"
        )
    return known[1]


def _author(incoming: Incoming, state: XtaState) -> str:
    author = incoming.author()
    problem = state.account_problem(author)
    if problem is not None:
        raise _xta_fault("PermissionDeniedException", *problem)
    assert author is not None
    _check_certificate(incoming, state, author)
    return author


def _check_certificate(incoming: Incoming, state: XtaState, account: str) -> None:
    """With certificate_accounts: the TLS client certificate must be the account's own (9014)."""
    if not state.certificate_accounts:
        return
    owner = state.certificate_accounts.get(incoming.certificate or "")
    if owner != account:
        reason = f"the client certificate does not belong to account {account}"
        raise _xta_fault("PermissionDeniedException", "9014", reason)


def _answer(incoming: Incoming, headers: list[etree._Element], body: list[etree._Element]) -> web.Response:
    assert incoming.action is not None
    return _xml_response(soap.envelope(incoming.action, incoming.message_id, headers, body))


# -- operations ------------------------------------------------------------------------------------------


async def _check_account_active(request: web.Request, incoming: Incoming) -> web.StreamResponse:
    _author(incoming, request.app[STATE])
    return _answer(incoming, [], [])


async def _create_message_id(request: web.Request, incoming: Incoming) -> web.StreamResponse:
    state = request.app[STATE]
    _author(incoming, state)
    return _answer(incoming, [], [soap.message_id(state.new_message_id())])


def _selected_ids(selector: etree._Element | None) -> list[str]:
    if selector is None:
        return []
    return [e.text.strip() for e in selector.findall(qname(WSA, "MessageID")) if e.text and e.text.strip()]


async def _get_status_list(request: web.Request, incoming: Incoming) -> web.StreamResponse:
    state = request.app[STATE]
    reader = _author(incoming, state)
    body = incoming.body(OSCI, "MsgBoxStatusListRequest")
    assert body is not None  # the schema check guarantees it
    if body.get("ListForm", "MessageMetaData") != "MessageMetaData":
        raise Fault("Sender", "the simulator lists MessageMetaData only")
    limit = int(body.get("maxListItems") or request.app[OPTIONS].page_size)
    selector = body.find(qname(OSCI, "MsgSelector"))
    box = state.mailbox(reader)
    ids = list(box)
    wanted = _selected_ids(selector)
    if wanted:
        ids = [i for i in ids if i in wanted]
    if selector is not None and selector.get("newEntry") in ("true", "1"):
        ids = [i for i in ids if box[i].fetches == 0]
    request_id = f"urn:uuid:{uuid.uuid4()}"
    page, rest = ids[:limit], ids[limit:]
    if rest:
        state.list_cursors[request_id] = (reader, rest)
    header = soap.msgbox_response(request_id, len(rest), None if ids else "NoMatch")
    return _answer(incoming, [header], [soap.status_list([box[i].metadata for i in page])])


async def _get_next_status_list(request: web.Request, incoming: Incoming) -> web.StreamResponse:
    state = request.app[STATE]
    reader = _author(incoming, state)
    body = incoming.body(OSCI, "MsgBoxGetNextRequest")
    assert body is not None
    request_id = body.get("MsgBoxRequestID", "")
    cursor = state.list_cursors.pop(request_id, None)
    if cursor is None or cursor[0] != reader:
        header = soap.msgbox_response(request_id, None, "RequestIdInvalid")
        return _answer(incoming, [header], [soap.status_list([])])
    box = state.mailbox(reader)
    ids = [i for i in cursor[1] if i in box]
    page, rest = ids[: request.app[OPTIONS].page_size], ids[request.app[OPTIONS].page_size :]
    if rest:
        state.list_cursors[request_id] = (reader, rest)
    header = soap.msgbox_response(request_id, len(rest), None if ids else "NoMatch")
    return _answer(incoming, [header], [soap.status_list([box[i].metadata for i in page])])


async def _endless_chunks() -> AsyncIterator[bytes]:
    """A content that never ends: what a hostile or broken server might send."""
    chunk = b"\0" * CHUNK
    while True:
        yield chunk


async def _get_message(request: web.Request, incoming: Incoming) -> web.StreamResponse:
    state = request.app[STATE]
    reader = _author(incoming, state)
    body = incoming.body(OSCI, "MsgBoxFetchRequest")
    assert body is not None
    box = state.mailbox(reader)
    wanted = _selected_ids(body.find(qname(OSCI, "MsgSelector")))
    if not wanted and box:
        wanted = [next(iter(box))]
    message = box.get(wanted[0]) if wanted else None
    if message is None:
        shown = wanted[0] if wanted else "(none)"
        raise _xta_fault(
            "InvalidMessageIDException", "9070", f"message {shown} is not in the mailbox of {reader}"
        )
    if message.metadata.message_id in state.knobs.fail_messages:
        status = state.knobs.fail_status
        return web.Response(status=status, text=f"simulated failure to deliver the message (HTTP {status})")
    request_id = f"urn:uuid:{uuid.uuid4()}"
    rest = [i for i in box if i != message.metadata.message_id]
    state.fetch_cursors[request_id] = (reader, rest)
    return _message_answer(request, incoming, message, request_id, len(rest))


async def _get_next_message(request: web.Request, incoming: Incoming) -> web.StreamResponse:
    """getNextMessage: the next message of a fetch sequence begun by getMessage (LastMsgReceived closes)."""
    state = request.app[STATE]
    reader = _author(incoming, state)
    body = incoming.body(OSCI, "MsgBoxGetNextRequest")
    assert body is not None
    request_id = body.get("MsgBoxRequestID", "")
    received = [(e.text or "").strip() for e in body.findall(qname(OSCI, "LastMsgReceived"))]
    cursor = state.fetch_cursors.pop(request_id, None)
    if cursor is None or cursor[0] != reader:
        raise _xta_fault("InvalidMessageIDException", "9070", f"no fetch sequence {request_id} of {reader}")
    box = state.mailbox(reader)
    state.close(reader, [i for i in received if i in box], request_id)
    rest = [i for i in cursor[1] if i in box]
    if not rest:
        reason = f"no further message in the mailbox of {reader}"
        raise _xta_fault("InvalidMessageIDException", "9070", reason)
    state.fetch_cursors[request_id] = (reader, rest[1:])
    return _message_answer(request, incoming, box[rest[0]], request_id, len(rest) - 1)


def _message_answer(
    request: web.Request, incoming: Incoming, message: StoredMessage, request_id: str, pending: int
) -> web.Response:
    """The answer of getMessage / getNextMessage: metadata headers, content as MTOM (or inline)."""
    state = request.app[STATE]
    state.fetched(message)
    headers = [soap.metadata(message.metadata), soap.msgbox_response(request_id, pending)]
    contents = [message.message, *message.attachments]
    assert incoming.action is not None
    if request.app[OPTIONS].inline_content:
        inline = [(c, base64.b64encode(c.path.read_bytes()).decode("ascii")) for c in contents]
        container = (
            soap.encrypted_container(inline[0]) if message.encrypted else soap.content_container(inline)
        )
        return _answer(incoming, headers, [container])
    cids = [new_cid("content") for _ in contents]
    if message.encrypted:
        contents, cids = contents[:1], cids[:1]
        container = soap.encrypted_container((contents[0], href_of(cids[0])))
    else:
        container = soap.content_container([(c, href_of(cid)) for c, cid in zip(contents, cids, strict=True)])
    envelope = soap.envelope(incoming.action, incoming.message_id, headers, [container])
    xml = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
    endless = state.take("endless_content_next")
    parts = [
        OutgoingPart(cid, c.content_type, _endless_chunks(), None)
        if endless and n == 0
        else OutgoingPart(cid, c.content_type, None, c.size, path=c.path)
        for n, (c, cid) in enumerate(zip(contents, cids, strict=True))
    ]
    writer = related_writer(xml, incoming.action, parts)
    return web.Response(body=writer, headers={hdrs.CONTENT_TYPE: writer.headers[hdrs.CONTENT_TYPE]})


async def _close(request: web.Request, incoming: Incoming) -> web.StreamResponse:
    state = request.app[STATE]
    if state.take("fail_close_next"):  # e.g. the reader dies before its close arrives
        return web.Response(status=503, text="close not taken (fault knob fail_close_next)")
    reader = _author(incoming, state)
    body = incoming.body(OSCI, "MsgBoxCloseRequest")
    assert body is not None
    ids = [e.text.strip() for e in body.findall(qname(OSCI, "LastMsgReceived")) if e.text and e.text.strip()]
    if not ids:
        raise _xta_fault("InvalidMessageIDException", "9070", "close names no message (LastMsgReceived)")
    box = state.mailbox(reader)
    unknown = [i for i in ids if i not in box]
    if unknown:
        raise _xta_fault(
            "InvalidMessageIDException", "9070", f"message {unknown[0]} is not in the mailbox of {reader}"
        )
    state.close(reader, ids, body.get("MsgBoxRequestID", ""))
    return _answer(incoming, [], [])


async def _send_message(request: web.Request, incoming: Incoming) -> web.StreamResponse:
    state = request.app[STATE]
    header = incoming.header(META, "MessageMetaData")
    if header is None:
        raise _xta_fault(
            "ParameterIsNotValidException", "9020", "sendMessage needs the MessageMetaData header"
        )
    try:
        metadata = soap.read_metadata(header)
    except (soap.MetadataError, ValueError, ValidationError) as exc:
        raise _xta_fault(
            "ParameterIsNotValidException", "9022", f"MessageMetaData not usable: {exc}"
        ) from None
    problem = state.account_problem(metadata.author.identifier)
    if problem is not None:
        raise _xta_fault("PermissionDeniedException", *problem)
    if state.known_message_id(metadata.message_id):
        raise _xta_fault("ParameterIsNotValidException", "9024", f"MessageID {metadata.message_id} is taken")
    container = incoming.body(XTA, "GenericContentContainer")
    inner = container.find(qname(XTA, "ContentContainer")) if container is not None else None
    if inner is None:
        raise _xta_fault(
            "ParameterIsNotValidException", "9022", "the simulator takes unencrypted ContentContainers"
        )
    elements = [inner.find(qname(XTA, "Message")), *inner.findall(qname(XTA, "Attachment"))]
    contents: list[StoredContent] = []
    used: set[str] = set()
    for element in elements:
        assert element is not None
        contents.append(await _incoming_content(element, incoming, state, used))
    for cid, part in incoming.parts.items():
        if cid not in used:
            part.path.unlink(missing_ok=True)  # not referenced: not part of the message
    metadata = metadata.model_copy(update={"size": metadata.size or sum(c.size for c in contents) or None})
    stored = StoredMessage(metadata, contents[0], contents[1:], not_before=soap.read_not_before(header))
    state.record_sent(stored)
    return _answer(incoming, [], [])


async def _incoming_content(
    element: etree._Element, incoming: Incoming, state: XtaState, used: set[str]
) -> StoredContent:
    include = element.find(qname(XOP, "Include"))
    if include is not None:
        try:
            cid = cid_of(include.get("href", ""))
        except MtomError as exc:
            raise _xta_fault("ParameterIsNotValidException", "9022", str(exc)) from None
        stored = incoming.parts.get(cid)
        if stored is None:
            reason = f"xop:Include refers to a missing MIME part {cid!r}"
            raise _xta_fault("ParameterIsNotValidException", "9022", reason)
        used.add(cid)
        path, size, digest = stored.path, stored.size, stored.sha256
    else:
        try:
            data = base64.b64decode("".join((element.text or "").split()), validate=True)
        except binascii.Error:
            raise _xta_fault("ParameterIsNotValidException", "9022", "inline content is not base64") from None

        async def once() -> AsyncIterator[bytes]:
            yield data

        try:
            path, size, digest = await state.store(once(), state.max_message_size)
        except ContentTooLarge as exc:
            raise _xta_fault("ParameterIsNotValidException", "9023", str(exc)) from None
    declared = element.get("size")
    if declared is not None and int(declared) != size:
        raise _xta_fault(
            "ParameterIsNotValidException", "9022", f"content declares {declared} bytes, has {size}"
        )
    return StoredContent(
        path,
        size,
        digest,
        element.get("contentType", "application/octet-stream"),
        filename=element.get("filename"),
        description=element.get("contentDescription"),
        encoding=element.get("encoding"),
        id=element.get("id"),
        lang=element.get("lang"),
    )


async def _lookup_service(request: web.Request, incoming: Incoming) -> web.StreamResponse:
    """lookupService: whether each (reader, service) is offered."""
    state = request.app[STATE]
    _author(incoming, state)
    body = incoming.body(XTA, "LookupServiceRequest")
    assert body is not None
    results = []
    for lookup in body.iter(qname(XTA, "LookupService")):
        reader = soap.read_party(lookup.find(qname(META, "Reader")))
        service = (lookup.findtext(qname(XTA, "ServiceType")) or "").strip()
        if reader is None or not service:
            reason = "LookupService needs a Reader and a ServiceType"
            raise _xta_fault("ParameterIsNotValidException", "9020", reason)
        results.append((reader, service, state.service_offered(reader.identifier, service)))
    return _answer(incoming, [], [soap.lookup_results(results)])


def _body_message_id(incoming: Incoming) -> str:
    # An empty id is an unknown one: each operation answers it with the fault its WSDL declares for
    # an unknown id (getTransportReport declares no ParameterIsNotValidException).
    found = incoming.body(WSA, "MessageID")
    return found.text.strip() if found is not None and found.text else ""


async def _get_transport_report(request: web.Request, incoming: Incoming) -> web.StreamResponse:
    """getTransportReport: the status of a message the caller sent (0 open, 1 received, 3 cancelled)."""
    state = request.app[STATE]
    caller = _author(incoming, state)
    message_id = _body_message_id(incoming)
    sent = state.sent_message(message_id)
    if sent is None or caller not in (sent.metadata.author.identifier, sent.metadata.reader.identifier):
        reason = f"message {message_id!r} is not known to {caller}"
        raise _xta_fault("InvalidMessageIDException", "9070", reason)
    status = 3 if sent.cancelled else 1 if state.was_closed(message_id) else 0
    server = f"urn:aktenhub:xta-simulator:{request.host}"
    report = soap.transport_report(sent.metadata, status, server, _now())
    return _answer(incoming, [], [report])


async def _cancel_message(request: web.Request, incoming: Incoming) -> web.StreamResponse:
    """cancelMessage: withdraw a sent message whose NotBefore has not come yet."""
    state = request.app[STATE]
    caller = _author(incoming, state)
    message_id = _body_message_id(incoming)
    sent = state.sent_message(message_id)
    if sent is None or sent.metadata.author.identifier != caller:
        raise _xta_fault("ParameterIsNotValidException", "9022", f"{caller} sent no message {message_id!r}")
    if sent.not_before is None:
        raise _xta_fault("CancelDeniedException", "9101", "the message was sent without NotBefore")
    if sent.not_before <= _now() or state.was_closed(message_id):
        raise _xta_fault("CancelDeniedException", "9100", "the NotBefore time of the message has passed")
    sent.cancelled = True
    state.mailbox(sent.metadata.reader.identifier).pop(message_id, None)
    return _answer(incoming, [], [])


async def _send_message_sync(request: web.Request, incoming: Incoming) -> web.StreamResponse:
    raise _xta_fault("SyncAsyncException", "9080", "the simulator offers asynchronous delivery only")


_HANDLERS = {
    "checkAccountActive": _check_account_active,
    "createMessageId": _create_message_id,
    "getStatusList": _get_status_list,
    "getNextStatusList": _get_next_status_list,
    "getMessage": _get_message,
    "getNextMessage": _get_next_message,
    "lookupService": _lookup_service,
    "getTransportReport": _get_transport_report,
    "cancelMessage": _cancel_message,
    "close": _close,
    "sendMessage": _send_message,
    "sendMessageSync": _send_message_sync,
}


# -- operator endpoints ----------------------------------------------------------------------------------


class EnqueueMetadata(BaseModel):
    """The ``metadata`` part of ``POST /_sim/mailboxes/{reader}``."""

    model_config = ConfigDict(extra="forbid")

    author: PartyId
    reader_type: str = "xoev"
    reader_name: str | None = None
    service: str
    business_scenario: str = "XTA"
    business_scenario_list_uri: str | None = None
    business_scenario_list_version: str | None = None
    message_type: str
    message_type_list_uri: str = PAYLOAD_ELEMENT_LIST
    message_type_list_version: str = "1.0"
    payload_schema: str
    subject: str | None = None
    message_id: str | None = None
    in_reply_to: list[str] = Field(default_factory=list)
    process_requester: str | None = None
    msg_size: int | None = Field(None, ge=0, description="the MsgSize to declare (default: the real size)")
    encrypted: bool = Field(False, description="end-to-end encrypted: fetched as xenc:EncryptedData")
    content_type: str | None = Field(None, description="of the message (default: its part's type)")
    filename: str | None = Field(None, description="of the message (default: its part's file name)")
    test: bool = False

    @field_validator("author", mode="before")
    @classmethod
    def _identifier(cls, value: Any) -> Any:
        return {"identifier": value} if isinstance(value, str) else value


async def _release_delays(app: web.Application) -> None:
    app[STATE].release()  # a request waiting out the latency knob ends with the server


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _enqueue(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    reader = request.match_info["reader"]
    if not request.content_type.startswith("multipart/"):
        return _json_error(415, "expected multipart/form-data: metadata (JSON), message, attachment...")
    meta: EnqueueMetadata | None = None
    message: StoredContent | None = None
    attachments: list[StoredContent] = []
    reader_parts = await request.multipart()
    try:
        while (part := await reader_parts.next()) is not None:
            if not isinstance(part, BodyPartReader):
                return _json_error(400, "nested multipart")
            if part.name == "metadata":
                try:
                    meta = EnqueueMetadata.model_validate(json.loads(await read_part(part, MAX_JSON)))
                except (ValueError, ValidationError, MtomError) as exc:
                    return _json_error(400, f"metadata: {exc}")
            elif part.name in ("message", "attachment"):
                path, size, digest = await state.store(part_chunks(part))
                media_type = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
                stored = StoredContent(path, size, digest, media_type, filename=part.filename)
                if part.name == "message":
                    message = stored
                else:
                    attachments.append(stored)
            else:
                return _json_error(400, f"unknown part {part.name!r}")
    except MtomError as exc:
        return _json_error(400, str(exc))
    if meta is None or message is None:
        return _json_error(400, "parts `metadata` and `message` are required")
    if meta.content_type:
        message.content_type = meta.content_type
    if meta.filename:
        message.filename = meta.filename
    message_id = meta.message_id or state.new_message_id()
    if state.known_message_id(message_id):
        return _json_error(409, f"message id {message_id} exists")
    total = message.size + sum(a.size for a in attachments)
    metadata = MessageMetaData(
        message_id=message_id,
        author=meta.author,
        reader=PartyId(identifier=reader, type=meta.reader_type, name=meta.reader_name),
        service=meta.service,
        business_scenario=meta.business_scenario,
        business_scenario_list_uri=meta.business_scenario_list_uri,
        business_scenario_list_version=meta.business_scenario_list_version,
        message_type=meta.message_type,
        message_type_list_uri=meta.message_type_list_uri,
        message_type_list_version=meta.message_type_list_version,
        payload_schema=meta.payload_schema,
        subject=meta.subject,
        in_reply_to=tuple(meta.in_reply_to),
        process_requester=meta.process_requester,
        size=meta.msg_size if meta.msg_size is not None else total or None,
        test=meta.test,
    )
    state.enqueue(StoredMessage(metadata, message, attachments, encrypted=meta.encrypted))
    return web.json_response(
        {"message_id": message_id, "reader": reader, "size": total, "sha256": message.sha256}, status=201
    )


async def _mailbox(request: web.Request) -> web.StreamResponse:
    box = request.app[STATE].mailbox(request.match_info["reader"])
    return web.json_response([m.summary() for m in box.values()])


async def _sent(request: web.Request) -> web.StreamResponse:
    return web.json_response([m.summary() for m in request.app[STATE].sent])


async def _sent_part(request: web.Request) -> web.StreamResponse:
    message_id = request.match_info["message_id"]
    found = next((m for m in request.app[STATE].sent if m.metadata.message_id == message_id), None)
    if found is None:
        return _json_error(404, f"no sent message {message_id}")
    contents = [found.message, *found.attachments]
    index = request.match_info["index"]
    if not index.isdigit() or int(index) >= len(contents):
        return _json_error(404, f"message {message_id} has {len(contents)} parts")
    content = contents[int(index)]
    return web.FileResponse(content.path, headers={hdrs.CONTENT_TYPE: content.content_type})


async def _closed(request: web.Request) -> web.StreamResponse:
    return web.json_response(
        [
            {
                "reader": c.reader,
                "message_id": c.message_id,
                "request_id": c.request_id,
                "at": c.at.isoformat(),
            }
            for c in request.app[STATE].closed
        ]
    )


async def _state(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    return web.json_response(
        {
            "requests": dict(state.requests),
            "mailboxes": {reader: len(box) for reader, box in state.mailboxes.items()},
            "sent": len(state.sent),
            "closed": len(state.closed),
        }
    )
