"""The console's page "Konnektoren" (/ui/connectors): status, diagnostics, check, pause and resume.

Every connector with its redacted diagnostics (`Operations.diagnostics`, the same as the admin API's)
and, for targets, its gate: circuit breaker, rate limit, pause. Operators check a connector on demand
(htmx swaps the outcome in place; without JavaScript the page comes back with it) and pause or resume
a target (a pause needs a reason). A pause's reason is free text: viewers see who paused and since
when, not why (`hub.redaction.target_view`, as in the admin API and on the dashboard).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from hub.console.guard import guarded, person_of, sees_personal_data
from hub.console.notice import render_page, see_other
from hub.console.templating import render
from hub.operations import ConnectorCheck, Invalid, NotFound, Refused
from hub.redaction import target_view

if TYPE_CHECKING:
    from hub.runtime import Hub

CIRCUIT_LABELS = {
    "closed": "geschlossen (läuft)",
    "open": "offen (keine Versuche)",
    "half_open": "halb offen (Probe)",
}
CHECK_SECONDS = 15.0


def diagnostics_text(state: dict[str, Any] | None) -> str:
    """A connector's redacted state as indented JSON for a `<pre>`."""
    return json.dumps(state or {}, indent=2, ensure_ascii=False, sort_keys=True)


def add_routes(app: web.Application, hub: Hub) -> None:
    """Mount the page and its fragments and actions."""

    async def page(
        request: web.Request,
        checks: dict[str, ConnectorCheck] | None = None,
        problem: tuple[str, str] | None = None,
        status: int = 200,
    ) -> web.Response:
        found = await hub.operations.diagnostics()
        personal = sees_personal_data(person_of(request))
        gates = {t.target: target_view(t, personal) for t in await hub.operations.targets()}
        return render_page(
            request,
            "connectors.html",
            status=status,
            connectors=found,
            gates=gates,
            checks=checks or {},
            problem=problem,
            circuit_labels=CIRCUIT_LABELS,
            diagnostics_text=diagnostics_text,
        )

    @guarded("viewer")
    async def connectors_page(request: web.Request) -> web.Response:
        return await page(request)

    @guarded("operator")
    async def check(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            (outcome,) = await hub.operations.check(CHECK_SECONDS, name=name)
        except NotFound:
            raise web.HTTPNotFound(text=f"Keinen Konnektor {name} gefunden.") from None
        if request.headers.get("HX-Request"):
            return render(request, "connector_check.html", check=outcome)
        return await page(request, checks={name: outcome})

    @guarded("operator")
    async def pause(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        form = await request.post()
        reason = form.get("reason")
        try:
            await hub.operations.pause(
                name, person_of(request).name, reason if isinstance(reason, str) else None
            )
        except NotFound:
            raise web.HTTPNotFound(text=f"Kein Ziel {name} gefunden.") from None
        except Invalid:
            problem = (name, "Bitte eine Begründung für die Pause angeben (höchstens 2000 Zeichen).")
            return await page(request, problem=problem, status=422)
        except Refused:
            problem = (name, "Das Ziel wurde inzwischen fortgesetzt; bitte erneut pausieren.")
            return await page(request, problem=problem, status=409)
        raise see_other(request, "/ui/connectors", f"Ziel {name} ist pausiert.")

    @guarded("operator")
    async def resume(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        try:
            lifted = await hub.operations.resume(name, person_of(request).name)
        except NotFound:
            raise web.HTTPNotFound(text=f"Kein Ziel {name} gefunden.") from None
        notice = f"Ziel {name} läuft wieder." if lifted else f"Ziel {name} war nicht pausiert."
        raise see_other(request, "/ui/connectors", notice)

    app.router.add_get("/ui/connectors", connectors_page)
    app.router.add_post("/ui/connectors/{name}/check", check)
    app.router.add_post("/ui/connectors/{name}/pause", pause)
    app.router.add_post("/ui/connectors/{name}/resume", resume)
