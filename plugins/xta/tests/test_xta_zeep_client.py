"""A third-party client against the simulator: plain zeep, built from the XTA WSDL alone.

Nothing of `hub_xta`'s client is used: zeep loads ``xta/XTA.wsdl``, builds every request (its
WS-Addressing plugin adds Action, MessageID, To; SOAP 1.2 with the ``action`` parameter) and sends it
with its own `requests` transport, as an authority's or a portal's zeep script would. Every answer must
deserialize with zeep against the WSDL's schemas, and every fault must be one the WSDL declares for the
operation (its detail one of the operation's fault elements).
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import zeep
import zeep.plugins
from hub_xta.simulator import enqueue, get_json, sent_content
from lxml import etree
from xta_helpers import AUTHORITY, PORTAL, XBAU_NS, XBAU_SERVICE, StartXta, Xta, antrag_metadata

XTA_NS = "http://xoev.de/transport/xta/211"
XOP_NS = "http://www.w3.org/2004/08/xop/include"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
BINDINGS = {
    "MsgBoxPort": f"{{{XTA_NS}}}msgBoxHttpsBinding",
    "SendXtaPort": f"{{{XTA_NS}}}sendXTAHttpsBinding",
    "ManagementPort": f"{{{XTA_NS}}}managementHttpsBinding",
}
ANTRAG = b"<baugenehmigung.antrag.0200/>"


class MtomTransport(zeep.Transport):
    """zeep's `requests` transport, sending base64 content as MTOM parts like Apache CXF does.

    zeep itself sends no MTOM; this is how a zeep user adds it: each inline ``xta:Message`` /
    ``xta:Attachment`` text becomes an ``xop:Include`` of a binary MIME part.
    """

    def post_xml(self, address: str, envelope: etree._Element, headers: dict[str, str]) -> Any:
        """Post the envelope as multipart/related (XOP), content as binary parts."""
        parts: list[tuple[str, str, bytes]] = []
        for element in envelope.iter(f"{{{XTA_NS}}}Message", f"{{{XTA_NS}}}Attachment"):
            cid = f"{uuid.uuid4()}@zeep.example"
            parts.append(
                (
                    cid,
                    element.get("contentType", "application/octet-stream"),
                    base64.b64decode(element.text or ""),
                )
            )
            element.text = None
            etree.SubElement(element, f"{{{XOP_NS}}}Include", nsmap={"xop": XOP_NS}).set("href", f"cid:{cid}")
        action = headers["Content-Type"].split('action="', 1)[1].rstrip('"')
        boundary = f"uuid:{uuid.uuid4()}"
        root_cid = "root.message@cxf.apache.org"
        soap_type = f'application/soap+xml; action=\\"{action}\\"'
        body = bytearray()
        body += (
            f'--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type="{soap_type}"\r\n'
            f"Content-Transfer-Encoding: binary\r\nContent-ID: <{root_cid}>\r\n\r\n"
        ).encode()
        body += etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        for cid, media_type, data in parts:
            body += (
                f"\r\n--{boundary}\r\nContent-Type: {media_type}\r\nContent-Transfer-Encoding: binary\r\n"
                f"Content-ID: <{cid}>\r\n\r\n"
            ).encode()
            body += data
        body += f"\r\n--{boundary}--\r\n".encode()
        headers = {
            **headers,
            "Content-Type": (
                f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; '
                f'start="<{root_cid}>"; start-info="{soap_type}"'
            ),
        }
        return self.post(address, bytes(body), headers)


class Plain:
    """A plain zeep client of one simulator: a service proxy per port, calls run off the event loop."""

    def __init__(self, schema_dir: Path, url: str, transport: zeep.Transport | None = None) -> None:
        self.history = zeep.plugins.HistoryPlugin()
        self.client = zeep.Client(
            str(schema_dir / "xta" / "XTA.wsdl"),
            transport=transport or zeep.Transport(timeout=10, operation_timeout=10),
            plugins=[self.history],
        )
        self.ports = {
            port: self.client.create_service(binding, f"{url}/{port}") for port, binding in BINDINGS.items()
        }

    async def call(self, port: str, operation: str, **values: Any) -> Any:
        """One operation, synchronous as zeep is, in a thread (the simulator runs in this event loop)."""
        method: Callable[..., Any] = getattr(self.ports[port], operation)
        return await asyncio.to_thread(method, **values)

    def declared_faults(self, port: str, operation: str) -> set[str]:
        """Clark names of the fault elements the WSDL declares for an operation."""
        binding = self.ports[port]._binding
        abstract = binding.get(operation).abstract
        return {
            str(part.element.qname)
            for fault in abstract.fault_messages.values()
            for part in fault.parts.values()
        }

    async def fault(self, port: str, operation: str, **values: Any) -> tuple[zeep.exceptions.Fault, str]:
        """Call an operation that must fail: its fault and the detail's element, declared by the WSDL."""
        with pytest.raises(zeep.exceptions.Fault) as caught:
            await self.call(port, operation, **values)
        fault = caught.value
        assert fault.detail is not None, f"{operation}: fault without detail: {fault.message}"
        [detail] = [child for child in fault.detail if isinstance(child.tag, str)]
        assert detail.tag in self.declared_faults(port, operation), (
            f"{operation}: undeclared fault {detail.tag}"
        )
        # The detail deserializes with the WSDL's fault element (errorCode from the code list).
        parsed = self.client.get_element(detail.tag).parse(detail, self.client.wsdl.types)
        return fault, str(parsed.errorCode.code)


def author(identifier: str = AUTHORITY) -> dict[str, Any]:
    """The oscimeta:Author header (part AuthorIdentifier of the WSDL's XTAHeader)."""
    return {"_soapheaders": {"AuthorIdentifier": {"Identifier": {"_value_1": identifier, "type": "xoev"}}}}


def metadata(
    message_id: str, *, reader: str = PORTAL, not_before: datetime | None = None, size: int
) -> dict[str, Any]:
    """oscimeta:MessageMetaData of a message from us to `reader` (an XBau answer)."""
    now = datetime.now(UTC).replace(microsecond=0)
    delivery: dict[str, Any] = {"Origin": now, "InitialSend": now}
    if not_before is not None:
        delivery["NotBefore"] = not_before
    return {
        "DeliveryAttributes": delivery,
        "Originators": {"Author": {"Identifier": {"_value_1": AUTHORITY, "type": "xoev"}}},
        "Destinations": {"Reader": {"Identifier": {"_value_1": reader, "type": "xoev"}}},
        "MsgIdentification": {"MessageID": {"_value_1": message_id}},
        "Qualifier": {
            "Service": XBAU_SERVICE,
            "BusinessScenario": {
                "Defined": {
                    "code": "XBAU_DATA",
                    "listURI": "urn:de:dataport:codeliste:business.scenario",
                    "listVersionID": "1",
                }
            },
            "MessageType": {
                "code": "baugenehmigung.formellePruefung.0201",
                "listURI": "urn:de:payloadSchema:elementName",
                "listVersionID": "1.0",
                "payloadSchema": XBAU_NS,
            },
        },
        "MsgSize": size,
    }


async def send(plain: Plain, message_id: str, content: bytes, **meta: Any) -> Any:
    """sendMessage with one Message content (base64 in the envelope, or MTOM with `MtomTransport`)."""
    return await plain.call(
        "SendXtaPort",
        "sendMessage",
        ContentContainer={
            "Message": {
                "_value_1": content,
                "contentType": "application/xml",
                "filename": "0201.xml",
                "size": len(content),
            }
        },
        _soapheaders={"MessageMetaData": metadata(message_id, size=len(content), **meta)},
    )


@pytest.fixture
def plain_for(schema_dir: Path) -> Callable[..., Plain]:
    """A plain zeep client for a running simulator."""

    def make(xta: Xta, transport: zeep.Transport | None = None) -> Plain:
        return Plain(schema_dir, xta.url, transport)

    return make


async def test_management_port_check_account_and_create_message_id(
    start_xta: StartXta, plain_for: Callable[..., Plain]
) -> None:
    xta = await start_xta(accounts=[AUTHORITY, PORTAL], locked=[PORTAL])
    plain = plain_for(xta)
    assert await plain.call("ManagementPort", "checkAccountActive", **author()) is None
    created = await plain.call("ManagementPort", "createMessageId", **author())
    assert str(created._value_1).startswith("urn:")
    fault, code = await plain.fault("ManagementPort", "checkAccountActive", **author(PORTAL))
    assert (fault.code, code) == ("env:Sender", "9011")
    fault, code = await plain.fault("ManagementPort", "createMessageId", **author("vbe:unbekannt"))
    assert code == "9012"
    assert xta.state.requests["checkAccountActive"] == 2 and xta.state.requests["createMessageId"] == 2


async def test_mailbox_port_list_fetch_next_and_close(
    start_xta: StartXta, plain_for: Callable[..., Plain], http: aiohttp.ClientSession
) -> None:
    xta = await start_xta(page_size=1)
    ids = [
        (
            await enqueue(
                http,
                xta.url,
                AUTHORITY,
                metadata=antrag_metadata(),
                message=ANTRAG,
                attachments=[("plan.pdf", b"%PDF-1.7 plan", "application/pdf")],
            )
        )["message_id"]
        for _ in range(3)
    ]
    plain = plain_for(xta)
    first = await plain.call(
        "MsgBoxPort", "getStatusList", maxListItems=1, ListForm="MessageMetaData", **author()
    )
    # zeep gives body and headers apart (by WSDL part name): osci:MsgBoxResponse is FetchResponseHeader.
    [listed] = first.body.MessageMetaData
    assert listed.MsgIdentification.MessageID._value_1 == ids[0]
    assert listed.Qualifier.MessageType.code == "baugenehmigung.antrag.0200"
    response = first.header.FetchResponseHeader
    assert response.ItemsPending == 2
    second = await plain.call(
        "MsgBoxPort",
        "getNextStatusList",
        MsgBoxRequestID=response.MsgBoxRequestID,
        LastMsgReceived=zeep.xsd.SkipValue,  # optional in the schema; zeep wants it said
        **author(),
    )
    assert [m.MsgIdentification.MessageID._value_1 for m in second.body.MessageMetaData] == [ids[1]]

    fetched = await plain.call(
        "MsgBoxPort", "getMessage", MsgSelector={"MessageID": [{"_value_1": ids[0]}]}, **author()
    )
    assert fetched.header.MessageMetaData.MsgIdentification.MessageID._value_1 == ids[0]
    container = fetched.body.ContentContainer
    # zeep resolved the MTOM parts (xop:Include) into the base64Binary values.
    assert container.Message._value_1 == ANTRAG and container.Message.contentType == "application/xml"
    assert [(a._value_1, a.filename) for a in container.Attachment] == [(b"%PDF-1.7 plan", "plan.pdf")]
    request_id = fetched.header.FetchResponseHeader.MsgBoxRequestID
    assert fetched.header.FetchResponseHeader.ItemsPending == 2

    following = await plain.call(
        "MsgBoxPort",
        "getNextMessage",
        MsgBoxRequestID=request_id,
        LastMsgReceived=[{"_value_1": ids[0]}],
        **author(),
    )
    assert following.header.MessageMetaData.MsgIdentification.MessageID._value_1 == ids[1]
    assert (
        await plain.call(
            "MsgBoxPort",
            "close",
            MsgBoxRequestID=request_id,
            LastMsgReceived=[{"_value_1": ids[1]}],
            **author(),
        )
        is None
    )
    assert [c["message_id"] for c in await get_json(http, xta.url, "/_sim/closed")] == ids[:2]
    assert list(xta.state.mailbox(AUTHORITY)) == ids[2:]

    fault, code = await plain.fault(
        "MsgBoxPort", "getMessage", MsgSelector={"MessageID": [{"_value_1": ids[0]}]}, **author()
    )
    assert code == "9070" and "InvalidMessageID" in etree.QName(fault.detail[0]).localname
    _, code = await plain.fault(
        "MsgBoxPort", "close", MsgBoxRequestID=request_id, LastMsgReceived=[{"_value_1": ids[0]}], **author()
    )
    assert code == "9070"
    _, code = await plain.fault(
        "MsgBoxPort",
        "getNextMessage",
        MsgBoxRequestID="urn:uuid:unknown",
        LastMsgReceived=zeep.xsd.SkipValue,
        **author(),
    )
    assert code == "9070"


async def test_mailbox_answers_inline_content_when_so_configured(
    start_xta: StartXta, plain_for: Callable[..., Plain], http: aiohttp.ClientSession
) -> None:
    xta = await start_xta(inline_content=True)
    answer = await enqueue(http, xta.url, AUTHORITY, metadata=antrag_metadata(), message=ANTRAG)
    fetched = await plain_for(xta).call(
        "MsgBoxPort",
        "getMessage",
        MsgSelector={"MessageID": [{"_value_1": answer["message_id"]}]},
        **author(),
    )
    assert fetched.body.ContentContainer.Message._value_1 == ANTRAG


@pytest.mark.parametrize("mtom", [False, True], ids=["inline-base64", "mtom"])
async def test_send_message_then_transport_report(
    start_xta: StartXta, plain_for: Callable[..., Plain], http: aiohttp.ClientSession, mtom: bool
) -> None:
    xta = await start_xta()
    plain = plain_for(xta, MtomTransport(timeout=10, operation_timeout=10) if mtom else None)
    message_id = str((await plain.call("ManagementPort", "createMessageId", **author()))._value_1)
    content = b"<baugenehmigung.formellePruefung.0201/>" * 50
    assert await send(plain, message_id, content) is None
    [sent] = await get_json(http, xta.url, "/_sim/sent")
    assert sent["message_id"] == message_id
    assert await sent_content(http, xta.url, message_id) == content
    assert PORTAL in xta.state.mailboxes and message_id in xta.state.mailbox(PORTAL)

    report = await plain.call("ManagementPort", "getTransportReport", _value_1=message_id, **author())
    assert report.MessageMetaData.MsgIdentification.MessageID._value_1 == message_id
    assert report.MessageStatus.Status == 0

    # The same id again: refused with the WSDL's ParameterIsNotValidException (9024).
    _, code = await plain.fault(
        "SendXtaPort",
        "sendMessage",
        **{
            "ContentContainer": {
                "Message": {"_value_1": content, "contentType": "application/xml", "size": len(content)}
            },
            "_soapheaders": {"MessageMetaData": metadata(message_id, size=len(content))},
        },
    )
    assert code == "9024"
    _, code = await plain.fault(
        "ManagementPort", "getTransportReport", _value_1="urn:de:xta:messageid:unbekannt", **author()
    )
    assert code == "9070"


async def test_cancel_message_before_its_not_before_time(
    start_xta: StartXta, plain_for: Callable[..., Plain], http: aiohttp.ClientSession
) -> None:
    xta = await start_xta()
    plain = plain_for(xta)
    later = str((await plain.call("ManagementPort", "createMessageId", **author()))._value_1)
    now = str((await plain.call("ManagementPort", "createMessageId", **author()))._value_1)
    await send(
        plain, later, b"<later/>", not_before=datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    )
    await send(plain, now, b"<now/>")
    assert await plain.call("ManagementPort", "cancelMessage", _value_1=later, **author()) is None
    assert later not in xta.state.mailbox(PORTAL)
    report = await plain.call("ManagementPort", "getTransportReport", _value_1=later, **author())
    assert report.MessageStatus.Status == 3
    fault, code = await plain.fault("ManagementPort", "cancelMessage", _value_1=now, **author())
    assert code == "9101" and etree.QName(fault.detail[0]).localname == "CancelDeniedException"
    _, code = await plain.fault(
        "ManagementPort", "cancelMessage", _value_1="urn:de:xta:messageid:fremd", **author()
    )
    assert code == "9022"


async def test_lookup_service(start_xta: StartXta, plain_for: Callable[..., Plain]) -> None:
    xta = await start_xta(services={PORTAL: [XBAU_SERVICE]})
    plain = plain_for(xta)
    answer = await plain.call(
        "ManagementPort",
        "lookupService",
        LookupServiceRequestList=[
            {
                "LookupService": {
                    "Reader": {"Identifier": {"_value_1": reader, "type": "xoev"}},
                    "ServiceType": XBAU_SERVICE,
                }
            }
            for reader in (PORTAL, "vbe:anderswo")
        ],
        **author(),
    )
    assert [(r.Reader.Identifier._value_1, r.ServiceType) for r in answer] == [
        (PORTAL, XBAU_SERVICE),
        ("vbe:anderswo", XBAU_SERVICE),
    ]
    assert answer[0].IsServiceAvailableValue.ServiceIsAvailable is True
    # zeep 4.3 drops a choice whose value is false (an empty IsServiceAvailableValue); the wire says it.
    received = plain.history.last_received["envelope"]
    values = received.findall(f".//{{{XTA_NS}}}ServiceIsAvailable")
    assert [v.text for v in values] == ["true", "false"]


async def test_every_answer_carries_ws_addressing_zeep_can_relate(
    start_xta: StartXta, plain_for: Callable[..., Plain], http: aiohttp.ClientSession
) -> None:
    xta = await start_xta()
    plain = plain_for(xta)
    service = plain.ports["ManagementPort"]
    envelope = plain.client.create_message(service, "checkAccountActive", **author())
    request_id = envelope.findtext(".//{http://www.w3.org/2005/08/addressing}MessageID")
    http_headers = {
        "Content-Type": 'application/soap+xml; charset=utf-8; action="http://www.xta.de/XTA/CheckAccountActive"'
    }
    answer = await asyncio.to_thread(
        requests.post,
        f"{xta.url}/ManagementPort",
        data=etree.tostring(envelope),
        headers=http_headers,
        timeout=10,
    )
    assert answer.status_code == 200
    reply = etree.fromstring(answer.content)
    assert reply.findtext(".//{http://www.w3.org/2005/08/addressing}RelatesTo") == request_id
    assert (
        reply.findtext(".//{http://www.w3.org/2005/08/addressing}Action")
        == "http://www.xta.de/XTA/CheckAccountActive"
    )


# Every operation the simulator offers, with values zeep accepts: for the declared-fault checks.
CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("ManagementPort", "checkAccountActive", {}),
    ("ManagementPort", "createMessageId", {}),
    ("ManagementPort", "getTransportReport", {"_value_1": "urn:de:xta:messageid:x"}),
    ("ManagementPort", "cancelMessage", {"_value_1": "urn:de:xta:messageid:x"}),
    (
        "ManagementPort",
        "lookupService",
        {
            "LookupServiceRequestList": [
                {
                    "LookupService": {
                        "Reader": {"Identifier": {"_value_1": PORTAL, "type": "xoev"}},
                        "ServiceType": XBAU_SERVICE,
                    }
                }
            ]
        },
    ),
    ("MsgBoxPort", "getStatusList", {"maxListItems": 5, "ListForm": "MessageMetaData"}),
    (
        "MsgBoxPort",
        "getNextStatusList",
        {"MsgBoxRequestID": "urn:uuid:x", "LastMsgReceived": zeep.xsd.SkipValue},
    ),
    ("MsgBoxPort", "getMessage", {"MsgSelector": {"MessageID": [{"_value_1": "urn:de:xta:messageid:x"}]}}),
    (
        "MsgBoxPort",
        "getNextMessage",
        {"MsgBoxRequestID": "urn:uuid:x", "LastMsgReceived": zeep.xsd.SkipValue},
    ),
    (
        "MsgBoxPort",
        "close",
        {"MsgBoxRequestID": "urn:uuid:x", "LastMsgReceived": [{"_value_1": "urn:de:xta:messageid:x"}]},
    ),
]


@pytest.mark.parametrize(("port", "operation", "values"), CALLS, ids=[c[1] for c in CALLS])
async def test_technical_trouble_is_the_declared_receiver_fault(
    start_xta: StartXta, plain_for: Callable[..., Plain], port: str, operation: str, values: dict[str, Any]
) -> None:
    xta = await start_xta()
    xta.state.knobs.technical_fault_next = 1
    fault, code = await plain_for(xta).fault(port, operation, **values, **author())
    assert (fault.code, code) == ("env:Receiver", "9030")


@pytest.mark.parametrize(("port", "operation", "values"), CALLS, ids=[c[1] for c in CALLS])
async def test_a_locked_account_gets_the_declared_permission_fault(
    start_xta: StartXta, plain_for: Callable[..., Plain], port: str, operation: str, values: dict[str, Any]
) -> None:
    xta = await start_xta(locked=[AUTHORITY])
    fault, code = await plain_for(xta).fault(port, operation, **values, **author())
    assert (fault.code, code) == ("env:Sender", "9011")


async def test_send_message_sync_is_refused_with_the_declared_sync_async_fault(
    start_xta: StartXta, plain_for: Callable[..., Plain]
) -> None:
    xta = await start_xta()
    plain = plain_for(xta)
    fault, code = await plain.fault(
        "SendXtaPort",
        "sendMessageSync",
        ContentContainer={"Message": {"_value_1": b"<x/>", "contentType": "application/xml"}},
        _soapheaders={"MessageMetaData": metadata("urn:de:xta:messageid:sync", size=4)},
    )
    assert code == "9080" and etree.QName(fault.detail[0]).localname == "SyncAsyncException"
    assert xta.state.sent == []


async def test_transport_report_of_an_empty_message_id_is_the_declared_fault(
    start_xta: StartXta, plain_for: Callable[..., Plain]
) -> None:
    xta = await start_xta()
    _, code = await plain_for(xta).fault("ManagementPort", "getTransportReport", _value_1="", **author())
    assert code == "9070"
