"""The console's page "Fehlgeschlagen" (/ui/dead): dead steps grouped, replayed or abandoned in bulk.

Dead steps are grouped by target and error code, and for operators also by the normalised error text
(`hub.deadletters`); viewers see codes only. From a group, or from the filter as a whole, an operator
replays and an admin abandons: first a preview says how many applications it affects and asks for a
reason, then the confirmed action runs on the same filter (carried in hidden fields, so it acts on what
the filter selects at that moment; the notice says how many it touched). Plain forms work without
JavaScript; htmx shows the preview in place and swaps the page after the action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlencode

from aiohttp import web
from pydantic import Field

from hub.console.forms import MAX_FIELD, FilterForm, applications_text, read_form
from hub.console.guard import guarded, may, person_of, sees_personal_data
from hub.console.notice import render_page, see_other
from hub.console.templating import render
from hub.deadletters import MAX_GROUP_TEXT, NONE_MARK, DeadGroup, DeadLetters
from hub.journal import ApplicationFilter
from hub.models import ApplicationState
from hub.operations import BulkPreview, Invalid

if TYPE_CHECKING:
    from hub.runtime import Hub

BulkAction = Literal["replay", "abandon"]
ACTIONS: dict[str, BulkAction] = {"replay": "replay", "abandon": "abandon"}
# Fields of the filter that belong to the application (kept when a group narrows the filter).
APPLICATION_FIELDS = ("service", "route", "from", "to")


# The fields' names in German, for what is wrong with them.
LABELS = {
    "target": "Ziel",
    "error_code": "Fehlercode",
    "error_group": "Fehlertext",
    "service": "Leistung",
    "route": "Route",
    "from": "Fehlgeschlagen ab",
    "to": "Fehlgeschlagen bis",
}


class DeadForm(FilterForm):
    """The dead-letter filter: a target, error code or text (`NONE_MARK`: none recorded), the
    application's service and route, and the days the steps went dead."""

    target: str | None = Field(None, max_length=MAX_FIELD)
    error_code: str | None = Field(None, max_length=MAX_FIELD)
    error_group: str | None = Field(None, max_length=MAX_GROUP_TEXT)
    service: str | None = Field(None, max_length=MAX_FIELD)
    route: str | None = Field(None, max_length=MAX_FIELD)

    def where(self) -> ApplicationFilter:
        """The journal's filter: every dead application (explicitly, on this page) the fields select."""
        since, until = self.day_range()
        return ApplicationFilter(
            state=ApplicationState.DEAD,
            route=self.route,
            service=self.service,
            target=self.target,
            error_code=_marked(self.error_code),
            error_group=_marked(self.error_group),
            dead_from=since,
            dead_to=until,
        )

    def describe(self) -> str:
        """The filter in German words, for the preview."""
        parts = []
        if self.target is not None:
            parts.append(f"Ziel {self.target}")
        if self.error_code is not None:
            parts.append(
                "ohne Fehlercode" if self.error_code == NONE_MARK else f"Fehlercode {self.error_code}"
            )
        if self.error_group is not None:
            parts.append(
                "ohne Fehlertext" if self.error_group == NONE_MARK else f"Fehler „{self.error_group}“"
            )
        if self.service is not None:
            parts.append(f"Leistung {self.service}")
        if self.route is not None:
            parts.append(f"Route {self.route}")
        if self.first is not None:
            parts.append(f"fehlgeschlagen ab {self.first:%d.%m.%Y}")
        if self.last is not None:
            parts.append(f"fehlgeschlagen bis {self.last:%d.%m.%Y}")
        return ", ".join(parts) or "alle fehlgeschlagenen Anträge"


@dataclass(frozen=True)
class DeadFilter:
    """A dead-letter filter as read (`form`), as given (`values`, for fields and links), or what is wrong."""

    form: DeadForm
    values: dict[str, str]
    problems: list[str]

    @property
    def where(self) -> ApplicationFilter:
        """The journal's filter."""
        return self.form.where()

    def query(self) -> str:
        """The filter as a query string (for the page it leads back to), without a group's error text:
        that must not land in an address (proxy logs, browser history)."""
        return urlencode({k: v for k, v in self.values.items() if k != "error_group"})


def read_filter(params: Mapping[str, object], personal: bool) -> DeadFilter:
    """The filter of a query string or form; viewers cannot filter by error text (they do not see it)."""
    found = read_form(DeadForm, params, LABELS)
    if isinstance(found, list):
        # Shown again as given, so the person can correct it.
        given = {k: v[:MAX_GROUP_TEXT] for k, v in params.items() if k in LABELS and isinstance(v, str)}
        return DeadFilter(DeadForm(), {k: v for k, v in given.items() if v.strip()}, found)
    if not personal:
        found = found.model_copy(update={"error_group": None})
    return DeadFilter(found, found.values(), [])


def _marked(value: str | None) -> str | None:
    # The form's mark for "none recorded" is the journal's empty code or text.
    return "" if value == NONE_MARK else value


def group_values(found: DeadFilter, group: DeadGroup) -> dict[str, str]:
    """The filter that selects exactly `group` within the filter it was found with."""
    values = {k: v for k, v in found.values.items() if k in APPLICATION_FIELDS}
    values["target"] = group.target
    values["error_code"] = group.error_code or NONE_MARK
    if group.error_group is not None:
        values["error_group"] = group.error_group or NONE_MARK
    return values


def add_routes(app: web.Application, hub: Hub) -> None:
    """Mount the page, the preview and the bulk actions."""

    async def page(
        request: web.Request,
        found: DeadFilter,
        preview: dict[str, object] | None = None,
        status: int = 200,
    ) -> web.Response:
        personal = sees_personal_data(person_of(request))
        dead = DeadLetters(groups=[], steps=0, applications=0)
        if not found.problems:
            dead = await hub.operations.dead_letters(found.where, personal)
        return render_page(
            request,
            "dead.html",
            status=status,
            filter=found,
            dead=dead,
            groups=[(g, group_values(found, g)) for g in dead.groups],
            targets=hub.targets(),
            routes=[r.name for r in hub.config.hub.routes],
            preview=preview,
            applications_text=applications_text,
        )

    async def preview_of(action: BulkAction, found: DeadFilter) -> BulkPreview:
        if action == "replay":
            return await hub.operations.replay_preview(found.where)
        return await hub.operations.abandon_preview(found.where)

    def confirmation(
        action: BulkAction, found: DeadFilter, counted: BulkPreview, problem: str | None = None
    ) -> dict[str, object]:
        return {
            "action": action,
            "count": counted.count,
            "count_text": applications_text(counted.count),
            "description": found.form.describe(),
            "values": found.values,
            "problem": problem,
        }

    @guarded("viewer")
    async def dead_page(request: web.Request) -> web.Response:
        personal = sees_personal_data(person_of(request))
        found = read_filter(request.query, personal)
        return await page(request, found, status=422 if found.problems else 200)

    @guarded("operator")
    async def preview(request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        action = ACTIONS.get(form.get("action", ""))
        if action is None:
            raise web.HTTPBadRequest(text="action muss replay oder abandon sein.")
        if action == "abandon" and not may(person_of(request), "admin"):
            raise web.HTTPForbidden(text="Aufgeben darf nur die Rolle admin.")
        found = read_filter(form, personal=True)
        if found.problems:
            return await page(request, found, status=422)
        shown = confirmation(action, found, await preview_of(action, found))
        if request.headers.get("HX-Request"):
            return render(request, "dead_confirm.html", preview=shown)
        return await page(request, found, shown)

    async def act(request: web.Request, action: BulkAction) -> web.StreamResponse:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        found = read_filter(form, personal=True)
        if found.problems:
            return await page(request, found, status=422)
        expected = form.get("expected", "")
        counted = int(expected) if expected.isascii() and expected.isdigit() and len(expected) < 10 else None
        person = person_of(request)
        try:
            if action == "replay":
                done = await hub.operations.replay_bulk(found.where, person.name, form.get("reason"))
            else:
                done = await hub.operations.abandon_bulk(found.where, person.name, form.get("reason"))
        except Invalid:
            problem = "Bitte eine Begründung angeben (höchstens 2000 Zeichen); sie kommt ins Protokoll."
            shown = confirmation(action, found, await preview_of(action, found), problem)
            return await page(request, found, shown, status=422)
        verb = "werden erneut ausgeführt" if action == "replay" else "aufgegeben"
        notice = f"{applications_text(len(done))} {verb}."
        if counted is not None and counted != len(done):
            notice += (
                f" (Die Vorschau zählte {applications_text(counted)}; der Bestand hat sich seitdem geändert.)"
            )
        query = found.query()
        raise see_other(request, "/ui/dead" + (f"?{query}" if query else ""), notice)

    @guarded("operator")
    async def replay(request: web.Request) -> web.StreamResponse:
        return await act(request, "replay")

    @guarded("admin")
    async def abandon(request: web.Request) -> web.StreamResponse:
        return await act(request, "abandon")

    app.router.add_get("/ui/dead", dead_page)
    app.router.add_post("/ui/dead/preview", preview)
    app.router.add_post("/ui/dead/replay", replay)
    app.router.add_post("/ui/dead/abandon", abandon)
