"""The XBau pieces: messages built valid against the official XSDs, read back, parsed hardened."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from bauportal_helpers import AUTHORITY, PORTAL, bauantrag
from hub_bauportal_nrw.xbau import (
    XBAU,
    XBAUK,
    Address,
    Anlage,
    Person,
    UnsafeXml,
    XBauSchemaError,
    build_aktenzeichen,
    build_eingangsbestaetigung,
    build_rueckweisung,
    kernmodul_identity,
    load_schemas,
    new_uuid,
    parse_bytes,
    parse_stream,
    read_antrag,
    read_head,
)
from lxml import etree

LIMIT = 10_000_000


def test_bauantrag_is_valid_and_reads_back(schema_dir: Path) -> None:
    plan = bauantrag(
        antragsteller=[
            Person(
                vorname="Jürgen", familienname="Groß", anschrift=Address(ort="Siegburg"), telefon="02241 1"
            ),
            Person(organisation="Groß Wohnbau GmbH", anschrift=Address(ort="Bonn"), email="info@example.org"),
        ],
    )
    link = Anlage(
        bezeichnung="Bodengutachten", anlageart="100", datum=date(2026, 1, 2), link="https://x.example/1"
    )
    plan = bauantrag(antragsteller=plan.antrag.antragsteller, anlagen=[*plan.antrag.anlagen, link])
    root = parse_bytes(plan.xml, limit=LIMIT)
    assert load_schemas(schema_dir).errors(root) == []

    data = read_antrag(root)
    assert data.head.identity.uuid == plan.antrag.identity.uuid and data.head.identity.code == "0200"
    assert data.head.autor == PORTAL and data.head.leser == AUTHORITY
    assert data.referenz == plan.antrag.referenz
    assert [p.display_name for p in data.antragsteller] == ["Jürgen Groß", "Groß Wohnbau GmbH"]
    assert data.antragsteller[0].telefon == "02241 1" and data.antragsteller[1].email == "info@example.org"
    assert data.bezeichnung == plan.antrag.bezeichnung and data.massnahmen == ["11"]
    [plot] = data.flurstuecke
    assert (plot.gemarkung, plot.flur, plot.nummer) == ("Wolsdorf", "12", "345/2")
    assert [(a.bezeichnung, a.anlageart, a.dateiname) for a in data.anlagen[:3]] == [
        ("Lageplan", "010", "lageplan.pdf"),
        ("Bauzeichnungen", "020", "bauzeichnungen.pdf"),
        ("Baubeschreibung", "030", "baubeschreibung.pdf"),
    ]
    assert data.anlagen[3].link == "https://x.example/1" and data.anlagen[3].dokumentid is None


def test_answers_are_valid_against_the_kernmodul(schema_dir: Path) -> None:
    schemas = load_schemas(schema_dir)
    original = bauantrag().antrag.identity
    now = datetime.now(UTC)
    messages = {
        "1120": build_eingangsbestaetigung(
            kernmodul_identity(new_uuid(), "1120", now),
            leser=PORTAL,
            autor=AUTHORITY,
            original=original,
            referenz=new_uuid(),
            information=["Eingegangen."],
        ),
        "1121": build_aktenzeichen(
            kernmodul_identity(new_uuid(), "1121", now),
            leser=PORTAL,
            autor=AUTHORITY,
            original=original,
            referenz=None,
            aktenzeichen="63/BA-2026-00001",
        ),
        "1100": build_rueckweisung(
            kernmodul_identity(new_uuid(), "1100", now),
            leser=PORTAL,
            autor=AUTHORITY,
            original=original,
            original_message=b"<kaputt",
            reasons=[("X001", "Zeile 1: unerwartetes Element"), ("X001", None)],
            reasons_version="2.2",
        ),
    }
    for code, xml in messages.items():
        root = parse_bytes(xml, limit=LIMIT)
        assert schemas.errors(root) == [], code
        head = read_head(root)
        assert head is not None and head.identity.code == code
        assert head.leser == PORTAL and head.autor == AUTHORITY
    rueckweisung = parse_bytes(messages["1100"], limit=LIMIT)
    assert base64.b64decode(rueckweisung.findtext("rueckweisungDaten/nachricht") or "") == b"<kaputt"


def test_invalid_messages_are_found_out(schema_dir: Path) -> None:
    schemas = load_schemas(schema_dir)
    root = parse_bytes(bauantrag().xml, limit=LIMIT)
    head = root.find("nachrichtenkopf.g2g")
    assert head is not None
    root.remove(head)
    problems = schemas.errors(root)
    assert problems and "nachrichtenkopf.g2g" in problems[0]
    assert "not in an XBau namespace" in schemas.errors(etree.fromstring(b"<antrag/>"))[0]


def test_schemas_compile_once_per_directory(schema_dir: Path, tmp_path: Path) -> None:
    assert load_schemas(schema_dir) is load_schemas(schema_dir)
    with pytest.raises(XBauSchemaError, match="not found"):
        load_schemas(tmp_path)


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>',
        b'<!DOCTYPE x SYSTEM "http://example.org/x.dtd"><x/>',
        b"<x><y></x>",
        b"",
    ],
    ids=["entity", "external-dtd", "not-well-formed", "empty"],
)
async def test_parsing_is_hardened(document: bytes) -> None:
    with pytest.raises(UnsafeXml):
        parse_bytes(document, limit=LIMIT)

    async def chunks() -> object:
        for i in range(0, len(document), 7):
            yield document[i : i + 7]

    with pytest.raises(UnsafeXml):
        await parse_stream(chunks(), limit=LIMIT)  # type: ignore[arg-type]


async def test_parsing_stops_past_the_limit() -> None:
    async def endless() -> object:
        yield b"<x>"
        while True:
            yield b"<y/>" * 1000

    with pytest.raises(UnsafeXml, match="larger than"):
        await parse_stream(endless(), limit=100_000)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("namespace", "message"),
    [
        (XBAU, "baugenehmigung.formellePruefung.0201"),
        (XBAU, "abweichung.antrag.0220"),
        (XBAU, "prozessnachrichten.aktenraum.anlegen.0150"),
        (XBAUK, "prozessnachrichten.ruecknahme.1130"),
        (XBAUK, "universellerAntrag.antrag.1200"),
    ],
)
def test_every_message_type_of_the_standard_is_known_to_the_schemas(
    schema_dir: Path, namespace: str, message: str
) -> None:
    """A message the hub does not process is still validated (then answered), not unknown to it."""
    findings = load_schemas(schema_dir).errors(etree.Element(f"{{{namespace}}}{message}"))
    assert findings and not any("No matching global declaration" in f for f in findings), findings
