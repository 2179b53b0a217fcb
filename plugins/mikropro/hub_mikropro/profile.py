"""Mikropro Bauamt's formats in one place: the XBau messages it takes, its answers and its status codes.

The connector reads Mikropro's answers with these names and codes and the simulator writes them with the
same ones, so the two cannot drift apart. Mikropro publishes no interface: every value here is a default
an operator overrides in the configuration (see README, "What to ask the vendor").

Mikropro answers over XTA with XBau-Kernmodul 1.3.0 process messages, as a Bauaufsicht's Fachverfahren
answers a portal: a ``prozessnachrichten.aktenzeichen.1121`` with its Aktenzeichen (`bezug/vorgang`)
once it has opened the case, a ``prozessnachrichten.statusFuerAntragsportal.1170`` per status change
(`statusAntragsportal/code`, a code of "XBau Status Bauportal"; a decision: the decided code and the
Bescheid as a PDF attachment), and a ``prozessnachrichten.rueckweisung.G2G.1100`` with the reason for a
message it cannot take. Each refers to the message it answers by that message's `nachrichtenUUID`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from hub_fachverfahren.importfolder import AnswerFields

from hub import AnswerStatus

XBAU: Final = "http://www.xleitstelle.de/xbau/2/6"
XBAUK: Final = "http://www.xleitstelle.de/xbau/kernmodul/1/3/0"
BN_G2G: Final = "http://xoev.de/schemata/basisnachricht/g2g/1_1"
XSD_DIR: Final = "xbau/2.6/xsd"
SERVICE: Final = "urn:xoev-de:xleitstelle:standard:xbau"  # the XTA service of XBau exchanges
BUSINESS_SCENARIO: Final = "XBAU_DATA"

AKTENZEICHEN: Final = "prozessnachrichten.aktenzeichen.1121"
STATUS: Final = "prozessnachrichten.statusFuerAntragsportal.1170"
RUECKWEISUNG: Final = "prozessnachrichten.rueckweisung.G2G.1100"
ANTRAG: Final = "baugenehmigung.antrag.0200"
BAUBEGINN: Final = "anzeige.baubeginn.0900"
STATUS_LIST: Final = "urn:xoev-de:xbau:codeliste:statusbauportal"
STATUS_LIST_VERSION: Final = "3.0"

# Mikropro's status codes (list "XBau Status Bauportal") -> the hub's answer status. PLACEHOLDERS: the
# code list's entries are published only in XRepository; align them with the version Mikropro and the
# portal use (README). The same codes go on to the portal in the hub's 1170 (`portal_status_codes`).
STATUS_CODES: Final = {
    "01": AnswerStatus.ACCEPTED,
    "02": AnswerStatus.IN_PROGRESS,
    "03": AnswerStatus.ACTION_REQUIRED,
    "04": AnswerStatus.DECIDED,
    "09": AnswerStatus.FAILED,
}
# What Mikropro's clerk sets (the simulator's words) -> its code.
STATUS_WORDS: Final = {
    "eingegangen": "01",
    "in Bearbeitung": "02",
    "Unterlagen nachgefordert": "03",
    "beschieden": "04",
    "abgelehnt": "09",
}
NAMESPACES: Final = {"xbauk": XBAUK, "bn": BN_G2G}
# Where each value is in Mikropro's answers (XPath from the root; the Kernmodul's elements are unqualified).
# A 1100 (Mikropro refused the message) names it in rueckweisungDaten/idNachricht and gives the reason:
# an answer with an error, so the delivery becomes dead with Mikropro's text (replayable after a fix).
ANSWER_FIELDS: Final = AnswerFields(
    reference="bezug/bezugNachricht/bn:nachrichtenUUID | rueckweisungDaten/idNachricht/bn:nachrichtenUUID",
    case_number="bezug/vorgang",
    status="statusAntragsportal/code",
    message=None,  # a 1170's begruendung is base64 HTML: the status code says what the applicant learns
    error="rueckweisungDaten/rueckweisungsgrund/fehlertext",
    decision=None,  # the first PDF attachment of a 1170 is the decision (xoev transport)
)


def portal_status_codes() -> dict[str, str]:
    """The hub's answer status -> the code a 1170 to the portal carries (`bauportal-nrw-answers`).

    `failed` is left out: a refused import is no news for the applicant.
    """
    return {status.value: code for code, status in STATUS_CODES.items() if status != AnswerStatus.FAILED}


def xsd_for(message: str) -> str:
    """The XSD (relative to the schema directory) declaring an XBau message, by its root element's name.

    XBau keeps each family in its own file (`baugenehmigung.antrag.0200` in
    ``xbau-nachrichten-baugenehmigung.xsd``); the Kernmodul's process messages in one.
    """
    family = message.split(".", 1)[0]
    if family == "prozessnachrichten":
        return f"{XSD_DIR}/xbau-kernmodul-prozessnachrichten.xsd"
    return f"{XSD_DIR}/xbau-nachrichten-{family}.xsd"


def known_family(schemas: Path, message: str) -> bool:
    """Whether the schema directory has the XSD for this message's family."""
    return (schemas / xsd_for(message)).is_file()
