"""The simulator speaks XTA 2 exactly: answers validate against the WSDL's schemas; requests are checked."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import zeep
from aiohttp import BodyPartReader, hdrs
from hub_xta import OutgoingContent, OutgoingMessage, load_schema, load_wsdl
from hub_xta.mtom import content_type_params, part_chunks, read_related
from hub_xta.simulator import enqueue
from hub_xta.xml import META, OSCI, SOAP12, WSA, XOP, XTA, parse_xml, qname
from lxml import etree
from xta_helpers import AUTHORITY, PORTAL, XBAU_SERVICE, StartXta, antrag_metadata, make_client, party

from hub.blobs import BlobStore
from hub.plugins import load_plugins

AUTHOR = {"AuthorIdentifier": {"Identifier": {"_value_1": AUTHORITY, "type": "xoev"}}}


@dataclass
class Answer:
    """A raw answer of the simulator: HTTP status, media type, envelope, MTOM parts."""

    status: int
    media_type: str
    envelope: etree._Element
    parts: dict[str, bytes] = field(default_factory=dict)

    def find(self, path: str) -> etree._Element | None:
        return self.envelope.find(
            path, namespaces={"env": SOAP12, "wsa": WSA, "osci": OSCI, "m": META, "xta": XTA, "xop": XOP}
        )

    def infoset(self) -> etree._Element:
        """The envelope with every xop:Include replaced by the base64 of its part (the XOP infoset)."""
        document = etree.fromstring(etree.tostring(self.envelope))
        for include in list(document.iter(qname(XOP, "Include"))):
            parent = include.getparent()
            assert parent is not None
            parent.remove(include)
            parent.text = base64.b64encode(self.parts[include.get("href", "")[4:]]).decode()
        return document


async def exchange(
    http: aiohttp.ClientSession, url: str, port: str, operation: str, **values: Any
) -> tuple[Answer, str]:
    """Send a request zeep builds from the WSDL; the raw answer and the request's wsa:MessageID."""
    wsdl = load_wsdl(_schema_dir)
    envelope, message_id = wsdl.envelope(port, operation, f"{url}/{port}", **values)
    action = wsdl.action(port, operation)
    body = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
    return await post(http, f"{url}/{port}", body, action), message_id


async def post(http: aiohttp.ClientSession, address: str, body: bytes, action: str | None) -> Answer:
    """POST a SOAP 1.2 envelope; read the answer (MTOM parts captured, they are small here)."""
    content_type = "application/soap+xml; charset=utf-8" + (f'; action="{action}"' if action else "")
    async with http.post(address, data=body, headers={hdrs.CONTENT_TYPE: content_type}) as response:
        media, _ = content_type_params(response.headers[hdrs.CONTENT_TYPE])
        parts: dict[str, bytes] = {}
        if media == "multipart/related":

            async def keep(cid: str, part: BodyPartReader) -> None:
                parts[cid] = b"".join([c async for c in part_chunks(part)])

            root = (
                await read_related(response.headers, response.content, envelope_limit=10**7, on_part=keep)
            ).root
        else:
            root = await response.read()
        return Answer(response.status, media, parse_xml(root, limit=10**7), parts)


_schema_dir = Path()


@pytest.fixture(autouse=True)
def _remember_schema_dir(schema_dir: Path) -> None:
    global _schema_dir
    _schema_dir = schema_dir


def assert_valid(answer: Answer, schema_dir: Path) -> None:
    problems = load_schema(schema_dir).errors(answer.infoset())
    assert problems == [], problems


def assert_addressed(answer: Answer, request_id: str, action: str) -> None:
    assert answer.find("env:Header/wsa:RelatesTo") is not None
    assert answer.find("env:Header/wsa:RelatesTo").text == request_id  # type: ignore[union-attr]
    assert answer.find("env:Header/wsa:Action").text == action  # type: ignore[union-attr]
    assert answer.find("env:Header/wsa:MessageID") is not None


async def test_every_answer_validates_against_the_xta_schemas(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta(page_size=2)
    queued = [
        await enqueue(
            http,
            xta.url,
            AUTHORITY,
            metadata=antrag_metadata(in_reply_to=["urn:x:1"], process_requester="AZ-1", test=True),
            message=b"<antrag/>",
            attachments=[("plan.pdf", b"%PDF-1.4", "application/pdf")],
        )
        for _ in range(3)
    ]
    wsdl = load_wsdl(schema_dir)
    answers: dict[str, Answer] = {}

    answer, request = await exchange(http, xta.url, "ManagementPort", "createMessageId", _soapheaders=AUTHOR)
    assert_addressed(answer, request, wsdl.action("ManagementPort", "createMessageId"))
    assert answer.find("env:Body/wsa:MessageID") is not None
    answers["createMessageId"] = answer

    answer, request = await exchange(
        http, xta.url, "ManagementPort", "checkAccountActive", _soapheaders=AUTHOR
    )
    assert answer.status == 200 and len(answer.find("env:Body")) == 0  # type: ignore[arg-type]
    answers["checkAccountActive"] = answer

    answer, request = await exchange(
        http,
        xta.url,
        "MsgBoxPort",
        "getStatusList",
        maxListItems=2,
        ListForm="MessageMetaData",
        _soapheaders=AUTHOR,
    )
    assert answer.find("env:Header/osci:MsgBoxResponse/osci:ItemsPending").text == "1"  # type: ignore[union-attr]
    assert len(answer.find("env:Body/osci:MsgStatusList")) == 2  # type: ignore[arg-type]
    answers["getStatusList"] = answer
    request_id = answer.find("env:Header/osci:MsgBoxResponse").get("MsgBoxRequestID")  # type: ignore[union-attr]

    answer, _ = await exchange(
        http,
        xta.url,
        "MsgBoxPort",
        "getNextStatusList",
        MsgBoxRequestID=request_id,
        LastMsgReceived=[{"_value_1": queued[1]["message_id"]}],
        _soapheaders=AUTHOR,
    )
    assert len(answer.find("env:Body/osci:MsgStatusList")) == 1  # type: ignore[arg-type]
    answers["getNextStatusList"] = answer

    answer, request = await exchange(
        http,
        xta.url,
        "MsgBoxPort",
        "getMessage",
        MsgSelector={"MessageID": [{"_value_1": queued[0]["message_id"]}]},
        _soapheaders=AUTHOR,
    )
    assert answer.media_type == "multipart/related" and sorted(answer.parts.values()) == [
        b"%PDF-1.4",
        b"<antrag/>",
    ]
    assert answer.find("env:Header/m:MessageMetaData") is not None
    assert (
        answer.find("env:Body/xta:GenericContentContainer/xta:ContentContainer/xta:Message/xop:Include")
        is not None
    )
    answers["getMessage"] = answer

    answer, _ = await exchange(
        http,
        xta.url,
        "MsgBoxPort",
        "close",
        MsgBoxRequestID="urn:uuid:1",
        LastMsgReceived=[{"_value_1": queued[0]["message_id"]}],
        _soapheaders=AUTHOR,
    )
    assert answer.status == 200
    answers["close"] = answer

    # Faults: as the WSDL defines them, each with its XTA exception as detail.
    answer, request = await exchange(
        http,
        xta.url,
        "MsgBoxPort",
        "getMessage",
        MsgSelector={"MessageID": [{"_value_1": "urn:unbekannt"}]},
        _soapheaders=AUTHOR,
    )
    assert answer.status == 400
    assert answer.find("env:Body/env:Fault/env:Detail/xta:InvalidMessageIDException") is not None
    assert_addressed(answer, request, wsdl.action("MsgBoxPort", "getMessage"))
    answers["InvalidMessageIDException"] = answer

    xta.state.locked.add(AUTHORITY)
    answer, _ = await exchange(
        http,
        xta.url,
        "MsgBoxPort",
        "close",
        MsgBoxRequestID="urn:x",
        LastMsgReceived=[{"_value_1": "urn:y"}],
        _soapheaders=AUTHOR,
    )
    code = answer.find("env:Body/env:Fault/env:Detail/xta:PermissionDeniedException/xta:errorCode/code")
    assert code is not None and code.text == "9011"
    answers["PermissionDeniedException"] = answer
    xta.state.locked.clear()

    xta.state.knobs.technical_fault_next = 1
    answer, _ = await exchange(http, xta.url, "ManagementPort", "createMessageId", _soapheaders=AUTHOR)
    assert answer.status == 500
    assert answer.find("env:Body/env:Fault/env:Code/env:Value").text == "env:Receiver"  # type: ignore[union-attr]
    answers["XTAWSTechnicalProblemException"] = answer

    for name, answer in answers.items():
        problems = load_schema(schema_dir).errors(answer.infoset())
        assert problems == [], (name, problems)


async def test_send_message_answer_and_recorded_metadata_validate(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta()
    client = make_client(xta.url, schema_dir, http, blobs)
    stored = await blobs.write_bytes(b"<quittung/>")
    sent = await client.send_message(
        OutgoingMessage(
            reader=party(PORTAL),
            service=XBAU_SERVICE,
            business_scenario="XBAU_DATA",
            message_type="prozessnachrichten.eingangsbestaetigung.1120",
            payload_schema="http://www.xleitstelle.de/xbau/kernmodul/1/3/0",
            content=OutgoingContent(blob=stored.ref, size=stored.size, content_type="application/xml"),
        )
    )
    # What the portal gets listed for that message is schema-valid MessageMetaData too.
    answer, _ = await exchange(
        http,
        xta.url,
        "MsgBoxPort",
        "getStatusList",
        ListForm="MessageMetaData",
        _soapheaders={"AuthorIdentifier": {"Identifier": {"_value_1": PORTAL, "type": "xoev"}}},
    )
    listed = answer.find("env:Body/osci:MsgStatusList/m:MessageMetaData/m:MsgIdentification/wsa:MessageID")
    assert listed is not None and listed.text == sent.message_id
    assert_valid(answer, schema_dir)


async def test_schema_violating_request_gets_sender_fault(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path
) -> None:
    xta = await start_xta()
    wsdl = load_wsdl(schema_dir)
    envelope, _ = wsdl.envelope(
        "MsgBoxPort", "getStatusList", f"{xta.url}/MsgBoxPort", maxListItems=5, _soapheaders=AUTHOR
    )
    request = envelope.find(f"{qname(SOAP12, 'Body')}/{qname(OSCI, 'MsgBoxStatusListRequest')}")
    assert request is not None
    request.set("maxListItems", "0")  # positiveInteger
    etree.SubElement(request, qname(OSCI, "Unbekannt"))
    action = wsdl.action("MsgBoxPort", "getStatusList")
    answer = await post(http, f"{xta.url}/MsgBoxPort", etree.tostring(envelope), action)
    assert answer.status == 400
    assert answer.find("env:Body/env:Fault/env:Code/env:Value").text == "env:Sender"  # type: ignore[union-attr]
    reason = answer.find("env:Body/env:Fault/env:Reason/env:Text")
    assert reason is not None and "XTA schemas" in (reason.text or "")
    assert_valid(answer, schema_dir)


async def test_ws_addressing_is_required_and_checked(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path
) -> None:
    xta = await start_xta()
    wsdl = load_wsdl(schema_dir)
    envelope, _ = wsdl.envelope(
        "ManagementPort", "createMessageId", f"{xta.url}/ManagementPort", _soapheaders=AUTHOR
    )
    header = envelope.find(qname(SOAP12, "Header"))
    assert header is not None
    header.remove(header.find(qname(WSA, "Action")))  # type: ignore[arg-type]
    answer = await post(http, f"{xta.url}/ManagementPort", etree.tostring(envelope), None)
    subcode = answer.find("env:Body/env:Fault/env:Code/env:Subcode/env:Value")
    assert (
        answer.status == 400 and subcode is not None and subcode.text == "wsa:MessageAddressingHeaderRequired"
    )
    assert_valid(answer, schema_dir)

    # An action of another port, and an HTTP action differing from wsa:Action.
    envelope, _ = wsdl.envelope(
        "ManagementPort", "createMessageId", f"{xta.url}/MsgBoxPort", _soapheaders=AUTHOR
    )
    answer = await post(http, f"{xta.url}/MsgBoxPort", etree.tostring(envelope), None)
    assert answer.find("env:Body/env:Fault/env:Code/env:Subcode/env:Value").text == "wsa:ActionNotSupported"  # type: ignore[union-attr]
    envelope, _ = wsdl.envelope(
        "ManagementPort", "createMessageId", f"{xta.url}/ManagementPort", _soapheaders=AUTHOR
    )
    answer = await post(http, f"{xta.url}/ManagementPort", etree.tostring(envelope), "urn:other")
    assert answer.find("env:Body/env:Fault/env:Code/env:Subcode/env:Value").text == "wsa:ActionMismatch"  # type: ignore[union-attr]


async def test_plain_text_and_entities_are_refused(start_xta: StartXta, http: aiohttp.ClientSession) -> None:
    xta = await start_xta()
    async with http.post(f"{xta.url}/MsgBoxPort", data=b"hello", headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 400
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    answer = await post(http, f"{xta.url}/MsgBoxPort", bomb, None)
    assert answer.status == 400
    reason = answer.find("env:Body/env:Fault/env:Reason/env:Text")
    assert reason is not None and "document type" in (reason.text or "")


async def test_enqueue_refuses_incomplete_requests(start_xta: StartXta, http: aiohttp.ClientSession) -> None:
    xta = await start_xta()
    form = aiohttp.FormData()
    form.add_field("message", b"<x/>", filename="x.xml", content_type="application/xml")
    async with http.post(f"{xta.url}/_sim/mailboxes/{AUTHORITY}", data=form) as response:
        assert response.status == 400 and "metadata" in (await response.json())["error"]
    form = aiohttp.FormData()
    form.add_field("metadata", '{"author": "x"}', content_type="application/json")
    form.add_field("message", b"<x/>", filename="x.xml", content_type="application/xml")
    async with http.post(f"{xta.url}/_sim/mailboxes/{AUTHORITY}", data=form) as response:
        assert response.status == 400 and "service" in (await response.json())["error"]
    async with http.get(f"{xta.url}/_sim/mailboxes/{AUTHORITY}") as response:
        assert await response.json() == []


def test_simulator_is_offered_to_aktenhub_simulate() -> None:
    simulators = load_plugins().simulators()
    assert "xta" in simulators
    assert "MsgBoxPort" in simulators["xta"].description


def fault_of(answer: Answer) -> tuple[str | None, list[str]]:
    """(env:Code/Value, [Subcode values, outermost first]) of a fault answer."""
    code = answer.find("env:Body/env:Fault/env:Code/env:Value")
    subcodes = []
    node = answer.find("env:Body/env:Fault/env:Code")
    while node is not None and (node := node.find(qname(SOAP12, "Subcode"))) is not None:
        subcodes.append(node.findtext(qname(SOAP12, "Value")) or "")
    return (code.text if code is not None else None), subcodes


def xta_code(answer: Answer, exception: str) -> str | None:
    found = answer.find(f"env:Body/env:Fault/env:Detail/xta:{exception}/xta:errorCode/code")
    return found.text if found is not None else None


async def test_unknown_must_understand_header_is_refused(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path
) -> None:
    xta = await start_xta()
    wsdl = load_wsdl(schema_dir)
    action = wsdl.action("ManagementPort", "createMessageId")
    ignored = await post(
        http, f"{xta.url}/ManagementPort", _with_unknown_header(wsdl, xta.url, "false"), action
    )
    assert ignored.status == 200  # not marked mustUnderstand: a server may ignore it

    answer = await post(http, f"{xta.url}/ManagementPort", _with_unknown_header(wsdl, xta.url, "1"), action)
    assert answer.status == 500 and fault_of(answer)[0] == "env:MustUnderstand"
    [not_understood] = answer.envelope.findall(f"{qname(SOAP12, 'Header')}/{qname(SOAP12, 'NotUnderstood')}")
    prefix, _, local = not_understood.get("qname", "").partition(":")
    assert (not_understood.nsmap[prefix], local) == ("urn:example:signatur", "Zeitstempel")
    assert_valid(answer, schema_dir)
    assert len(xta.state.issued_ids) == 1  # only the request that could be understood was done


def _with_unknown_header(wsdl: Any, url: str, must_understand: str) -> bytes:
    envelope, _ = wsdl.envelope(
        "ManagementPort", "createMessageId", f"{url}/ManagementPort", _soapheaders=AUTHOR
    )
    header = envelope.find(qname(SOAP12, "Header"))
    block = etree.SubElement(header, "{urn:example:signatur}Zeitstempel")
    block.set(qname(SOAP12, "mustUnderstand"), must_understand)
    return bytes(etree.tostring(envelope))


async def test_duplicated_addressing_headers_and_missing_action_are_refused(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path
) -> None:
    xta = await start_xta()
    wsdl = load_wsdl(schema_dir)
    action = wsdl.action("ManagementPort", "createMessageId")
    for duplicated in ("Action", "MessageID", "To"):
        envelope, _ = wsdl.envelope(
            "ManagementPort", "createMessageId", f"{xta.url}/ManagementPort", _soapheaders=AUTHOR
        )
        header = envelope.find(qname(SOAP12, "Header"))
        original = header.find(qname(WSA, duplicated))  # type: ignore[union-attr]
        assert header is not None and original is not None
        header.append(etree.fromstring(etree.tostring(original)))
        answer = await post(http, f"{xta.url}/ManagementPort", etree.tostring(envelope), action)
        assert answer.status == 400, duplicated
        assert fault_of(answer) == ("env:Sender", ["wsa:InvalidAddressingHeader", "wsa:InvalidCardinality"])
        assert_valid(answer, schema_dir)
    assert xta.state.issued_ids == set()  # nothing was done

    envelope, _ = wsdl.envelope(
        "ManagementPort", "createMessageId", f"{xta.url}/ManagementPort", _soapheaders=AUTHOR
    )
    answer = await post(http, f"{xta.url}/ManagementPort", etree.tostring(envelope), None)
    reason = answer.find("env:Body/env:Fault/env:Reason/env:Text")
    assert answer.status == 400 and reason is not None and "action parameter" in (reason.text or "")


async def test_client_certificate_is_required_when_configured(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta(require_client_cert=True, accounts=[AUTHORITY])
    client = make_client(xta.url, schema_dir, http, blobs)
    result = await client.check()
    assert not result.ok and result.details["code"] == "9014"
    assert xta.state.issued_ids == set()


async def test_get_next_message_walks_the_mailbox_and_confirms_what_was_received(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path
) -> None:
    xta = await start_xta()
    ids = [
        (await enqueue(http, xta.url, AUTHORITY, metadata=antrag_metadata(), message=f"<m{n}/>".encode()))[
            "message_id"
        ]
        for n in range(3)
    ]
    answer, _ = await exchange(http, xta.url, "MsgBoxPort", "getMessage", _soapheaders=AUTHOR)
    assert answer.parts and list(answer.parts.values()) == [b"<m0/>"]
    request_id = answer.find("env:Header/osci:MsgBoxResponse").get("MsgBoxRequestID")  # type: ignore[union-attr]
    seen = []
    for expected in (b"<m1/>", b"<m2/>"):
        answer, _ = await exchange(
            http,
            xta.url,
            "MsgBoxPort",
            "getNextMessage",
            MsgBoxRequestID=request_id,
            LastMsgReceived=[{"_value_1": ids[len(seen)]}],
            _soapheaders=AUTHOR,
        )
        assert answer.status == 200 and list(answer.parts.values()) == [expected]
        assert_valid(answer, schema_dir)
        seen.append(expected)
    assert [c.message_id for c in xta.state.closed] == ids[:2]  # LastMsgReceived confirms receipt
    answer, _ = await exchange(
        http,
        xta.url,
        "MsgBoxPort",
        "getNextMessage",
        MsgBoxRequestID=request_id,
        LastMsgReceived=zeep.xsd.SkipValue,  # zeep demands an entry of the optional sequence otherwise
        _soapheaders=AUTHOR,
    )
    assert answer.status == 400 and xta_code(answer, "InvalidMessageIDException") == "9070"
    assert_valid(answer, schema_dir)


async def test_lookup_service_answers_per_reader_and_service(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path
) -> None:
    xta = await start_xta(accounts=[AUTHORITY, PORTAL], services={PORTAL: [XBAU_SERVICE]})
    asked = [(PORTAL, XBAU_SERVICE), (PORTAL, "urn:anderer:dienst"), ("vbe:unbekannt", XBAU_SERVICE)]
    answer, _ = await exchange(
        http,
        xta.url,
        "ManagementPort",
        "lookupService",
        LookupServiceRequestList=[
            {"LookupService": {"Reader": {"Identifier": {"_value_1": r, "type": "xoev"}}, "ServiceType": s}}
            for r, s in asked
        ],
        _soapheaders=AUTHOR,
    )
    assert answer.status == 200
    results = answer.envelope.findall(f".//{qname(XTA, 'LookupServiceResult')}")
    found = [
        (
            r.findtext(f"{qname(META, 'Reader')}/{qname(META, 'Identifier')}"),
            r.findtext(qname(XTA, "ServiceType")),
            r.findtext(f"{qname(XTA, 'IsServiceAvailableValue')}/{qname(XTA, 'ServiceIsAvailable')}"),
        )
        for r in results
    ]
    assert found == [
        (PORTAL, XBAU_SERVICE, "true"),
        (PORTAL, "urn:anderer:dienst", "false"),
        ("vbe:unbekannt", XBAU_SERVICE, "false"),
    ]
    assert_valid(answer, schema_dir)


async def test_transport_report_and_cancel_follow_the_sent_message(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta()
    client = make_client(xta.url, schema_dir, http, blobs)
    content = await blobs.write_bytes(b"<antwort/>")

    async def send() -> str:
        sent = await client.send_message(
            OutgoingMessage(
                reader=party(PORTAL),
                service=XBAU_SERVICE,
                business_scenario="XBAU_DATA",
                message_type="prozessnachrichten.eingangsbestaetigung.1120",
                payload_schema="http://www.xleitstelle.de/xbau/kernmodul/1/3/0",
                content=OutgoingContent(blob=content.ref, size=content.size, content_type="application/xml"),
            )
        )
        return sent.message_id

    async def report(message_id: str) -> Answer:
        answer, _ = await exchange(
            http,
            xta.url,
            "ManagementPort",
            "getTransportReport",
            _value_1=message_id,
            _soapheaders=AUTHOR,
        )
        assert_valid(answer, schema_dir)
        return answer

    async def cancel(message_id: str) -> Answer:
        answer, _ = await exchange(
            http,
            xta.url,
            "ManagementPort",
            "cancelMessage",
            _value_1=message_id,
            _soapheaders=AUTHOR,
        )
        assert_valid(answer, schema_dir)
        return answer

    received, scheduled = await send(), await send()
    assert (await report(received)).find(
        "env:Body/xta:TransportReport/xta:MessageStatus/xta:Status"
    ).text == "0"  # type: ignore[union-attr]
    reader = make_client(xta.url, schema_dir, http, blobs, account=PORTAL)
    await reader.close(received)
    answer = await report(received)
    assert answer.find("env:Body/xta:TransportReport/xta:MessageStatus/xta:Status").text == "1"  # type: ignore[union-attr]
    assert answer.find("env:Body/xta:TransportReport/m:MessageMetaData") is not None
    assert xta_code(await report("urn:unbekannt"), "InvalidMessageIDException") == "9070"

    assert xta_code(await cancel(scheduled), "CancelDeniedException") == "9101"  # sent without NotBefore
    stored = xta.state.sent_message(scheduled)
    assert stored is not None
    stored.not_before = datetime.now(UTC) + timedelta(hours=1)
    assert (await cancel(scheduled)).status == 200
    assert scheduled not in xta.state.mailbox(PORTAL)
    status = (await report(scheduled)).find("env:Body/xta:TransportReport/xta:MessageStatus/xta:Status")
    assert status is not None and status.text == "3"
    assert xta_code(await cancel("urn:unbekannt"), "ParameterIsNotValidException") == "9022"
