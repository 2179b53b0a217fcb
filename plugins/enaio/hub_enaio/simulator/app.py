"""The simulator's HTTP side: the DMS Service and OSRest endpoints the sink uses, and operator endpoints.

Every API request needs HTTP Basic authentication or a valid ``JSESSIONID`` cookie (else 401); a request
authenticated by Basic gets a new session cookie, as enaio's servlet container hands out. Errors are JSON
``{"status": <code>, "error": <reason>, "message": <text>}``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from multipart import MultipartSegment, PushMultipartParser, parse_options_header

from hub.simulation import (
    MalformedRequest,
    basic_credentials,
    basic_user,
    fault_middleware,
    fault_routes,
    multipart_errors,
    parse_id,
    parse_json,
    read_body,
    refusal_middleware,
    users_option,
)

from .catalogue import Catalogue, ObjectType, load_catalogue
from .query import QueryError, parse_statement
from .rendition import text_rendition
from .search import bind, properties, run
from .staging import StagingFile
from .state import TRAY, EnaioState, Knobs, NewObject, ObjectUpdate, Refused, StagedContent, StoredObject

STATE = web.AppKey("enaio_simulator_state", EnaioState)
USER = web.RequestKey("enaio_user", str)
NEW_SESSION = web.RequestKey("enaio_new_session", str)

DEFAULT_USERS = {"aktenhub": "enaio-simulator"}
SERVER_VERSION = "enaio 11.0 (Aktenhub simulator)"
# Uploaded content is read in pieces of this size: a quarter of what the loop might buffer at a time,
# four times fewer rounds through the multipart reader than 64 KiB (each round copies its window).
CHUNK = 256 * 1024
MAX_JSON = 1024**2  # bytes of a JSON body or `data` part
MAX_ITEMS = 1000
SEARCH_KEYS = frozenset(
    {
        "statement",
        "skipCount",
        "maxItems",
        "limit",
        "handleDeletedDocuments",
        "includePermissions",
        "parameters",
        "options",
    }
)
DELETED_ORDINALS = ("DELETED_DOCUMENTS_EXCLUDE", "DELETED_DOCUMENTS_ONLY")  # the enum's order (ngx-enaio)
DELETED_MODES = frozenset({*DELETED_ORDINALS, "DELETED_DOCUMENTS_INCLUDE"})
# The technical user may do everything with what it finds (the simulator has no rights system).
PERMISSIONS = {"read": ["metadata", "object"], "write": ["metadata", "object"], "delete": ["object"]}
OPERATOR_PREFIX = "/_sim/"


def _error(status: int, message: str, path: str | None = None) -> web.Response:
    """An error in the shape of enaio's Spring-based services: timestamp, status, error, message, path."""
    reason = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        413: "Payload Too Large",
        415: "Unsupported Media Type",
        422: "Unprocessable Entity",
        503: "Service Unavailable",
    }
    body: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "status": status,
        "error": reason.get(status, "Error"),
        "message": message,
    }
    if path is not None:
        body["path"] = path
    return web.json_response(body, status=status)


def _drop(request: web.Request) -> NoReturn:
    """Close the connection without an answer, as a crashing server or a broken network does."""
    if request.transport is not None:
        request.transport.close()
    raise web.HTTPServiceUnavailable()  # never reaches the client: the connection is gone


# -- middlewares ---------------------------------------------------------------------------------------


@web.middleware
async def _refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as refused:
        return _error(refused.status, refused.message, request.path)


@web.middleware
async def _authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(OPERATOR_PREFIX):
        return await handler(request)
    state = request.app[STATE]
    session_id = request.cookies.get("JSESSIONID")
    user = state.sessions.get(session_id) if session_id else None
    new_session = None
    if user is not None:
        state.auth["session"] += 1
    else:
        header = request.headers.get(hdrs.AUTHORIZATION, "")
        credentials = basic_credentials(header)
        user = basic_user(header, state.users)
        if credentials is None or user is None:
            state.auth["refused"] += 1
            if credentials is not None:
                message = "authentication failed: wrong user name or password"
            elif session_id:
                message = "session expired or unknown: log in again"
            else:
                message = "authentication required"
            refusal = _error(401, message, request.path)
            refusal.headers[hdrs.WWW_AUTHENTICATE] = 'Basic realm="enaio", charset="UTF-8"'
            return refusal
        state.auth["basic"] += 1
        new_session = state.new_session(user)
    request[USER] = user
    route = request.match_info.route.resource
    state.requests[f"{request.method} {route.canonical if route else request.path}"] += 1
    response = await handler(request)
    if new_session is not None and not response.prepared:
        # What `set_cookie(..., path="/", httponly=True)` sends, without building a SimpleCookie and its
        # Morsel per request (Basic authentication opens a session on every request).
        response.headers.add(hdrs.SET_COOKIE, f"JSESSIONID={new_session}; HttpOnly; Path=/")
    return response


# -- request reading -----------------------------------------------------------------------------------


def _media_type(request: web.Request) -> str:
    """The body's media type, as `request.content_type` gives it: without its parameters, lower case.

    aiohttp parses the header with the `email` package, which cost the simulator more CPU than the
    search itself; the multipart reader parses the boundary on its own.
    """
    return request.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream").split(";", 1)[0].strip().lower()


class _Part:
    """A part of a multipart body being read: the ``data`` JSON in memory, a file part into its file."""

    def __init__(
        self, segment: MultipartSegment, state: EnaioState, staged: Mapping[str, StagedContent]
    ) -> None:
        if (segment.content_type or "").startswith("multipart/"):
            raise Refused("nested multipart bodies are not supported", 400)
        name = segment.name
        if not name:
            raise Refused("every part needs a form-data name", 400)
        self.name = name
        self.segment = segment
        self.text: bytearray | None = None
        self.file: StagingFile | None = None
        self.path: Path | None = None
        self.size = 0
        if name == "data":
            self.text = bytearray()
            return
        if name in staged:
            raise Refused(f"more than one part named {name[:100]!r}", 400)
        self.path = state.staging_path()
        self.file = StagingFile(self.path)

    async def add(self, chunk: bytes | bytearray, state: EnaioState) -> None:
        """The next piece of the part's content."""
        self.size += len(chunk)
        if self.text is not None:
            if self.size > MAX_JSON:
                raise MalformedRequest(f"the JSON document is larger than {MAX_JSON} bytes", 413)
            self.text += chunk
            return
        assert self.file is not None
        if self.size > state.knobs.max_content_bytes:
            raise Refused(f"content larger than {state.knobs.max_content_bytes} bytes", 413)
        await self.file.write(chunk)

    async def staged(self) -> StagedContent:
        """The file part's content, written out."""
        assert self.file is not None and self.path is not None
        await self.file.close()
        self.file = None
        segment = self.segment
        return StagedContent(
            part_name=self.name,
            content_id=segment.header("Content-ID"),
            file_name=segment.filename,
            media_type=segment.header("Content-Type", "application/octet-stream"),
            size=self.size,
            path=self.path,
        )

    def abort(self) -> None:
        """The body was refused while this file part was read: its file goes."""
        if self.file is not None and self.path is not None:
            self.file.abort()
            self.path.unlink(missing_ok=True)
            self.file = None


async def _read_multipart(request: web.Request, state: EnaioState, staged: dict[str, StagedContent]) -> Any:
    """The JSON of the ``data`` part; file parts are streamed to disk into `staged` (by part name).

    Read with `multipart`'s push parser (the one the hub reads form submissions with): aiohttp's
    reader parsed every part's Content-Disposition with a function that escapes 128 characters into a
    new regular expression per call, about a third of the simulator's CPU for an insert of four
    documents.
    """
    data: Any = None
    seen_data = False
    part: _Part | None = None
    try:
        with multipart_errors():
            parser = PushMultipartParser(_boundary(request))
            while chunk := await request.content.read(CHUNK):
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        part = _Part(event, state, staged)
                        if part.text is not None and seen_data:
                            raise Refused("more than one part named 'data'", 400)
                    elif event is not None:
                        assert part is not None
                        await part.add(event, state)
                    else:
                        assert part is not None
                        if part.text is not None:
                            data = parse_json(bytes(part.text), "part 'data'")
                            seen_data = True
                        else:
                            staged[part.name] = await part.staged()
                        part = None
            parser.close()
    finally:
        if part is not None:
            part.abort()
    if not seen_data:
        raise Refused("the multipart body has no part named 'data'", 400)
    return data


def _boundary(request: web.Request) -> str:
    _, options = parse_options_header(request.headers.get(hdrs.CONTENT_TYPE, ""))
    boundary = options.get("boundary")
    if not boundary:
        raise MalformedRequest("malformed multipart body: the Content-Type names no boundary")
    return str(boundary)


def _values(raw: Any, what: str) -> dict[str, Any]:
    """``{"Field": {"value": ...}}`` → ``{"Field": ...}``."""
    if not isinstance(raw, dict):
        raise Refused(f'{what} must be an object of {{"value": ...}} entries', 400)
    values: dict[str, Any] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) - {"value"} or "value" not in entry:
            raise Refused(f'{what}: {str(name)[:100]!r} must be {{"value": ...}}', 400)
        values[str(name)] = entry["value"]
    return values


def _parent_id(raw: Any) -> int:
    text = str(raw).strip()
    parent = parse_id(text)
    if parent is None:
        raise Refused(f"unknown parent object {text[:100]!r}")
    return parent


def _discard(staged: Mapping[str, StagedContent], keep: Sequence[NewObject | ObjectUpdate]) -> None:
    kept = {id(n.content) for n in keep if isinstance(n, NewObject) and n.content is not None}
    for content in staged.values():
        if id(content) not in kept:
            content.path.unlink(missing_ok=True)


def _user(request: web.Request) -> str:
    return request[USER]


# -- DMS Service ---------------------------------------------------------------------------------------


async def _dms_info(request: web.Request) -> web.Response:
    user = _user(request)
    return web.json_response({"serverVersion": SERVER_VERSION, "user": {"name": user, "fullName": user}})


async def _dms_schema(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].catalogue.native_schema())


def _dms_update(state: EnaioState, raw: dict[str, Any], values: dict[str, Any]) -> ObjectUpdate:
    """``system:objectId`` in the properties: an update of that object's index data."""
    object_id = parse_id(str(values.pop("system:objectId")).strip())
    type_key = values.pop("system:objectTypeId", None)
    parent_raw = values.pop("system:parentId", None)
    unknown = [k for k in values if k.startswith("system:")]
    if unknown:
        raise Refused(f"unknown or read-only system property {unknown[0][:100]!r}")
    if raw.get("contentStreams"):
        raise Refused("replacing content in an update is not supported by the simulator", 400)
    update = state.plan_update(object_id, type_key, values)
    target = update.target
    current = TRAY if target.in_tray else (None if target.parent_id is None else str(target.parent_id))
    if parent_raw is not None and str(parent_raw).strip() != current:
        raise Refused("moving an object (another system:parentId) is not supported by the simulator", 400)
    return update


def _dms_plan(state: EnaioState, raw: Any, staged: Mapping[str, StagedContent]) -> NewObject | ObjectUpdate:
    if not isinstance(raw, dict) or set(raw) - {"properties", "contentStreams", "options"}:
        raise Refused(
            'each of `objects` must be {"properties": {...}, "contentStreams": [...], "options": {...}}', 400
        )
    _job_options(raw.get("options", {}), "options")
    values = _values(raw.get("properties"), "properties")
    if "system:objectId" in values:
        return _dms_update(state, raw, values)
    if "system:objectTypeId" not in values:
        raise Refused("system:objectTypeId is missing")
    type_key = values.pop("system:objectTypeId")
    parent_raw = values.pop("system:parentId", None)
    unknown = [k for k in values if k.startswith("system:")]
    if unknown:
        raise Refused(f"unknown or read-only system property {unknown[0][:100]!r}")
    in_tray = parent_raw == TRAY
    parent = None if parent_raw is None or in_tray else _parent_id(parent_raw)
    streams = raw.get("contentStreams", [])
    if not isinstance(streams, list) or len(streams) > 1:
        raise Refused("contentStreams must be a list of at most one content stream", 422)
    content = None
    file_name = None
    for stream in streams:
        if not isinstance(stream, dict) or not isinstance(stream.get("cid"), str):
            raise Refused("a content stream needs a `cid`", 400)
        cid = stream["cid"]
        content = staged.get(cid)
        if content is None:
            raise Refused(f"content stream {cid[:100]!r}: no part with that form-data name", 400)
        if content.content_id != cid:
            raise Refused(
                f"content stream {cid[:100]!r}: the part's Content-ID header must equal its cid", 400
            )
        if isinstance(stream.get("mimeType"), str):
            content.media_type = stream["mimeType"]
        file_name = stream.get("fileName") if isinstance(stream.get("fileName"), str) else None
    return state.plan(type_key, parent, in_tray, values, content, file_name)


async def _dms_insert(request: web.Request) -> web.Response:
    state = request.app[STATE]
    staged: dict[str, StagedContent] = {}
    taken: list[NewObject | ObjectUpdate] = []  # their files are kept, every other staged file removed
    try:
        media_type = _media_type(request)
        if media_type == "application/json":
            body = parse_json(await read_body(request, MAX_JSON, "the JSON document"), "the body")
        elif media_type == "multipart/form-data":
            body = await _read_multipart(request, state, staged)
        else:
            raise Refused("expected application/json or multipart/form-data", 415)
        objects = body.get("objects") if isinstance(body, dict) else None
        if not isinstance(objects, list) or not objects or set(body) != {"objects"}:
            raise Refused('expected {"objects": [...]} with at least one object', 400)
        planned = [_dms_plan(state, raw, staged) for raw in objects]
        used = [n.content for n in planned if isinstance(n, NewObject) and n.content is not None]
        if len({id(c) for c in used}) != len(used):
            raise Refused("two objects name the same content stream", 400)
        if len(used) != len(staged):
            raise Refused("a file part is not referenced by any content stream", 400)
        user = _user(request)
        taken = planned
        stored = [
            state.store(new, user) if isinstance(new, NewObject) else state.apply(new, user)
            for new in planned
        ]
    finally:
        _discard(staged, taken)
    if state.take_drop():
        _drop(request)
    return web.json_response({"objects": [{"properties": properties(state, o, ())} for o in stored]})


def _job_options(raw: Any, what: str) -> dict[str, int]:
    """Server job options: names mapped to 1 or 0 (the DMS Service refuses any other value)."""
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and v in (0, 1) for k, v in raw.items()
    ):
        raise Refused(f"{what} must map option names to 1 or 0", 400)
    return {k: int(v) for k, v in raw.items()}


def _int_option(query: Mapping[str, Any], key: str, default: int, high: int) -> int:
    value = query.get(key, default)
    if isinstance(value, str):
        value = parse_id(value.strip())  # OSRest takes its paging options from the query string too
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise Refused(f"{key} must be a whole number from 0 to {high}", 400)
    return value


def _content_streams(obj: StoredObject) -> list[dict[str, Any]]:
    if obj.content is None:
        return []
    content = obj.content
    return [
        {
            "cid": "cid_1",
            "length": content.size,
            "mimeType": content.media_type,
            "fileName": content.file_name,
        }
    ]


async def _dms_search(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = parse_json(await read_body(request, MAX_JSON, "the JSON document"), "the body")
    query = body.get("query") if isinstance(body, dict) else None
    if not isinstance(query, dict) or set(body) != {"query"} or set(query) - SEARCH_KEYS:
        raise Refused(f'expected {{"query": {{...}}}} with the keys {sorted(SEARCH_KEYS)}', 400)
    if not isinstance(query.get("statement"), str):
        raise Refused("query.statement is missing", 400)
    try:
        statement = parse_statement(query["statement"])
    except QueryError as exc:
        raise Refused(f"statement not understood: {exc}", 400) from None
    parameters = bind(statement, query.get("parameters"))
    _job_options(query.get("options", {}), "query.options")
    deleted = query.get("handleDeletedDocuments", "DELETED_DOCUMENTS_EXCLUDE")
    if isinstance(deleted, int) and not isinstance(deleted, bool) and 0 <= deleted < len(DELETED_ORDINALS):
        deleted = DELETED_ORDINALS[deleted]  # Jackson takes an enum's ordinal too (ngx-enaio sends it)
    if deleted not in DELETED_MODES:
        raise Refused(f"query.handleDeletedDocuments must be one of {sorted(DELETED_MODES)}", 400)
    with_permissions = query.get("includePermissions", False)
    if not isinstance(with_permissions, bool):
        raise Refused("query.includePermissions must be true or false", 400)
    skip = _int_option(query, "skipCount", 0, 10**9)
    limit = min(
        _int_option(query, "maxItems", 50, MAX_ITEMS), _int_option(query, "limit", MAX_ITEMS, MAX_ITEMS)
    )
    # Nothing is ever deleted in the simulator: the recycle bin is empty.
    found = [] if deleted == "DELETED_DOCUMENTS_ONLY" else run(state, statement, parameters)
    page = found[skip : skip + limit]
    objects: list[dict[str, Any]] = []
    for hit in page:
        answer: dict[str, Any] = {"properties": hit.properties}
        if hit.obj.content is not None:
            answer["contentStreams"] = _content_streams(hit.obj)
        if with_permissions:
            answer["permissions"] = PERMISSIONS
        objects.append(answer)
    return web.json_response(
        {
            "numItems": len(page),
            "totalNumItems": len(found),
            "hasMoreItems": skip + len(page) < len(found),
            "objects": objects,
        }
    )


def _content_response(obj: StoredObject | None) -> web.StreamResponse:
    if obj is None:
        raise Refused("no such object", 404)
    if obj.content is None:
        raise Refused(f"object {obj.id} has no content", 404)
    response = web.FileResponse(obj.content.path)
    response.content_type = obj.content.media_type
    response.headers[hdrs.CONTENT_DISPOSITION] = _disposition(obj.content.file_name)
    return response


def _disposition(file_name: str) -> str:
    ascii_name = file_name.encode("ascii", "replace").decode().replace('"', "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name)}"


def _object(request: web.Request, key: str = "object_id") -> StoredObject | None:
    raw = request.match_info[key]
    object_id = parse_id(raw)
    return None if object_id is None else request.app[STATE].objects.get(object_id)


async def _dms_object(request: web.Request) -> web.Response:
    obj = _object(request)
    if obj is None:
        raise Refused("no such object", 404)
    answer: dict[str, Any] = {"properties": properties(request.app[STATE], obj, None)}
    if obj.content is not None:
        answer["contentStreams"] = _content_streams(obj)
    return web.json_response(answer)


async def _dms_content(request: web.Request) -> web.StreamResponse:
    return _content_response(_object(request))


async def _dms_text_rendition(request: web.Request) -> web.Response:
    """The content's text, as the rendition service gives it: 404 no such object, 422 no text to give."""
    obj = _object(request)
    if obj is None:
        raise Refused("no such object", 404)
    if obj.content is None:
        raise Refused(f"object {obj.id} has no content", 422)
    text = text_rendition(obj.content.path, obj.content.media_type)
    if text is None:
        raise Refused(f"no text rendition can be made of {obj.content.media_type!r}", 422)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


# -- OSRest --------------------------------------------------------------------------------------------

APPCONNECTOR_VERSION = "10.0.0 (Aktenhub simulator)"
OSREST_SERVICES = ("documentpreview", "appconnector", "renditioncache", "fulltext", "documentviewer")
# Keys of an OSRest search's result_config (ngx-enaio, the vendor's own client, lists them).
RESULT_CONFIG_KEYS = frozenset(
    {
        "fieldsschema",
        "pagesize",
        "offset",
        "maxhits",
        "deny_empty",
        "normalize_values",
        "distinct",
        "fieldsschema_mode",
        "childschema_mode",
        "childfieldsschema_mode",
        "export_depth",
        "systemFields",
        "registerContext",
        "disableSearchGroups",
        "followDocLink",
        "garbageMode",
        "fileProperties",
        "rights",
    }
)
OSREST_QUERY_KEYS = frozenset({"objectTypeId", "internalName", "fields", "result_config"})
OSREST_FIELD_KEYS = frozenset({"value", "null", "internalName", "type"})


def _guid(*parts: object) -> str:
    """A stable 32-character identifier, in the shape of enaio's GUIDs."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:32].upper()


async def _osrest_serviceinfo(request: web.Request) -> web.Response:
    base = f"{request.scheme}://{request.host}"
    return web.json_response(
        {
            "apiVersion": APPCONNECTOR_VERSION,
            "buildRevision": "0000000",
            "serverVersion": SERVER_VERSION,
            "serverAddress": request.host,
            "adminContact": "",
            "welcomePage": "",
            "services": {name: f"{base}/{name}" for name in OSREST_SERVICES},
            "capabilities": {"version": 1, "capabilities": []},
            "systemRoles": [],
        }
    )


async def _osrest_session(request: web.Request) -> web.Response:
    state = request.app[STATE]
    user = _user(request)
    return web.json_response(
        {
            "userid": sorted(state.users).index(user) + 1,
            "username": user,
            "osGuid": _guid("user", user),
            "wfGuid": _guid("workflow", user),
            "wfOrg": _guid("organisation"),
            "sessionGuid": _guid("session", request.cookies.get("JSESSIONID", user)),
            "language": "de",
            "autostar": 0,
            "isWorkflowAbsent": False,
            "fullname": user,
            "email": "",
            "groups": [],
        }
    )


async def _osrest_users(request: web.Request) -> web.Response:
    """The organisation's users (``/organization/users``): the simulator's logins, none locked."""
    users = sorted(request.app[STATE].users)
    return web.json_response(
        [
            {
                "id": number,
                "name": name,
                "fullname": name,
                "description": "",
                "locked": "0",
                "limited": "0",
                "groups": [],
                "email": "",
                "guid": _guid("user", name),
                "wfguid": _guid("workflow", name),
                "valid": True,
            }
            for number, name in enumerate(users, start=1)
        ]
    )


async def _osrest_ping(request: web.Request) -> web.Response:
    """The server's time in milliseconds since 1970 (``/serviceinfo/ping``: availability and login check)."""
    return web.json_response(int(datetime.now(UTC).timestamp() * 1000))


async def _osrest_empty_list(request: web.Request) -> web.Response:
    """Lists the simulator keeps empty: system roles, groups (it has no rights system)."""
    return web.json_response([])


async def _osrest_running_workflows(request: web.Request) -> web.Response:
    """The user's workflow inbox (``/workflows/running``): the simulator runs no workflows."""
    return web.json_response([])


def _osrest_object(obj: StoredObject, fields: list[str] | None = None) -> dict[str, Any]:
    """An object as OSRest answers it: ids are JSON numbers, fields in ``ecmSimpleFields``."""
    names = fields if fields is not None else list(obj.type.fields)
    definitions = obj.type.fields
    answer: dict[str, Any] = {
        "osid": obj.id,
        "objectTypeId": int(obj.type.id),
        "objectType": obj.type.osrest_kind,
        "internalName": obj.type.internal,
        "displayName": obj.type.name,
        "ecmSimpleFields": [
            {
                "value": obj.fields.get(n, ""),
                "displayName": definitions[n].name,
                "internalName": n,
                "dbName": n.lower(),
                "visible": True,
                "type": "DATE" if definitions[n].type == "date" else "TEXT",
            }
            for n in names
            if n in definitions
        ],
        "ecmTableFields": [],
    }
    if obj.parent_id is not None:
        answer["parentCabinetKeyType"] = "Register" if obj.type.kind == "document" else "Folder"
    if obj.type.kind == "document":
        answer["objectFlagsValue"] = 0
    return answer


def _osrest_criteria(raw: Any, object_type: ObjectType) -> dict[str, str | None]:
    """``{"Field": {"value": ...}}`` or ``{"Field": {"null": true}}`` → field → value (None: empty)."""
    if not isinstance(raw, dict):
        raise Refused('query.fields must be an object of {"value": ...} entries', 400)
    criteria: dict[str, str | None] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) - OSREST_FIELD_KEYS:
            raise Refused(f'query.fields: {str(name)[:100]!r} must be {{"value": ...}}', 400)
        if entry.get("null") is True:
            criteria[str(name)] = None
        elif (
            "value" in entry
            and isinstance(entry["value"], str | int | float)
            and not isinstance(entry["value"], bool)
        ):
            criteria[str(name)] = str(entry["value"])
        else:
            raise Refused(f"query.fields: {str(name)[:100]!r} needs a text or number value", 400)
    state_fields = object_type.fields
    for name in criteria:
        if name not in state_fields:
            raise Refused(f"object type {object_type.internal!r} has no index field {name[:100]!r}")
    return criteria


def _fieldsschema(raw: Any, object_type: ObjectType) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(
        isinstance(f, dict) and isinstance(f.get("internalName"), str) for f in raw
    ):
        raise Refused('result_config.fieldsschema must be a list of {"internalName": ...}', 400)
    names = [f["internalName"] for f in raw]
    for name in names:
        if name not in object_type.fields:
            raise Refused(f"object type {object_type.internal!r} has no index field {name[:100]!r}")
    return names


async def _osrest_search(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = parse_json(await read_body(request, MAX_JSON, "the JSON document"), "the body")
    query = body.get("query") if isinstance(body, dict) else None
    if (
        not isinstance(query, dict)
        or set(body) - {"query", "result_config"}
        or set(query) - OSREST_QUERY_KEYS
    ):
        raise Refused(
            'expected {"query": {"objectTypeId" or "internalName", "fields", "result_config"}} '
            "(condition groups and additional queries are not supported by the simulator)",
            400,
        )
    type_key = query.get("objectTypeId", query.get("internalName"))
    if type_key is None:
        raise Refused("query.objectTypeId is missing", 400)
    object_type = state.object_type(type_key)
    criteria = _osrest_criteria(query.get("fields", {}), object_type)
    # result_config may sit in the query (appconnector documentation) or beside it (ngx-enaio).
    result_config = query.get("result_config", body.get("result_config", {}))
    if not isinstance(result_config, dict) or set(result_config) - RESULT_CONFIG_KEYS:
        raise Refused(f"result_config takes the keys {sorted(RESULT_CONFIG_KEYS)}", 400)
    options = {**request.query, **result_config}
    limit = _int_option(options, "pagesize", 50, MAX_ITEMS)
    offset = _int_option(options, "offset", 0, 10**9)
    if "page" in options:  # the page overrides the offset (appconnector documentation)
        offset = _int_option(options, "page", 0, 10**6) * limit
    fields_list = _fieldsschema(result_config.get("fieldsschema"), object_type)
    found = [
        o
        for o in state.search(object_type, {k: v for k, v in criteria.items() if v is not None})
        if all(not o.value(k) for k, v in criteria.items() if v is None)
    ]
    return web.json_response([_osrest_object(o, fields_list) for o in found[offset : offset + limit]])


async def _osrest_get(request: web.Request) -> web.Response:
    obj = _object(request)
    if obj is None:
        raise Refused("no such object", 404)
    return web.json_response(_osrest_object(obj))


async def _osrest_insert(request: web.Request) -> web.Response:
    state = request.app[STATE]
    location = parse_id(request.match_info.get("location_id", "0"))
    if location is None:
        raise Refused("locationId must be a number", 400)
    in_tray = request.query.get("inusertray", "false").lower() == "true"
    if _media_type(request) != "multipart/form-data":
        raise Refused("expected multipart/form-data with a part 'data'", 415)
    staged: dict[str, StagedContent] = {}
    planned: list[NewObject] = []
    try:
        data = await _read_multipart(request, state, staged)
        if not isinstance(data, dict) or set(data) - {"objectTypeId", "fields"} or "objectTypeId" not in data:
            raise Refused('part \'data\' must be {"objectTypeId": ..., "fields": {...}}', 400)
        if len(staged) > 1:
            raise Refused("at most one file part per insert", 400)
        content = next(iter(staged.values()), None)
        parent = location or None
        if in_tray and parent is not None:
            raise Refused("inusertray=true needs locationId 0", 400)
        new = state.plan(
            data["objectTypeId"], parent, in_tray, _values(data.get("fields", {}), "fields"), content
        )
        planned = [new]
        stored = state.store(new, _user(request))
    finally:
        _discard(staged, planned)
    if state.take_drop():
        _drop(request)
    return web.json_response(stored.id)


async def _osrest_update(request: web.Request) -> web.Response:
    """Update an object's index data (``/documents/update/{id}``, part ``data`` as ngx-enaio sends it)."""
    state = request.app[STATE]
    object_id = parse_id(request.match_info["object_id"])
    target = state.objects.get(object_id) if object_id is not None else None
    if target is None:
        raise Refused("no such object", 404)
    if _media_type(request) != "multipart/form-data":
        raise Refused("expected multipart/form-data with a part 'data'", 415)
    staged: dict[str, StagedContent] = {}
    try:
        data = await _read_multipart(request, state, staged)
        if staged:
            raise Refused("replacing files in an update is not supported by the simulator", 400)
    finally:
        _discard(staged, [])
    if not isinstance(data, dict) or set(data) - {"osid", "objectTypeId", "mainTypeId", "fields"}:
        raise Refused('part \'data\' must be {"osid": ..., "objectTypeId": ..., "fields": {...}}', 400)
    if "osid" in data and str(data["osid"]).strip() != str(target.id):
        raise Refused(f"data.osid {str(data['osid'])[:40]!r} is not the object {target.id} of the path", 400)
    update = state.plan_update(target.id, data.get("objectTypeId"), _update_fields(data.get("fields", {})))
    state.apply(update, _user(request))
    return web.Response(status=200)


def _update_fields(raw: Any) -> dict[str, Any]:
    """OSRest's ``{"Field": {"value": ..., "internalName": "Field"}}`` → field → value."""
    if not isinstance(raw, dict):
        raise Refused('fields must be an object of {"value": ...} entries', 400)
    values: dict[str, Any] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or "value" not in entry or set(entry) - {"value", "internalName"}:
            raise Refused(f'fields: {str(name)[:100]!r} must be {{"value": ..., "internalName": ...}}', 400)
        if entry.get("internalName", name) != name:
            raise Refused(f"fields: {str(name)[:100]!r} names another internalName", 400)
        values[str(name)] = entry["value"]
    return values


def _document(request: web.Request) -> StoredObject:
    obj = _object(request)
    if obj is None:
        raise Refused("no such object", 404)
    if obj.type.kind != "document":
        raise Refused(f"object {obj.id} is a {obj.type.kind}, not a document", 400)
    return obj


async def _osrest_documentfiles(request: web.Request) -> web.Response:
    """The JSON description of a document's files (appconnector ``/documentfiles/[id]``)."""
    obj = _document(request)
    base = f"{request.scheme}://{request.host}"
    files = [] if obj.content is None else [obj.content.file_name]
    return web.json_response(
        {
            "fav": False,
            "typeless": False,
            "contentviewerUrl": f"{base}/contentviewer/?objectId={obj.id}",
            "contentviewerDocumentUrl": f"{base}/contentviewer/?objectId={obj.id}&view=document",
            "contentviewerIndexdataUrl": f"{base}/contentviewer/?objectId={obj.id}&view=indexdata",
            "oswebLinkUrl": f"{base}/osweb/#/object/{obj.id}",
            "pageCount": len(files),
            "files": files,
        }
    )


async def _osrest_documentfile(request: web.Request) -> web.StreamResponse:
    """One file of a document, by page number (1-based) or by the name ``/documentfiles/[id]`` lists."""
    obj = _document(request)
    page = request.match_info["page"]
    if obj.content is None or page not in ("1", obj.content.file_name):
        raise Refused(f"object {obj.id} has no file {page[:100]!r}", 404)
    return _content_response(obj)


# -- operator endpoints ----------------------------------------------------------------------------------


def _matches(obj: StoredObject, filters: Mapping[str, str]) -> bool:
    for key, value in filters.items():
        if key == "type":
            if value not in (obj.type.internal, obj.type.id):
                return False
        elif key == "parent":
            if str(obj.parent_id) != value:
                return False
        elif obj.fields.get(key) != value:
            return False
    return True


async def _sim_objects(request: web.Request) -> web.Response:
    state = request.app[STATE]
    filters = dict(request.query)
    objects = [
        o.describe() for o in sorted(state.objects.values(), key=lambda o: o.id) if _matches(o, filters)
    ]
    return web.json_response({"objects": objects})


async def _sim_end_sessions(request: web.Request) -> web.Response:
    return web.json_response({"ended": request.app[STATE].end_sessions()})


async def _sim_stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        {
            "objects": len(state.objects),
            "inserts": state.inserts,
            "updates": state.updated,
            "dropped": state.dropped,
            "auth": dict(state.auth),
            "requests": dict(state.requests),
        }
    )


# -- the application -------------------------------------------------------------------------------------


async def _shutdown(app: web.Application) -> None:
    app[STATE].release()


async def _cleanup(app: web.Application) -> None:
    app[STATE].remove_content()


def make_app(
    types: Path | str | None = None, users: Mapping[str, str] | None = None, **knobs: Any
) -> web.Application:
    """The simulator as an aiohttp application.

    `types`: the type catalogue (YAML; default: the Kreis catalogue shipped in ``types.yaml``);
    `users`: user name → password (default ``aktenhub`` / ``enaio-simulator``); `knobs`: see `Knobs`,
    plus ``content_dir`` (where content is kept; default: a temporary directory removed at shutdown).
    """
    content_dir = knobs.pop("content_dir", None)
    catalogue: Catalogue = load_catalogue(types)
    state = EnaioState(
        catalogue,
        users_option(users, DEFAULT_USERS),
        Knobs.model_validate(knobs),
        Path(content_dir) if content_dir else None,
    )
    app = web.Application(
        middlewares=[
            fault_middleware(STATE, _error, OPERATOR_PREFIX),
            _authentication,
            refusal_middleware(lambda request, status, message: _error(status, message, request.path)),
            _refusals,
        ],
        client_max_size=MAX_JSON,
    )
    app[STATE] = state
    app.on_shutdown.append(_shutdown)
    app.on_cleanup.append(_cleanup)
    r = app.router
    r.add_get("/api/dms/info/native", _dms_info)
    r.add_get("/api/dms/schema/native", _dms_schema)
    r.add_post("/api/dms/objects", _dms_insert)
    r.add_post("/api/dms/objects/search", _dms_search)
    r.add_get("/api/dms/objects/{object_id}", _dms_object)
    r.add_get("/api/dms/objects/{object_id}/contents/file", _dms_content)
    r.add_get("/api/dms/objects/{object_id}/contents/file/1", _dms_content)
    r.add_get("/api/dms/objects/{object_id}/contents/renditions/text", _dms_text_rendition)
    r.add_get("/osrest/api/serviceinfo", _osrest_serviceinfo)
    r.add_get("/osrest/api/session", _osrest_session)
    r.add_get("/osrest/api/serviceinfo/ping", _osrest_ping)
    r.add_get("/osrest/api/session/systemroles", _osrest_empty_list)
    r.add_get("/osrest/api/organization/users", _osrest_users)
    r.add_get("/osrest/api/organization/groups", _osrest_empty_list)
    r.add_get("/osrest/api/workflows/running", _osrest_running_workflows)
    r.add_post("/osrest/api/documents/search", _osrest_search)
    r.add_get("/osrest/api/documents/search/{object_id}", _osrest_get)
    r.add_post("/osrest/api/documents/insert", _osrest_insert)
    r.add_post("/osrest/api/documents/insert/{location_id}", _osrest_insert)
    r.add_post("/osrest/api/documents/update/{object_id}", _osrest_update)
    r.add_get("/osrest/api/documentfiles/{object_id}", _osrest_documentfiles)
    r.add_get("/osrest/api/documentfiles/{object_id}/{page}", _osrest_documentfile)
    r.add_get("/_sim/objects", _sim_objects)
    r.add_routes(fault_routes(STATE))
    r.add_delete("/_sim/sessions", _sim_end_sessions)
    r.add_get("/_sim/stats", _sim_stats)
    return app


__all__ = ["STATE", "ObjectType", "make_app"]
