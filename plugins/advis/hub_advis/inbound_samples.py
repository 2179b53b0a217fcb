"""Sample XAusländer messages as an OZG online service sends them (for the demo and the tests).

They follow the test fixture's structure (`tests/fixtures/xauslaender-TEST-FIXTURE-not-official`,
modelled on the published XAusländer structure, not the official schema): a message head with
nachrichtUUID, the application data, the applicant as a natural person, the purpose of residence.
"""

from __future__ import annotations

from typing import Final
from xml.sax.saxutils import escape

from .exchange import SERVICE

OZG_SERVICE_KENNUNG: Final = "ozg:aufenthaltstitel-online"
ANTRAG: Final = "ozg.antragAufenthaltstitel"


def antrag_aufenthaltstitel(
    namespace: str,
    nachricht_uuid: str,
    *,
    familienname: str = "Kovalenko",
    vorname: str = "Oksana",
    geburtsdatum: str = "1988-03-21",
    person_id: str | None = None,
    antragsnummer: str = "OZG-AT-2026-000815",
    anlagen: tuple[str, ...] = ("Reisepass.pdf",),
) -> bytes:
    """An application for a residence title (`ozg.antragAufenthaltstitel`) as the portal writes it."""
    person_id_element = f"<personId>{escape(person_id)}</personId>" if person_id else ""
    anlage_elements = "".join(
        f"<anlage><dateiname>{escape(name)}</dateiname><mimeType>application/pdf</mimeType></anlage>"
        for name in anlagen
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xa:{ANTRAG} xmlns:xa="{escape(namespace)}">
  <nachrichtenkopf>
    <nachrichtUUID>{nachricht_uuid}</nachrichtUUID>
    <nachrichtentyp listURI="urn:xoev-de:xauslaender:codeliste:nachrichtentyp" listVersionID="1.21.1">
      <code>{ANTRAG}</code></nachrichtentyp>
    <erstellungszeitpunkt>2026-11-30T09:10:00+01:00</erstellungszeitpunkt>
    <absender><kennung>{OZG_SERVICE_KENNUNG}</kennung><name>Online-Dienst Aufenthaltstitel</name></absender>
    <empfaenger><kennung>ABH-05382</kennung><name>Rhein-Sieg-Kreis, Ausländerbehörde</name></empfaenger>
  </nachrichtenkopf>
  <antragsdaten>
    <antragsnummer>{escape(antragsnummer)}</antragsnummer>
    <eingangsdatum>2026-11-30T09:10:00+01:00</eingangsdatum>{anlage_elements}
  </antragsdaten>
  <antragsteller>{person_id_element}
    <familienname>{escape(familienname)}</familienname>
    <vorname>{escape(vorname)}</vorname>
    <geburtsdatum>{geburtsdatum}</geburtsdatum>
    <geburtsort>Charkiw</geburtsort>
  </antragsteller>
  <aufenthaltszweck listURI="urn:de:bund:aufenthg:aufenthaltszweck" listVersionID="2024">
    <code>16b</code></aufenthaltszweck>
  <beantragteGeltungsdauerMonate>24</beantragteGeltungsdauerMonate>
</xa:{ANTRAG}>
""".encode()


def portal_metadata(namespace: str, author: str = OZG_SERVICE_KENNUNG) -> dict[str, object]:
    """The XTA metadata the OZG service sends the message with (for the XTA simulator's enqueue)."""
    return {
        "author": {"identifier": author, "type": "xoev", "name": "Online-Dienst Aufenthaltstitel"},
        "service": SERVICE,
        "business_scenario": "XAUSLAENDER_DATA",
        "message_type": ANTRAG,
        "payload_schema": namespace,
    }
