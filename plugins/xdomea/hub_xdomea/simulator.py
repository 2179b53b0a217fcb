"""Simulator of a DMS's xdomea import endpoint, as far as the sink uses it.

``POST /xdomea/import`` takes a ``multipart/form-data`` body with one file part: the ZIP of a
``FVDaten.SGOAblegen.0605`` message. HTTP Basic auth. The ZIP is streamed to disk, then checked like a
strict importer does:

- a ZIP (no absolute or ``..`` paths, no duplicate names, sizes within limits, every entry readable:
  not encrypted, a known compression method);
- exactly one ``<ProzessID>_FVDaten.SGOAblegen.0605.xml`` whose Kopf carries that ProzessID and
  Nachrichtentyp 0605, valid against ``xdomea.xsd``, without DOCTYPE or entity references;
- every ``Primaerdokument/Dateiname`` present in the ZIP, and no file that no Primärdokument names;
  every entry readable (CRC checked).

Answers (JSON): 201 ``{"status": "imported", "prozessId", "importId", ...}``; a ProzessID imported
before: 200 ``{"status": "already imported", ...}``; refusals 4xx ``{"status": <code>, "message": ...}``
(401 auth, 400 malformed request or multipart body, 404/405 unknown path or method, 413 too large, 415 no
multipart, 422 the message is refused).

Operator endpoints (no auth): ``GET /_sim/imports``, ``GET /_sim/imports/{prozess_id}`` (files with
sha256), ``…/message`` (the XML), ``…/package`` (the ZIP), ``GET|POST /_sim/faults``, ``GET /_sim/stats``.
Run it with ``aktenhub simulate xdomea --port 8096``; tests start `make_app` on a loopback test server.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.typedefs import Handler
from lxml import etree
from pydantic import Field

from hub.schemas import schema_directory
from hub.simulation import (
    FaultKnobs,
    SimulatedFaults,
    basic_credentials,
    basic_user,
    fault_middleware,
    fault_routes,
    multipart_errors,
    refusal_middleware,
    users_option,
)
from hub.xml import UnsafeXml, hardened_parser, parse_xml

from .answers import IMPORT, RECEIPT, answer_file_name, build_import, build_receipt
from .schema import NS, Schema, SchemaUnavailable, load_schema

IMPORT_PATH = "/xdomea/import"
ANSWERS_PATH = "/xdomea/answers"
OPERATOR_PREFIX = "/_sim/"
DEFAULT_USERS = {"aktenhub": "xdomea-simulator"}
CHUNK = 64 * 1024
MAX_JSON = 64 * 1024
MESSAGE_NAME = re.compile(
    r"^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})_FVDaten\.SGOAblegen\.0605\.xml$"
)
MAX_FINDINGS = 5
# What Python's zipfile raises for a ZIP it cannot read: corrupt, truncated, encrypted (RuntimeError), an
# unknown compression method (NotImplementedError), a name not in its declared encoding (ValueError).
ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError)


class Knobs(FaultKnobs):
    """Fault knobs and limits, settable when the simulator starts and at runtime (``POST /_sim/faults``)."""

    drop_after_import: int = Field(
        0,
        ge=0,
        description="for the next N new imports: store the import, then drop the connection unanswered",
    )
    max_zip_bytes: int = Field(512 * 1024**2, ge=1, description="largest ZIP taken")
    max_xml_bytes: int = Field(16 * 1024**2, ge=1, description="largest message XML taken")
    max_entries: int = Field(10_000, ge=1, description="most entries in one ZIP")
    duplicate_detection: bool = Field(
        True,
        description="recognise a ProzessID imported before (200 'already imported'); off: import it again, "
        "as a DMS without duplicate detection does",
    )
    refuse_import: str | None = Field(
        None,
        description="with a receipt requested: take the message (0629), but fail its import with this "
        "text (0630 with 0605005 and the text); nothing is imported",
    )
    hold_answers: bool = Field(
        False, description="keep the 0629/0630 answers back (404) until this is turned off again"
    )


class Refused(Exception):
    """A request the simulated DMS refuses: answered with `status` and `message`."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class StoredFile:
    """A primary file of an import."""

    name: str
    size: int
    sha256: str


@dataclass
class Inspection:
    """What the checks found in a ZIP that passed them."""

    prozess_id: str
    message_name: str
    xml: bytes
    files: list[StoredFile]
    objects: list[dict[str, Any]]


@dataclass
class Import:
    """A message the simulated DMS has imported."""

    import_id: str
    prozess_id: str
    package: str  # the uploaded file's name
    path: Path  # where the ZIP is kept
    message_name: str
    xml: bytes
    files: list[StoredFile]
    objects: list[dict[str, Any]]
    user: str
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    repeats: int = 0  # how often the same ProzessID came again

    def describe(self) -> dict[str, Any]:
        """The import as the operator endpoints list it."""
        return {
            "importId": self.import_id,
            "prozessId": self.prozess_id,
            "package": self.package,
            "message": self.message_name,
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in self.files],
            "objects": self.objects,
            "user": self.user,
            "receivedAt": self.received_at.isoformat(),
            "repeats": self.repeats,
        }


class XdomeaState(SimulatedFaults[Knobs]):
    """What the simulated DMS holds: imports by ProzessID, counters, knobs."""

    def __init__(
        self,
        schema: Schema,
        users: Mapping[str, str],
        knobs: Knobs,
        content_dir: Path | None,
        behoerdenschluessel: str | None = None,
    ) -> None:
        self.schema = schema
        self.behoerdenschluessel = behoerdenschluessel
        self.users = dict(users)
        self.knobs = knobs
        self._own_dir = content_dir is None
        self.content_dir = (
            Path(tempfile.mkdtemp(prefix="xdomea-sim-")) if content_dir is None else content_dir
        )
        self.content_dir.mkdir(parents=True, exist_ok=True)
        self.imports: dict[str, Import] = {}  # by ProzessID: the first import of each
        self.history: list[Import] = []  # every import, a ProzessID imported again included
        self.answers: dict[str, bytes] = {}  # answer file name -> 0629/0630 XML
        self.failed_imports = 0
        self.uploads = 0
        self.refused = 0
        self.duplicates = 0
        self.dropped = 0
        self._ids = itertools.count(1)
        self._names = itertools.count(1)

    def staging_path(self) -> Path:
        """A fresh path for an upload being received."""
        return self.content_dir / f".upload-{next(self._names)}.part"

    def new_import_id(self) -> str:
        """The next import id."""
        return f"imp-{next(self._ids):05d}"

    def take_drop(self) -> bool:
        """Whether this import's answer is one of the next N to be dropped."""
        if self.knobs.drop_after_import > 0:
            self.knobs.drop_after_import -= 1
            self.dropped += 1
            return True
        return False

    def imports_of(self, prozess_id: str) -> list[Import]:
        """Every import of a ProzessID (more than one only without duplicate detection)."""
        return [i for i in self.history if i.prozess_id == prozess_id.lower()]

    def remove_content(self) -> None:
        """Delete the kept ZIPs if the simulator created their directory."""
        if self._own_dir:
            shutil.rmtree(self.content_dir, ignore_errors=True)


STATE = web.AppKey("xdomea_simulator_state", XdomeaState)
USER = web.RequestKey("xdomea_user", str)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": status, "message": message}, status=status)


def _drop(request: web.Request) -> NoReturn:
    """Close the connection without an answer, as a crashing server or a broken network does."""
    if request.transport is not None:
        request.transport.close()
    raise web.HTTPServiceUnavailable()  # never reaches the client: the connection is gone


# -- middlewares ---------------------------------------------------------------------------------------


def _refusal(request: web.Request, status: int, message: str) -> web.Response:
    if not request.path.startswith(OPERATOR_PREFIX):
        request.app[STATE].refused += 1
    return _error(status, message)


@web.middleware
async def _refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as refused:
        return _refusal(request, refused.status, refused.message)


@web.middleware
async def _authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(OPERATOR_PREFIX):
        return await handler(request)
    state = request.app[STATE]
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    user = basic_user(header, state.users)
    if user is None:
        state.refused += 1
        given = basic_credentials(header) is not None
        refusal = _error(401, "authentication failed" if given else "authentication required")
        refusal.headers[hdrs.WWW_AUTHENTICATE] = 'Basic realm="xdomea import", charset="UTF-8"'
        return refusal
    request[USER] = user
    return await handler(request)


# -- checking a ZIP ------------------------------------------------------------------------------------


def inspect_package(path: Path, schema: Schema, knobs: Knobs, receiver: str | None = None) -> Inspection:
    """Check a received ZIP as a strict xdomea importer does; raise `Refused` (422) naming the problem.

    With `receiver` (this DMS's Behördenschlüssel), a message addressed to another authority is refused.
    """
    try:
        archive = zipfile.ZipFile(path)
    except ZIP_ERRORS:
        raise Refused("the upload is not a ZIP file") from None
    with archive:
        entries = _entries(archive, knobs)
        messages = [(name, m.group(1)) for name in entries if (m := MESSAGE_NAME.match(name))]
        if len(messages) != 1:
            raise Refused(
                "the ZIP must hold exactly one <ProzessID>_FVDaten.SGOAblegen.0605.xml at its root, "
                f"found {len(messages)}"
            )
        message_name, name_pid = messages[0]
        info = entries[message_name]
        if info.file_size > knobs.max_xml_bytes:
            raise Refused(f"{message_name} is larger than {knobs.max_xml_bytes} bytes", 413)
        xml = _read_entry(archive, info)
        try:
            # No DOCTYPE, no entities: an unresolved entity would otherwise break schema validation.
            document = parse_xml(xml, limit=knobs.max_xml_bytes)
        except UnsafeXml as exc:
            raise Refused(f"{message_name}: {exc}") from None
        findings = schema.findings(document, MAX_FINDINGS)
        if findings:
            raise Refused(f"{message_name} is not valid against xdomea.xsd: " + "; ".join(findings))
        if document.tag != f"{{{NS}}}FVDaten.SGOAblegen.0605":
            raise Refused(
                f"{message_name} holds {etree.QName(document).localname}, not FVDaten.SGOAblegen.0605"
            )
        ns = {"x": NS}
        pid = document.findtext("x:Kopf/x:ProzessID", namespaces=ns) or ""
        if pid.lower() != name_pid.lower():
            raise Refused(f"the ProzessID in the Kopf ({pid}) differs from the file name's ({name_pid})")
        code = document.findtext("x:Kopf/x:Nachrichtentyp/code", namespaces=ns)
        if code != "0605":
            raise Refused(f"Nachrichtentyp {code!r} is not 0605")
        addressee = document.findtext(
            "x:Kopf/x:Empfaenger/x:Behoerdenkennung/x:Behoerdenschluessel/code", namespaces=ns
        )
        if receiver is not None and addressee != receiver:
            raise Refused(
                f"the message is addressed to Behördenschlüssel {addressee!r}; this DMS is {receiver!r}"
            )
        referenced = [
            e.text or "" for e in document.iterfind(".//x:Primaerdokument/x:Dateiname", namespaces=ns)
        ]
        if len(set(referenced)) != len(referenced):
            raise Refused("two Primärdokumente name the same file")
        missing = [n for n in referenced if n not in entries]
        if missing:
            raise Refused(f"Primärdatei {missing[0]!r} is not in the ZIP")
        extra = sorted(set(entries) - set(referenced) - {message_name})
        if extra:
            raise Refused(f"the ZIP holds {extra[0]!r}, which no Primaerdokument/Dateiname names")
        files = [_hash_entry(archive, entries[name]) for name in referenced]
    return Inspection(pid.lower(), message_name, xml, files, _objects(document))


def _entries(archive: zipfile.ZipFile, knobs: Knobs) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > knobs.max_entries:
        raise Refused(f"the ZIP holds more than {knobs.max_entries} entries", 413)
    entries: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        if info.is_dir():
            continue
        parts = PurePosixPath(name).parts
        if name.startswith("/") or "\\" in name or ".." in parts or (parts and parts[0].endswith(":")):
            raise Refused(f"unsafe entry name in the ZIP: {name[:100]!r}")
        if name in entries:
            raise Refused(f"the ZIP holds {name[:100]!r} twice")
        total += info.file_size
        if total > knobs.max_zip_bytes * 4:
            raise Refused("the ZIP's content is implausibly large (uncompressed)", 413)
        entries[name] = info
    return entries


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with archive.open(info) as entry:
            return entry.read(info.file_size + 1)
    except ZIP_ERRORS as exc:
        raise Refused(f"{info.filename[:100]!r} cannot be read from the ZIP: {exc}") from None


def _hash_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> StoredFile:
    digest = hashlib.sha256()
    size = 0
    try:
        with archive.open(info) as entry:
            while chunk := entry.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except ZIP_ERRORS as exc:
        raise Refused(f"{info.filename[:100]!r} cannot be read from the ZIP: {exc}") from None
    return StoredFile(info.filename, size, digest.hexdigest())


def _objects(document: etree._Element) -> list[dict[str, Any]]:
    """The filed objects, as a DMS would list them: kind, type, Betreff, Kennzeichen, documents."""
    ns = {"x": NS}
    found: list[dict[str, Any]] = []
    for element in document.iterfind(".//x:Schriftgutobjekt/*", namespaces=ns):
        found.append(_describe_object(element, ns))
    return found


def _describe_object(element: etree._Element, ns: dict[str, str]) -> dict[str, Any]:
    kind = etree.QName(element).localname
    described: dict[str, Any] = {
        "kind": kind,
        "id": element.findtext("x:Identifikation/x:ID", namespaces=ns),
        "type": element.findtext("x:Typ", namespaces=ns),
        "betreff": element.findtext("x:AllgemeineMetadaten/x:Betreff", namespaces=ns),
        "kennzeichen": element.findtext("x:AllgemeineMetadaten/x:Kennzeichen", namespaces=ns),
    }
    if kind == "Dokument":
        described["file"] = element.findtext(
            "x:Version/x:Format/x:Primaerdokument/x:Dateiname", namespaces=ns
        )
        return described
    children = (
        element.findall("x:Akteninhalt/*", namespaces=ns)
        if kind == "Akte"
        else [
            *element.findall("x:Dokument", namespaces=ns),
            *element.findall("x:Teilvorgang", namespaces=ns),
        ]
    )
    described["children"] = [_describe_object(child, ns) for child in children]
    return described


# -- the import endpoint -------------------------------------------------------------------------------


async def _receive(request: web.Request, state: XdomeaState) -> tuple[Path, str]:
    """Stream the one file part of the multipart body to disk; (path, its file name)."""
    if request.content_type != "multipart/form-data":
        raise Refused("expected multipart/form-data with the ZIP as a file part", 415)
    staged: tuple[Path, str] | None = None
    try:
        with multipart_errors():
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    raise Refused("nested multipart bodies are not supported", 400)
                if part.filename is None:
                    await part.release()  # a plain form field: not needed
                    continue
                if staged is not None:
                    raise Refused("exactly one file part (the ZIP) is expected", 400)
                staged = (await _stage(part, state), part.filename)
    except BaseException:
        if staged is not None:
            staged[0].unlink(missing_ok=True)
        raise
    if staged is None:
        raise Refused("the multipart body has no file part", 400)
    return staged


async def _stage(part: BodyPartReader, state: XdomeaState) -> Path:
    path = state.staging_path()
    size = 0
    try:
        with path.open("wb") as f:
            while chunk := await part.read_chunk(CHUNK):
                size += len(chunk)
                if size > state.knobs.max_zip_bytes:
                    raise Refused(f"the ZIP is larger than {state.knobs.max_zip_bytes} bytes", 413)
                f.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def _import(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.uploads += 1
    path, package = await _receive(request, state)
    try:
        inspection = await asyncio.to_thread(
            inspect_package, path, state.schema, state.knobs, state.behoerdenschluessel
        )
        earlier = state.imports.get(inspection.prozess_id)
        if earlier is not None and state.knobs.duplicate_detection:
            earlier.repeats += 1
            state.duplicates += 1
            return web.json_response(
                {
                    "status": "already imported",
                    "prozessId": earlier.prozess_id,
                    "importId": earlier.import_id,
                    "message": f"ProzessID {earlier.prozess_id} was imported before ({earlier.import_id})",
                },
                status=200,
            )
        request_root = etree.fromstring(inspection.xml, hardened_parser())
        receipt = request_root.findtext("x:Kopf/x:Empfangsbestaetigung", namespaces={"x": NS}) in (
            "1",
            "true",
        )
        failure = state.knobs.refuse_import if receipt else None
        kept = state.content_dir / f"{inspection.prozess_id}-{len(state.history) + 1}.zip"
        if failure is None:
            await asyncio.to_thread(os.replace, path, kept)
    finally:
        path.unlink(missing_ok=True)
    if receipt:
        # As a DMS does: first the receipt (0629), then the import's outcome (0630).
        now = datetime.now(UTC)
        state.answers[answer_file_name(inspection.prozess_id, RECEIPT)] = build_receipt(request_root, now)
        state.answers[answer_file_name(inspection.prozess_id, IMPORT)] = build_import(
            request_root, now, failure
        )
    if failure is not None:
        state.failed_imports += 1
        return web.json_response(
            {"status": "received", "prozessId": inspection.prozess_id, "message": "import follows (0630)"},
            status=202,
        )
    imported = Import(
        import_id=state.new_import_id(),
        prozess_id=inspection.prozess_id,
        package=package,
        path=kept,
        message_name=inspection.message_name,
        xml=inspection.xml,
        files=inspection.files,
        objects=inspection.objects,
        user=request[USER],
    )
    state.imports.setdefault(imported.prozess_id, imported)
    state.history.append(imported)
    if state.take_drop():
        _drop(request)
    return web.json_response(
        {
            "status": "received" if receipt else "imported",
            "prozessId": imported.prozess_id,
            "importId": imported.import_id,
            "files": len(imported.files),
        },
        status=202 if receipt else 201,
    )


async def _answer(request: web.Request) -> web.Response:
    state = request.app[STATE]
    name = request.match_info["name"]
    found = None if state.knobs.hold_answers else state.answers.get(name)
    if found is None:
        raise Refused(f"no answer {name[:100]!r} (yet)", 404)
    return web.Response(body=found, content_type="application/xml", charset="utf-8")


async def _sim_answers(request: web.Request) -> web.Response:
    return web.json_response({"answers": sorted(request.app[STATE].answers)})


async def _ready(request: web.Request) -> web.Response:
    return web.json_response({"ready": True, "user": request[USER], "accepts": ["FVDaten.SGOAblegen.0605"]})


# -- operator endpoints ----------------------------------------------------------------------------------


def _imported(request: web.Request) -> Import:
    found = request.app[STATE].imports.get(request.match_info["prozess_id"].lower())
    if found is None:
        raise Refused("no import with that ProzessID", 404)
    return found


async def _sim_imports(request: web.Request) -> web.Response:
    imports = request.app[STATE].history
    return web.json_response({"imports": [i.describe() for i in imports]})


async def _sim_import(request: web.Request) -> web.Response:
    return web.json_response(_imported(request).describe())


async def _sim_message(request: web.Request) -> web.Response:
    return web.Response(body=_imported(request).xml, content_type="application/xml", charset="utf-8")


async def _sim_package(request: web.Request) -> web.FileResponse:
    found = _imported(request)
    response = web.FileResponse(found.path)
    response.content_type = "application/zip"
    return response


async def _sim_stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        {
            "imports": len(state.history),
            "failed_imports": state.failed_imports,
            "uploads": state.uploads,
            "duplicates": state.duplicates,
            "refused": state.refused,
            "dropped": state.dropped,
        }
    )


# -- the application -------------------------------------------------------------------------------------


def default_schemas() -> Path | None:
    """The schema directory as the hub finds it ($AKTENHUB_SCHEMAS, else ../shared/reference), or None."""
    return schema_directory()


async def _shutdown(app: web.Application) -> None:
    app[STATE].release()


async def _cleanup(app: web.Application) -> None:
    app[STATE].remove_content()


def make_app(
    schemas: Path | str | None = None,
    users: Mapping[str, str] | None = None,
    behoerdenschluessel: str | None = None,
    **knobs: Any,
) -> web.Application:
    """The simulator as an aiohttp application.

    `schemas`: the schema directory holding ``xdomea/3.0.0/xsd/xdomea.xsd`` (default: $AKTENHUB_SCHEMAS,
    else ../shared/reference); `users`: user name → password (default ``aktenhub`` /
    ``xdomea-simulator``); `behoerdenschluessel`: this DMS's own (messages addressed to another
    Behördenschlüssel are refused; default: any is taken); `knobs`: see `Knobs`, plus ``content_dir``
    (where imported ZIPs are kept; default: a temporary directory removed at cleanup).
    """
    content_dir = knobs.pop("content_dir", None)
    try:
        schema = load_schema(Path(schemas) if schemas is not None else default_schemas())
    except SchemaUnavailable as exc:
        raise ValueError(f"the xdomea simulator needs the xdomea XSDs: {exc}") from None
    state = XdomeaState(
        schema,
        users_option(users, DEFAULT_USERS),
        Knobs.model_validate(knobs),
        Path(content_dir) if content_dir else None,
        str(behoerdenschluessel) if behoerdenschluessel is not None else None,
    )
    # The body is streamed by the handler; client_max_size only bounds what aiohttp buffers itself.
    app = web.Application(
        middlewares=[
            fault_middleware(STATE, _error, OPERATOR_PREFIX),
            _authentication,
            refusal_middleware(_refusal),
            _refusals,
        ],
        client_max_size=MAX_JSON,
    )
    app[STATE] = state
    app.on_shutdown.append(_shutdown)
    app.on_cleanup.append(_cleanup)
    r = app.router
    r.add_post(IMPORT_PATH, _import)
    r.add_get(IMPORT_PATH, _ready)
    r.add_get(ANSWERS_PATH + "/{name}", _answer)
    r.add_get("/_sim/answers", _sim_answers)
    r.add_get("/_sim/imports", _sim_imports)
    r.add_get("/_sim/imports/{prozess_id}", _sim_import)
    r.add_get("/_sim/imports/{prozess_id}/message", _sim_message)
    r.add_get("/_sim/imports/{prozess_id}/package", _sim_package)
    r.add_routes(fault_routes(STATE))
    r.add_get("/_sim/stats", _sim_stats)
    return app


__all__ = [
    "ANSWERS_PATH",
    "DEFAULT_USERS",
    "IMPORT_PATH",
    "STATE",
    "Import",
    "Knobs",
    "XdomeaState",
    "inspect_package",
    "make_app",
]
