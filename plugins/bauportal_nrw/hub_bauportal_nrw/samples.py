"""A sample building application as Bauportal.NRW sends it: for tests, the demo and trying things out.

::

    sample = sample_bauantrag(autor=portal, leser=bauaufsicht)
    await enqueue_bauantrag(http, xta_simulator_url, "vbe:053820004", sample, author="bau:0500000001")

The Anlagen travel as XTA attachments, referenced from the message by ``anhang`` (dokumentid, dateiname,
size, sha256): XBau 2.6 has no way to embed their content in the message itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
from hub_xta.simulator import enqueue

from .xbau import (
    ANTRAG,
    XBAU,
    Address,
    Anlage,
    Bauantrag,
    Behoerde,
    Flurstueck,
    MessageIdentity,
    Person,
    build_antrag,
    build_ruecknahme,
    kernmodul_identity,
    new_uuid,
)

XBAU_SERVICE = "urn:xoev-de:xleitstelle:standard:xbau"

# (Bezeichnung, Anlagenart code, file name, content)
SAMPLE_ANLAGEN: tuple[tuple[str, str, str, bytes], ...] = (
    ("Lageplan", "010", "lageplan.pdf", b"%PDF-1.7 Lageplan 1:500\n" * 50),
    ("Bauzeichnungen", "020", "bauzeichnungen.pdf", b"%PDF-1.7 Grundrisse, Schnitte, Ansichten\n" * 200),
    ("Baubeschreibung", "030", "baubeschreibung.pdf", b"%PDF-1.7 Baubeschreibung\n" * 20),
)


@dataclass
class SampleBauantrag:
    """A building application: its XBau data and the Anlagen's content (file name -> bytes)."""

    antrag: Bauantrag
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def xml(self) -> bytes:
        """The ``baugenehmigung.antrag.0200`` message."""
        return build_antrag(self.antrag)


def sample_bauantrag(*, autor: Behoerde, leser: Behoerde, **overrides: Any) -> SampleBauantrag:
    """A valid 0200 from `autor` (the portal) to `leser` (the Bauaufsicht) with three Anlagen."""
    files = {name: content for _, _, name, content in SAMPLE_ANLAGEN}
    anlagen = [
        Anlage(
            bezeichnung=title,
            anlageart=code,
            datum=date(2026, 11, 20),
            dokumentid=f"urn:bauportal:dokument:{n}",
            dateiname=name,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        )
        for n, (title, code, name, content) in enumerate(SAMPLE_ANLAGEN, start=1)
    ]
    values: dict[str, Any] = {
        "identity": MessageIdentity(uuid=new_uuid(), code="0200", created=datetime.now(UTC)),
        "autor": autor,
        "leser": leser,
        "antragsteller": [
            Person(
                vorname="Jürgen",
                familienname="Groß",
                anschrift=Address(
                    strasse="Hauptstraße", hausnummer="12", postleitzahl="53721", ort="Siegburg"
                ),
                email="juergen.gross@example.org",
            ),
            Person(vorname="Ayşe", familienname="Groß", anschrift=Address(ort="Siegburg")),
        ],
        "bezeichnung": "Neubau eines Einfamilienhauses mit Garage",
        "grundstueck_anschrift": Address(strasse="Am Kreuzfeld", hausnummer="7", ort="Siegburg"),
        "flurstuecke": [Flurstueck(gemarkung="Wolsdorf", flur="12", zaehler="345", nenner="2")],
        "anlagen": anlagen,
        **overrides,
    }
    return SampleBauantrag(Bauantrag(**values), files)


def sample_ruecknahme(antrag: Bauantrag) -> bytes:
    """A valid ``prozessnachrichten.ruecknahme.1130``: the portal withdraws `antrag`.

    A message type the Bauaufsicht's source does not process: it is answered with a 1100.
    """
    identity = kernmodul_identity(new_uuid(), "1130", datetime.now(UTC))
    return build_ruecknahme(
        identity,
        leser=antrag.leser,
        autor=antrag.autor,
        original=antrag.identity,
        referenz=antrag.referenz,
        information=["Der Bauantrag wird zurückgenommen."],
    )


def xta_metadata(author: str, **overrides: Any) -> dict[str, Any]:
    """The XTA metadata of a Bauantrag as the portal writes it (for the simulator's enqueue)."""
    return {
        "author": {"identifier": author, "type": "xoev", "name": "Bauportal.NRW"},
        "service": XBAU_SERVICE,
        "business_scenario": "XBAU_DATA",
        "business_scenario_list_uri": "urn:de:dataport:codeliste:business.scenario",
        "business_scenario_list_version": "1",
        "message_type": ANTRAG,
        "payload_schema": XBAU,
        "subject": "Bauantrag",
        **overrides,
    }


async def enqueue_bauantrag(
    http: aiohttp.ClientSession,
    url: str,
    reader: str,
    sample: SampleBauantrag,
    *,
    author: str,
    xml: bytes | None = None,
) -> str:
    """Put the application into `reader`'s mailbox of an XTA simulator, as the portal does; its id."""
    answer = await enqueue(
        http,
        url,
        reader,
        metadata=xta_metadata(author),
        message=xml if xml is not None else sample.xml,
        message_name="baugenehmigung.antrag.0200.xml",
        attachments=[(name, data, "application/pdf") for name, data in sample.files.items()],
    )
    message_id: str = answer["message_id"]
    return message_id


async def enqueue_message(
    http: aiohttp.ClientSession,
    url: str,
    reader: str,
    xml: bytes,
    *,
    author: str,
    message_type: str,
    payload_schema: str,
) -> str:
    """Put any message (no Anlagen) into `reader`'s mailbox of an XTA simulator, as the portal; its id.

    `message_type`: the payload's root element name, as XTA names the type (e.g. 'prozessnachrichten.
    ruecknahme.1130'); `payload_schema`: its namespace. The message is sent as given, valid or not.
    """
    answer = await enqueue(
        http,
        url,
        reader,
        metadata=xta_metadata(
            author, message_type=message_type, payload_schema=payload_schema, subject=message_type
        ),
        message=xml,
        message_name=f"{message_type}.xml",
    )
    message_id: str = answer["message_id"]
    return message_id
