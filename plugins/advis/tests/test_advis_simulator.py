"""The simulated ADVIS as a sender sees it over XTA: a valid message opens a case and is answered with its
case number; an invalid one whose nachrichtUUID can be read gets an error answer; one that is no XML is
refused unanswered. Every answer meets the XAusländer schema (the TEST FIXTURE) and every message is
closed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from advis_fixture import NS
from aiohttp.test_utils import TestClient, TestServer
from hub_advis.exchange import BUSINESS_SCENARIO, SERVICE
from hub_advis.schema import SchemaSettings, checked, load_schemas
from hub_advis.simulator import make_app as advis_app
from hub_xta import OutgoingContent, OutgoingMessage, PartyId, XtaClient, XtaSettings
from hub_xta.simulator import STATE as XTA_STATE
from hub_xta.simulator import make_app as xta_app

from hub import ConnectorContext

PORTAL, ADVIS = "vbe:ozg-portal", "vbe:advis"
APPLICATION = """<x:ozg.antragAufenthaltstitel xmlns:x="{ns}">
  <nachrichtenkopf>
    <nachrichtUUID>{uuid}</nachrichtUUID>
    <nachrichtentyp listURI="urn:t" listVersionID="1"><code>ozg.antragAufenthaltstitel</code></nachrichtentyp>
    <erstellungszeitpunkt>2026-12-06T12:00:00</erstellungszeitpunkt>
    <absender><kennung>{portal}</kennung></absender>
    <empfaenger><kennung>{advis}</kennung></empfaenger>
  </nachrichtenkopf>
  <antragsdaten><antragsnummer>OZG-1</antragsnummer><eingangsdatum>2026-12-06T11:59:00</eingangsdatum></antragsdaten>
  <antragsteller><familienname>Kovalenko</familienname><geburtsdatum>{birth}</geburtsdatum></antragsteller>
  <aufenthaltszweck listURI="urn:test" listVersionID="1"><code>16b</code></aufenthaltszweck>
</x:ozg.antragAufenthaltstitel>"""


@pytest_asyncio.fixture
async def world(
    advis_schemas: Path, tmp_path: Path, connector_context: ConnectorContext
) -> AsyncIterator[tuple[TestServer, TestClient[Any, Any], XtaClient]]:
    xta = TestServer(xta_app(schemas=advis_schemas, data_dir=tmp_path / "xta"), host="127.0.0.1")
    await xta.start_server()
    url = str(xta.make_url("")).rstrip("/")
    settings = XtaSettings.model_validate(
        {"url": url, "account": {"identifier": PORTAL}, "timeout_seconds": 5}
    )
    portal = XtaClient(
        settings, schemas=advis_schemas, http=lambda: connector_context.http, blobs=connector_context.blobs
    )
    async with TestClient(TestServer(advis_app(url, ADVIS, advis_schemas, tmp_path / "advis"))) as advis:
        yield xta, advis, portal
    await xta.close()


async def send(portal: XtaClient, context: ConnectorContext, content: bytes) -> str:
    info = await context.blobs.write_bytes(content)
    message_id = await portal.create_message_id()
    await portal.send_message(
        OutgoingMessage(
            reader=PartyId(identifier=ADVIS),
            service=SERVICE,
            business_scenario=BUSINESS_SCENARIO,
            message_type="ozg.antragAufenthaltstitel",
            payload_schema=NS,
            message_id=message_id,
            content=OutgoingContent(blob=info.ref, size=info.size, content_type="application/xml"),
        ),
        blobs=context.blobs,
    )
    return message_id


async def test_advis_answers_a_valid_message_with_a_case_number_and_an_invalid_one_with_its_error(
    world: tuple[TestServer, TestClient[Any, Any], XtaClient],
    connector_context: ConnectorContext,
    advis_schemas: Path,
) -> None:
    xta, advis, portal = world
    valid, invalid = str(uuid.uuid4()), str(uuid.uuid4())
    values = {"ns": NS, "portal": PORTAL, "advis": ADVIS}
    await send(
        portal, connector_context, APPLICATION.format(uuid=valid, birth="1991-08-30", **values).encode()
    )
    refused_invalid = await send(
        portal, connector_context, APPLICATION.format(uuid=invalid, birth="30.08.1991", **values).encode()
    )
    refused_garbage = await send(portal, connector_context, b"not XML at all")

    taken = await (await advis.post("/control/receive")).json()
    assert taken == {"opened": [valid], "refused": [refused_invalid, refused_garbage]}
    assert xta.app[XTA_STATE].mailbox(ADVIS) == {}  # every message closed

    schemas = load_schemas(advis_schemas, SchemaSettings(), purpose="test")
    answers = {}
    for stored in xta.app[XTA_STATE].mailbox(PORTAL).values():
        assert stored.metadata.message_type == "advis.rueckmeldung"
        answer = checked(schemas, stored.message.path.read_bytes(), limit=1024 * 1024)
        answers[answer.findtext("bezug/nachrichtUUID")] = answer
    assert set(answers) == {valid, invalid}  # the message that is no XML names nothing to answer
    assert (answers[valid].findtext("aktenzeichen"), answers[valid].findtext("status/code")) == (
        "ABH-00001",
        "eingegangen",
    )
    assert answers[invalid].findtext("aktenzeichen") is None
    assert answers[invalid].findtext("status/code") == "abgelehnt"
    assert "geburtsdatum" in (answers[invalid].findtext("fehler") or "")

    # The same message again opens no second case.
    await send(
        portal, connector_context, APPLICATION.format(uuid=valid, birth="1991-08-30", **values).encode()
    )
    assert await (await advis.post("/control/receive")).json() == {"opened": [], "refused": []}
