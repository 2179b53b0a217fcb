"""Shared pieces of the xoev tests: an xdomea 0101 template, the Fachverfahren's 0102, the connector's
settings (a uniquely named module: plugin test folders are no packages)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hub_fachverfahren.xoev import XoevSink
from hub_xta import OutgoingContent, OutgoingMessage, PartyId, XtaClient, XtaSettings
from hub_xta.simulator import XtaState
from importfolder_helpers import write_template

from hub import ConnectorContext

HUB = "vbe:umweltamt-hub"
FV = "vbe:k3-fachverfahren"
NS = "urn:xoev-de:xdomea:schema:3.0.0"
INFORMATION = "Information.Information.0101"
RECEIPT = "Information.EmpfangBestaetigen.0102"
SCHEMA = "xdomea/3.0.0/xsd/xdomea-Nachrichten-InformationAustauschen.xsd"
SERVICE = "urn:xoev-de:xdomea:schema:3.0.0"

AUTHORITY = (
    "<xdomea:Behoerdenkennung><xdomea:Behoerdenschluessel listURI='urn:x' listVersionID='1'>"
    "<code>05382</code></xdomea:Behoerdenschluessel></xdomea:Behoerdenkennung>"
)
KOPF = (
    "<xdomea:Kopf>\n"
    "    <xdomea:ProzessID>{process_id}</xdomea:ProzessID>\n"
    "    <xdomea:Nachrichtentyp listURI='urn:xoev-de:xdomea:codeliste:nachrichtentyp' listVersionID='2.0'>"
    "<code>{code}</code></xdomea:Nachrichtentyp>\n"
    "    <xdomea:Erstellungszeitpunkt>2026-12-06T12:00:00</xdomea:Erstellungszeitpunkt>\n"
    f"    <xdomea:Absender>{AUTHORITY}</xdomea:Absender>\n"
    f"    <xdomea:Empfaenger>{AUTHORITY}</xdomea:Empfaenger>\n"
    "    <xdomea:SendendesSystem><xdomea:Produktname>{product}</xdomea:Produktname></xdomea:SendendesSystem>"
    "{extra}\n"
    "  </xdomea:Kopf>"
)

TEMPLATE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<xdomea:{INFORMATION} xmlns:xdomea="{NS}">\n  '
    + KOPF.format(
        process_id="{{ process_id }}",
        code="0101",
        product="Aktenhub",
        extra="\n    <xdomea:Empfangsbestaetigung>1</xdomea:Empfangsbestaetigung>",
    )
    + """
  <xdomea:Schriftgutobjekt><xdomea:Vorgang>
    <xdomea:Identifikation><xdomea:ID>{{ process_id }}</xdomea:ID></xdomea:Identifikation>
    <xdomea:AllgemeineMetadaten>
      <xdomea:Betreff>{{ record.service }}: {{ application.form.nachname|default("") }}</xdomea:Betreff>
    </xdomea:AllgemeineMetadaten>
  </xdomea:Vorgang></xdomea:Schriftgutobjekt>
"""
    + f"</xdomea:{INFORMATION}>\n"
)


def receipt(process_id: str, case_number: str, status: str = "eingegangen") -> bytes:
    """The Fachverfahren's 0102: the 0101's ProzessID, its case number in Hinweis (this profile's choice)."""
    kopf = KOPF.format(
        process_id=process_id,
        code="0102",
        product="K3",
        extra=f"\n    <xdomea:Hinweis>{case_number} {status}</xdomea:Hinweis>",
    )
    root = f'<xdomea:{RECEIPT} xmlns:xdomea="{NS}">{kopf}</xdomea:{RECEIPT}>'
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{root}'.encode()


@dataclasses.dataclass
class Xta:
    url: str
    state: XtaState


STATUS_WORDS = {
    "eingegangen": "accepted",
    "in-Bearbeitung": "in_progress",
    "Nachforderung": "action_required",
    "beschieden": "decided",
    "abgelehnt": "failed",
}


def make_config(url: str, default_template: Path, **message: Any) -> dict[str, Any]:
    """The xoev connector's settings as an operator writes them."""
    return {
        "type": "xoev",
        "xta": {"url": url, "account": {"identifier": HUB}, "timeout_seconds": 5},
        "recipient": {"identifier": FV},
        "poll_seconds": 30,
        "message": {
            "template": str(default_template),
            "schema": SCHEMA,
            "message_type": INFORMATION,
            "payload_schema": NS,
            "service": SERVICE,
            "business_scenario": "XDOMEA_DATA",
            **message,
        },
        "answers": {
            "format": "xml",
            "message_types": [RECEIPT],
            "namespaces": {"x": NS},
            "fields": {
                "reference": "x:Kopf/x:ProzessID",
                "case_number": "substring-before(x:Kopf/x:Hinweis, ' ')",
                "status": "substring-after(x:Kopf/x:Hinweis, ' ')",
                "message": None,
                "error": None,
                "decision": None,
            },
            "status_map": STATUS_WORDS,
        },
    }


def make_sink(context: ConnectorContext, tmp_path: Path, url: str, **message: Any) -> XoevSink:
    template = write_template(tmp_path, "k3-0101.xml.j2", TEMPLATE)
    config = XoevSink.Config.model_validate(make_config(url, template, **message))
    return XoevSink(config, context)  # type: ignore[arg-type]


def answer_message(blob: str, size: int, reader: str = HUB) -> OutgoingMessage:
    """The Fachverfahren's answer as an XTA message to the hub."""
    return OutgoingMessage(
        reader=PartyId(identifier=reader),
        service=SERVICE,
        business_scenario="XDOMEA_DATA",
        message_type=RECEIPT,
        payload_schema=NS,
        content=OutgoingContent(blob=blob, size=size, content_type="application/xml"),
    )


def fv_client(xta: Xta, schema_dir: Path, context: ConnectorContext) -> XtaClient:
    settings = XtaSettings.model_validate(
        {"url": xta.url, "account": {"identifier": FV}, "timeout_seconds": 5}
    )
    return XtaClient(settings, schemas=schema_dir, http=lambda: context.http, blobs=context.blobs)


def sent_to_fv(xta: Xta) -> list[Any]:
    return list(xta.state.mailbox(FV).values())
