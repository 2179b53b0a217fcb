"""Offline, hardened WSDL loading; the client's MTOM reading against servers that encode differently."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hub_xta import XtaProtocolError, XtaSchemaError, load_wsdl
from hub_xta.models import MessageMetaData, PartyId
from hub_xta.simulator import soap
from hub_xta.simulator.state import StoredContent
from hub_xta.wsdl import LocalTransport, XtaWsdl, xta_directory
from hub_xta.xml import SOAP12, WSA, parse_xml, qname
from lxml import etree
from xta_helpers import AUTHORITY, PORTAL, make_client, sha256

from hub.blobs import BlobStore


def test_local_transport_refuses_network_and_foreign_files(schema_dir: Path, tmp_path: Path) -> None:
    transport = LocalTransport(xta_directory(schema_dir))
    assert transport.load(str(xta_directory(schema_dir) / "ws-addr.xsd")).startswith(b"<?xml")
    for url in ("http://www.w3.org/2005/08/addressing/ws-addr.xsd", "https://example.org/x.xsd", "ftp://h/x"):
        with pytest.raises(XtaSchemaError, match="only local schema files"):
            transport.load(url)
    (tmp_path / "secret.xsd").write_text("<x/>")
    with pytest.raises(XtaSchemaError, match="outside"):
        transport.load(str(tmp_path / "secret.xsd"))
    with pytest.raises(XtaSchemaError, match="outside"):
        transport.load(str(xta_directory(schema_dir) / ".." / "README.md"))


def _copy(schema_dir: Path, target: Path) -> Path:
    shutil.copytree(xta_directory(schema_dir), target)
    return target


def test_wsdl_importing_a_remote_schema_is_refused(schema_dir: Path, tmp_path: Path) -> None:
    copy = _copy(schema_dir, tmp_path / "xta")
    wsdl = copy / "XTA.wsdl"
    wsdl.chmod(0o644)
    text = wsdl.read_text(encoding="utf-8")
    wsdl.write_text(
        text.replace('schemaLocation="OSCI2_02.xsd"', 'schemaLocation="http://127.0.0.1:9/OSCI2_02.xsd"')
    )
    with pytest.raises(XtaSchemaError):
        XtaWsdl(copy)


def test_wsdl_with_entities_is_refused(schema_dir: Path, tmp_path: Path) -> None:
    copy = _copy(schema_dir, tmp_path / "xta")
    wsdl = copy / "XTA.wsdl"
    wsdl.chmod(0o644)
    text = wsdl.read_text(encoding="utf-8")
    wsdl.write_text(
        text.replace(
            "<definitions", '<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<definitions', 1
        )
    )
    with pytest.raises(XtaSchemaError):
        XtaWsdl(copy)


def test_schema_directory_is_required(tmp_path: Path) -> None:
    with pytest.raises(XtaSchemaError, match=r"no xta/XTA\.wsdl"):
        load_wsdl(tmp_path)


def _metadata(message_id: str) -> MessageMetaData:
    return MessageMetaData(
        message_id=message_id,
        author=PartyId(identifier=PORTAL),
        reader=PartyId(identifier=AUTHORITY),
        service="urn:s",
        business_scenario="XBAU_DATA",
        message_type="baugenehmigung.antrag.0200",
        payload_schema="http://www.xleitstelle.de/xbau/2/6",
    )


def foreign_server(content: bytes, attachment: bytes, *, mode: str) -> web.Application:
    """An XTA server of another make: base64 parts, root last (mode 'base64-root-last'), or broken."""

    async def handle(request: web.Request) -> web.StreamResponse:
        envelope = parse_xml(await request.read(), limit=10**6)
        relates = envelope.findtext(f"{qname(SOAP12, 'Header')}/{qname(WSA, 'MessageID')}")
        message_id = "urn:de:xta:messageid:fremd"
        contents = [
            (
                StoredContent(Path("m"), len(content), sha256(content), "text/xml", filename="a.xml"),
                "cid:m%40x",
            ),
            (StoredContent(Path("a"), len(attachment), sha256(attachment), "application/pdf"), "cid:a@x"),
        ]
        if mode == "missing-part":
            contents[1] = (contents[1][0], "cid:nirgends@x")
        answer = soap.envelope(
            soap.OSCI_TYPES + "MsgBoxFetchRequest",
            relates,
            [soap.metadata(_metadata(message_id)), soap.msgbox_response("urn:r", 0)],
            [soap.content_container(contents)],
        )
        root = etree.tostring(answer, xml_declaration=True, encoding="utf-8")
        boundary = "uuid:0f1e2d"

        def b64(data: bytes) -> bytes:
            encoded = base64.b64encode(data)
            return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))

        body = b""
        for cid, data in (("m@x", content), ("a@x", attachment)):
            body += (
                (
                    f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                    f"Content-Transfer-Encoding: base64\r\nContent-ID: <{cid}>\r\n\r\n"
                ).encode()
                + b64(data)
                + b"\r\n"
            )
        body += (
            (
                f"--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; "
                f'type="application/soap+xml"\r\nContent-Transfer-Encoding: 8bit\r\n'
                "Content-ID: <root@x>\r\n\r\n"
            ).encode()
            + root
            + f"\r\n--{boundary}--\r\n".encode()
        )
        content_type = (
            f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; start="<root@x>"; '
            'start-info="application/soap+xml"'
        )
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_post("/MsgBoxPort", handle)
    return app


@pytest.mark.parametrize("mode", ["base64-root-last", "missing-part"])
async def test_mtom_from_another_server(
    mode: str, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    content = b"<antrag>" + bytes(range(256)) * 50 + b"</antrag>"
    attachment = bytes(reversed(range(256))) * 3001  # not a multiple of 3: base64 padding at the end
    server = TestServer(foreign_server(content, attachment, mode=mode), host="127.0.0.1")
    await server.start_server()
    try:
        client = make_client(f"http://127.0.0.1:{server.port}", schema_dir, http, blobs)
        if mode == "missing-part":
            with pytest.raises(XtaProtocolError, match="missing MIME part"):
                await client.get_message("urn:de:xta:messageid:fremd")
            return
        message = await client.get_message("urn:de:xta:messageid:fremd")
        assert await blobs.read_bytes(message.message.blob) == content
        assert message.message.filename == "a.xml"
        assert message.attachments[0].sha256 == sha256(attachment)
    finally:
        await server.close()
