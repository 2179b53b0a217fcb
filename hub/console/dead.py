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
from datetime import date
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlencode

from aiohttp import web

from hub.console.forms import applications_text, day, local_day_range, text
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


@dataclass(frozen=True)
class DeadFilter:
    """A dead-letter filter as the form sent it (`values`, for hidden fields and links) and as read."""

    values: dict[str, str]
    where: ApplicationFilter
    problems: list[str]

    def query(self) -> str:
        """The filter as a query string (for the page it leads back to)."""
        return urlencode(self.values)

    def describe(self) -> str:
        """The filter in German words, for the preview."""
        v = self.values
        parts = []
        if "target" in v:
            parts.append(f"Ziel {v['target']}")
        if "error_code" in v:
            parts.append(
                "ohne Fehlercode" if v["error_code"] == NONE_MARK else f"Fehlercode {v['error_code']}"
            )
        if "error_group" in v:
            group = v["error_group"]
            parts.append("ohne Fehlertext" if group == NONE_MARK else f"Fehler „{group}“")
        if "service" in v:
            parts.append(f"Leistung {v['service']}")
        if "route" in v:
            parts.append(f"Route {v['route']}")
        if "from" in v:
            parts.append(f"fehlgeschlagen ab {date.fromisoformat(v['from']):%d.%m.%Y}")
        if "to" in v:
            parts.append(f"fehlgeschlagen bis {date.fromisoformat(v['to']):%d.%m.%Y}")
        return ", ".join(parts) or "alle fehlgeschlagenen Anträge"


def read_filter(params: Mapping[str, str], personal: bool) -> DeadFilter:
    """The filter of a query string or form; viewers cannot filter by error text (they do not see it)."""
    problems: list[str] = []
    target = text(params, "target", problems)
    code = text(params, "error_code", problems)
    group = text(params, "error_group", problems, MAX_GROUP_TEXT) if personal else None
    service = text(params, "service", problems)
    route = text(params, "route", problems)
    first = day(params, "from", "Fehlgeschlagen ab", problems)
    last = day(params, "to", "Fehlgeschlagen bis", problems)
    if first and last and last < first:
        problems.append("Der Zeitraum endet vor seinem Beginn.")
    since, until = local_day_range(first, last)
    values = {
        name: value
        for name, value in (
            ("target", target),
            ("error_code", code),
            ("error_group", group),
            ("service", service),
            ("route", route),
            ("from", first.isoformat() if first else None),
            ("to", last.isoformat() if last else None),
        )
        if value is not None
    }
    where = ApplicationFilter(
        state=ApplicationState.DEAD,  # the page's whole filter is "every dead application": explicitly
        route=route,
        service=service,
        target=target,
        error_code=_marked(code),
        error_group=_marked(group),
        dead_from=since,
        dead_to=until,
    )
    return DeadFilter(values=values, where=where, problems=problems)


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


def _form(data: Mapping[str, object]) -> dict[str, str]:
    return {k: v for k, v in data.items() if isinstance(v, str)}


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
            "description": found.describe(),
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
        action = ACTIONS.get(request.query.get("action", ""))
        if action is None:
            raise web.HTTPBadRequest(text="action muss replay oder abandon sein.")
        if action == "abandon" and not may(person_of(request), "admin"):
            raise web.HTTPForbidden(text="Aufgeben darf nur die Rolle admin.")
        found = read_filter(request.query, personal=True)
        if found.problems:
            return await page(request, found, status=422)
        shown = confirmation(action, found, await preview_of(action, found))
        if request.headers.get("HX-Request"):
            return render(request, "dead_confirm.html", preview=shown)
        return await page(request, found, shown)

    async def act(request: web.Request, action: BulkAction) -> web.StreamResponse:
        form = _form(await request.post())
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
    app.router.add_get("/ui/dead/preview", preview)
    app.router.add_post("/ui/dead/replay", replay)
    app.router.add_post("/ui/dead/abandon", abandon)
