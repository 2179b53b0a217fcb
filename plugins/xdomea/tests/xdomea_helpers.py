"""Helpers shared by the xdomea tests (a uniquely named module: plugin test folders are no packages)."""

from __future__ import annotations

import hashlib
import socket
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from hub_xdomea.message import process_id
from hub_xdomea.simulator import IMPORT_PATH, Import, XdomeaState
from hub_xdomea.sink import XdomeaSink
from lxml import etree

from hub import Application, ConnectorContext, Document, DocumentContent, FileRecord, FolderSpec
from hub.schemas import xml_schema

NS = "urn:xoev-de:xdomea:schema:3.0.0"
X = {"x": NS}
USER = "aktenhub"
PASSWORD = "xdomea-test-password-1"
SENDER: dict[str, Any] = {
    "behoerdenschluessel": {
        "code": "05382000",
        "name": "Rhein-Sieg-Kreis",
        "list_uri": "urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:ags",
        "list_version": "2024-01-31",
    },
    "institution": "Rhein-Sieg-Kreis",
    "kurzbezeichnung": "RSK",
    "organisationseinheit": "Amt 63, Bauaufsicht (Aktenhub)",
}
RECEIVER: dict[str, Any] = {
    "behoerdenschluessel": "05382000",
    "institution": "Rhein-Sieg-Kreis",
    "organisationseinheit": "Amt 10, Zentrale Dienste (DMS)",
}
AKTENZEICHEN = "63-2025-00042"


def make_sink(context: ConnectorContext, mode: str = "directory", **settings: Any) -> XdomeaSink:
    """An xdomea sink built the way the hub builds it: configuration validated by its `Config`."""
    base: dict[str, Any] = {"type": "xdomea", "mode": mode, "sender": SENDER, "receiver": RECEIVER}
    if mode == "http":
        base.update({"username": USER, "password": PASSWORD, "timeout_seconds": 5})
    config = XdomeaSink.Config.model_validate({**base, **settings})
    return XdomeaSink(config, context)


@dataclass
class Simulator:
    """A running simulator: where it listens, and what it holds."""

    url: str
    state: XdomeaState

    @property
    def import_url(self) -> str:
        """The import endpoint."""
        return self.url + IMPORT_PATH

    def import_of(self, application_id: str) -> Import | None:
        """The import of an application's message (by its ProzessID)."""
        return self.state.imports.get(process_id(application_id))

    def results(self, application_id: str) -> int:
        """How many imports hold the application (their messages name it as FachverfahrenObjektID)."""
        count = 0
        for imported in self.state.imports.values():
            root = etree.fromstring(imported.xml)
            ids = [e.text or "" for e in root.iterfind(".//x:FachverfahrenObjektID", X)]
            count += any(i == application_id or i.startswith(application_id + "/") for i in ids)
        return count

    async def set_faults(self, **knobs: Any) -> dict[str, Any]:
        """Change fault knobs through the operator endpoint, as an operator would."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}/_sim/faults", json=knobs) as response,
        ):
            assert response.status == 200, await response.text()
            answer: dict[str, Any] = await response.json()
            return answer


StartSimulator = Callable[..., Awaitable[Simulator]]


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def filed_record(app: Application, *, aktenzeichen: str | None = AKTENZEICHEN) -> FileRecord:
    """A record as a mapping file makes it: Bauakte (found by Aktenzeichen), Vorgang, documents."""
    assert app.original is not None
    documents = [
        Document(
            type="Anlage",
            name=a.name,
            content=DocumentContent.ATTACHMENT,
            blob=a.blob,
            media_type=a.media_type,
            attachment=a.name,
            fields={"Titel": f"Anlage {i + 1}: {a.name}", "Datum": "03.03.2025", "Anlagenart": "Bauvorlage"},
        )
        for i, a in enumerate(app.attachments)
    ]
    documents.append(
        Document(
            type="Originalantrag",
            name="Originalantrag",
            content=DocumentContent.ORIGINAL,
            blob=app.original.blob,
            media_type=app.original.media_type,
            fields={"Titel": "Antrag wie eingegangen", "Datum": "2025-03-01"},
        )
    )
    akte_fields = {"Bauherr": str(app.form.get("nachname", "")), "Gemarkung": "Siegburg", "Flur": "7"}
    if aktenzeichen is not None:
        akte_fields["Aktenzeichen"] = aktenzeichen
    return FileRecord(
        application_id=app.id,
        service=app.service,
        file_number=aktenzeichen,
        akte=FolderSpec(type="Bauakte", search={"Aktenzeichen": aktenzeichen or ""}, fields=akte_fields),
        vorgang=FolderSpec(
            type="Baugenehmigungsverfahren",
            fields={"Betreff": "Neubau Einfamilienhaus", "Eingangsdatum": "01.03.2025", "Vorhaben": "EFH"},
        ),
        documents=documents,
    )


@dataclass
class Zip:
    """A ZIP read back: the message and the other entries' sha256 by name."""

    names: list[str]
    message_name: str
    xml: bytes
    files: dict[str, str]

    @property
    def root(self) -> etree._Element:
        """The message's root element."""
        return etree.fromstring(self.xml)


def read_zip(path: Path) -> Zip:
    """Read a ZIP of a 0605 message."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        messages = [n for n in names if n.endswith("_FVDaten.SGOAblegen.0605.xml")]
        assert len(messages) == 1, names
        xml = archive.read(messages[0])
        files = {n: hashlib.sha256(archive.read(n)).hexdigest() for n in names if n != messages[0]}
    return Zip(names, messages[0], xml, files)


def zips_in(directory: Path) -> list[Path]:
    """The published ZIPs in an import directory (not the temporary dot-files)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == ".zip" and not p.name.startswith("."))


def xsd(schema_dir: Path) -> etree.XMLSchema:
    """The xdomea 3.0.0 schema, compiled by the core (not through the plugin) to judge its output."""
    return xml_schema(schema_dir / "xdomea/3.0.0/xsd/xdomea.xsd")


def assert_valid(schema: etree.XMLSchema, xml: bytes) -> None:
    """The message is valid against xdomea.xsd (else the schema's findings are shown)."""
    document = etree.fromstring(xml)
    assert schema.validate(document), [f"line {e.line}: {e.message}" for e in schema.error_log]
