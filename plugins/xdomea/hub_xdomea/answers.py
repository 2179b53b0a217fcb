"""The DMS's answers to a 0605: ``FVDaten.EmpfangBestaetigen.0629`` and ``FVDaten.ImportBestaetigen.0630``.

A 0605 whose Kopf asks for it (``Empfangsbestaetigung`` 1) is confirmed by the DMS with a 0629 when it
has received the message; the 0630 (``Importbestaetigung`` is fixed to 1) says whether the import
succeeded: ``ErfolgOderMisserfolg`` holds one or more ``Rueckmeldung``, success being the general
feedback code 0000000 and nothing else. Both carry the 0605's ProzessID in their Kopf.

The answers travel as files named ``<ProzessID>_<message>.xml`` — in an answer directory the DMS writes
(mode directory) or under an answer URL (mode http). Reading one validates it against xdomea.xsd and
checks its ProzessID; building them is for the simulator, which answers as a DMS does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lxml import etree

from hub.xml import hardened_parser

from .message import MESSAGE_LIST_URI, MESSAGE_LIST_VERSION, _code, _el, _local_time
from .schema import NS, Schema

RECEIPT = "FVDaten.EmpfangBestaetigen.0629"
IMPORT = "FVDaten.ImportBestaetigen.0630"
SUCCESS = "0000000"
GENERAL = "AllgemeineRueckmeldung"
GENERAL_LIST = ("urn:xoev-de:xdomea:codeliste:allgemeinerueckmeldung", "1.1")
SPECIFIC_0605 = "SpezifischeFehlermeldung0605"
SPECIFIC_0605_LIST = ("urn:xoev-de:xdomea:codeliste:spezifischefehlermeldung0605", "1.0")
CANNOT_FILE = "0605005"  # "Datei kann im DMS nicht abgelegt werden."
DATATYPES = "xdomea-Datentypen.xsd"
XS = "http://www.w3.org/2001/XMLSchema"
X = {"x": NS}


class AnswerInvalid(Exception):
    """An answer file of the DMS that is not a valid 0629/0630 for the ProzessID."""


def answer_file_name(prozess_id: str, message: str) -> str:
    """The file name of an answer: ``<ProzessID>_<message>.xml``."""
    return f"{prozess_id}_{message}.xml"


@dataclass(frozen=True)
class ImportOutcome:
    """What the DMS's 0630 says: imported, or not and why."""

    success: bool
    reasons: tuple[str, ...] = ()


def _root(xml: bytes, message: str, prozess_id: str, schema: Schema) -> etree._Element:
    try:
        root = etree.fromstring(xml, hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise AnswerInvalid(f"the DMS's {message} is not well-formed XML: {exc}") from None
    if root.tag != f"{{{NS}}}{message}":
        raise AnswerInvalid(f"the DMS's {message} file holds {etree.QName(root).localname}")
    findings = schema.findings(root, 3)
    if findings:
        raise AnswerInvalid(f"the DMS's {message} is not valid against xdomea.xsd: {'; '.join(findings)}")
    found = (root.findtext("x:Kopf/x:ProzessID", namespaces=X) or "").strip().lower()
    if found != prozess_id.lower():
        raise AnswerInvalid(f"the DMS's {message} names ProzessID {found}, not {prozess_id}")
    return root


def read_receipt(xml: bytes, prozess_id: str, schema: Schema) -> None:
    """Check a 0629 (received) for the ProzessID; `AnswerInvalid` if it is none."""
    _root(xml, RECEIPT, prozess_id, schema)


def read_import(xml: bytes, prozess_id: str, schema: Schema) -> ImportOutcome:
    """The outcome a 0630 reports for the ProzessID; `AnswerInvalid` if it is none."""
    root = _root(xml, IMPORT, prozess_id, schema)
    descriptions = code_descriptions(schema.path.parent)
    succeeded = False
    reasons: list[str] = []
    for feedback in root.iterfind("x:ErfolgOderMisserfolg/x:Rueckmeldung/*", namespaces=X):
        kind = etree.QName(feedback).localname
        code = (feedback.findtext("code") or "").strip()
        if kind == GENERAL and code == SUCCESS:
            succeeded = True
            continue
        if kind == "SonstigeFehlermeldung":
            reasons.append(" ".join((feedback.text or "").split()))
            continue
        described = descriptions.get((f"{kind}CodeType", code))
        reasons.append(f"{kind} {code}" + (f" ({described})" if described else ""))
    return ImportOutcome(succeeded and not reasons, tuple(reasons))


@functools.cache
def code_descriptions(xsd_directory: Path) -> dict[tuple[str, str], str]:
    """(code type, code) → its description, from the code lists xdomea-Datentypen.xsd embeds."""
    try:
        document = etree.parse(str(xsd_directory / DATATYPES), hardened_parser())
    except (OSError, etree.XMLSyntaxError):
        return {}
    found: dict[tuple[str, str], str] = {}
    for kind in document.getroot().iterfind(f"{{{XS}}}complexType"):
        name = kind.get("name") or ""
        for value in kind.iter(f"{{{XS}}}enumeration"):
            text = value.findtext(f".//{{{XS}}}appinfo/beschreibung")
            if text:
                found[(name, value.get("value") or "")] = " ".join(text.split())
    return found


# -- building (what a DMS sends; used by the simulator) ---------------------------------------------------


def _answer(message: str, code: str, request: etree._Element, created_at: datetime) -> etree._Element:
    """An answer's root and Kopf: the request's ProzessID, its Absender and Empfänger swapped."""
    root = etree.Element(f"{{{NS}}}{message}", nsmap={"xdomea": NS})
    head = _el(root, "Kopf")
    _el(head, "ProzessID", request.findtext("x:Kopf/x:ProzessID", namespaces=X) or "")
    _code(head, "Nachrichtentyp", code, list_uri=MESSAGE_LIST_URI, list_version=MESSAGE_LIST_VERSION)
    _el(head, "Erstellungszeitpunkt", _local_time(created_at))
    for name, source in (("Absender", "Empfaenger"), ("Empfaenger", "Absender")):
        contact = request.find(f"x:Kopf/x:{source}", namespaces=X)
        copied = _el(head, name)
        if contact is not None:
            copied.extend(etree.fromstring(etree.tostring(child)) for child in contact)
    system = request.find("x:Kopf/x:EmpfangendesSystem", namespaces=X)
    if system is not None:
        sending = _el(head, "SendendesSystem")
        sending.extend(etree.fromstring(etree.tostring(child)) for child in system)
    return root


def build_receipt(request: etree._Element, created_at: datetime) -> bytes:
    """The 0629 a DMS sends for a received 0605 (`request`)."""
    root = _answer(RECEIPT, "0629", request, created_at)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def build_import(request: etree._Element, created_at: datetime, failure: str | None = None) -> bytes:
    """The 0630 a DMS sends: success (0000000), or the failure 0605005 with `failure` as its text."""
    root = _answer(IMPORT, "0630", request, created_at)
    head = root.find("x:Kopf", namespaces=X)
    assert head is not None
    # The Fachverfahren's session: the 0605 names none (DMSSessionID is the DMS's), so the ProzessID.
    _el(head, "FVSessionID", request.findtext("x:Kopf/x:ProzessID", namespaces=X) or "")
    outcome = _el(root, "ErfolgOderMisserfolg")
    if failure is None:
        _code(
            _el(outcome, "Rueckmeldung"),
            GENERAL,
            SUCCESS,
            list_uri=GENERAL_LIST[0],
            list_version=GENERAL_LIST[1],
        )
    else:
        specific = _el(outcome, "Rueckmeldung")
        _code(
            specific,
            SPECIFIC_0605,
            CANNOT_FILE,
            list_uri=SPECIFIC_0605_LIST[0],
            list_version=SPECIFIC_0605_LIST[1],
        )
        _el(_el(outcome, "Rueckmeldung"), "SonstigeFehlermeldung", failure)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
