"""Admin JSON API under /api/v1/: list, inspect, replay and abandon applications; targets; audit trail.

Every action goes through `hub.operations` (the same layer the CLI uses), on behalf of the token's name.

Roles: a viewer sees metadata only — no application document, no detailed error texts (only their
codes), no task results, timeline data redacted, `q` matching ids, external ids, service and file
number only, no reasons of target pauses. An operator sees everything, replays, pauses and resumes
targets and reads the audit trail; an admin also abandons applications. Every
answer under /api/ carries ``Cache-Control: no-store``: it may hold personal data or tokens' effects.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.actions import MAX_REASON, Action
from hub.events import redact_for_viewer
from hub.http.auth import CALLER, RANK, ROLE, TokenAuth
from hub.journal import ApplicationFilter, ApplicationSummary, Task
from hub.models import ApplicationState
from hub.operations import Invalid, NotFound, Refused, UpstreamFailed

if TYPE_CHECKING:
    from hub.runtime import Hub

API_PREFIX = "/api/"
MAX_PAGE = 500
MAX_OFFSET = 1_000_000_000
MAX_IDS = 1000  # per filter; the CLI replays more in chunks
MAX_QUERY = 200  # characters of free-text search
MAX_BODY = 256 * 1024  # an admin request body is a small JSON object
LIST_PARAMS = frozenset({"state", "route", "service", "q", "find", "ids", "limit", "offset"})
AUDIT_PARAMS = frozenset({"action", "operator", "limit", "offset"})
FILTER_KEYS = frozenset({"state", "route", "service", "q", "find", "ids"})
DIGITS = re.compile(r"^[0-9]{1,10}$")  # ASCII only: int() also takes " 5", "+5", other scripts' digits


class AbandonRequest(BaseModel):
    """The body of an abandon or pause request: why (kept on the timeline and in the audit trail)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=1, max_length=MAX_REASON)


class ReasonBody(BaseModel):
    """The optional body of an action whose reason is optional (replay one, resume, keep, close)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str | None = Field(None, max_length=MAX_REASON)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def refusal(exc: Exception) -> web.Response:
    """The answer to an operation's refusal (`hub.operations`), one mapping for every endpoint."""
    if isinstance(exc, NotFound):
        return _error(404, str(exc))
    if isinstance(exc, Invalid):
        return _error(400, str(exc))
    if isinstance(exc, Refused):
        return _error(409, str(exc))
    if isinstance(exc, UpstreamFailed):
        return _error(503 if exc.retryable else 502, str(exc))
    raise exc


async def reason_body(request: web.Request, model: type[ReasonBody] | type[AbandonRequest]) -> str | None:
    """The reason of an action's JSON body; `BodyRefused` (400/413) if the body is unusable."""
    required = model is AbandonRequest
    usage = (
        f'body must be a JSON object {{"reason": "why"}} (1-{MAX_REASON} characters)'
        if required
        else f'body, if any, must be a JSON object {{"reason": "why"}} (at most {MAX_REASON} characters)'
    )
    body = await _json_body(request, usage)
    if body is None and not required:
        return None
    try:
        return model.model_validate(body).reason
    except ValidationError:
        raise BodyRefused(400, usage) from None


def _filter(params: dict[str, Any]) -> ApplicationFilter | str:
    state = params.get("state") or None
    if state is not None:
        try:
            state = ApplicationState(state)
        except ValueError:
            return f"state must be one of {', '.join(s.value for s in ApplicationState)}"
    ids = params.get("ids") or ()
    if isinstance(ids, str):
        ids = tuple(i for i in ids.split(",") if i)
    if not isinstance(ids, list | tuple) or not all(isinstance(i, str) for i in ids):
        return "ids must be a list of application ids"
    if len(ids) > MAX_IDS:
        return f"ids names {len(ids)} applications; at most {MAX_IDS} per request"
    for key in ("route", "service", "q", "find"):
        if params.get(key) is not None and not isinstance(params[key], str):
            return f"{key} must be a string"
        if len(params.get(key) or "") > MAX_QUERY:
            return f"{key} must be at most {MAX_QUERY} characters"
    return ApplicationFilter(
        state=state,
        route=params.get("route") or None,
        service=params.get("service") or None,
        q=params.get("q") or None,
        find=params.get("find") or None,
        ids=tuple(ids),
    )


class BodyRefused(Exception):
    """A request body that is too large or not JSON: answered with `status` and the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _json_body(request: web.Request, usage: str) -> Any:
    """The request's JSON body (None if there is none); `BodyRefused` naming `usage` if it is unusable."""
    if not request.can_read_body:
        return None
    too_large = BodyRefused(413, f"the body exceeds {MAX_BODY} bytes; {usage}")
    if (request.content_length or 0) > MAX_BODY:
        raise too_large
    raw = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        raw += chunk
        if len(raw) > MAX_BODY:
            raise too_large
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_duplicate_keys_refused)
    except (ValueError, RecursionError):  # also UnicodeDecodeError; nesting deeper than the parser's stack
        raise BodyRefused(400, f"the body is not UTF-8 JSON without duplicate keys; {usage}") from None


def query_params(request: web.Request, allowed: frozenset[str]) -> dict[str, str] | str:
    """The query parameters, each at most once and all of them known; the error message if not.

    An unknown parameter is refused rather than ignored: a client asking for `fields` or `sort` must
    not believe it got what it asked for, and a parameter given twice has no single meaning.
    """
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        shown = ", ".join(repr(k[:50]) for k in unknown[:5])
        return f"unknown query parameter {shown}; this endpoint takes {', '.join(sorted(allowed)) or 'none'}"
    for key in request.query:
        if len(request.query.getall(key)) > 1:
            return f"query parameter {key!r} given more than once"
    return dict(request.query)


def _duplicate_keys_refused(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate key")
    return document


def _bounded(request: web.Request, name: str, default: int, low: int, high: int) -> int | str:
    """A query parameter that must be an integer in [low, high]; the error message if it is not."""
    values = request.query.getall(name, [])
    problem = f"{name} must be an integer from {low} to {high}"
    if not values:
        return default
    if len(values) > 1:
        return f"{name} given more than once; {problem}"
    if not DIGITS.match(values[0]) or not low <= int(values[0]) <= high:
        return f"{problem}, got {values[0][:20]!r}"
    return int(values[0])


def page_query(request: web.Request, allowed: frozenset[str]) -> tuple[int, int, dict[str, str]] | str:
    """`limit`, `offset` and the other parameters of a list request; the error message if one is off."""
    limit = _bounded(request, "limit", 100, 1, MAX_PAGE)
    offset = _bounded(request, "offset", 0, 0, MAX_OFFSET)
    if isinstance(limit, str) or isinstance(offset, str):
        return limit if isinstance(limit, str) else str(offset)
    params = query_params(request, allowed)
    if isinstance(params, str):
        return params
    return limit, offset, params


def _safe_error(error: str | None, code: str | None) -> str | None:
    """What a viewer sees of an error: its code, never the text (it may quote personal data)."""
    if error is None and code is None:
        return None
    return code or "unspecified"


def _summary(summary: ApplicationSummary, personal: bool) -> dict[str, Any]:
    body = summary.model_dump(mode="json")
    if not personal:
        body["error"] = _safe_error(summary.error, summary.error_code)
    return body


def _task(t: Task, personal: bool) -> dict[str, Any]:
    return {
        "id": t.id,
        "step": t.step,
        "target": t.target or None,
        "state": t.state,
        "attempts": t.attempts,
        "last_error": t.last_error if personal else _safe_error(t.last_error, t.error_code),
        "error_code": t.error_code,
        "due_at": t.due_at,
        # Results hold the mapped record: index data, document and attachment names.
        "result": t.result if personal else None,
    }


async def _no_store(request: web.Request, response: web.StreamResponse) -> None:
    # A signal rather than a middleware: it also reaches the router's 404/405 and error answers.
    if request.path.startswith(API_PREFIX):
        response.headers["Cache-Control"] = "no-store"


def add_admin_routes(app: web.Application, hub: Hub, auth: TokenAuth) -> None:
    """Mount the admin API."""
    app.on_response_prepare.append(_no_store)

    def sees_personal_data(request: web.Request) -> bool:
        return RANK[request[ROLE]] >= RANK["operator"]

    @auth.require("viewer")
    async def list_applications(request: web.Request) -> web.Response:
        page = page_query(request, LIST_PARAMS)
        if isinstance(page, str):
            return _error(400, page)
        limit, offset, params = page
        where = _filter(params)
        if isinstance(where, str):
            return _error(400, where)
        if not sees_personal_data(request):
            where = replace(where, q_personal=False)
        rows = await hub.journal.list_applications(where, limit=limit, offset=offset)
        return web.json_response(
            {
                "applications": [_summary(r, sees_personal_data(request)) for r in rows],
                "limit": limit,
                "offset": offset,
            }
        )

    @auth.require("viewer")
    async def get_application(request: web.Request) -> web.Response:
        app_id = request.match_info["id"]
        params = query_params(request, frozenset())
        if isinstance(params, str):
            return _error(400, params)
        try:
            view = await hub.operations.show(app_id)
        except NotFound as exc:
            return refusal(exc)
        full = sees_personal_data(request)
        body: dict[str, Any] = {
            **_summary(view.summary, full),
            "timeline": [
                (e if full else redact_for_viewer(e)).model_dump(mode="json") for e in view.timeline
            ],
            "tasks": [_task(t, full) for t in view.tasks],
        }
        # The document holds personal data: operators see it, viewers see the metadata only.
        if full:
            document = view.application
            body["application"] = document.model_dump(mode="json") if document else None
        return web.json_response(body)

    @auth.require("operator")
    async def replay_one(request: web.Request) -> web.Response:
        app_id = request.match_info["id"]
        try:
            reason = await reason_body(request, ReasonBody)
            ids = await hub.operations.replay(app_id, request[CALLER], reason)
        except BodyRefused as exc:
            return _error(exc.status, exc.message)
        except (NotFound, Invalid, Refused) as exc:
            return refusal(exc)
        return web.json_response({"replayed": ids, "count": len(ids)})

    @auth.require("operator")
    async def replay_bulk(request: web.Request) -> web.Response:
        usage = (
            "body must be a JSON object: {state?, route?, service?, q?, ids?, reason, dry_run?}; "
            "dry_run: true answers how many applications the replay would affect"
        )
        try:
            params = await _json_body(request, usage)
        except BodyRefused as exc:
            return _error(exc.status, exc.message)
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return _error(400, usage)
        unknown = set(params) - FILTER_KEYS - {"reason", "dry_run"}
        if unknown:
            return _error(400, f"unknown keys: {', '.join(sorted(unknown))}; {usage}")
        if not any(params.get(k) for k in FILTER_KEYS):
            # An empty selection must not mean "everything": say so explicitly.
            return _error(400, 'give a filter, e.g. {"state": "dead"} to replay every dead application')
        dry_run, reason = params.get("dry_run", False), params.get("reason")
        if not isinstance(dry_run, bool) or not isinstance(reason, str | None):
            return _error(400, usage)
        where = _filter({k: v for k, v in params.items() if k in FILTER_KEYS})
        if isinstance(where, str):
            return _error(400, where)
        try:
            if dry_run:
                preview = await hub.operations.replay_preview(where)
                return web.json_response({"dry_run": True, **preview.model_dump()})
            ids = await hub.operations.replay_bulk(where, request[CALLER], reason)
        except (Invalid, Refused) as exc:
            return refusal(exc)
        return web.json_response({"replayed": ids, "count": len(ids)})

    @auth.require("admin")
    async def abandon(request: web.Request) -> web.Response:
        app_id = request.match_info["id"]
        if await hub.journal.get_summary(app_id) is None:
            return _error(404, f"no application {app_id}")
        try:
            reason = await reason_body(request, AbandonRequest)
            outcome = await hub.operations.abandon(app_id, request[CALLER], reason)
        except BodyRefused as exc:
            return _error(exc.status, exc.message)
        except (NotFound, Invalid, Refused) as exc:
            return refusal(exc)
        return web.json_response(
            {
                "application_id": app_id,
                "state": ApplicationState.ABANDONED.value,
                "tasks_ended": outcome.tasks,
                "already_abandoned": outcome.already,
            }
        )

    @auth.require("viewer")
    async def connectors(request: web.Request) -> web.Response:
        params = query_params(request, frozenset())
        if isinstance(params, str):
            return _error(400, params)
        found = await hub.operations.diagnostics()
        return web.json_response({"connectors": [d.model_dump(mode="json") for d in found]})

    @auth.require("viewer")
    async def certificates(request: web.Request) -> web.Response:
        # Public facts only (subject, expiry, fingerprint): the same for every role.
        params = query_params(request, frozenset())
        if isinstance(params, str):
            return _error(400, params)
        return web.json_response(hub.operations.certificates().model_dump(mode="json"))

    @auth.require("viewer")
    async def targets(request: web.Request) -> web.Response:
        params = query_params(request, frozenset())
        if isinstance(params, str):
            return _error(400, params)
        found = await hub.operations.targets()
        full = sees_personal_data(request)
        # A pause's free-text reason is for operators; viewers see that, since when and by whom.
        return web.json_response(
            {
                "targets": [
                    t.model_dump(mode="json", exclude=None if full else {"paused": {"reason"}}) for t in found
                ]
            }
        )

    @auth.require("operator")
    async def pause(request: web.Request) -> web.Response:
        try:
            reason = await reason_body(request, AbandonRequest)
            paused = await hub.operations.pause(request.match_info["name"], request[CALLER], reason)
        except BodyRefused as exc:
            return _error(exc.status, exc.message)
        except (NotFound, Invalid, Refused) as exc:
            return refusal(exc)
        name = request.match_info["name"]
        return web.json_response({"target": name, "paused": paused.model_dump(mode="json")})

    @auth.require("operator")
    async def resume(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            reason = await reason_body(request, ReasonBody)
            lifted = await hub.operations.resume(name, request[CALLER], reason)
        except BodyRefused as exc:
            return _error(exc.status, exc.message)
        except (NotFound, Invalid, Refused) as exc:
            return refusal(exc)
        return web.json_response(
            {"target": name, "paused": None, "was_paused": lifted.model_dump(mode="json") if lifted else None}
        )

    @auth.require("operator")
    async def audit(request: web.Request) -> web.Response:
        page = page_query(request, AUDIT_PARAMS)
        if isinstance(page, str):
            return _error(400, page)
        limit, offset, params = page
        action = params.get("action") or None
        if action is not None and action not in {a.value for a in Action}:
            return _error(400, f"action must be one of {', '.join(a.value for a in Action)}")
        if len(params.get("operator") or "") > MAX_QUERY:
            return _error(400, f"operator must be at most {MAX_QUERY} characters")
        rows = await hub.operations.audit(
            Action(action) if action else None, params.get("operator") or None, limit, offset
        )
        return web.json_response(
            {"actions": [r.model_dump(mode="json") for r in rows], "limit": limit, "offset": offset}
        )

    app.router.add_get("/api/v1/targets", targets)
    app.router.add_post("/api/v1/targets/{name}/pause", pause)
    app.router.add_post("/api/v1/targets/{name}/resume", resume)
    app.router.add_get("/api/v1/audit", audit)
    app.router.add_get("/api/v1/connectors", connectors)
    app.router.add_get("/api/v1/certificates", certificates)
    app.router.add_get("/api/v1/applications", list_applications)
    app.router.add_get("/api/v1/applications/{id}", get_application)
    app.router.add_post("/api/v1/applications/{id}/replay", replay_one)
    app.router.add_post("/api/v1/replay", replay_bulk)
    app.router.add_post("/api/v1/applications/{id}/abandon", abandon)
