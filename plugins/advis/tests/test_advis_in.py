"""The in-direction's source (`type: advis-intake`) against the XTA simulator: XAusländer messages from an
OZG service read into applications, closed only after the intake, bad ones held while the mailbox flows.

The schema directory holds the XAusländer TEST FIXTURE (not the official schema) beside the reference
schemas; the messages are `hub_advis.inbound_samples`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from advis_fixture import NS, without_xauslaender
from aiohttp.test_utils import TestServer
from hub_advis.inbound import AdvisIntake
from hub_advis.inbound_samples import antrag_aufenthaltstitel, portal_metadata
from hub_advis.schema import XAuslaenderSchemaMissing
from hub_xta.simulator import STATE, XtaState, enqueue
from hub_xta.simulator import make_app as xta_app

from hub import Application, ConnectorContext, Intake, IntakeOutcome, Retryable

ACCOUNT = "vbe:abh-posteingang"
PASS = b"%PDF-1.7 Reisepass\n"
FOTO = b"\xff\xd8\xff Foto"


@dataclasses.dataclass
class Xta:
    url: str
    state: XtaState


@pytest_asyncio.fixture
async def xta(advis_schemas: Path, tmp_path: Path) -> AsyncIterator[Xta]:
    server = TestServer(xta_app(schemas=advis_schemas, data_dir=tmp_path / "xta"), host="127.0.0.1")
    await server.start_server()
    yield Xta(str(server.make_url("")).rstrip("/"), server.app[STATE])
    await server.close()


class Intakes:
    """An intake like the core's: idempotent on (source, external_id); can fail before the commit."""

    def __init__(self) -> None:
        self.applications: dict[str, Application] = {}
        self.fail = False

    async def __call__(self, intake: Intake) -> IntakeOutcome:
        if self.fail:
            raise Retryable("the journal went away before the commit")
        key = intake.application.external_id
        duplicate = key in self.applications
        self.applications.setdefault(key, intake.application)
        return IntakeOutcome(self.applications[key].id, duplicate)


def make_source(context: ConnectorContext, schemas: Path, url: str, **settings: Any) -> AdvisIntake:
    config = AdvisIntake.Config.model_validate(
        {
            "type": "advis-intake",
            "xta": {"url": url, "account": {"identifier": ACCOUNT}, "timeout_seconds": 5},
            **settings,
        }
    )
    return AdvisIntake(config, dataclasses.replace(context, name="abh-in", schemas=schemas))  # type: ignore[arg-type]


async def send(context: ConnectorContext, xta: Xta, content: bytes, **metadata: Any) -> str:
    """The OZG service puts a message into the Ausländerbehörde's mailbox; its XTA message id."""
    answer = await enqueue(
        context.http,
        xta.url,
        ACCOUNT,
        metadata={**portal_metadata(NS), **metadata},
        message=content,
        attachments=[("Reisepass.pdf", PASS, "application/pdf"), ("foto.jpg", FOTO, "image/jpeg")],
    )
    return str(answer["message_id"])


async def test_a_residence_title_application_is_read_and_closed_after_its_intake(
    connector_context: ConnectorContext, advis_schemas: Path, xta: Xta
) -> None:
    source = make_source(connector_context, advis_schemas, xta.url)
    message_uuid = str(uuid.uuid4())
    content = antrag_aufenthaltstitel(NS, message_uuid, person_id="ADVIS-P-4711")
    xta_id = await send(connector_context, xta, content)
    intakes = Intakes()

    assert await source.poll(intakes) == 1

    (app,) = intakes.applications.values()
    assert (app.source, app.external_id, app.service) == ("abh-in", message_uuid, "aufenthaltstitel")
    assert (app.applicant.family_name, app.applicant.given_name, app.applicant.birth_date) == (
        "Kovalenko",
        "Oksana",
        "1988-03-21",
    )
    assert app.form["nachrichtentyp"] == "ozg.antragAufenthaltstitel"
    assert app.form["person"] == {
        "familienname": "Kovalenko",
        "vorname": "Oksana",
        "geburtsdatum": "1988-03-21",
        "geburtsort": "Charkiw",
        "person_id": "ADVIS-P-4711",
    }
    assert app.form["antrag"]["aufenthaltszweck"] == "16b"
    assert app.form["antrag"]["antragsnummer"] == "OZG-AT-2026-000815"
    blobs = connector_context.blobs
    assert app.original is not None and await blobs.read_bytes(app.original.blob) == content
    assert [(a.name, await blobs.read_bytes(a.blob)) for a in app.attachments] == [
        ("Reisepass.pdf", PASS),
        ("foto.jpg", FOTO),
    ]
    # what it came under, for the forward to ADVIS
    assert app.correlations["xta"] == xta_id
    assert app.correlations["xta.message_type"] == "ozg.antragAufenthaltstitel"
    assert app.correlations["xta.payload_schema"] == NS
    assert xta.state.was_closed(xta_id) and xta.state.mailbox(ACCOUNT) == {}


async def test_a_message_is_closed_only_after_the_intake_and_taken_once(
    connector_context: ConnectorContext, advis_schemas: Path, xta: Xta
) -> None:
    source = make_source(connector_context, advis_schemas, xta.url)
    message_uuid = str(uuid.uuid4())
    content = antrag_aufenthaltstitel(NS, message_uuid, person_id=None)
    first = await send(connector_context, xta, content)
    intakes = Intakes()
    intakes.fail = True

    with pytest.raises(Retryable):
        await source.poll(intakes)
    assert not xta.state.was_closed(first)  # nothing durable: the message stays

    intakes.fail = False
    assert await source.poll(intakes) == 1
    # The portal sends the same message again (a new XTA message id): still one application.
    again = await send(connector_context, xta, content)
    assert await source.poll(intakes) == 0
    assert list(intakes.applications) == [message_uuid]
    assert "person_id" not in intakes.applications[message_uuid].form["person"]
    assert xta.state.was_closed(first) and xta.state.was_closed(again)


async def test_bad_messages_are_held_with_a_reason_and_the_mailbox_flows(
    connector_context: ConnectorContext, advis_schemas: Path, xta: Xta
) -> None:
    source = make_source(connector_context, advis_schemas, xta.url)
    good_uuid = str(uuid.uuid4())
    valid = antrag_aufenthaltstitel(NS, str(uuid.uuid4()))
    bad: list[tuple[bytes, dict[str, Any]]] = [
        # the schema wants a date: refused by the XSD, the value itself not in the reason
        (valid.replace(b"<geburtsdatum>1988-03-21", b"<geburtsdatum>Kovalenko-1988"), {}),
        (b"<xa:kaputt", {}),  # not well-formed
        (valid, {"service": "urn:other:service"}),  # another service: left undownloaded
    ]
    held_ids = [await send(connector_context, xta, content, **extra) for content, extra in bad]
    good = await send(connector_context, xta, antrag_aufenthaltstitel(NS, good_uuid))
    source = make_source(
        connector_context, advis_schemas, xta.url, services=[str(portal_metadata(NS)["service"])]
    )
    intakes = Intakes()

    assert await source.poll(intakes) == 1

    assert list(intakes.applications) == [good_uuid] and xta.state.was_closed(good)
    held = await source.context.held.lookup(held_ids)
    codes = [held[i].reason_code for i in held_ids]
    assert codes == ["invalid_message", "invalid_message", "message_type"]
    reasons = " ".join(held[i].reason for i in held_ids)
    assert "does not meet the XAusländer schema" in reasons and "Kovalenko" not in reasons
    assert not any(xta.state.was_closed(i) for i in held_ids)  # left for an operator
    assert await source.poll(intakes) == 0  # held ones are passed over, not fetched again


async def test_the_xpaths_are_configuration(
    connector_context: ConnectorContext, advis_schemas: Path, xta: Xta
) -> None:
    # An operator's paths with a prefix: the applicant under antragsteller, a further detail.
    source = make_source(
        connector_context,
        advis_schemas,
        xta.url,
        xpaths={
            "namespaces": {"xa": NS},
            "person": "/xa:ozg.antragAufenthaltstitel/antragsteller",
            "details": {"zweck": "string(/*/aufenthaltszweck/code)"},
        },
    )
    await send(connector_context, xta, antrag_aufenthaltstitel(NS, str(uuid.uuid4()), vorname="Ola"))
    intakes = Intakes()

    assert await source.poll(intakes) == 1

    (app,) = intakes.applications.values()
    assert app.form["person"]["vorname"] == "Ola" and app.form["antrag"] == {"zweck": "16b"}
    with pytest.raises(ValueError, match="not an XPath"):
        make_source(connector_context, advis_schemas, xta.url, xpaths={"person": "/*[("})


async def test_without_the_xauslaender_xsds_it_refuses_to_start_and_says_where(
    connector_context: ConnectorContext, schema_dir: Path, tmp_path: Path
) -> None:
    bare = without_xauslaender(schema_dir, tmp_path / "bare")
    source = make_source(connector_context, bare, "http://127.0.0.1:9")

    with pytest.raises(XAuslaenderSchemaMissing, match=r"xauslaender/1\.21\.1"):
        await source.start()
    result = await source.check()
    assert not result.ok and "xauslaender/1.21.1" in result.message


async def test_adviss_answers_in_the_same_account_are_left_for_their_reader(
    connector_context: ConnectorContext, advis_schemas: Path, xta: Xta
) -> None:
    # One XTA account for both: the intake takes the OZG message and leaves ADVIS's answer alone.
    source = make_source(connector_context, advis_schemas, xta.url)
    answer = await send(connector_context, xta, b"<advis.rueckmeldung/>", message_type="advis.rueckmeldung")
    taken = await send(connector_context, xta, antrag_aufenthaltstitel(NS, str(uuid.uuid4())))

    assert await source.poll(Intakes()) == 1

    assert xta.state.was_closed(taken)
    left = xta.state.mailbox(ACCOUNT)
    assert list(left) == [answer] and left[answer].fetches == 0  # not even downloaded
    assert await source.context.held.lookup([answer]) == {}  # and nothing an operator could close
