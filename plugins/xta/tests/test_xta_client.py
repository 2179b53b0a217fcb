"""The XTA client against the simulator: every operation, the mailbox cycle, fault classification."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest
from hub_xta import (
    InvalidMessageIdFault,
    OutgoingContent,
    OutgoingMessage,
    ParameterIsNotValidFault,
    PermissionDeniedFault,
    TechnicalProblemFault,
    XtaPermanentFault,
    XtaRetryableFault,
    XtaSettings,
)
from hub_xta.errors import fault_class
from hub_xta.simulator import enqueue, get_json, sent_content, set_faults
from pydantic import ValidationError
from xta_helpers import (
    AUTHORITY,
    PORTAL,
    XBAU_NS,
    XBAU_SERVICE,
    StartXta,
    antrag_metadata,
    make_client,
    party,
    sha256,
)

from hub import Permanent, Retryable
from hub.blobs import BlobStore

ANTRAG = b'<?xml version="1.0"?><baugenehmigung.antrag.0200 xmlns="http://www.xleitstelle.de/xbau/2/6"/>'


async def test_create_message_id(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta()
    client = make_client(xta.url, schema_dir, http, blobs)
    first = await client.create_message_id()
    second = await client.create_message_id()
    assert first.startswith("urn:de:xta:messageid:") and first != second
    assert {first, second} <= xta.state.issued_ids


async def test_check_account_active(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta(accounts=[AUTHORITY, "vbe:gesperrt"], locked=["vbe:gesperrt"])
    await make_client(xta.url, schema_dir, http, blobs).check_account_active()
    assert (await make_client(xta.url, schema_dir, http, blobs).check()).ok

    with pytest.raises(PermissionDeniedFault) as locked:
        await make_client(xta.url, schema_dir, http, blobs, account="vbe:gesperrt").check_account_active()
    assert isinstance(locked.value, Permanent)
    assert locked.value.code == "9011" and locked.value.exception == "PermissionDeniedException"

    unknown = await make_client(xta.url, schema_dir, http, blobs, account="vbe:unbekannt").check()
    assert not unknown.ok and "vbe:unbekannt" in unknown.message and unknown.details["code"] == "9012"


async def test_mailbox_cycle_list_fetch_close(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta()
    plan = b"%PDF-1.7 Lageplan " + bytes(range(256)) * 40
    one = await enqueue(
        http,
        xta.url,
        AUTHORITY,
        metadata=antrag_metadata(subject="Bauantrag Flur 3"),
        message=ANTRAG,
        message_name="antrag.xml",
        attachments=[("lageplan.pdf", plan, "application/pdf")],
    )
    two = await enqueue(http, xta.url, AUTHORITY, metadata=antrag_metadata(), message=b"<zwei/>")
    await enqueue(http, xta.url, "vbe:andere-behoerde", metadata=antrag_metadata(), message=b"<fremd/>")
    client = make_client(xta.url, schema_dir, http, blobs)

    listed = await client.get_status_list()
    assert [m.message_id for m in listed.messages] == [one["message_id"], two["message_id"]]
    first = listed.messages[0]
    assert first.author.identifier == PORTAL and first.author.name == "Bauportal.NRW"
    assert first.reader.identifier == AUTHORITY
    assert first.service == XBAU_SERVICE and first.payload_schema == XBAU_NS
    assert first.message_type == "baugenehmigung.antrag.0200" and first.business_scenario == "XBAU_DATA"
    assert first.subject == "Bauantrag Flur 3"
    assert first.size == len(ANTRAG) + len(plan)
    assert first.delivered is not None and first.initial_fetch is None

    message = await client.get_message(one["message_id"])
    assert message.metadata.message_id == one["message_id"] and message.request_id
    assert message.message.sha256 == sha256(ANTRAG) == one["sha256"]
    assert message.message.filename == "antrag.xml" and message.message.content_type == "application/xml"
    assert await blobs.read_bytes(message.message.blob) == ANTRAG
    [attachment] = message.attachments
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        "lageplan.pdf",
        "application/pdf",
        len(plan),
    )
    assert attachment.sha256 == sha256(plan) and await blobs.read_bytes(attachment.blob) == plan
    assert message.metadata.initial_fetch is not None and message.pending == 1

    await client.close(message.message_id)
    remaining = await client.list_messages()
    assert [m.message_id for m in remaining] == [two["message_id"]]
    closed = await get_json(http, xta.url, "/_sim/closed")
    assert closed == [
        {
            "reader": AUTHORITY,
            "message_id": one["message_id"],
            "request_id": message.request_id,  # the fetch's MsgBoxRequestID
            "at": closed[0]["at"],
        }
    ]
    with pytest.raises(InvalidMessageIdFault):  # closed: gone for good
        await client.get_message(one["message_id"])


async def test_not_closed_is_delivered_again(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta()
    queued = await enqueue(http, xta.url, AUTHORITY, metadata=antrag_metadata(), message=ANTRAG)
    client = make_client(xta.url, schema_dir, http, blobs)
    fetched = await client.get_message(queued["message_id"])
    # The hub "crashed" before close: a new client (a restarted process) sees the message again.
    restarted = make_client(xta.url, schema_dir, http, blobs)
    again = await restarted.list_messages()
    assert [m.message_id for m in again] == [queued["message_id"]]
    refetched = await restarted.get_message(queued["message_id"])
    assert refetched.message.sha256 == fetched.message.sha256
    assert refetched.request_id != fetched.request_id
    assert xta.state.mailbox(AUTHORITY)[queued["message_id"]].fetches == 2
    await restarted.close(queued["message_id"])
    assert await restarted.list_messages() == []


async def test_unknown_message_id_is_permanent(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta()
    client = make_client(xta.url, schema_dir, http, blobs)
    with pytest.raises(InvalidMessageIdFault) as fetch:
        await client.get_message("urn:de:xta:messageid:gibt-es-nicht")
    assert isinstance(fetch.value, Permanent) and not isinstance(fetch.value, Retryable)
    assert fetch.value.code == "9070" and fetch.value.soap_code == "Sender"
    assert "gibt-es-nicht" in fetch.value.reason
    with pytest.raises(InvalidMessageIdFault):
        await client.close("urn:de:xta:messageid:gibt-es-nicht")


async def test_http_503_is_retryable(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta()
    client = make_client(xta.url, schema_dir, http, blobs)
    await set_faults(http, xta.url, fail_next=1, fail_status=503)
    with pytest.raises(Retryable, match="answered 503"):
        await client.get_status_list()
    assert (await client.get_status_list()).messages == ()  # the next attempt goes through


async def test_http_4xx_is_permanent(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta()
    client = make_client(xta.url, schema_dir, http, blobs)
    await set_faults(http, xta.url, fail_next=1, fail_status=404)
    with pytest.raises(Permanent, match="refused the request \\(404\\)"):
        await client.check_account_active()


async def test_technical_problem_fault_is_retryable(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta(technical_fault_next=1)
    client = make_client(xta.url, schema_dir, http, blobs)
    with pytest.raises(TechnicalProblemFault) as fault:
        await client.get_status_list()
    assert isinstance(fault.value, Retryable) and fault.value.code == "9030"
    assert fault.value.soap_code == "Receiver"


async def test_unreachable_timeout_and_dropped_connection_are_retryable(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    refused = make_client(f"http://127.0.0.1:{closed_port}", schema_dir, http, blobs)
    with pytest.raises(Retryable, match="connection"):
        await refused.create_message_id()

    xta = await start_xta(latency_seconds=1.0)
    slow = make_client(xta.url, schema_dir, http, blobs, timeout_seconds=0.2)
    with pytest.raises(Retryable, match="no answer"):
        await slow.get_status_list()

    dropping = await start_xta(drop_next=1)
    with pytest.raises(Retryable):
        await make_client(dropping.url, schema_dir, http, blobs).get_status_list()


async def test_send_message_is_recorded_with_content(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta()
    client = make_client(xta.url, schema_dir, http, blobs)
    receipt = b'<?xml version="1.0"?><prozessnachrichten.eingangsbestaetigung.1120/>'
    extra = bytes(range(256)) * 1000
    stored = await blobs.write_bytes(receipt)
    extra_blob = await blobs.write_bytes(extra)
    sent = await client.send_message(
        OutgoingMessage(
            reader=party(PORTAL),
            service=XBAU_SERVICE,
            business_scenario="XBAU_DATA",
            business_scenario_list_uri="urn:de:dataport:codeliste:business.scenario",
            business_scenario_list_version="1",
            message_type="prozessnachrichten.eingangsbestaetigung.1120",
            payload_schema="http://www.xleitstelle.de/xbau/kernmodul/1/3/0",
            subject="Eingangsbestätigung",
            in_reply_to=("urn:de:xta:messageid:antrag-1",),
            process_requester="63-2025-0042",
            content=OutgoingContent(
                blob=stored.ref, size=stored.size, content_type="application/xml", filename="1120.xml"
            ),
            attachments=(
                OutgoingContent(
                    blob=extra_blob.ref,
                    size=extra_blob.size,
                    content_type="application/pdf",
                    filename="a.pdf",
                ),
            ),
        )
    )
    assert sent.message_id in xta.state.issued_ids  # asked the server for the id
    assert sent.author.identifier == AUTHORITY and sent.size == len(receipt) + len(extra)
    [record] = await get_json(http, xta.url, "/_sim/sent")
    assert record["message_id"] == sent.message_id
    meta = record["metadata"]
    assert meta["author"]["identifier"] == AUTHORITY and meta["reader"]["identifier"] == PORTAL
    assert meta["message_type"] == "prozessnachrichten.eingangsbestaetigung.1120"
    assert meta["in_reply_to"] == ["urn:de:xta:messageid:antrag-1"]
    assert meta["process_requester"] == "63-2025-0042"
    assert meta["subject"] == "Eingangsbestätigung"
    assert record["message"] == {
        "size": len(receipt),
        "sha256": sha256(receipt),
        "content_type": "application/xml",
        "filename": "1120.xml",
        "description": None,
    }
    assert record["attachments"][0]["sha256"] == sha256(extra)
    assert await sent_content(http, xta.url, sent.message_id) == receipt
    assert await sent_content(http, xta.url, sent.message_id, 1) == extra

    # The simulator routes it to the portal's mailbox: the portal reads what we sent.
    portal = make_client(xta.url, schema_dir, http, blobs, account=PORTAL)
    delivered = await portal.get_message(sent.message_id)
    assert delivered.metadata.in_reply_to == ("urn:de:xta:messageid:antrag-1",)
    assert delivered.metadata.process_requester == "63-2025-0042"
    assert await blobs.read_bytes(delivered.message.blob) == receipt

    with pytest.raises(ParameterIsNotValidFault) as taken:  # the same id again
        await client.send_message(
            OutgoingMessage(
                reader=party(PORTAL),
                service=XBAU_SERVICE,
                business_scenario="XBAU_DATA",
                message_type="prozessnachrichten.eingangsbestaetigung.1120",
                payload_schema="http://www.xleitstelle.de/xbau/kernmodul/1/3/0",
                message_id=sent.message_id,
                content=OutgoingContent(blob=stored.ref, size=stored.size, content_type="application/xml"),
            )
        )
    assert taken.value.code == "9024" and isinstance(taken.value, Permanent)


async def test_send_refuses_missing_blob_and_too_large(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta(max_message_size=100)
    client = make_client(xta.url, schema_dir, http, blobs)

    def message(blob: str, size: int) -> OutgoingMessage:
        return OutgoingMessage(
            reader=party(PORTAL),
            service=XBAU_SERVICE,
            business_scenario="XBAU_DATA",
            message_type="x",
            payload_schema=XBAU_NS,
            content=OutgoingContent(blob=blob, size=size, content_type="application/xml"),
        )

    with pytest.raises(Permanent, match="not in the blob store"):
        await client.send_message(message("sha256:" + "0" * 64, 1))
    large = await blobs.write_bytes(b"x" * 101)
    with pytest.raises(ParameterIsNotValidFault) as fault:
        await client.send_message(message(large.ref, large.size))
    assert fault.value.code == "9023"
    assert xta.state.sent == []


async def test_status_list_pages(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    xta = await start_xta(page_size=2)
    ids = [
        (await enqueue(http, xta.url, AUTHORITY, metadata=antrag_metadata(), message=f"<m{i}/>".encode()))[
            "message_id"
        ]
        for i in range(5)
    ]
    client = make_client(xta.url, schema_dir, http, blobs, page_size=2)
    first = await client.get_status_list()
    assert len(first.messages) == 2 and first.pending == 3
    assert [m.message_id for m in await client.list_messages()] == ids


async def test_inline_base64_content(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore
) -> None:
    """A server that answers without MTOM (base64 inside the envelope) works too, within max_envelope."""
    xta = await start_xta(inline_content=True)
    data = bytes(range(256)) * 300
    queued = await enqueue(
        http,
        xta.url,
        AUTHORITY,
        metadata=antrag_metadata(),
        message=ANTRAG,
        attachments=[("a.bin", data, "x/y")],
    )
    client = make_client(xta.url, schema_dir, http, blobs)
    message = await client.get_message(queued["message_id"])
    assert await blobs.read_bytes(message.message.blob) == ANTRAG
    assert message.attachments[0].sha256 == sha256(data)
    small = make_client(xta.url, schema_dir, http, blobs, max_envelope=10_000)
    with pytest.raises(Permanent, match="larger than 10000 bytes"):
        await small.get_message(queued["message_id"])


def test_settings_validation() -> None:
    account = {"identifier": AUTHORITY}
    settings = XtaSettings.model_validate({"url": "https://xta.example/ws/", "account": account})
    assert settings.address("MsgBoxPort") == "https://xta.example/ws/MsgBoxPort"
    explicit = XtaSettings.model_validate(
        {"url": "https://xta.example/ws", "send_url": "https://send.example/x", "account": account}
    )
    assert explicit.address("SendXtaPort") == "https://send.example/x"
    with pytest.raises(ValidationError, match="set `url`"):
        XtaSettings.model_validate({"msgbox_url": "https://xta.example/mb", "account": account})
    with pytest.raises(ValidationError, match="http"):
        XtaSettings.model_validate({"url": "ftp://xta.example", "account": account})
    with pytest.raises(ValidationError, match="client_key given without client_cert"):
        XtaSettings.model_validate({"url": "https://x.example", "account": account, "client_key": "/k.pem"})


def test_only_receiver_faults_are_worth_a_retry() -> None:
    assert fault_class(None, "Receiver") is XtaRetryableFault
    for code in ("Sender", "MustUnderstand", "VersionMismatch", "DataEncodingUnknown"):
        assert fault_class(None, code) is XtaPermanentFault, code
