"""The official XBau Schematron: DVDV kennungen, exact timestamps, the optional second validation stage.

Every XBau message the portal simulator sends and every answer the hub builds is run through the
official rules (``<schemas>/xbau/2.6/schematron/*.sch``) besides the XSD.
"""

from __future__ import annotations

import base64
import functools
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from bauportal_helpers import (
    AUTHORITY,
    AUTHORITY_XTA,
    PORTAL,
    StartXta,
    Xta,
    authority,
    bauantrag,
    send,
    xta_settings,
)
from hub_bauportal_nrw import BauportalNrwAnswers, BauportalNrwSource
from hub_bauportal_nrw.config import BauportalNrwAnswersConfig, BauportalNrwConfig
from hub_bauportal_nrw.portal import make_app as portal_app
from hub_bauportal_nrw.samples import sample_bauantrag
from hub_bauportal_nrw.xbau import BN_G2G, Behoerde, load_schemas, parse_bytes
from hub_bauportal_nrw.xbau.models import DVDV_KENNUNG
from hub_bauportal_nrw.xbau.schematron import load_schematron
from lxml import etree
from pydantic import ValidationError
from test_bauportal_answers import Journal, context, make_source

from hub import Intake, Receipt, ReceiptKind
from hub.blobs import BlobStore
from hub.config import load_config
from hub.journal import SqliteJournal
from hub.plugins import load_plugins

# As XBau allows it: fractional seconds, no time zone. Echoed, it must stay exactly this.
EXACT_TIME = "2026-11-20T10:15:30.1234567"


def valid_xbau(schema_dir: Path, xml: bytes) -> etree._Element:
    """The message, after asserting it passes the XSD and the official Schematron."""
    root = parse_bytes(xml, limit=10_000_000)
    assert load_schemas(schema_dir).errors(root) == []
    assert load_schematron(schema_dir).errors(root) == []
    return root


def with_created(xml: bytes, created: str) -> bytes:
    root = parse_bytes(xml, limit=10_000_000)
    element = root.find("nachrichtenkopf.g2g/identifikation.nachricht/erstellungszeitpunkt")
    assert element is not None
    element.text = created
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


@pytest.mark.parametrize("kennung", ["vbe:bauaufsicht-rhein-sieg", "VBE:053820004", "053820004", "vbe:"])
def test_configured_authority_must_be_a_dvdv_kennung(kennung: str) -> None:
    for connector, kind in (
        (BauportalNrwSource, "bauportal-nrw"),
        (BauportalNrwAnswers, "bauportal-nrw-answers"),
    ):
        with pytest.raises(ValidationError, match=r"sch-xbau-00[12]"):
            connector.Config.model_validate(
                {
                    "type": kind,
                    "xta": xta_settings("http://127.0.0.1:1"),
                    "authority": {"kennung": kennung, "name": "X"},
                }
            )
    # Another directory than the DVDV has other kennungen.
    connector.Config.model_validate(
        {
            "type": "bauportal-nrw-answers",
            "xta": xta_settings("http://127.0.0.1:1"),
            "authority": {"kennung": kennung, "name": "X", "verzeichnisdienst": "SONSTIGE"},
        }
    )


def test_example_configuration_names_dvdv_kennungen(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[3]
    example = root / "config" / "bauaufsicht.example.yaml"
    monkeypatch.chdir(root)
    names = set(re.findall(r"\$\{([A-Z_]+)\}", example.read_text(encoding="utf-8")))
    config = load_config(example, load_plugins(), env={n: "example-secret-0123456789abcdef" for n in names})
    for name in ("bauportal", "antworten"):
        settings = config.connectors[name]
        assert isinstance(settings, BauportalNrwConfig | BauportalNrwAnswersConfig)
        assert DVDV_KENNUNG.match(settings.authority.kennung)
        assert DVDV_KENNUNG.match(settings.xta.account.identifier)


async def test_portal_simulator_sends_messages_that_keep_the_schematron(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path
) -> None:
    xta = await start_xta()
    portal = TestServer(portal_app(xta_url=xta.url), host="127.0.0.1")
    await portal.start_server()
    try:
        # The sample application, and one whose Bauherr gave only a family name.
        for wish in ({}, {"bauherr": {"familienname": "Groß"}, "bezeichnung": "Carport"}):
            async with http.post(f"http://127.0.0.1:{portal.port}/sim/bauantrag", json=wish) as resp:
                assert resp.status == 201
    finally:
        await portal.close()
    messages = list(xta.state.mailbox(AUTHORITY_XTA).values())
    assert len(messages) == 2
    for message in messages:
        assert message.metadata.author.identifier == "bau:0500000001"
        root = valid_xbau(schema_dir, message.message.path.read_bytes())
        assert root.findtext("nachrichtenkopf.g2g/autor/kennung") == "bau:0500000001"
        assert root.findtext("nachrichtenkopf.g2g/leser/kennung") == "vbe:053820004"


class Bauaufsicht:
    """The source and the answers of the Bauaufsicht against one XTA simulator, without a hub."""

    def __init__(
        self, xta: Xta, blobs: BlobStore, schema_dir: Path, http: Any, tmp: Path, journal: SqliteJournal
    ) -> None:
        self.xta = xta
        self.schema_dir = schema_dir
        self.context = functools.partial(
            context, blobs=blobs, schema_dir=schema_dir, http=http, tmp=tmp, journal=journal
        )

    async def take_in(self, **settings: Any) -> Intake:
        """One poll of a source with these settings: the one message it takes in."""
        source = make_source(self.xta, self.context("bauportal"), **settings)
        journal = Journal()
        assert await source.poll(journal) == 1
        [intake] = journal.intakes.values()
        return intake

    async def answer(self, intake: Intake, **settings: Any) -> list[etree._Element]:
        """The answers to it (1120/1121, or the 1100 if refused), each checked by XSD and Schematron."""
        config = {
            "type": "bauportal-nrw-answers",
            "xta": xta_settings(self.xta.url),
            "authority": authority(),
        }
        answers = BauportalNrwAnswers(
            BauportalNrwAnswers.Config.model_validate({**config, **settings}), self.context("antworten")
        )
        app = intake.application
        if intake.rejection is None:
            receipt = Receipt(application_id=app.id, kind=ReceiptKind.RECEIVED, file_number="63/1")
        else:
            receipt = Receipt(
                application_id=app.id, kind=ReceiptKind.REJECTED, reason=intake.rejection.reason
            )
        await answers.notify(app, receipt)
        return [valid_xbau(self.schema_dir, m.message.path.read_bytes()) for m in self.xta.state.sent]


@pytest.fixture
def bauaufsicht(
    blobs: BlobStore,
    schema_dir: Path,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    held_journal: SqliteJournal,
) -> Any:
    """Builds a `Bauaufsicht` for an XTA simulator."""
    return lambda xta: Bauaufsicht(xta, blobs, schema_dir, http, tmp_path, held_journal)


async def test_answers_keep_the_schematron_and_echo_the_original_time_exactly(
    start_xta: StartXta, http: aiohttp.ClientSession, bauaufsicht: Any
) -> None:
    xta = await start_xta()
    plan = bauantrag()
    await send(http, xta, plan, xml=with_created(plan.xml, EXACT_TIME))
    side = bauaufsicht(xta)
    intake = await side.take_in(schematron=True)
    assert intake.rejection is None
    sent = await side.answer(intake)
    assert [etree.QName(r).localname for r in sent] == [
        "prozessnachrichten.eingangsbestaetigung.1120",
        "prozessnachrichten.aktenzeichen.1121",
    ]
    for root in sent:
        [echoed] = root.iter(f"{{{BN_G2G}}}erstellungszeitpunkt")
        assert echoed.text == EXACT_TIME


async def test_schematron_violation_is_refused_with_its_findings_in_the_1100(
    start_xta: StartXta, http: aiohttp.ClientSession, bauaufsicht: Any, schema_dir: Path
) -> None:
    xta = await start_xta()
    # Valid against the XSD, but the portal's DVDV kennung breaks rule sch-xbau-002.
    portal = Behoerde(kennung="vbe:bauportal-nrw", name="Bauportal.NRW")
    plan = sample_bauantrag(autor=portal, leser=AUTHORITY)
    original = with_created(plan.xml, "2026-11-20T10:15:30.5+01:00")
    assert load_schemas(schema_dir).errors(parse_bytes(original, limit=10_000_000)) == []
    await send(http, xta, plan, xml=original)
    side = bauaufsicht(xta)

    lenient = make_source(xta, side.context("bauportal"))
    [waiting] = xta.state.mailbox(AUTHORITY_XTA)
    xbau = await lenient.intake_of(await lenient.client.get_message(waiting))
    assert xbau.rejection is None  # without the switch, the XSD alone decides
    intake = await side.take_in(schematron=True)
    assert intake.rejection is not None and intake.rejection.code == "schematron"
    assert "sch-xbau-002" in intake.rejection.reason and "autor" in intake.rejection.reason
    assert xta.state.mailbox(AUTHORITY_XTA) == {}  # taken in (refused), closed

    [root] = await side.answer(intake)
    texts = [t.text or "" for t in root.iter("fehlertext")]
    assert any("sch-xbau-002" in t and "nachrichtenkopf.g2g" in t for t in texts)
    assert base64.b64decode(root.findtext("rueckweisungDaten/nachricht") or "") == original
    [echoed] = root.iter(f"{{{BN_G2G}}}erstellungszeitpunkt")
    assert echoed.text == "2026-11-20T10:15:30.5+01:00"


async def test_1100_of_a_message_too_large_to_return_keeps_the_schematron(
    start_xta: StartXta, http: aiohttp.ClientSession, bauaufsicht: Any
) -> None:
    xta = await start_xta()
    plan = bauantrag()
    del plan.files["lageplan.pdf"]
    await send(http, xta, plan)
    side = bauaufsicht(xta)
    intake = await side.take_in()
    assert intake.rejection is not None
    [root] = await side.answer(intake, max_returned_message=100)
    note = base64.b64decode(root.findtext("rueckweisungDaten/nachricht") or "")
    assert b"groesser als 100 Bytes" in note
    assert root.findtext("nachrichtenkopf.g2g/leser/kennung") == PORTAL.kennung


def test_a_rule_that_cannot_be_applied_to_a_message_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    rules = tmp_path / "xbau" / "2.6" / "schematron"
    rules.mkdir(parents=True)
    (rules / "zahlen.sch").write_text(
        '<sch:schema xmlns:sch="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">'
        '<sch:ns prefix="xs" uri="http://www.w3.org/2001/XMLSchema"/>'
        '<sch:pattern><sch:rule context="/*">'
        '<sch:assert id="zahl-001" test="xs:integer(zahl) gt 0">Zahl positiv</sch:assert>'
        "</sch:rule></sch:pattern></sch:schema>",
        encoding="utf-8",
    )
    schematron = load_schematron(tmp_path)
    assert schematron.errors(parse_bytes(b"<a><zahl>5</zahl></a>", limit=100)) == []
    negative = parse_bytes(b"<a><zahl>-5</zahl></a>", limit=100)
    assert schematron.errors(negative) == ["zahl-001: Zahl positiv (/a)"]
    [finding] = schematron.errors(parse_bytes(b"<a><zahl>fuenf</zahl></a>", limit=100))
    assert "zahlen.sch sind nicht anwendbar" in finding


def test_an_empty_paragraph_of_the_receipt_is_refused_in_the_configuration() -> None:
    with pytest.raises(ValidationError, match="sch-xbau-gen-001"):
        BauportalNrwAnswers.Config.model_validate(
            {
                "type": "bauportal-nrw-answers",
                "xta": xta_settings("http://127.0.0.1:1"),
                "authority": authority(),
                "information": ["Eingegangen.", "  "],
            }
        )
