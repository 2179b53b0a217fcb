"""The console's page "Anträge": find applications by any id, open one, fetch its files, act on it.

`/ui/applications` searches with one field for every id any system gave an application (the journal's
index lookup first, free text in ids, service and Aktenzeichen — for operators also the applicant's
name — otherwise) and filters; the form is a GET, so a search is a bookmarkable address. A search whose
text is exactly one application's id goes straight to its page.

`/ui/applications/{id}` shows the summary, the ids other systems gave it, the timeline across systems,
the tasks, the files (operators and admins only, `/ui/applications/{id}/files/<file>`) and the actions
the person's role may take. Viewers see what `hub.redaction` lets them see, as in the admin API.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.actions import MAX_REASON
from hub.config import route_services
from hub.console.forms import local_day_range, problem
from hub.console.guard import guarded, person_of, sees_personal_data
from hub.console.labels import APPLICATION_STATES, EVENTS, FIELDS, FILE_KINDS, STEPS, TASK_STATES, label
from hub.console.templating import local_time, render
from hub.events import OPERATOR_PREFIX, PRODUCED_IDS, REDACTED
from hub.http.admin import MAX_QUERY
from hub.journal import ApplicationFilter, TaskState
from hub.models import ApplicationState, Event
from hub.operations import ApplicationView, Invalid, NotFound, Refused
from hub.redaction import summary_view, task_view, timeline_view

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger(__name__)

PAGE_SIZE = 50
MAX_PAGE = 100_000
# What a successful action leaves as notice on the page it redirects to (`?done=`).
DONE = {
    "replayed": "Die fehlgeschlagenen Schritte werden erneut versucht.",
    "abandoned": "Der Antrag ist aufgegeben: seine offenen Schritte laufen nicht mehr.",
    "already-abandoned": "Der Antrag war bereits aufgegeben.",
}
OPEN_TASKS = frozenset({TaskState.PENDING, TaskState.LEASED, TaskState.DEAD, TaskState.WAITING})
FINAL = frozenset({ApplicationState.COMPLETED, ApplicationState.REJECTED, ApplicationState.ABANDONED})
# A media type as RFC 6838 spells it; anything else is served as plain bytes.
MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


class Search(BaseModel):
    """The search form (query parameters): every field optional, empty means "any"."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    q: str = Field("", max_length=MAX_QUERY)
    service: str = Field("", max_length=MAX_QUERY)
    state: ApplicationState | None = None
    route: str = Field("", max_length=MAX_QUERY)
    received_from: date | None = Field(None, alias="from")
    received_to: date | None = Field(None, alias="to")
    page: int = Field(1, ge=1, le=MAX_PAGE)

    @field_validator("state", "received_from", "received_to", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    def where(self, personal: bool) -> ApplicationFilter:
        """The journal filter; viewers' free text never looks into personal data."""
        # Dates are the Kreis' calendar days: from its first to the end of the last one.
        received_from, received_until = local_day_range(self.received_from, self.received_to)
        return ApplicationFilter(
            state=self.state,
            route=self.route or None,
            service=self.service or None,
            q=self.q or None,
            q_personal=personal,
            received_from=received_from,
            received_until=received_until,
        )

    def query(self, page: int) -> str:
        """This search's address for another page."""
        params = {
            "q": self.q,
            "service": self.service,
            "state": self.state.value if self.state else "",
            "route": self.route,
            "from": self.received_from.isoformat() if self.received_from else "",
            "to": self.received_to.isoformat() if self.received_to else "",
        }
        return "/ui/applications?" + urlencode({**{k: v for k, v in params.items() if v}, "page": page})


# German names of the search form's fields, for its error messages.
SEARCH_FIELDS = {
    "q": "Suche",
    "service": "Leistung",
    "state": "Status",
    "route": "Route",
    "from": "Eingang von",
    "to": "Eingang bis",
    "page": "Seite",
}


def _search_problem(exc: ValidationError) -> str:
    hints = {"state": "unbekannter Status.", "page": f"bitte eine Zahl von 1 bis {MAX_PAGE} angeben."}
    return problem(exc.errors()[0], SEARCH_FIELDS, hints)


@dataclass
class TimelineEntry:
    """One line of the timeline as the page shows it."""

    event: Event
    label: str
    system: str
    step: str
    ids: dict[str, str]
    operator: str | None
    reason: str | None
    details: list[tuple[str, str]] = field(default_factory=list)


def timeline_entries(events: list[Event]) -> list[TimelineEntry]:
    """The timeline's lines: who or what each entry concerns, the ids it produced, its other data."""
    entries = []
    for event in events:
        data = dict(event.data)
        ids = data.pop(PRODUCED_IDS, None) or {}
        operator = reason = None
        if event.type.startswith(OPERATOR_PREFIX):
            operator = data.pop("operator", None) or "Aktenhub"
            reason = data.pop("reason", None)
        # The system it concerns: the connector the step talked to, the source it came from.
        # (An event from before the received event named its source has none: the hub is named then.)
        source = data.get("source") if event.type == "application.received" else None
        system = event.target or (str(source) if source else "Aktenhub")
        entries.append(
            TimelineEntry(
                event=event,
                label=label(EVENTS, event.type),
                system=system,
                step=label(STEPS, event.step),
                ids={str(k): str(v) for k, v in ids.items()} if isinstance(ids, dict) else {},
                operator=operator,
                reason=_shown(reason) if reason is not None else None,
                details=[(label(FIELDS, k), _shown(v, k)) for k, v in data.items() if v is not None],
            )
        )
    return entries


def _shown(value: Any, key: str = "") -> str:
    if value == REDACTED:
        return "(ausgeblendet)"
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, str):
        return value
    if key == "retry_at" and isinstance(value, int | float):
        return local_time(datetime.fromtimestamp(value, UTC))
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    return json.dumps(value, ensure_ascii=False, default=str)


def content_disposition(name: str) -> str:
    """`Content-Disposition: attachment` for `name`: an ASCII fallback and the UTF-8 name (RFC 6266).

    No path, no quotes, no control characters: a name the applicant chose must not steer where the
    browser saves the file or break out of the header.
    """
    cleaned = "".join(c if c.isprintable() and c not in '/\\"' else "_" for c in name).strip(" .")
    cleaned = cleaned[:200] or "datei"
    ascii_name = unicodedata.normalize("NFKD", cleaned).encode("ascii", "ignore").decode()
    fallback = re.sub(r"[^A-Za-z0-9._ ()+-]", "_", ascii_name).strip(" .") or "datei"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


def _media_type(value: str) -> str:
    lowered = value.split(";")[0].strip().lower()
    return lowered if MEDIA_TYPE.match(lowered) else "application/octet-stream"


def add_routes(app: web.Application, hub: Hub) -> None:
    """Mount the search, the application page, its files and its actions."""
    operations = hub.operations
    routes = hub.config.hub.routes
    services = sorted(route_services(routes) or ())

    def search_page(
        request: web.Request, search: Search | None, status: int = 200, **context: Any
    ) -> web.Response:
        context.setdefault("problem", None)
        return render(
            request,
            "applications.html",
            status=status,
            search=search or Search(),
            states=APPLICATION_STATES,
            route_names=[r.name for r in routes],
            services=services,
            **context,
        )

    @guarded("viewer")
    async def search(request: web.Request) -> web.StreamResponse:
        personal = sees_personal_data(person_of(request))
        params: dict[str, str] = {}
        for key in request.query:
            values = request.query.getall(key)
            if len(values) > 1:
                return search_page(request, None, 400, problem=f"„{key[:40]}“ ist mehrfach angegeben.")
            params[key] = values[0]
        try:
            asked = Search.model_validate(params)
        except ValidationError as exc:
            return search_page(request, None, 400, problem=_search_problem(exc))
        where = asked.where(personal)
        if asked.q and asked.page == 1:
            # One application has exactly this id (its own, the source's, an Aktenzeichen, any
            # system's): its page is what the person is looking for.
            exact = await operations.applications(replace(where, q=None, find=asked.q), limit=2)
            if len(exact) == 1:
                raise web.HTTPSeeOther(f"/ui/applications/{quote(exact[0].id, safe='')}")
        offset = (asked.page - 1) * PAGE_SIZE
        rows = await operations.applications(where, limit=PAGE_SIZE + 1, offset=offset)
        return search_page(
            request,
            asked,
            results=[summary_view(r, personal) for r in rows[:PAGE_SIZE]],
            searched=bool(request.query),
            previous=asked.query(asked.page - 1) if asked.page > 1 else None,
            next=asked.query(asked.page + 1) if len(rows) > PAGE_SIZE else None,
        )

    async def application_page(
        request: web.Request, view: ApplicationView, status: int = 200, **context: Any
    ) -> web.Response:
        person = person_of(request)
        personal = sees_personal_data(person)
        summary = view.summary
        open_tasks = any(t.state in OPEN_TASKS for t in view.tasks)
        context.setdefault("problem", None)
        return render(
            request,
            "application.html",
            status=status,
            summary=summary_view(summary, personal),
            applicant=view.application.applicant.display_name if personal and view.application else None,
            correlations=sorted((view.application.correlations if view.application else {}).items()),
            timeline=timeline_entries(timeline_view(view.timeline, personal)),
            tasks=[
                (
                    task_view(t, personal),
                    label(STEPS, t.step),
                    label(TASK_STATES, t.state),
                    _due(t.state, t.due_at),
                )
                for t in view.tasks
            ],
            files=view.files() if personal else None,
            FILE_KINDS=FILE_KINDS,
            can_replay=summary.state == ApplicationState.DEAD and summary.purged_at is None,
            can_abandon=summary.state != ApplicationState.ABANDONED
            and (summary.state not in FINAL or open_tasks),
            max_reason=MAX_REASON,
            notice=DONE.get(request.query.get("done", "")),
            **context,
        )

    async def not_found(request: web.Request, application_id: str) -> web.Response:
        return render(request, "application_missing.html", status=404, application_id=application_id)

    @guarded("viewer")
    async def show(request: web.Request) -> web.StreamResponse:
        application_id = request.match_info["id"]
        try:
            view = await operations.show(application_id)
        except NotFound:
            return await not_found(request, application_id)
        return await application_page(request, view)

    async def reason_of(request: web.Request) -> str:
        form = await request.post()
        value = form.get("reason")
        return value if isinstance(value, str) else ""

    async def refused(request: web.Request, application_id: str, status: int, message: str) -> web.Response:
        try:
            view = await operations.show(application_id)
        except NotFound:
            return await not_found(request, application_id)
        return await application_page(request, view, status, problem=message)

    @guarded("operator")
    async def replay(request: web.Request) -> web.StreamResponse:
        application_id = request.match_info["id"]
        reason = await reason_of(request)
        try:
            await operations.replay(application_id, person_of(request).name, reason)
        except NotFound:
            return await not_found(request, application_id)
        except Invalid:
            return await refused(
                request, application_id, 400, f"Der Grund darf höchstens {MAX_REASON} Zeichen lang sein."
            )
        except Refused:
            summary = (await operations.show(application_id)).summary
            message = (
                "Die Nutzdaten dieses Antrags wurden nach Ablauf der Aufbewahrungsfrist gelöscht: "
                "er kann nicht erneut versucht werden."
                if summary.purged_at is not None
                else "Dieser Antrag hat keinen fehlgeschlagenen Schritt, der erneut versucht werden könnte."
            )
            return await refused(request, application_id, 409, message)
        raise web.HTTPSeeOther(f"/ui/applications/{quote(application_id, safe='')}?done=replayed")

    @guarded("admin")
    async def abandon(request: web.Request) -> web.StreamResponse:
        application_id = request.match_info["id"]
        reason = await reason_of(request)
        try:
            outcome = await operations.abandon(application_id, person_of(request).name, reason)
        except NotFound:
            return await not_found(request, application_id)
        except Invalid:
            message = (
                "Bitte einen Grund angeben: er steht im Protokoll und im Verlauf des Antrags."
                if not reason.strip()
                else f"Der Grund darf höchstens {MAX_REASON} Zeichen lang sein."
            )
            return await refused(request, application_id, 400, message)
        except Refused:
            state = (await operations.show(application_id)).summary.state
            message = (
                f"Dieser Antrag ist {label(APPLICATION_STATES, state).lower()}: "
                "es ist nichts mehr aufzugeben."
                if state in FINAL
                else "Ein Schritt dieses Antrags läuft gerade. Bitte nach seinem Ende erneut versuchen."
            )
            return await refused(request, application_id, 409, message)
        done = "already-abandoned" if outcome.already else "abandoned"
        raise web.HTTPSeeOther(f"/ui/applications/{quote(application_id, safe='')}?done={done}")

    @guarded("operator")
    async def download(request: web.Request) -> web.StreamResponse:
        application_id, file_id = request.match_info["id"], request.match_info["file"]
        try:
            found, content = await operations.open_file(application_id, file_id)
        except NotFound:
            return web.Response(
                status=404, text="Diese Datei gibt es nicht (mehr).", content_type="text/plain"
            )
        except Refused:
            return web.Response(status=410, text="gelöscht (Aufbewahrungsfrist)", content_type="text/plain")
        log.info(
            "application file downloaded application=%s file=%s by=%s",
            application_id,
            file_id,
            person_of(request).name,
        )
        response = web.StreamResponse(
            headers={
                "Content-Type": _media_type(found.media_type),
                "Content-Disposition": content_disposition(found.name or file_id),
                "Cache-Control": "no-store",
            }
        )
        if found.size is not None:
            response.content_length = found.size
        await response.prepare(request)
        if request.method != "HEAD":  # a HEAD asks for the headers only (the stream is never opened)
            async for chunk in content:
                await response.write(chunk)
        await response.write_eof()
        return response

    app.router.add_get("/ui/applications", search)
    app.router.add_get("/ui/applications/{id}", show)
    app.router.add_post("/ui/applications/{id}/replay", replay)
    app.router.add_post("/ui/applications/{id}/abandon", abandon)
    app.router.add_get("/ui/applications/{id}/files/{file}", download)


def _due(state: str, due_at: float) -> datetime | None:
    """When a task that is still to run is due (None once it ran or ended)."""
    if state not in (TaskState.PENDING, TaskState.LEASED):
        return None
    return datetime.fromtimestamp(due_at, UTC)
