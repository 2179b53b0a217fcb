"""Hostile XTA inputs: against the simulator's SOAP ports, and a hostile server against the hub's poll.

(a) The simulator answers every malformed, oversized or lying request with a SOAP 1.2 fault or a 4xx,
never a 500 or a hang, keeps no file of it, and goes on serving.
(b) The hub's mailbox poll facing a hostile XTA server: each bad answer ends as a held message or a
retried poll, the poll goes on with the valid messages, no partial blob stays, nothing crashes.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import hdrs, web
from aiohttp.test_utils import TestServer
from hub_xta import XtaSource
from hub_xta.models import MessageMetaData, PartyId
from hub_xta.mtom import content_type_params, soap_action
from hub_xta.simulator import enqueue, soap
from hub_xta.simulator.state import StoredContent
from hub_xta.xml import SOAP12, WSA, qname
from lxml import etree
from test_xta_mailbox import Intakes, make_source, queue
from xta_helpers import AUTHORITY, PORTAL, XBAU_NS, XBAU_SERVICE, StartXta, Xta, antrag_metadata

from hub import HeldState, Intake, IntakeOutcome, Permanent, Retryable
from hub.blobs import BlobStore
from hub.held import HeldFilter
from hub.journal import SqliteJournal
from hub.testing.harness import blob_files, stored_blobs

SOAP_TYPE = "application/soap+xml"
CHECK = "http://www.xta.de/XTA/CheckAccountActive"
SEND = "http://www.xta.de/XTA/SendMessage"
LIST = "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/MsgBoxStatusListRequest"
CONTENT = b"<baugenehmigung.formellePruefung.0201/>"
VALID_CONTENT = b"<baugenehmigung.antrag.0200><gueltig/></baugenehmigung.antrag.0200>"


def soap_type(action: str) -> str:
    """The Content-Type of a plain SOAP 1.2 request."""
    return f'{SOAP_TYPE}; charset=utf-8; action="{action}"'


def author_header() -> etree._Element:
    element = etree.Element(qname(soap.META, "Author"))
    etree.SubElement(element, qname(soap.META, "Identifier"), type="xoev").text = AUTHORITY
    return element


def check_envelope(*headers: etree._Element, action: str = CHECK) -> bytes:
    """A valid checkAccountActive request (what the hostile variants start from)."""
    root = soap.envelope(action, None, [author_header(), *headers], [])
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def send_envelope(hrefs: list[str], *, size: int | None = None, message_id: str | None = None) -> bytes:
    """A sendMessage request whose Message and Attachments refer to MIME parts by `hrefs`."""
    meta = MessageMetaData(
        message_id=message_id or f"urn:de:xta:messageid:hostile:{uuid.uuid4()}",
        author=PartyId(identifier=AUTHORITY),
        reader=PartyId(identifier=PORTAL),
        service=XBAU_SERVICE,
        business_scenario="XBAU_DATA",
        message_type="baugenehmigung.formellePruefung.0201",
        payload_schema=XBAU_NS,
    )
    stored = StoredContent(Path("unused"), size or 0, "", "application/xml")
    body = soap.content_container([(stored, href) for href in hrefs])
    root = soap.envelope(SEND, None, [soap.metadata(meta)], [body])
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


@dataclass
class Part:
    """One MIME part of a hand-built multipart/related body (every header can lie)."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def related(parts: list[Part], boundary: str = "hostile-boundary") -> bytes:
    """A multipart/related body of `parts`, closed by the final boundary."""
    out = bytearray()
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in part.headers.items():
            out += f"{name}: {value}\r\n".encode()
        out += b"\r\n" + part.body + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def root_part(envelope: bytes, cid: str = "root@hostile") -> Part:
    return Part(
        envelope,
        {
            "Content-Type": f'application/xop+xml; charset=UTF-8; type="{SOAP_TYPE}"',
            "Content-Transfer-Encoding": "binary",
            "Content-ID": f"<{cid}>",
        },
    )


def content_part(data: bytes, cid: str = "c1@hostile", encoding: str = "binary") -> Part:
    return Part(
        data,
        {"Content-Type": "application/xml", "Content-Transfer-Encoding": encoding, "Content-ID": f"<{cid}>"},
    )


def mtom_type(
    boundary: str = "hostile-boundary", start: str | None = "root@hostile", action: str = SEND
) -> str:
    start_param = f'start="<{start}>"; ' if start else ""
    return (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; {start_param}'
        f'start-info="{SOAP_TYPE}"; action="{action}"'
    )


def mtom_send(*parts: Part, hrefs: tuple[str, ...] = ("cid:c1@hostile",), size: int | None = None) -> bytes:
    return related([root_part(send_envelope(list(hrefs), size=size)), *parts])


@dataclass
class Hostile:
    """A request to the simulator and what it must get: a SOAP fault code and a phrase of its reason.

    The status follows the SOAP 1.2 HTTP binding (part 2, 7.5.2.2): env:Sender 400, the rest 500.
    `code` None: refused below SOAP (a 4xx of the HTTP server).
    """

    port: str
    content_type: str | None
    body: bytes
    reason: str = ""
    code: str | None = "Sender"
    extra_headers: dict[str, str] = field(default_factory=dict)


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'.encode()
        for n in range(1, 10)
    )
    + b"]>"
    + check_envelope().split(b"?>", 1)[1].replace(AUTHORITY.encode(), b"&lol9;")
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + check_envelope().split(b"?>", 1)[1].replace(AUTHORITY.encode(), b"&xxe;")
)
EXTERNAL_DTD = (
    b'<?xml version="1.0"?><!DOCTYPE env SYSTEM "http://127.0.0.1:9/evil.dtd">'
    + check_envelope().split(b"?>", 1)[1]
)
SOAP11 = (
    b'<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
    b"<soap:Header/><soap:Body/></soap:Envelope>"
)
DEEP = b"<a>" * 100_000 + b"</a>" * 100_000
MUST_UNDERSTAND = etree.Element("{urn:evil}Trap", nsmap={"evil": "urn:evil"})
MUST_UNDERSTAND.set(qname(SOAP12, "mustUnderstand"), "true")
DUPLICATE_ID = etree.Element(qname(WSA, "MessageID"))
DUPLICATE_ID.text = "urn:uuid:second"
HUGE_HEADER = etree.Element("{urn:big}Blob")
HUGE_HEADER.text = "x" * (17 * 1024**2)  # larger than the envelope limit (16 MiB)
MANY_MUST_UNDERSTAND = check_envelope().replace(
    b"<env:Header>",
    b'<env:Header xmlns:m="urn:many">' + b'<m:H env:mustUnderstand="true"/>' * 20_000,
)
NO_BODY = check_envelope().replace(b"<env:Body/>", b"")
TWO_BODIES = check_envelope().replace(b"<env:Body/>", b"<env:Body/><env:Body/>")
WRONG_NS = check_envelope().replace(SOAP12.encode(), b"urn:not-soap")
SEND_ONE = mtom_send(content_part(CONTENT))

CASES: dict[str, Hostile] = {
    "empty body": Hostile("ManagementPort", soap_type(CHECK), b"", reason="not well-formed"),
    "not xml": Hostile("ManagementPort", soap_type(CHECK), b"hello", reason="not well-formed"),
    "truncated xml": Hostile(
        "ManagementPort", soap_type(CHECK), check_envelope()[:-20], reason="not well-formed"
    ),
    "binary garbage": Hostile(
        "ManagementPort", soap_type(CHECK), bytes(range(256)) * 4, reason="not well-formed"
    ),
    "xml but no envelope": Hostile(
        "ManagementPort", soap_type(CHECK), b"<a/>", reason="SOAP 1.2", code="VersionMismatch"
    ),
    "envelope in another namespace": Hostile(
        "ManagementPort", soap_type(CHECK), WRONG_NS, reason="SOAP 1.2", code="VersionMismatch"
    ),
    "soap 1.2 envelope as text/xml": Hostile(
        "ManagementPort", "text/xml; charset=utf-8", check_envelope(), reason="must come as"
    ),
    "no content type": Hostile("ManagementPort", None, check_envelope(), reason="expected"),
    "garbage content type": Hostile("ManagementPort", ";;;===", check_envelope(), reason="expected"),
    "xxe external entity": Hostile("ManagementPort", soap_type(CHECK), XXE, reason="document type"),
    "billion laughs": Hostile("ManagementPort", soap_type(CHECK), BILLION_LAUGHS, reason="xml"),
    "external dtd": Hostile("ManagementPort", soap_type(CHECK), EXTERNAL_DTD, reason="document type"),
    "nesting 100000 deep": Hostile("ManagementPort", soap_type(CHECK), DEEP, reason="not well-formed"),
    "envelope over 16 MiB": Hostile(
        "ManagementPort", soap_type(CHECK), check_envelope(HUGE_HEADER), reason="exceeds"
    ),
    "20000 mustUnderstand header blocks": Hostile(
        "ManagementPort", soap_type(CHECK), MANY_MUST_UNDERSTAND, "19995 more", "MustUnderstand"
    ),
    "http header line of 100 KiB": Hostile(
        "ManagementPort",
        soap_type(CHECK),
        check_envelope(),
        code=None,
        extra_headers={"X-Big": "x" * 100_000},
    ),
    "no body element": Hostile("ManagementPort", soap_type(CHECK), NO_BODY, reason="schema"),
    "two body elements": Hostile("ManagementPort", soap_type(CHECK), TWO_BODIES, reason="schema"),
    "mustUnderstand header not understood": Hostile(
        "ManagementPort",
        soap_type(CHECK),
        check_envelope(MUST_UNDERSTAND),
        "not understood",
        "MustUnderstand",
    ),
    "wsa:MessageID twice": Hostile(
        "ManagementPort", soap_type(CHECK), check_envelope(DUPLICATE_ID), reason="more than once"
    ),
    "no action anywhere": Hostile(
        "ManagementPort", f"{SOAP_TYPE}; charset=utf-8", check_envelope(), reason="action"
    ),
    "action of another port": Hostile("MsgBoxPort", soap_type(CHECK), check_envelope(), reason="not offered"),
    "unknown action": Hostile(
        "ManagementPort", soap_type("urn:evil"), check_envelope(action="urn:evil"), reason="not offered"
    ),
    "http action differs": Hostile("ManagementPort", soap_type(LIST), check_envelope(), reason="differs"),
    "latin-1 bytes declared utf-8": Hostile(
        "ManagementPort",
        soap_type(CHECK),
        check_envelope().replace(b"<env:Body/>", b"<env:Body>\xe4\xf6</env:Body>"),
        reason="not well-formed",
    ),
    # MTOM
    "mtom without boundary": Hostile(
        "SendXtaPort", 'multipart/related; type="application/xop+xml"', SEND_ONE, reason="boundary"
    ),
    "mtom boundary never appears": Hostile(
        "SendXtaPort", mtom_type("other-boundary"), SEND_ONE, reason="malformed"
    ),
    "mtom body cut off mid part": Hostile(
        "SendXtaPort", mtom_type(), SEND_ONE[: len(SEND_ONE) - 60], reason="malformed"
    ),
    "mtom start names a missing part": Hostile(
        "SendXtaPort", mtom_type(start="nowhere@hostile"), SEND_ONE, reason="root"
    ),
    "mtom without any root part": Hostile(
        "SendXtaPort", mtom_type(), related([content_part(CONTENT)]), reason="root"
    ),
    "mtom root is not soap": Hostile(
        "SendXtaPort",
        mtom_type(),
        related(
            [
                Part(
                    send_envelope(["cid:c1@hostile"]),
                    {"Content-Type": "text/plain", "Content-ID": "<root@hostile>"},
                ),
                content_part(CONTENT),
            ]
        ),
        reason="root part",
    ),
    "mtom cid refers to a missing part": Hostile(
        "SendXtaPort",
        mtom_type(),
        mtom_send(content_part(CONTENT, "other@hostile")),
        reason="missing MIME part",
    ),
    "mtom href is no cid url": Hostile(
        "SendXtaPort",
        mtom_type(),
        related(
            [root_part(send_envelope(["cid:c1@hostile"]).replace(b"cid:c1@hostile", b"http://127.0.0.1:9/x"))]
        ),
        reason="cid",
    ),
    "mtom href with path characters": Hostile(
        "SendXtaPort",
        mtom_type(),
        mtom_send(content_part(CONTENT), hrefs=("cid:..%2F..%2Fetc%2Fpasswd",)),
        reason="missing MIME part",
    ),
    "mtom two parts with one content id": Hostile(
        "SendXtaPort",
        mtom_type(),
        mtom_send(content_part(CONTENT), content_part(CONTENT)),
        reason="two MIME parts",
    ),
    "mtom part without content id": Hostile(
        "SendXtaPort",
        mtom_type(),
        mtom_send(Part(CONTENT, {"Content-Type": "application/xml"})),
        reason="Content-ID",
    ),
    "mtom says base64, is binary": Hostile(
        "SendXtaPort",
        mtom_type(),
        mtom_send(content_part(b"\x00\xff\xfe binary", encoding="base64")),
        reason="base64",
    ),
    "mtom base64 ends mid quartet": Hostile(
        "SendXtaPort", mtom_type(), mtom_send(content_part(b"QUJDRA=", encoding="base64")), reason="base64"
    ),
    "mtom quoted-printable": Hostile(
        "SendXtaPort",
        mtom_type(),
        mtom_send(content_part(CONTENT, encoding="quoted-printable")),
        reason="Content-Transfer-Encoding",
    ),
    "mtom nested multipart": Hostile(
        "SendXtaPort",
        mtom_type(),
        mtom_send(
            Part(
                related([content_part(CONTENT)], "inner"),
                {"Content-Type": 'multipart/mixed; boundary="inner"', "Content-ID": "<c1@hostile>"},
            )
        ),
        reason="nested",
    ),
    "mtom 1001 parts": Hostile(
        "SendXtaPort",
        mtom_type(),
        mtom_send(*(content_part(b"x", f"p{n}@hostile") for n in range(1001))),
        reason="parts",
    ),
    "mtom declared size lies": Hostile(
        "SendXtaPort", mtom_type(), mtom_send(content_part(CONTENT), size=3), reason="declares"
    ),
    "mtom base64 content is a different size": Hostile(
        "SendXtaPort",
        mtom_type(),
        mtom_send(content_part(base64.b64encode(CONTENT * 2), encoding="base64"), size=len(CONTENT)),
        reason="declares",
    ),
    "mtom root over 16 MiB": Hostile(
        "SendXtaPort",
        mtom_type(),
        related([root_part(b"<a>" + b"x" * (17 * 1024**2) + b"</a>")]),
        reason="exceeds",
    ),
}


def assert_fault(data: bytes, code: str, reason: str) -> None:
    """`data` is a SOAP 1.2 fault of `code` whose reason says `reason`."""
    envelope = etree.fromstring(data)
    fault = envelope.find(f"{qname(SOAP12, 'Body')}/{qname(SOAP12, 'Fault')}")
    assert fault is not None, data[:500]
    assert fault.findtext(f"{qname(SOAP12, 'Code')}/{qname(SOAP12, 'Value')}") == f"env:{code}"
    text = fault.findtext(f"{qname(SOAP12, 'Reason')}/{qname(SOAP12, 'Text')}") or ""
    assert reason.lower() in text.lower(), text
    if code == "VersionMismatch":  # which envelope we speak (part 1, 5.4.7)
        assert envelope.find(f"{qname(SOAP12, 'Header')}/{qname(SOAP12, 'Upgrade')}") is not None


def files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


@pytest.mark.parametrize("name", list(CASES))
async def test_the_simulator_refuses_hostile_requests_with_a_fault_and_goes_on(
    start_xta: StartXta, http: aiohttp.ClientSession, tmp_path: Path, name: str
) -> None:
    case = CASES[name]
    xta = await start_xta(data_dir=tmp_path / "sim")
    headers = dict(case.extra_headers)
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    else:
        headers["Content-Type"] = ""
    async with (
        asyncio.timeout(20),
        http.post(f"{xta.url}/{case.port}", data=case.body, headers=headers) as answer,
    ):
        data = await answer.read()
        if case.code is None:
            assert 400 <= answer.status < 500, data[:300]
        else:
            assert len(data) < 64 * 1024  # no amplification
            assert answer.status == (400 if case.code == "Sender" else 500), data[:500]
            assert answer.content_type == SOAP_TYPE
            assert_fault(data, case.code, case.reason)
    assert files(tmp_path / "sim") == []  # a refused request keeps no file
    assert xta.state.sent == []
    await still_serving(http, xta)


async def still_serving(http: aiohttp.ClientSession, xta: Xta) -> None:
    """A valid request right after: the simulator goes on."""
    async with http.post(
        f"{xta.url}/ManagementPort", data=check_envelope(), headers={"Content-Type": soap_type(CHECK)}
    ) as answer:
        assert answer.status == 200, await answer.text()


async def test_the_valid_request_the_hostile_ones_are_made_from_is_taken(
    start_xta: StartXta, http: aiohttp.ClientSession
) -> None:
    xta = await start_xta()
    async with http.post(
        f"{xta.url}/SendXtaPort", data=SEND_ONE, headers={"Content-Type": mtom_type()}
    ) as answer:
        assert answer.status == 200, await answer.text()
    [sent] = xta.state.sent
    assert sent.message.path.read_bytes() == CONTENT
    await still_serving(http, xta)


async def test_a_slow_loris_request_does_not_stop_the_simulator_serving_others(
    start_xta: StartXta, http: aiohttp.ClientSession
) -> None:
    xta = await start_xta()
    host, port = xta.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /ManagementPort HTTP/1.1\r\nHost: x\r\nContent-Type: application/soap+xml\r\n"
            b"Content-Length: 100000\r\n\r\n<env:Envelope"
        )
        await writer.drain()
        async with asyncio.timeout(10):
            await still_serving(http, xta)
    finally:
        writer.close()


async def test_a_soap_1_1_request_gets_a_soap_1_1_version_mismatch_naming_soap_1_2(
    start_xta: StartXta, http: aiohttp.ClientSession
) -> None:
    xta = await start_xta()
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{CHECK}"'}
    async with http.post(f"{xta.url}/ManagementPort", data=SOAP11, headers=headers) as answer:
        assert (answer.status, answer.content_type) == (500, "text/xml")  # SOAP 1.1 over HTTP
        envelope = etree.fromstring(await answer.read())
    soap11 = "http://schemas.xmlsoap.org/soap/envelope/"
    assert envelope.findtext(f"{{{soap11}}}Body/{{{soap11}}}Fault/faultcode") == "env:VersionMismatch"
    upgrade = envelope.find(
        f"{{{soap11}}}Header/{qname(SOAP12, 'Upgrade')}/{qname(SOAP12, 'SupportedEnvelope')}"
    )
    assert upgrade is not None and upgrade.get("qname") == "ns1:Envelope"
    assert xta.state.requests == {}
    await still_serving(http, xta)


# -- (b) the hub's mailbox poll facing a hostile XTA server ------------------------------------------------

Tamper = Callable[[web.Request, int, str, bytes], Awaitable[web.StreamResponse]]
FETCH, STATUS = "MsgBoxFetchRequest", "MsgBoxStatusListRequest"


class HostileServer:
    """An XTA server of another make: it forwards to the simulator and tampers with chosen answers.

    `tamper[operation]` (the last segment of the action) gets the simulator's answer (status, content
    type, body) and answers in its place, if `only` (bytes the request must hold) matches.
    """

    def __init__(self, http: aiohttp.ClientSession, upstream: Xta) -> None:
        self.http = http
        self.upstream = upstream
        self.tamper: dict[str, Tamper] = {}
        self.only: bytes = b""
        self.tampered = 0
        self.server: TestServer | None = None

    async def start(self) -> Xta:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/{port}", self._forward)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return Xta(f"http://127.0.0.1:{self.server.port}", self.upstream.state)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        content_type = request.headers[hdrs.CONTENT_TYPE]
        headers = {hdrs.CONTENT_TYPE: content_type}
        async with self.http.post(self.upstream.url + request.path, data=body, headers=headers) as answer:
            data, media, status = await answer.read(), answer.headers[hdrs.CONTENT_TYPE], answer.status
        operation = (soap_action(content_type) or "").rsplit("/", 1)[-1]
        tamper = self.tamper.get(operation)
        if tamper is not None and self.only in body:
            self.tampered += 1
            return await tamper(request, status, media, data)
        return web.Response(body=data, status=status, headers={hdrs.CONTENT_TYPE: media})


@pytest_asyncio.fixture
async def hostile(start_xta: StartXta, http: aiohttp.ClientSession) -> AsyncIterator[HostileServer]:
    """A hostile server in front of a simulator."""
    server = HostileServer(http, await start_xta())
    yield server
    if server.server is not None:
        await server.server.close()


def answer(body: bytes, media: str, status: int = 200) -> Tamper:
    """A tamper that answers `body` whatever the simulator said."""

    async def tamper(request: web.Request, _status: int, _media: str, _data: bytes) -> web.StreamResponse:
        return web.Response(body=body, status=status, headers={hdrs.CONTENT_TYPE: media})

    return tamper


def edit(change: Callable[[bytes], bytes]) -> Tamper:
    """A tamper that changes the simulator's answer bytes."""

    async def tamper(request: web.Request, status: int, media: str, data: bytes) -> web.StreamResponse:
        return web.Response(body=change(data), status=status, headers={hdrs.CONTENT_TYPE: media})

    return tamper


def edit_root(change: Callable[[bytes], bytes]) -> Tamper:
    """A tamper that changes the envelope of an MTOM answer (and its part's Content-Length to match)."""

    async def tamper(request: web.Request, status: int, media: str, data: bytes) -> web.StreamResponse:
        boundary = b"--" + content_type_params(media)[1]["boundary"].encode()
        start = data.index(boundary) + len(boundary)
        body_start = data.index(b"\r\n\r\n", start) + 4
        body_end = data.index(b"\r\n" + boundary, body_start)
        envelope = change(data[body_start:body_end])
        headers = re.sub(
            rb"(?i)content-length: *\d+", b"Content-Length: %d" % len(envelope), data[start:body_start]
        )
        data = data[:start] + headers + envelope + data[body_end:]
        return web.Response(body=data, status=status, headers={hdrs.CONTENT_TYPE: media})

    return tamper


def prolog(replacement: bytes) -> Callable[[bytes], bytes]:
    """Replace an envelope's XML declaration (with a DOCTYPE, ...)."""
    return lambda envelope: envelope.replace(b"<?xml version='1.0' encoding='utf-8'?>", replacement, 1)


class KeepingIntakes(Intakes):
    """Intakes that keep the blobs of what they store, as the core's pipeline does (`BlobHolding.keep`)."""

    def __init__(self, blobs: BlobStore) -> None:
        super().__init__()
        self.blobs = blobs

    async def __call__(self, intake: Intake) -> IntakeOutcome:
        outcome = await super().__call__(intake)
        app = intake.application
        holding = self.blobs.current_holding()
        if holding is not None and not outcome.duplicate:
            holding.keep([a.blob for a in app.attachments] + ([app.original.blob] if app.original else []))
        return outcome


async def poll(source: XtaSource, intakes: KeepingIntakes, blobs: BlobStore) -> int:
    """One poll as the runtime runs it: inside a blob holding, so what no application keeps goes."""
    with blobs.holding():
        return await source.poll(intakes)


@dataclass
class Poisoned:
    """A hostile answer to the fetch of one message, and the held outcome it must end as."""

    tamper: Callable[[], Tamper]
    state: str = HeldState.RETRYING
    code: str = "fetch_failed"
    reason: str = ""
    settings: dict[str, object] = field(default_factory=dict)


DOCTYPE_XXE = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
LAUGHS = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'


def endless_part(*, keep_length: bool) -> Tamper:
    """The simulator's headers and root part, then a content part that never ends.

    `keep_length`: the part still says its real Content-Length, and goes on past it.
    """

    async def tamper(request: web.Request, status: int, media: str, data: bytes) -> web.StreamResponse:
        head = data[: data.index(b"\r\n\r\n", data.index(b"Content-ID: <content-")) + 4]
        part_start = head.rindex(b"\r\n--")
        part_head = head[part_start:]
        if not keep_length:
            part_head = re.sub(rb"(?i)content-length: *\d+\r\n", b"", part_head)
        response = web.StreamResponse(status=status, headers={hdrs.CONTENT_TYPE: media})
        await response.prepare(request)
        await response.write(head[:part_start] + part_head)
        chunk = b"\0" * 65536
        while True:  # the client stops reading at its limit and drops the connection
            await response.write(chunk)

    return tamper


async def _reset_mid_part(request: web.Request, status: int, media: str, data: bytes) -> web.StreamResponse:
    """The answer up to the middle of the content part, then the connection is dropped."""
    cut = data.index(b"Content-ID: <content-") + 200
    response = web.StreamResponse(status=status, headers={hdrs.CONTENT_TYPE: media})
    response.content_length = len(data)
    await response.prepare(request)
    await response.write(data[:cut])
    assert request.transport is not None
    request.transport.abort()
    return response


async def _stall(request: web.Request, status: int, media: str, data: bytes) -> web.StreamResponse:
    """Slow loris: the headers and a few bytes, then silence until the client gives up."""
    response = web.StreamResponse(status=status, headers={hdrs.CONTENT_TYPE: media})
    await response.prepare(request)
    await response.write(data[:100])
    await asyncio.Event().wait()  # never set: the client's read timeout ends this
    return response


def _stalling() -> Tamper:
    return _stall


def _swap_id(data: bytes) -> bytes:
    start = data.index(b"<wsa:MessageID>", data.index(b"MsgIdentification")) + len(b"<wsa:MessageID>")
    end = data.index(b"</wsa:MessageID>", start)
    return data[:start] + b"urn:de:xta:messageid:another-one" + data[end:]


def _missing_part(data: bytes) -> bytes:
    return data.replace(b'href="cid:content-', b'href="cid:nowhere-', 1)


def _duplicate_part(data: bytes) -> bytes:
    body_start = data.index(b"--", data.index(b"Content-ID: <content-") - 200)
    end = data.rindex(b"--", 0, len(data) - 4)
    return data[:end] + data[body_start:end] + data[end:]


def _lying_transfer_encoding(data: bytes) -> bytes:
    """The content part says base64, and is the binary content still."""
    at = data.index(b"Content-ID: <content-")
    start, end = data.rindex(b"\r\n--", 0, at), data.index(b"\r\n\r\n", at)
    head = re.sub(
        rb"(?i)content-transfer-encoding: *binary", b"Content-Transfer-Encoding: base64", data[start:end]
    )
    assert b"base64" in head
    return data[:start] + head + data[end:]


def _size_lie(data: bytes) -> bytes:
    # The Message declares 3 bytes more than its part holds: truncated or tampered on the way.
    return re.sub(
        rb'(<xta:Message [^>]*size=")(\d+)"',
        lambda m: m.group(1) + str(int(m.group(2)) + 3).encode() + b'"',
        data,
        count=1,
    )


POISONED: dict[str, Poisoned] = {
    "xxe in the envelope": Poisoned(lambda: edit_root(prolog(DOCTYPE_XXE)), reason="document type"),
    "entity expansion in the envelope": Poisoned(lambda: edit_root(prolog(LAUGHS)), reason="document type"),
    "another message's id in the answer": Poisoned(lambda: edit_root(_swap_id), reason="another-one"),
    "cid of a part that is not there": Poisoned(lambda: edit_root(_missing_part), reason="missing MIME part"),
    "the same part twice": Poisoned(lambda: edit(_duplicate_part), reason="two MIME parts"),
    "binary content declared base64": Poisoned(lambda: edit(_lying_transfer_encoding), reason="base64"),
    "size attribute differs from the content": Poisoned(lambda: edit_root(_size_lie), reason="declares"),
    "not xml at all": Poisoned(lambda: answer(b"\x00\x01garbage", "application/soap+xml"), reason="XML"),
    "html error page with 200": Poisoned(
        lambda: answer(b"<html>oops</html>", "text/html"), reason="text/html"
    ),
    "soap 1.1 envelope": Poisoned(lambda: answer(SOAP11, "application/soap+xml"), reason="SOAP 1.2"),
    "endless content part": Poisoned(
        lambda: endless_part(keep_length=False), HeldState.QUARANTINED, "oversize", "larger than allowed"
    ),
    "a part going on past its content-length": Poisoned(
        lambda: endless_part(keep_length=True), reason="malformed"
    ),
    "connection reset mid part": Poisoned(lambda: _reset_mid_part, reason="getMessage"),
    "slow loris": Poisoned(lambda: _stalling(), reason="no answer", settings={"timeout_seconds": 0.5}),
}


@pytest.mark.parametrize("name", list(POISONED))
async def test_a_poisoned_fetch_is_held_and_the_poll_takes_the_next_message(
    hostile: HostileServer,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
    name: str,
) -> None:
    case = POISONED[name]
    xta = await hostile.start()
    poisoned = await queue(http, hostile.upstream)
    # Content of its own: were the poisoned message's content left behind, no application would keep it.
    valid = await queue(http, hostile.upstream, VALID_CONTENT)
    hostile.tamper[FETCH] = case.tamper()
    hostile.only = poisoned.encode()
    source = make_source(xta, schema_dir, http, blobs, held_journal, max_content=1024**2, **case.settings)
    intakes = KeepingIntakes(blobs)
    async with asyncio.timeout(30):
        assert await poll(source, intakes, blobs) == 1
    assert hostile.tampered == 1
    assert list(intakes.applications) == [valid]
    assert [c.message_id for c in hostile.upstream.state.closed] == [valid]
    [held] = await held_journal.list_held(HeldFilter())
    assert (held.message_id, held.state, held.reason_code) == (poisoned, case.state, case.code), held.reason
    assert case.reason.lower() in held.reason.lower(), held.reason
    assert poisoned in hostile.upstream.state.mailbox(AUTHORITY)  # not closed: still upstream
    assert stored_blobs(blobs) == intakes.blob_refs()  # nothing orphaned: only what an application references
    assert blob_files(blobs.root) == []  # nothing partial: no temporary file (and the valid message is small)


async def endless_answer(request: web.Request, status: int, media: str, data: bytes) -> web.StreamResponse:
    """An answer that never ends (chunked, no length): the client stops at its envelope limit."""
    response = web.StreamResponse(status=status, headers={hdrs.CONTENT_TYPE: media})
    await response.prepare(request)
    await response.write(data[: data.index(b"<env:Body>")])
    while True:
        await response.write(b"<x>" * 20_000)


STATUS_LISTS: dict[str, tuple[Tamper, type[Exception], str]] = {
    "not xml": (answer(b"garbage", "application/soap+xml"), Permanent, "not usable XML"),
    "xxe": (edit(prolog(DOCTYPE_XXE)), Permanent, "document type"),
    "entity expansion": (edit(prolog(LAUGHS)), Permanent, "document type"),
    "soap 1.1": (answer(SOAP11, "text/xml"), Permanent, "SOAP 1.2"),
    "over the envelope limit": (
        answer(b"<a>" + b" " * (2 * 1024**2) + b"</a>", "application/soap+xml"),
        Permanent,
        "larger than",
    ),
    "relates to another request": (
        edit(lambda d: re.sub(rb"<wsa:RelatesTo>[^<]*<", b"<wsa:RelatesTo>urn:uuid:other<", d)),
        Permanent,
        "relates to",
    ),
    "http 500 with html": (answer(b"<html>down</html>", "text/html", 500), Retryable, "answered 500"),
    "slow loris": (_stall, Retryable, "no answer"),
    "endless": (endless_answer, Permanent, "larger than"),
}


@pytest.mark.parametrize("name", list(STATUS_LISTS))
async def test_a_hostile_status_list_fails_the_poll_visibly_and_the_next_poll_works(
    hostile: HostileServer,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
    name: str,
) -> None:
    tamper, error, reason = STATUS_LISTS[name]
    xta = await hostile.start()
    valid = await queue(http, hostile.upstream)
    hostile.tamper[STATUS] = tamper
    source = make_source(
        xta, schema_dir, http, blobs, held_journal, max_envelope=1024**2, timeout_seconds=0.5
    )
    intakes = KeepingIntakes(blobs)
    async with asyncio.timeout(30):
        with pytest.raises(error) as caught:
            await poll(source, intakes, blobs)
    assert reason.lower() in str(caught.value).lower()
    assert hostile.upstream.state.requests["getMessage"] == 0
    assert await held_journal.list_held(HeldFilter()) == []
    assert stored_blobs(blobs) == set() and blob_files(blobs.root) == []  # nothing fetched, nothing stored
    del hostile.tamper[STATUS]  # the server recovers: the next poll takes the message
    assert await poll(source, intakes, blobs) == 1
    assert list(intakes.applications) == [valid]


async def test_a_message_id_with_path_characters_is_an_opaque_id(
    hostile: HostileServer,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
    tmp_path: Path,
) -> None:
    xta = await hostile.start()
    odd = "../../../../tmp/evil%2F..\\..\\x"
    await queue(http, hostile.upstream, message_id=odd)
    source = make_source(xta, schema_dir, http, blobs, held_journal)
    intakes = KeepingIntakes(blobs)
    assert await poll(source, intakes, blobs) == 1
    assert list(intakes.applications) == [odd]
    assert [c.message_id for c in hostile.upstream.state.closed] == [odd]
    # Stored under its content's address only: no file named after the id, in the store or outside it.
    assert stored_blobs(blobs) == intakes.blob_refs() and blob_files(blobs.root) == []
    assert [p for p in tmp_path.rglob("*") if "evil" in p.name] == []


async def test_huge_metadata_strings_are_held_with_a_bounded_record(
    hostile: HostileServer,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await hostile.start()
    huge_author = "vbe:" + "x" * 200_000
    other = await queue(
        http,
        hostile.upstream,
        author={"identifier": huge_author, "type": "xoev", "name": "N" * 100_000},
        message_type="other.type.0000",
        subject="S" * 500_000,
    )
    valid = await queue(http, hostile.upstream, subject="B" * 200_000)
    source = make_source(xta, schema_dir, http, blobs, held_journal)
    intakes = KeepingIntakes(blobs)
    assert await poll(source, intakes, blobs) == 1
    assert list(intakes.applications) == [valid]
    [held] = await held_journal.list_held(HeldFilter())
    assert (held.message_id, held.state, held.reason_code) == (other, HeldState.QUARANTINED, "message_type")
    assert held.sender is not None and held.sender.startswith("vbe:xxx") and len(held.sender) <= 1000
    assert len(held.reason) <= 1000


async def test_a_message_larger_than_its_msgsize_stops_at_the_declared_size(
    hostile: HostileServer,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await hostile.start()
    big = b"<x/>" + b" " * 2 * 1024**2
    metadata = antrag_metadata(msg_size=10)  # the status list says 10 bytes, the content has 2 MiB
    liar = (await enqueue(http, hostile.upstream.url, AUTHORITY, metadata=metadata, message=big))[
        "message_id"
    ]
    valid = await queue(http, hostile.upstream)
    source = make_source(xta, schema_dir, http, blobs, held_journal)  # no size limit of its own
    intakes = KeepingIntakes(blobs)
    assert await poll(source, intakes, blobs) == 1
    assert list(intakes.applications) == [valid]
    [held] = await held_journal.list_held(HeldFilter())
    assert (held.message_id, held.state, held.reason_code) == (liar, HeldState.QUARANTINED, "oversize")
    # Nothing of the liar's content stays: no blob, and no temporary file of its download.
    assert stored_blobs(blobs) == intakes.blob_refs() and blob_files(blobs.root) == []
