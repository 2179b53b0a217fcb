"""Admin JSON API under /api/v1/: list, inspect, replay and abandon applications; targets; audit trail.

Every action goes through `hub.operations` (the same layer the CLI uses), on behalf of the token's name.

Roles: a viewer sees metadata only — no application document, no detailed error texts (only their
codes), no task results, timeline data redacted (the rules live in `hub.redaction`, shared with the
console), `q` matching ids, external ids, service and file number only, no reasons of target pauses.
An operator sees everything, replays, pauses and resumes targets and reads the audit trail; an admin
also abandons applications. Every answer under /api/ carries ``Cache-Control: no-store``: it may hold
personal data or tokens' effects.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from hub.actions import MAX_REASON, Action, OperatorAction, TargetPause
from hub.certificates import CertificateReport
from hub.diagnostics import ConnectorDiagnostics
from hub.gate import TargetStatus
from hub.http.auth import CALLER, ROLE
from hub.http.auth import sees_personal_data as role_sees_personal_data
from hub.http.openapi import ApiRoutes, Operation
from hub.journal import ApplicationFilter, ApplicationSummary
from hub.leases import LeaseGrant
from hub.models import Application, ApplicationState, Event
from hub.operations import Invalid, NotFound, ProcessStatus, Refused, UpstreamFailed
from hub.redaction import TaskView, summary_view, task_view, timeline_view
from hub.retention import PurgeReport

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
# A bulk replay may also select dead steps: of one target, with one error code (the others stay dead).
REPLAY_KEYS = FILTER_KEYS | {"target", "error_code"}
DIGITS = re.compile(r"^[0-9]{1,10}$")  # ASCII only: int() also takes " 5", "+5", other scripts' digits


@functools.cache
def not_blank() -> str:
    """A JSON Schema pattern matching text with a character `str.strip()` keeps (what a reason needs).

    Python's whitespace, not the regex dialect's \\s: the two differ (U+001C-U+001F, U+0085, U+FEFF).
    Computed when a description is built, not at import (it reads every code point).
    """
    spaces = [c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()]
    return "[^" + "".join(f"\\u{ord(c):04x}" for c in spaces) + "]"


def _reason_not_blank(schema: dict[str, Any]) -> None:
    schema["pattern"] = not_blank()


class AbandonRequest(BaseModel):
    """The body of an abandon or pause request: why (kept on the timeline and in the audit trail)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=1, max_length=MAX_REASON, json_schema_extra=_reason_not_blank)


class ReasonBody(BaseModel):
    """The optional body of an action whose reason is optional (replay one, resume, keep, close)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str | None = Field(None, max_length=MAX_REASON)


class Page(BaseModel):
    """The paging of a list: its `limit` and `offset` as applied."""

    limit: int = Field(100, ge=1, le=MAX_PAGE, description="at most this many rows")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="rows skipped, newest first")


class ApplicationQuery(Page):
    """The filter of an application list (query parameters)."""

    state: ApplicationState | None = None
    route: str | None = Field(None, max_length=MAX_QUERY, description="the route's name")
    service: str | None = Field(None, max_length=MAX_QUERY, description="the service (Leistung)")
    q: str | None = Field(
        None,
        max_length=MAX_QUERY,
        description="free text in ids, service and file number; for operators also in the form data",
    )
    find: str | None = Field(
        None, max_length=MAX_QUERY, description="any system's id: application, external, Aktenzeichen, ..."
    )
    ids: str | None = Field(None, description=f"comma-separated application ids (at most {MAX_IDS})")


def _replay_rules(schema: dict[str, Any]) -> None:
    # What the handler checks beyond the fields' types: an empty selection must not mean "everything",
    # and a replay (not a dry run) says why.
    given: dict[str, dict[str, Any]] = {
        "state": {"const": "dead"},
        "ids": {"type": "array", "minItems": 1},
        **{
            key: {"type": "string", "minLength": 1}
            for key in ("route", "service", "q", "find", "target", "error_code")
        },
    }
    schema["allOf"] = [
        {"anyOf": [{"required": [key], "properties": {key: rule}} for key, rule in given.items()]},
        {
            "anyOf": [
                {
                    "required": ["reason"],
                    "properties": {"reason": {"type": "string", "pattern": not_blank()}},
                },
                {"required": ["dry_run"], "properties": {"dry_run": {"const": True}}},
            ]
        },
    ]


class ReplayRequest(BaseModel):
    """A bulk replay or abandon: a filter (at least one key), the reason, or `dry_run` to count first."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_replay_rules)

    state: Literal["dead", ""] | None = Field(
        None, description="only dead applications are replayed; empty or null: no state filter"
    )
    route: str | None = Field(None, max_length=MAX_QUERY)
    service: str | None = Field(None, max_length=MAX_QUERY)
    q: str | None = Field(None, max_length=MAX_QUERY)
    find: str | None = Field(None, max_length=MAX_QUERY)
    ids: list[str] | None = Field(None, max_length=MAX_IDS)
    target: str | None = Field(
        None, max_length=MAX_QUERY, description="only the dead steps of this target; the others stay dead"
    )
    error_code: str | None = Field(
        None, max_length=MAX_QUERY, description="only dead steps that failed with this error code"
    )
    reason: str | None = Field(None, max_length=MAX_REASON, description="required unless dry_run")
    dry_run: bool = Field(False, description="answer how many applications it would replay, change nothing")


class PurgeRequest(BaseModel):
    """A purge run on demand: `dry_run` counts what is due and deletes nothing."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(False, description="answer what a purge would delete now, delete nothing")


class AuditQuery(Page):
    """The filter of the audit trail (query parameters)."""

    action: Action | None = None
    operator: str | None = Field(None, max_length=MAX_QUERY, description="token name or CLI user")


class ApplicationList(Page):
    """Applications, newest first."""

    applications: list[ApplicationSummary]


class ApplicationDetail(ApplicationSummary):
    """One application: metadata, timeline and tasks; for operators also its document."""

    timeline: list[Event]
    tasks: list[TaskView]
    application: Application | None = Field(None, description="operators and admins only: personal data")


class Replayed(BaseModel):
    """The applications whose dead steps are due again."""

    replayed: list[str]
    count: int


class ReplayCounted(BaseModel):
    """A dry run: how many applications the replay would touch now."""

    dry_run: Literal[True]
    count: int
    filter: str


class ReplayAnswer(RootModel[Replayed | ReplayCounted]):
    """The replay, or with `dry_run` its count."""


class AbandonedMany(BaseModel):
    """The dead applications ended for good (one with a step running at that moment is left out)."""

    abandoned: list[str]
    count: int


class AbandonManyAnswer(RootModel[AbandonedMany | ReplayCounted]):
    """The bulk abandon, or with `dry_run` its count."""


class AbandonAnswer(BaseModel):
    """The application, abandoned for good."""

    application_id: str
    state: Literal["abandoned"]
    tasks_ended: int
    already_abandoned: bool


class ConnectorList(BaseModel):
    """Every connector's redacted state."""

    connectors: list[ConnectorDiagnostics]


class LeaseList(BaseModel):
    """Which hub process runs each singleton job (`hub.leases`); an expired lease shows who ran it last."""

    process: str = Field(description="this process's name as a lease holder")
    leases: list[LeaseGrant]


class TargetList(BaseModel):
    """Every target with its circuit, rate limit and pause (viewers: without the pause's reason)."""

    targets: list[TargetStatus]


class PauseAnswer(BaseModel):
    """The target's pause (the first one stays if it was paused already)."""

    target: str
    paused: TargetPause


class ResumeAnswer(BaseModel):
    """The target runs again; the pause lifted, if there was one."""

    target: str
    paused: None
    was_paused: TargetPause | None


class AuditPage(Page):
    """Operator actions, newest first."""

    actions: list[OperatorAction]


def answer(model: BaseModel, **dump: Any) -> web.Response:
    """The JSON answer of a described model."""
    return web.json_response(model.model_dump(mode="json", **dump))


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
    for key in ("route", "service", "q", "find", "target", "error_code"):
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
        target=params.get("target") or None,
        error_code=params.get("error_code") or None,
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


async def _no_store(request: web.Request, response: web.StreamResponse) -> None:
    # A signal rather than a middleware: it also reaches the router's 404/405 and error answers.
    if request.path.startswith(API_PREFIX):
        response.headers["Cache-Control"] = "no-store"


def add_admin_routes(api: ApiRoutes, hub: Hub) -> None:
    """Mount the admin API."""
    api.app.on_response_prepare.append(_no_store)

    def sees_personal_data(request: web.Request) -> bool:
        return role_sees_personal_data(request[ROLE])

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
        full = sees_personal_data(request)
        return answer(
            ApplicationList(applications=[summary_view(r, full) for r in rows], limit=limit, offset=offset)
        )

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
        detail = ApplicationDetail(
            **dict(summary_view(view.summary, full)),
            timeline=timeline_view(view.timeline, full),
            tasks=[task_view(t, full) for t in view.tasks],
            application=view.application,
        )
        # The document holds personal data: operators see it, viewers see the metadata only.
        return answer(detail, exclude=None if full else {"application"})

    async def replay_one(request: web.Request) -> web.Response:
        app_id = request.match_info["id"]
        try:
            reason = await reason_body(request, ReasonBody)
            ids = await hub.operations.replay(app_id, request[CALLER], reason)
        except BodyRefused as exc:
            return _error(exc.status, exc.message)
        except (NotFound, Invalid, Refused) as exc:
            return refusal(exc)
        return answer(Replayed(replayed=ids, count=len(ids)))

    async def bulk_request(
        request: web.Request, verb: str
    ) -> tuple[ApplicationFilter, bool, str | None] | web.Response:
        """The filter, dry_run and reason of a bulk action's body, or the answer refusing it."""
        usage = (
            "body must be a JSON object: "
            "{state?, route?, service?, q?, ids?, target?, error_code?, reason, dry_run?}; "
            f"dry_run: true answers how many applications the {verb} would affect"
        )
        try:
            params = await _json_body(request, usage)
        except BodyRefused as exc:
            return _error(exc.status, exc.message)
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return _error(400, usage)
        unknown = set(params) - REPLAY_KEYS - {"reason", "dry_run"}
        if unknown:
            return _error(400, f"unknown keys: {', '.join(sorted(unknown))}; {usage}")
        if not any(params.get(k) for k in REPLAY_KEYS):
            # An empty selection must not mean "everything": say so explicitly.
            return _error(400, f'give a filter, e.g. {{"state": "dead"}} to {verb} every dead application')
        try:
            # Strict: a filter of the wrong type ({"state": 0}) is refused, not read as no filter.
            asked = ReplayRequest.model_validate(params, strict=True)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where_ = ".".join(str(part) for part in problem["loc"])
            return _error(400, f"{where_}: {problem['msg']}; {usage}")
        where = _filter(asked.model_dump(include=set(REPLAY_KEYS), exclude_none=True))
        if isinstance(where, str):
            return _error(400, where)
        return where, asked.dry_run, asked.reason

    async def bulk(request: web.Request, verb: str) -> web.Response:
        asked = await bulk_request(request, verb)
        if isinstance(asked, web.Response):
            return asked
        where, dry_run, reason = asked
        ops = hub.operations
        try:
            if dry_run:
                counting = ops.replay_preview if verb == "replay" else ops.abandon_preview
                preview = await counting(where)
                return answer(ReplayCounted(dry_run=True, count=preview.count, filter=preview.filter))
            if verb == "replay":
                ids = await ops.replay_bulk(where, request[CALLER], reason)
                return answer(Replayed(replayed=ids, count=len(ids)))
            ids = await ops.abandon_bulk(where, request[CALLER], reason)
            return answer(AbandonedMany(abandoned=ids, count=len(ids)))
        except (Invalid, Refused) as exc:
            return refusal(exc)

    async def replay_bulk(request: web.Request) -> web.Response:
        return await bulk(request, "replay")

    async def abandon_bulk(request: web.Request) -> web.Response:
        return await bulk(request, "abandon")

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
        return answer(
            AbandonAnswer(
                application_id=app_id,
                state="abandoned",
                tasks_ended=outcome.tasks,
                already_abandoned=outcome.already,
            )
        )

    async def connectors(request: web.Request) -> web.Response:
        params = query_params(request, frozenset())
        if isinstance(params, str):
            return _error(400, params)
        found = await hub.operations.diagnostics()
        return answer(ConnectorList(connectors=found))

    async def process(request: web.Request) -> web.Response:
        params = query_params(request, frozenset())
        if isinstance(params, str):
            return _error(400, params)
        return answer(hub.operations.process())

    async def certificates(request: web.Request) -> web.Response:
        # Public facts only (subject, expiry, fingerprint): the same for every role.
        params = query_params(request, frozenset())
        if isinstance(params, str):
            return _error(400, params)
        return answer(hub.operations.certificates())

    async def leases(request: web.Request) -> web.Response:
        params = query_params(request, frozenset())
        if isinstance(params, str):
            return _error(400, params)
        return answer(LeaseList(process=hub.singletons.holder, leases=await hub.operations.leases()))

    async def targets(request: web.Request) -> web.Response:
        params = query_params(request, frozenset())
        if isinstance(params, str):
            return _error(400, params)
        found = await hub.operations.targets()
        full = sees_personal_data(request)
        # A pause's free-text reason is for operators; viewers see that, since when and by whom.
        hidden = None if full else {"targets": {"__all__": {"paused": {"reason"}}}}
        return answer(TargetList(targets=found), exclude=hidden)

    async def pause(request: web.Request) -> web.Response:
        try:
            reason = await reason_body(request, AbandonRequest)
            paused = await hub.operations.pause(request.match_info["name"], request[CALLER], reason)
        except BodyRefused as exc:
            return _error(exc.status, exc.message)
        except (NotFound, Invalid, Refused) as exc:
            return refusal(exc)
        name = request.match_info["name"]
        return answer(PauseAnswer(target=name, paused=paused))

    async def resume(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            reason = await reason_body(request, ReasonBody)
            lifted = await hub.operations.resume(name, request[CALLER], reason)
        except BodyRefused as exc:
            return _error(exc.status, exc.message)
        except (NotFound, Invalid, Refused) as exc:
            return refusal(exc)
        return answer(ResumeAnswer(target=name, paused=None, was_paused=lifted))

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
        return answer(AuditPage(actions=rows, limit=limit, offset=offset))

    async def purge(request: web.Request) -> web.Response:
        usage = 'body, if any, must be a JSON object {"dry_run": true|false}'
        sent = request.can_read_body  # a JSON `null` is a body, and not an object
        try:
            body = await _json_body(request, usage)
            asked = PurgeRequest.model_validate({} if body is None and not sent else body, strict=True)
        except BodyRefused as exc:
            return _error(exc.status, exc.message)
        except ValidationError:
            return _error(400, usage)
        try:
            report = await hub.operations.purge(request[CALLER], dry_run=asked.dry_run)
        except Invalid as exc:
            return refusal(exc)
        return answer(report)

    apps, tgts = ("applications",), ("targets",)
    api.add(
        Operation(
            "GET",
            "/api/v1/applications",
            "listApplications",
            "List and search applications",
            "viewer",
            ApplicationList,
            query=ApplicationQuery,
            tags=apps,
        ),
        list_applications,
    )
    api.add(
        Operation(
            "GET",
            "/api/v1/applications/{id}",
            "showApplication",
            "One application with its timeline and tasks",
            "viewer",
            ApplicationDetail,
            refusals=(404,),
            tags=apps,
        ),
        get_application,
    )
    api.add(
        Operation(
            "POST",
            "/api/v1/applications/{id}/replay",
            "replayApplication",
            "Replay the dead steps of one application",
            "operator",
            Replayed,
            body=ReasonBody,
            refusals=(404, 409),
            tags=apps,
        ),
        replay_one,
    )
    api.add(
        Operation(
            "POST",
            "/api/v1/replay",
            "replayApplications",
            "Replay every dead application a filter selects, or count them (dry_run)",
            "operator",
            ReplayAnswer,
            body=ReplayRequest,
            body_required=True,
            refusals=(409,),
            tags=apps,
        ),
        replay_bulk,
    )
    api.add(
        Operation(
            "POST",
            "/api/v1/abandon",
            "abandonApplications",
            "Abandon every dead application a filter selects, for a reason, or count them (dry_run)",
            "admin",
            AbandonManyAnswer,
            body=ReplayRequest,
            body_required=True,
            refusals=(409,),
            tags=apps,
        ),
        abandon_bulk,
    )
    api.add(
        Operation(
            "POST",
            "/api/v1/applications/{id}/abandon",
            "abandonApplication",
            "End an application for good, for a reason",
            "admin",
            AbandonAnswer,
            body=AbandonRequest,
            body_required=True,
            refusals=(404, 409),
            tags=apps,
        ),
        abandon,
    )
    api.add(
        Operation(
            "GET", "/api/v1/targets", "listTargets", "Targets and their gate", "viewer", TargetList, tags=tgts
        ),
        targets,
    )
    api.add(
        Operation(
            "POST",
            "/api/v1/targets/{name}/pause",
            "pauseTarget",
            "Start none of a target's tasks until it is resumed",
            "operator",
            PauseAnswer,
            body=AbandonRequest,
            body_required=True,
            refusals=(404, 409),
            tags=tgts,
        ),
        pause,
    )
    api.add(
        Operation(
            "POST",
            "/api/v1/targets/{name}/resume",
            "resumeTarget",
            "Let a paused target's tasks start again",
            "operator",
            ResumeAnswer,
            body=ReasonBody,
            refusals=(404,),
            tags=tgts,
        ),
        resume,
    )
    api.add(
        Operation(
            "GET",
            "/api/v1/process",
            "showProcess",
            "This hub process's roles (intake, workers) and its workers' state",
            "viewer",
            ProcessStatus,
            tags=("process",),
        ),
        process,
    )
    api.add(
        Operation(
            "GET",
            "/api/v1/connectors",
            "listConnectors",
            "Every connector's redacted diagnostics",
            "viewer",
            ConnectorList,
            tags=("connectors",),
        ),
        connectors,
    )
    api.add(
        Operation(
            "GET",
            "/api/v1/audit",
            "listAudit",
            "The audit trail of operator actions",
            "operator",
            AuditPage,
            query=AuditQuery,
            tags=("audit",),
        ),
        audit,
    )
    api.add(
        Operation(
            "POST",
            "/api/v1/purge",
            "purge",
            "Delete the payloads of applications past their retention, or count them (dry_run)",
            "admin",
            PurgeReport,
            body=PurgeRequest,
            description="Refused (400) when no retention policy is configured. The run is recorded in "
            "the audit trail under the token's name; a dry run changes nothing.",
            tags=("retention",),
        ),
        purge,
    )
    api.add(
        Operation(
            "GET",
            "/api/v1/certificates",
            "listCertificates",
            "Every certificate and key the hub uses or trusts, with its expiry",
            "viewer",
            CertificateReport,
            tags=("certificates",),
        ),
        certificates,
    )
    api.add(
        Operation(
            "GET",
            "/api/v1/leases",
            "listLeases",
            "Which hub process runs each singleton job (pollers, purge, alerts), since when, until when",
            "viewer",
            LeaseList,
            tags=("leases",),
        ),
        leases,
    )
