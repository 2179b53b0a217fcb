"""The xoev transport: an xdomea message over the XTA simulator, validated first; answers from the mailbox."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from hub_fachverfahren.xoev import XoevSink
from hub_fachverfahren.xoev.simulator import make_app as fv_make_app
from hub_xta import OutgoingContent, OutgoingMessage, PartyId
from importfolder_helpers import ReturnChannel, answering_context, write_template
from lxml import etree
from xoev_helpers import (
    FV,
    HUB,
    INFORMATION,
    NS,
    SCHEMA,
    SERVICE,
    STATUS_WORDS,
    TEMPLATE,
    Xta,
    answer_message,
    fv_client,
    make_config,
    make_sink,
    receipt,
    sent_to_fv,
)

from hub import AnswerStatus, Application, ConnectorContext, Permanent, Sink
from hub.blobs import BlobStore
from hub.mapping import default_record
from hub.testing import Fault, SinkContract, make_application
from hub.testing.contracts import AnsweringSinkContract, delivery_context
from hub.testing.harness import RunningHub


class TestXoevContract(SinkContract):
    @pytest.fixture(autouse=True)
    def _environment(
        self, tmp_path: Path, connector_context: ConnectorContext, schema_dir: Path, xta: Xta
    ) -> None:
        self.tmp_path = tmp_path
        self.context = dataclasses.replace(connector_context, schemas=schema_dir)
        self.xta = xta

    @pytest_asyncio.fixture
    async def sink(
        self, tmp_path: Path, connector_context: ConnectorContext, schema_dir: Path, xta: Xta
    ) -> XoevSink:
        return make_sink(dataclasses.replace(connector_context, schemas=schema_dir), tmp_path, xta.url)

    async def results(self, sink: Sink, application: Application) -> int:
        wanted = str(uuid.uuid5(uuid.UUID("6a4f3f0e-1d8c-4a53-9d55-0f1e7c1b9a01"), application.id))
        return sum(1 for m in self.xta.state.sent if m.metadata.process_requester == wanted)

    async def faulty_sink(self, fault: Fault) -> Sink | None:
        if fault is Fault.VALIDATION:
            broken = write_template(
                self.tmp_path, "broken.xml.j2", f'<xdomea:{INFORMATION} xmlns:xdomea="{NS}"/>'
            )
            return make_sink(self.context, self.tmp_path, self.xta.url, template=str(broken))
        if fault is Fault.UNREACHABLE:
            return make_sink(self.context, self.tmp_path, "http://127.0.0.1:9")
        if fault is Fault.SERVER_ERROR:
            self.xta.state.knobs.fail_next = 10
            return make_sink(self.context, self.tmp_path, self.xta.url)
        # TIMEOUT: the XTA server answers later than the client waits
        self.xta.state.knobs.latency_seconds = 1
        sink = make_sink(self.context, self.tmp_path, self.xta.url)
        sink.config.xta.timeout_seconds = 0.2
        return sink


@pytest.fixture
def channel() -> ReturnChannel:
    return ReturnChannel()


@pytest.fixture
def context(
    connector_context: ConnectorContext, channel: ReturnChannel, schema_dir: Path
) -> ConnectorContext:
    return dataclasses.replace(answering_context(connector_context, channel), schemas=schema_dir)


async def test_message_is_valid_xdomea_and_sent_once(
    context: ConnectorContext, xta: Xta, tmp_path: Path, blobs: BlobStore, schema_dir: Path
) -> None:
    sink = make_sink(context, tmp_path, xta.url)
    app = await make_application(blobs)
    store: dict[str, Any] = {}

    first = await sink.deliver(default_record(app), delivery_context(app, blobs, store))
    again = await sink.deliver(default_record(app), delivery_context(app, blobs, store))

    assert not first.duplicate and again.duplicate and again.reference == first.reference
    (message,) = sent_to_fv(xta)
    assert (
        message.metadata.message_type == INFORMATION and message.metadata.process_requester == first.reference
    )
    content = etree.parse(str(message.message.path))
    schema = etree.XMLSchema(etree.parse(str(schema_dir / SCHEMA)))
    assert schema.validate(content), schema.error_log
    assert content.findtext(f"{{{NS}}}Kopf/{{{NS}}}ProzessID") == first.reference
    # the record's documents travel as XTA attachments, byte for byte
    documents = default_record(app).documents
    assert [a.filename for a in message.attachments] == [d.name for d in documents]
    for attachment, document in zip(message.attachments, documents, strict=True):
        assert document.blob is not None
        assert attachment.path.read_bytes() == await blobs.read_bytes(document.blob)


async def test_a_retry_after_a_lost_confirmation_sends_nothing_twice(
    context: ConnectorContext, xta: Xta, tmp_path: Path, blobs: BlobStore
) -> None:
    sink = make_sink(context, tmp_path, xta.url)
    app = await make_application(blobs)
    store: dict[str, Any] = {}
    await sink.deliver(default_record(app), delivery_context(app, blobs, store))
    store["xoev"]["sent"] = False  # the crash came between the send and the checkpoint

    again = await sink.deliver(default_record(app), delivery_context(app, blobs, store))

    assert again.duplicate
    assert len(xta.state.sent) == 1


async def test_an_invalid_message_is_permanent_and_not_sent(
    context: ConnectorContext, xta: Xta, tmp_path: Path, blobs: BlobStore
) -> None:
    # The applicant's name where the schema wants a UUID: refused, and the name is not in the error.
    text = TEMPLATE.replace(
        "<xdomea:ProzessID>{{ process_id }}", "<xdomea:ProzessID>{{ application.form.nachname }}"
    )
    broken = write_template(tmp_path, "broken.xml.j2", text)
    sink = make_sink(context, tmp_path, xta.url, template=str(broken))
    app = await make_application(blobs)

    with pytest.raises(Permanent, match=r"does not meet xdomea/3\.0\.0/xsd") as refused:
        await sink.deliver(default_record(app), delivery_context(app, blobs))
    assert "ProzessID" in str(refused.value) and "Groß" not in str(refused.value)
    assert xta.state.sent == []


@pytest_asyncio.fixture
async def fachverfahren(xta: Xta, schema_dir: Path, tmp_path: Path) -> AsyncIterator[TestClient]:
    """The simulated Fachverfahren on the XTA simulator, reading the mailbox of FV."""
    app = fv_make_app(xta.url, FV, schema_dir, tmp_path / "fv-blobs")
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def test_round_trip_with_the_simulated_fachverfahren(
    context: ConnectorContext,
    channel: ReturnChannel,
    xta: Xta,
    tmp_path: Path,
    blobs: BlobStore,
    fachverfahren: TestClient,
) -> None:
    sink = make_sink(context, tmp_path, xta.url)
    app = await make_application(blobs)
    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))
    channel.known[delivery.reference] = app.id

    received = await (await fachverfahren.post("/control/receive")).json()
    assert received == {"opened": [delivery.reference], "refused": []}
    assert await sink.poll_answers() == 1
    response = await fachverfahren.post("/control/decide", json={"reference": delivery.reference})
    assert response.status == 200
    assert await sink.poll_answers() == 1

    accepted, decided = channel.answers.values()
    case_number = (await response.json())["case_number"]
    assert (accepted.reference, accepted.status, accepted.case_number) == (
        delivery.reference,
        AnswerStatus.ACCEPTED,
        case_number,
    )
    assert (decided.status, decided.case_number) == (AnswerStatus.DECIDED, case_number)
    assert accepted.decision is None and decided.decision is not None
    assert (await blobs.read_bytes(decided.decision.blob)).startswith(b"%PDF-1.4")
    to_hub = [m for m in xta.state.sent if m.metadata.reader.identifier == HUB]
    assert len(to_hub) == 2 and all(xta.state.was_closed(m.metadata.message_id) for m in to_hub)
    assert xta.state.mailbox(HUB) == {} and xta.state.mailbox(FV) == {}
    assert await sink.poll_answers() == 0 and len(channel.answers) == 2


async def test_the_simulated_fachverfahren_refuses_a_message_that_does_not_meet_its_schema(
    context: ConnectorContext, xta: Xta, schema_dir: Path, blobs: BlobStore, fachverfahren: TestClient
) -> None:
    fv = fv_client(xta, schema_dir, context)  # a sender that does not validate
    content = await blobs.write_bytes(f'<xdomea:{INFORMATION} xmlns:xdomea="{NS}"/>'.encode())
    await fv.send_message(
        OutgoingMessage(
            reader=PartyId(identifier=FV),
            service=SERVICE,
            business_scenario="XDOMEA_DATA",
            message_type=INFORMATION,
            payload_schema=NS,
            content=OutgoingContent(blob=content.ref, size=content.size, content_type="application/xml"),
        )
    )

    received = await (await fachverfahren.post("/control/receive")).json()

    assert received["opened"] == [] and len(received["refused"]) == 1
    cases = await (await fachverfahren.get("/control/cases")).json()
    assert "does not meet" in cases["refused"][0]["error"]
    assert xta.state.mailbox(HUB) == {}  # nothing answered


async def test_an_answer_naming_no_application_is_held_not_closed(
    context: ConnectorContext,
    channel: ReturnChannel,
    xta: Xta,
    tmp_path: Path,
    blobs: BlobStore,
    schema_dir: Path,
) -> None:
    sink = make_sink(context, tmp_path, xta.url)
    fv = fv_client(xta, schema_dir, context)
    unknown = await blobs.write_bytes(receipt(str(uuid.uuid4()), "K3-2026-0043"))
    await fv.send_message(answer_message(unknown.ref, unknown.size))

    assert await sink.poll_answers() == 0

    (left,) = xta.state.mailbox(HUB).values()
    assert not xta.state.was_closed(left.metadata.message_id)
    held = await context.held.lookup([left.metadata.message_id])
    assert held[left.metadata.message_id].reason_code == "unknown_application"
    assert await sink.poll_answers() == 0
    assert channel.answers == {}


async def test_another_connectors_messages_in_the_same_account_are_left_alone(
    context: ConnectorContext, xta: Xta, tmp_path: Path, blobs: BlobStore, schema_dir: Path
) -> None:
    sink = make_sink(context, tmp_path, xta.url)
    assert sink.config.answers is not None
    sink.config.answers.others = [INFORMATION]
    fv = fv_client(xta, schema_dir, context)
    content = await blobs.write_bytes(b"<x/>")
    message = answer_message(content.ref, content.size)
    theirs = await fv.send_message(message.model_copy(update={"message_type": INFORMATION}))
    unknown = await fv.send_message(message.model_copy(update={"message_type": "Fremd.0001"}))

    assert await sink.poll_answers() == 0

    held = await context.held.lookup([theirs.message_id, unknown.message_id])
    assert list(held) == [unknown.message_id]  # an unknown type is held; the other reader's is not
    assert xta.state.mailbox(HUB)[theirs.message_id].fetches == 0
    assert not xta.state.was_closed(theirs.message_id)


async def test_the_schema_must_be_in_the_schema_directory(
    tmp_path: Path, connector_context: ConnectorContext
) -> None:
    sink = make_sink(dataclasses.replace(connector_context, schemas=tmp_path), tmp_path, "http://127.0.0.1:9")
    result = await sink.check()
    assert not result.ok and "no schema directory" in result.message


class TestXoevAnswers(AnsweringSinkContract):
    """The return channel's contract, through a hub, the XTA simulator and the Fachverfahren's answers."""

    @pytest_asyncio.fixture
    async def answering_hub(self, hub_factory: Any, xta: Xta, schema_dir: Path, tmp_path: Path) -> RunningHub:
        self.xta = xta
        self.sent: dict[int, list[str]] = {}
        template = write_template(tmp_path, "k3-0101.xml.j2", TEMPLATE)
        settings = make_config(xta.url, template)
        settings["poll_seconds"] = 0.1
        running: RunningHub = await hub_factory(
            {"json": {"type": "test-json"}, "fv": settings},
            [{"name": "r", "from": "json", "to": ["fv"]}],
            schemas=str(schema_dir),
        )
        sink = running.hub.connectors["fv"]
        self.fv = fv_client(xta, schema_dir, sink.context)
        return running

    async def submit(self, running: RunningHub, n: int) -> str:
        status, body = await running.post("/intake/json/jagdschein", json={"id": f"xoev-{n}", "form": {}})
        assert status == 202, body
        return str(body["application_id"])

    async def give_answer(
        self, running: RunningHub, application_id: str, n: int, status: AnswerStatus
    ) -> None:
        app = await running.journal.get_application(application_id)
        words = {v: k for k, v in STATUS_WORDS.items()}
        content = receipt(app.correlations["fv"], f"K3-{n}", words[status.value])
        blob = await running.hub.blobs.write_bytes(content)
        sent = await self.fv.send_message(answer_message(blob.ref, blob.size))
        self.sent.setdefault(n, []).append(sent.message_id)

    async def acknowledgements(self, running: RunningHub, application_id: str, n: int) -> int:
        return sum(self.xta.state.was_closed(message_id) for message_id in self.sent.get(n, []))


async def test_message_by_xslt_over_the_canonical_xml(
    context: ConnectorContext, xta: Xta, tmp_path: Path, blobs: BlobStore, schema_dir: Path
) -> None:
    # The template's message, made by a stylesheet: the values come from the canonical XML.
    body = TEMPLATE.split("\n", 1)[1]
    body = body.replace("{{ process_id }}", '<xsl:value-of select="process_id"/>')
    body = body.replace(
        '{{ record.service }}: {{ application.form.nachname|default("") }}',
        '<xsl:value-of select="record/service"/>',
    )
    stylesheet = write_template(
        tmp_path,
        "0101.xsl",
        '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
        f'<xsl:template match="/aktenhub-import">{body}</xsl:template></xsl:stylesheet>',
    )
    sink = make_sink(context, tmp_path, xta.url, template=None, xslt=str(stylesheet))
    app = await make_application(blobs)

    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))

    (message,) = sent_to_fv(xta)
    content = etree.parse(str(message.message.path))
    schema = etree.XMLSchema(etree.parse(str(schema_dir / SCHEMA)))
    assert schema.validate(content), schema.error_log
    assert content.findtext(f"{{{NS}}}Kopf/{{{NS}}}ProzessID") == delivery.reference
    assert content.findtext(f".//{{{NS}}}Betreff").strip() == app.service
