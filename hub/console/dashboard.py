"""The console's page "Übersicht" (/ui/): figures, charts, targets' health, certificates, storage, purge.

Everything comes from `Operations.dashboard` (viewers get `Dashboard.for_viewer`: error codes, no
texts). The live counters are a fragment (/ui/counters) the page polls with htmx every few seconds.
Admins start a purge here: a dry run first shows what is due, a second form confirms it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from hub.console.charts import LineChart, Series, duration_ceiling, line_chart
from hub.console.guard import guarded, person_of, sees_personal_data
from hub.console.templating import duration, number, render
from hub.dashboard import HourFigures, Window
from hub.operations import Invalid

if TYPE_CHECKING:
    from hub.runtime import Hub

WINDOWS: dict[str, str] = {"24h": "letzte 24 Stunden", "7d": "letzte 7 Tage"}
WINDOW_NAMES: dict[str, Window] = {"24h": "24h", "7d": "7d"}
POLL_SECONDS = 5


def charts(hours: list[HourFigures]) -> dict[str, LineChart]:
    """The page's two charts: the hourly counts, and the time to filed."""
    starts = [h.start for h in hours]
    volume = line_chart(
        starts,
        [
            Series("Eingegangen", "received", [h.received for h in hours]),
            Series("Abgeschlossen", "filed", [h.filed for h in hours]),
            Series("Fehlgeschlagen", "dead", [h.dead for h in hours]),
        ],
        "Anträge je Stunde",
        number,
    )
    taken = line_chart(
        starts,
        [
            Series("Median", "median", [h.median_seconds for h in hours]),
            Series("90 %", "p90", [h.p90_seconds for h in hours]),
        ],
        "Dauer bis zum Abschluss",
        duration,
        duration_ceiling,
    )
    return {"volume": volume, "duration": taken}


def add_routes(app: web.Application, hub: Hub) -> None:
    """Mount the page, its live counters and the purge."""

    @guarded("viewer")
    async def page(request: web.Request) -> web.Response:
        asked = request.query.get("zeitraum", "24h")
        window = WINDOW_NAMES.get(asked)
        if window is None:
            return web.Response(
                status=400,
                text=f"Unbekannter Zeitraum {asked[:20]!r}; möglich sind: {', '.join(WINDOWS)}.",
                content_type="text/plain",
            )
        dashboard = await hub.operations.dashboard(window)
        if not sees_personal_data(person_of(request)):
            dashboard = dashboard.for_viewer()
        return render(
            request,
            "dashboard.html",
            d=dashboard,
            charts=charts(dashboard.figures.hours),
            windows=WINDOWS,
            poll_seconds=POLL_SECONDS,
            counters=dashboard.figures.counters,
        )

    @guarded("viewer")
    async def counters(request: web.Request) -> web.Response:
        return render(
            request,
            "dashboard_counters.html",
            counters=await hub.operations.live_counters(),
            poll_seconds=POLL_SECONDS,
        )

    @guarded("admin")
    async def purge(request: web.Request) -> web.Response:
        form = await request.post()
        dry_run = form.get("confirm") != "ja"
        try:
            report = await hub.operations.purge(person_of(request).name, dry_run=dry_run)
        except Invalid:
            report, status = None, 422  # refused like any form input: htmx shows the answer
        else:
            status = 200
        template = "dashboard_purge.html" if request.headers.get("HX-Request") else "purge.html"
        return render(request, template, status=status, report=report)

    app.router.add_get("/ui/", page)
    app.router.add_get("/ui/counters", counters)
    app.router.add_post("/ui/purge", purge)
