"""Shared pieces of the enaio tests: a running simulator, sinks built like the hub builds them, records."""

from __future__ import annotations

import hashlib
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from hub_enaio.simulator import EnaioState, StoredObject
from hub_enaio.sink import EnaioSink

from hub import (
    Application,
    ConnectorContext,
    Document,
    DocumentContent,
    FileRecord,
    FolderSpec,
)
from hub.blobs import BlobStore
from hub.outbound import basic_authorization

USER = "aktenhub"
PASSWORD = "simulator-password-1"
APIS = ["dms", "osrest"]

# What a contract sink needs to file the core's default record (no mapping file: no Akte, types
# "original" and "attachment", no index data): the tray, type names, titles from the file names.
DEFAULT_RECORD_SETTINGS: dict[str, Any] = {
    "without_akte": "tray",
    "document_types": {"original": "Originalantrag", "attachment": "Anlage"},
    "document_title_field": "Titel",
}


@dataclass
class Enaio:
    """A running simulator: where it listens, and what it holds."""

    url: str
    state: EnaioState

    def of_application(self, application_id: str) -> list[StoredObject]:
        """The Vorgang and the documents carrying the application's id."""
        return [
            o
            for o in sorted(self.state.objects.values(), key=lambda o: o.id)
            if o.value("AktenhubID") == application_id
            or o.value("AktenhubID").startswith(application_id + "/")
        ]

    def of_type(self, internal: str) -> list[StoredObject]:
        """Every object of a type, oldest first."""
        return [
            o for o in sorted(self.state.objects.values(), key=lambda o: o.id) if o.type.internal == internal
        ]

    def children(self, parent: str | int) -> list[StoredObject]:
        """The objects directly under a parent, oldest first."""
        return [
            o for o in sorted(self.state.objects.values(), key=lambda o: o.id) if o.parent_id == int(parent)
        ]

    def results(self, application_id: str) -> int:
        """How many times the application is filed: the most copies of its Vorgang or of any document."""
        copies = Counter(o.value("AktenhubID") for o in self.of_application(application_id))
        return max(copies.values(), default=0)

    async def set_faults(self, **knobs: Any) -> dict[str, Any]:
        """Change fault knobs through the operator endpoint, as an operator would."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}/_sim/faults", json=knobs) as response,
        ):
            assert response.status == 200, await response.text()
            answer: dict[str, Any] = await response.json()
            return answer

    async def content_sha256(self, api: str, object_id: str) -> str:
        """The sha256 of a document's content, fetched through the API's content endpoint."""
        path = (
            f"/api/dms/objects/{object_id}/contents/file/1"
            if api == "dms"
            else f"/osrest/api/documentfiles/{object_id}/1"
        )
        digest = hashlib.sha256()
        headers = {"Authorization": basic_authorization(USER, PASSWORD)}
        async with aiohttp.ClientSession() as http, http.get(self.url + path, headers=headers) as response:
            assert response.status == 200, await response.text()
            async for chunk in response.content.iter_chunked(65536):
                digest.update(chunk)
        return digest.hexdigest()


StartEnaio = Callable[..., Awaitable[Enaio]]


def make_sink(context: ConnectorContext, base_url: str, api: str = "dms", **settings: Any) -> EnaioSink:
    """A sink built the way the hub builds it: configuration validated by its `Config`."""
    config = EnaioSink.Config.model_validate(
        {
            "type": "enaio",
            "base_url": base_url,
            "api": api,
            "username": USER,
            "password": PASSWORD,
            "timeout_seconds": 5,
            **settings,
        }
    )
    return EnaioSink(config, context)


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


PERSON = {"vorname": "Jürgen", "nachname": "Groß", "geburtsdatum": "1971-04-12", "ort": "Siegburg"}


async def person_record(
    app: Application,
    blobs: BlobStore,
    *,
    aktenzeichen: str = "32-2025-00001",
    leistung: str = "Jagdschein",
    vorgang: bool = True,
) -> FileRecord:
    """A record as a mapping file makes it: Personenakte, Vorgang, Antrag + attachments + original."""
    form = app.form
    person = {
        "Nachname": str(form["nachname"]),
        "Vorname": str(form["vorname"]),
        "Geburtsdatum": str(form["geburtsdatum"]),
        "Leistung": leistung,
    }
    rendition = await blobs.write_bytes(f"%PDF-1.4 Antrag {app.id}\n".encode())
    assert app.original is not None
    documents = [
        Document(
            type="Antrag",
            name="Antrag.pdf",
            content=DocumentContent.RENDITION,
            blob=rendition.ref,
            media_type="application/pdf",
            fields={"Titel": f"Antrag {leistung}", "Datum": "2025-03-01"},
        ),
        *(
            Document(
                type="Anlage",
                name=a.name,
                content=DocumentContent.ATTACHMENT,
                blob=a.blob,
                media_type=a.media_type,
                attachment=a.name,
                fields={"Titel": f"Anlage {i + 1}", "Dateiname": a.name},
            )
            for i, a in enumerate(app.attachments)
        ),
        Document(
            type="Originalantrag",
            name="antrag-original.txt",
            content=DocumentContent.ORIGINAL,
            blob=app.original.blob,
            media_type=app.original.media_type,
            fields={"Titel": "Antrag wie eingegangen"},
        ),
    ]
    return FileRecord(
        application_id=app.id,
        service=app.service,
        file_number=aktenzeichen,
        akte=FolderSpec(
            type="Personenakte",
            search=person,
            fields={**person, "Aktenzeichen": aktenzeichen, "Ort": str(form["ort"])},
        ),
        vorgang=FolderSpec(
            type="Vorgang",
            fields={"Betreff": f"Antrag {leistung}", "Eingangsdatum": "2025-03-01", "Vorgangsnummer": "V-1"},
        )
        if vorgang
        else None,
        documents=documents,
    )


def sha256_of_blob(ref: str) -> str:
    """The hex digest in a blob reference."""
    return ref.removeprefix("sha256:")
