"""Talking to enaio: authentication (Basic or session cookie), error classification, and the two APIs.

`EnaioHttp` sends requests through the hub's `Outbound` (shared session, failures classified as
`Retryable` or `Permanent`) and adds enaio's session-cookie login. `DmsApi` and `OsrestApi` offer the
same operations on top of it — search by index fields, insert an object (with content streamed from
the blob store), insert several documents into one location, update an object's index data, who am I,
which object types are missing — so the sink's find-or-create logic is the same for both.

Small files (up to `BUFFERED_FILE`) are read into memory and sent with the request in one body of known
length; larger ones are streamed from the blob store while the request is sent, so a 2 GB Anlage never
sits in memory. The DMS Service takes several objects in one insert (``{"objects": [...]}``, one file
part per ``cid``): the documents of a filing go in one request (up to `BATCH_BYTES` of buffered content).
"""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.payload import AsyncIterablePayload

from hub import Blobs, Permanent, Retryable
from hub.outbound import (
    BasicAuth,
    HttpAnswer,
    HttpEndpoint,
    Outbound,
    Refusal,
    SessionFactory,
    basic_authorization,
    classify,
    read_bounded,
)

from .config import NAME_PATTERN, TYPE_PATTERN, EnaioConfig

log = logging.getLogger(__name__)

TRAY = "system:tray"  # the location of documents put in the technical user's tray
MAX_ANSWER = 4 * 1024**2  # bytes of an ordinary JSON answer
MAX_SCHEMA = 64 * 1024**2  # bytes of the object definition (large installations have thousands of fields)
MAX_HITS = 100  # search results asked for; more Akten for one person than that would be a data problem
LOGIN_PATH = {"dms": "/api/dms/info/native", "osrest": "/osrest/api/session"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TYPE = re.compile(TYPE_PATTERN)
_COLUMN = re.compile(r"^(?:system:)?" + NAME_PATTERN.removeprefix("^"))

# A file up to this size is sent from memory in the request's one body: a chunked multipart body sends
# every part's boundary, headers and content as socket writes of their own (about 14 % of the hub's CPU
# while filing small applications went into those writes).
BUFFERED_FILE = 1024**2
# Buffered content in one DMS insert of several documents: the memory one request may hold.
BATCH_BYTES = 8 * 1024**2

BodyFactory = Callable[[], aiohttp.payload.Payload]


@dataclass(frozen=True)
class Hit:
    """An object a search found: its id and the requested index fields."""

    id: str
    fields: dict[str, str]

    @property
    def order(self) -> tuple[int, str]:
        """Sort key: oldest (lowest numeric id) first."""
        return (int(self.id), "") if self.id.isdigit() else (2**63, self.id)


@dataclass(frozen=True)
class Upload:
    """A document's content: sent from the blob store when the insert is sent."""

    name: str
    media_type: str
    blob: str
    size: int

    @property
    def buffered(self) -> bool:
        """Whether it is read into memory and sent in one body (see `BUFFERED_FILE`)."""
        return self.size <= BUFFERED_FILE


@dataclass(frozen=True)
class NewDocument:
    """A document to insert: its object type, index fields and content."""

    object_type: str
    fields: Mapping[str, str]
    upload: Upload
    what: str  # names it in errors, e.g. "insert of document 2"


class EnaioHttp:
    """Requests to one enaio server: the hub's `Outbound`, with enaio's session-cookie login on top."""

    def __init__(self, config: EnaioConfig, session: SessionFactory) -> None:
        self.config = config
        self._authorization = basic_authorization(config.username, config.password.get_secret_value())
        # Basic on every request, or no Authorization at all and the session cookie instead.
        auth = (
            BasicAuth(username=config.username, password=config.password) if config.auth == "basic" else None
        )
        endpoint = HttpEndpoint(base_url=config.base_url, auth=auth, timeout_seconds=config.timeout_seconds)
        self.outbound = Outbound(session, endpoint, system="enaio", account=config.username)
        self._session_id: str | None = None
        self._login_lock = asyncio.Lock()
        self.logins = 0

    @property
    def has_session(self) -> bool:
        """Whether a session cookie is held (auth: session)."""
        return self._session_id is not None

    async def request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        json_body: Any = None,
        body: BodyFactory | None = None,
        params: Mapping[str, str] | None = None,
        limit: int = MAX_ANSWER,
    ) -> bytes:
        """One API call; the answer's body, or `Retryable`/`Permanent` naming `what` failed."""
        relogged = False
        while True:
            headers: dict[str, str] | None = None
            session_id = None
            if self.config.auth == "session":
                session_id = await self._current_session()
                # The cookie as the server set it, in a header of its own: aiohttp's `cookies=` builds a
                # cookie jar, a SimpleCookie and its Morsels per request (a tenth of the client's CPU).
                headers = {"Cookie": f"JSESSIONID={session_id}"}
            answer = await self.outbound.send(
                method, path, what, json=json_body, data=body, params=params, headers=headers, limit=limit
            )
            if answer.status == 401 and session_id is not None and not relogged:
                # The session expired (timeout, server restart): log in again, once.
                self._forget(session_id)
                relogged = True
                continue
            classify(answer.status, answer.body, what, "enaio", self.config.username)
            return answer.body

    async def _current_session(self) -> str:
        session_id = self._session_id
        if session_id is not None:
            return session_id
        async with self._login_lock:
            if self._session_id is None:
                self._session_id = await self._login()
            return self._session_id

    def _forget(self, session_id: str) -> None:
        if self._session_id == session_id:
            self._session_id = None

    async def _login(self) -> str:
        path = LOGIN_PATH[self.config.api]
        headers = {"Authorization": self._authorization}
        async with self.outbound.open("GET", path, "login", headers=headers) as response:
            data = await read_bounded(response, "login")
            morsel = response.cookies.get("JSESSIONID")
        classify(response.status, data, "login", "enaio", self.config.username)
        if morsel is None or not morsel.value:
            raise Permanent(
                f"login: enaio answered GET {path} without a JSESSIONID cookie; "
                "set auth: basic for this server"
            )
        self.logins += 1
        log.info("enaio session opened user=%s api=%s", self.config.username, self.config.api)
        return morsel.coded_value  # sent back exactly as the server set it


def _json(data: bytes, what: str) -> Any:
    return HttpAnswer(200, {}, data).json(what)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _file_name(name: str) -> str:
    return _CONTROL.sub(" ", name).strip() or "dokument"


def _file_part(upload: Upload, blobs: Blobs, part_name: str) -> AsyncIterablePayload:
    """The file part, reading the blob only while the request is sent (never the whole file in memory)."""
    payload = AsyncIterablePayload(blobs.read(upload.blob), content_type=upload.media_type)
    _name_file_part(payload, upload, part_name)
    return payload


def _name_file_part(payload: aiohttp.payload.Payload, upload: Upload, part_name: str) -> None:
    # UTF-8 file names as browsers send them (RFC 7578 4.2), not percent-encoded.
    payload.set_content_disposition(
        "form-data", quote_fields=False, name=part_name, filename=_file_name(upload.name)
    )


async def _multipart(data: Any, files: Sequence[tuple[str, Upload, bool]], blobs: Blobs) -> BodyFactory:
    """The body factory of a multipart insert: part ``data`` (JSON), then the files (part name, upload,
    with a ``Content-ID`` header equal to the part name or not).

    Where every file is small, the whole body is built once, in memory: sent with a Content-Length in
    one socket write, and again as it is if the request is repeated (a new session). Otherwise each
    request gets a fresh writer that streams the files from the blob store.
    """

    def build(contents: Sequence[bytes] | None) -> aiohttp.MultipartWriter:
        # contents: the files' bytes, read beforehand; None: each streamed from the blob store as sent
        writer = aiohttp.MultipartWriter("form-data")
        writer.append_json(data).set_content_disposition("form-data", name="data")
        for i, (name, upload, with_id) in enumerate(files):
            part: aiohttp.payload.Payload
            if contents is None:
                part = _file_part(upload, blobs, name)
            else:
                part = aiohttp.payload.BytesPayload(contents[i], content_type=upload.media_type)
                _name_file_part(part, upload, name)
            if with_id:
                part.headers["Content-ID"] = name
            writer.append_payload(part)
        return writer

    if all(upload.buffered for _, upload, _ in files):
        built = build([await blobs.read_bytes(upload.blob) for _, upload, _ in files])
        body, content_type = await built.as_bytes(), built.content_type
        return lambda: aiohttp.payload.BytesPayload(body, content_type=content_type)
    return lambda: build(None)


def _fields(values: Mapping[str, str]) -> dict[str, dict[str, str]]:
    return {name: {"value": value} for name, value in values.items()}


class EnaioApi(ABC):
    """The operations the sink needs, whichever API carries them."""

    name: str

    def __init__(self, http: EnaioHttp) -> None:
        self.http = http

    @abstractmethod
    async def search(
        self, object_type: str, criteria: Mapping[str, str], columns: Sequence[str], what: str
    ) -> list[Hit]:
        """Objects of the type whose index fields equal the criteria, with the requested columns."""

    @abstractmethod
    async def insert(
        self,
        object_type: str,
        location: str | None,
        fields: Mapping[str, str],
        upload: Upload | None,
        blobs: Blobs,
        what: str,
    ) -> str:
        """Create an object under `location` (None: a folder in its cabinet; `TRAY`); returns its id."""

    async def insert_documents(
        self, location: str, documents: Sequence[NewDocument], blobs: Blobs
    ) -> AsyncIterator[list[str]]:
        """Insert the documents under `location`; yields the new ids of each request's documents, in order.

        One request per document here; an API that takes several objects in one insert overrides it.
        """
        for document in documents:
            yield [
                await self.insert(
                    document.object_type, location, document.fields, document.upload, blobs, document.what
                )
            ]

    @abstractmethod
    async def update(
        self, object_id: str, object_type: str | None, fields: Mapping[str, str], what: str
    ) -> None:
        """Set index fields of an existing object (the others keep their values)."""

    @abstractmethod
    async def identity(self) -> dict[str, str]:
        """Who the server says we are (proves the credentials), with server details."""

    @abstractmethod
    async def missing_types(self, object_types: Sequence[str]) -> list[str]:
        """Those of the object types (internal names or ids) the server does not know."""


class DmsApi(EnaioApi):
    """The DMS Service (``/api/dms``)."""

    name = "dms"

    async def search(
        self, object_type: str, criteria: Mapping[str, str], columns: Sequence[str], what: str
    ) -> list[Hit]:
        selected = ["system:objectId", *(c for c in columns if c != "system:objectId")]
        _check_statement_names(object_type, [*selected, *criteria])
        parameters = {f"p{i}": value for i, value in enumerate(criteria.values(), start=1)}
        where = " AND ".join(f"{name}=@p{i}" for i, name in enumerate(criteria, start=1))
        # Only checked names go into the statement text; every value travels as a parameter.
        statement = f"SELECT {', '.join(selected)} FROM {object_type}"  # noqa: S608
        if where:
            statement += f" WHERE {where}"
        query = {
            "statement": statement,
            "skipCount": 0,
            "maxItems": MAX_HITS,
            "handleDeletedDocuments": "DELETED_DOCUMENTS_EXCLUDE",
            "parameters": parameters,
        }
        answer = _json(
            await self.http.request("POST", "/api/dms/objects/search", what, json_body={"query": query}), what
        )
        objects = answer.get("objects") if isinstance(answer, dict) else None
        if not isinstance(objects, list):
            raise Retryable(f"{what}: unexpected answer (no `objects` list)")
        if answer.get("hasMoreItems"):
            log.warning("enaio search has more than %d hits what=%s type=%s", MAX_HITS, what, object_type)
        return [_dms_hit(o, what) for o in objects]

    async def insert(
        self,
        object_type: str,
        location: str | None,
        fields: Mapping[str, str],
        upload: Upload | None,
        blobs: Blobs,
        what: str,
    ) -> str:
        properties: dict[str, dict[str, str]] = {"system:objectTypeId": {"value": object_type}}
        if location is not None:
            properties["system:parentId"] = {"value": location}
        properties.update(_fields(fields))
        obj: dict[str, Any] = {"properties": properties}
        if upload is None:
            # Metadata only (folder, register): plain JSON.
            data = await self.http.request("POST", "/api/dms/objects", what, json_body={"objects": [obj]})
            (object_id,) = _dms_ids(data, 1, what)
            return object_id
        (object_id,) = await self._insert_with_content([(obj, upload)], blobs, what)
        return object_id

    async def insert_documents(
        self, location: str, documents: Sequence[NewDocument], blobs: Blobs
    ) -> AsyncIterator[list[str]]:
        """Small documents go several to a request (one request per filing, usually); a large one alone."""
        for batch in _batches(documents):
            objects = []
            for document in batch:
                properties = {
                    "system:objectTypeId": {"value": document.object_type},
                    "system:parentId": {"value": location},
                    **_fields(document.fields),
                }
                objects.append(({"properties": properties}, document.upload))
            what = batch[0].what if len(batch) == 1 else _what_of(batch)
            yield await self._insert_with_content(objects, blobs, what)

    async def _insert_with_content(
        self, objects: Sequence[tuple[dict[str, Any], Upload]], blobs: Blobs, what: str
    ) -> list[str]:
        """One insert of objects with a content stream each (part name and Content-ID = its cid)."""
        files = []
        for n, (obj, upload) in enumerate(objects, start=1):
            cid = f"cid_doc{n}"
            obj["contentStreams"] = [{"cid": cid, "fileName": _file_name(upload.name)}]
            files.append((cid, upload, True))
        body = await _multipart({"objects": [obj for obj, _ in objects]}, files, blobs)
        data = await self.http.request("POST", "/api/dms/objects", what, body=body)
        return _dms_ids(data, len(objects), what)

    async def update(
        self, object_id: str, object_type: str | None, fields: Mapping[str, str], what: str
    ) -> None:
        # The insert endpoint with the object's id among the properties updates that object.
        properties: dict[str, dict[str, str]] = {"system:objectId": {"value": object_id}}
        if object_type is not None:
            properties["system:objectTypeId"] = {"value": object_type}
        properties.update(_fields(fields))
        body = {"objects": [{"properties": properties}]}
        answer = _json(await self.http.request("POST", "/api/dms/objects", what, json_body=body), what)
        objects = answer.get("objects") if isinstance(answer, dict) else None
        if not isinstance(objects, list) or len(objects) != 1 or _dms_hit(objects[0], what).id != object_id:
            raise Retryable(f"{what}: unexpected answer (expected the updated object {object_id})")

    async def identity(self) -> dict[str, str]:
        answer = _json(await self.http.request("GET", LOGIN_PATH["dms"], "server info"), "server info")
        user = answer.get("user") if isinstance(answer, dict) else None
        return {
            "user": _text(user.get("name") if isinstance(user, dict) else None) or self.http.config.username,
            "server_version": _text(answer.get("serverVersion") if isinstance(answer, dict) else None),
        }

    async def missing_types(self, object_types: Sequence[str]) -> list[str]:
        if not object_types:
            return []  # the definition can be megabytes: fetch it only to look something up
        what = "object definition"
        answer = _json(await self.http.request("GET", "/api/dms/schema/native", what, limit=MAX_SCHEMA), what)
        known: set[str] = set()
        definition = answer.get("asobjdef") if isinstance(answer, dict) else None
        for cabinet in _as_list(definition.get("cabinet") if isinstance(definition, dict) else None):
            for obj in _as_list(cabinet.get("object") if isinstance(cabinet, dict) else None):
                if isinstance(obj, dict):
                    known.add(_text(obj.get("internal")))
                    ids = obj.get("ids")
                    if isinstance(ids, dict):
                        known.add(_text(ids.get("oid")))
        if not known:
            raise Retryable(f"{what}: unexpected answer (no asobjdef.cabinet[].object[])")
        return [t for t in object_types if t not in known]


def _batches(documents: Sequence[NewDocument]) -> list[list[NewDocument]]:
    """The documents in the order given, grouped into inserts: small ones together up to `BATCH_BYTES`,
    a large (streamed) one alone."""
    batches: list[list[NewDocument]] = []
    size = 0
    for document in documents:
        upload = document.upload
        if not upload.buffered:
            batches.append([document])
            size = BATCH_BYTES  # nothing joins a streamed document
        elif batches and size + upload.size <= BATCH_BYTES:
            batches[-1].append(document)
            size += upload.size
        else:
            batches.append([document])
            size = upload.size
    return batches


def _what_of(batch: Sequence[NewDocument]) -> str:
    """One request's documents in errors: "insert of documents (insert of document 0, ...)"."""
    return f"insert of {len(batch)} documents ({', '.join(d.what for d in batch)})"


def _dms_ids(data: bytes, count: int, what: str) -> list[str]:
    """The ids of an insert's answer: one object per object sent, in the order sent."""
    answer = _json(data, what)
    objects = answer.get("objects") if isinstance(answer, dict) else None
    if not isinstance(objects, list) or len(objects) != count:
        expected = "one object" if count == 1 else f"{count} objects"
        raise Retryable(f"{what}: unexpected answer (expected {expected})")
    return [_dms_hit(o, what).id for o in objects]


def _check_statement_names(object_type: str, names: Sequence[str]) -> None:
    if not _TYPE.match(object_type):
        raise Permanent(f"{object_type[:60]!r} is not an enaio object type (internal name or numeric id)")
    for name in names:
        if not _COLUMN.match(name):
            raise Permanent(f"{name[:60]!r} is not an enaio index field name")


def _as_list(value: Any) -> list[Any]:
    """A JSON list, or a single element converted from XML as an object (enaio's asobjdef does that)."""
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _dms_hit(raw: Any, what: str) -> Hit:
    properties = raw.get("properties") if isinstance(raw, dict) else None
    if not isinstance(properties, dict):
        raise Retryable(f"{what}: unexpected answer (object without properties)")
    values = {k: v.get("value") if isinstance(v, dict) else None for k, v in properties.items()}
    object_id = _text(values.pop("system:objectId", None))
    if not object_id:
        raise Retryable(f"{what}: unexpected answer (object without system:objectId)")
    return Hit(object_id, {k: _text(v) for k, v in values.items()})


class OsrestApi(EnaioApi):
    """The OSRest appconnector (``/osrest/api``), deprecated since enaio 10 but widespread."""

    name = "osrest"

    async def search(
        self, object_type: str, criteria: Mapping[str, str], columns: Sequence[str], what: str
    ) -> list[Hit]:
        result_config: dict[str, Any] = {"pagesize": MAX_HITS}
        wanted = [c for c in columns if not c.startswith("system:")]
        if wanted:
            result_config["fieldsschema"] = [{"internalName": name} for name in wanted]
        query = {"objectTypeId": object_type, "fields": _fields(criteria), "result_config": result_config}
        answer = _json(
            await self.http.request("POST", "/osrest/api/documents/search", what, json_body={"query": query}),
            what,
        )
        if not isinstance(answer, list):
            raise Retryable(f"{what}: unexpected answer (expected a list of objects)")
        return [_osrest_hit(o, what) for o in answer]

    async def insert(
        self,
        object_type: str,
        location: str | None,
        fields: Mapping[str, str],
        upload: Upload | None,
        blobs: Blobs,
        what: str,
    ) -> str:
        data = {"objectTypeId": object_type, "fields": _fields(fields)}
        in_tray = location == TRAY
        location_id = "0" if location is None or in_tray else location

        files = [] if upload is None else [("file", upload, False)]
        body = await _multipart(data, files, blobs)
        answer = await self.http.request(
            "POST",
            f"/osrest/api/documents/insert/{location_id}",
            what,
            body=body,
            params={"inusertray": "true"} if in_tray else None,
        )
        text = answer.decode("utf-8", errors="replace").strip().strip('"')
        if not text.isdigit():
            raise Retryable(f"{what}: unexpected answer (expected the new object's id): {text[:40]!r}")
        return text

    async def update(
        self, object_id: str, object_type: str | None, fields: Mapping[str, str], what: str
    ) -> None:
        if not object_id.isdigit():
            raise Permanent(f"{what}: {object_id[:40]!r} is not an OSRest object id")
        # The shape of ngx-enaio's EnaioDocumentUpdateData: fields repeat their internal name.
        data: dict[str, Any] = {
            "osid": object_id,
            "fields": {name: {"value": value, "internalName": name} for name, value in fields.items()},
        }
        if object_type is not None:
            data["objectTypeId"] = object_type

        def body() -> aiohttp.MultipartWriter:
            writer = aiohttp.MultipartWriter("form-data")
            writer.append_json(data).set_content_disposition("form-data", name="data")
            return writer

        await self.http.request("POST", f"/osrest/api/documents/update/{object_id}", what, body=body)

    async def identity(self) -> dict[str, str]:
        session = _json(await self.http.request("GET", LOGIN_PATH["osrest"], "session info"), "session info")
        info = _json(
            await self.http.request("GET", "/osrest/api/serviceinfo", "service info"), "service info"
        )
        # The appconnector's own shapes: session.username, serviceinfo.serverVersion (ngx-enaio's models).
        return {
            "user": _text(session.get("username") if isinstance(session, dict) else None)
            or self.http.config.username,
            "server_version": _text(info.get("serverVersion") if isinstance(info, dict) else None),
        }

    async def missing_types(self, object_types: Sequence[str]) -> list[str]:
        missing = []
        for object_type in object_types:
            query = {"objectTypeId": object_type, "fields": {}, "result_config": {"pagesize": 1}}
            try:
                await self.http.request(
                    "POST",
                    "/osrest/api/documents/search",
                    f"probe of type {object_type}",
                    json_body={"query": query},
                )
            except Refusal as exc:
                if exc.status in (401, 403):
                    raise
                missing.append(object_type)
        return missing


def _osrest_hit(raw: Any, what: str) -> Hit:
    if not isinstance(raw, dict) or not _text(raw.get("osid")):
        raise Retryable(f"{what}: unexpected answer (object without osid)")
    fields: dict[str, str] = {}
    for entry in _as_list(raw.get("ecmSimpleFields")):
        if isinstance(entry, dict) and isinstance(entry.get("internalName"), str):
            fields[entry["internalName"]] = _text(entry.get("value"))
    return Hit(_text(raw["osid"]), fields)
