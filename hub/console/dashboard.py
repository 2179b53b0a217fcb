"""The console's page "Übersicht" (/ui/). (Skeleton: filled in by its owner.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from hub.console.guard import guarded
from hub.console.templating import render

if TYPE_CHECKING:
    from hub.runtime import Hub


def add_routes(app: web.Application, hub: Hub) -> None:
    """Mount the page and its fragments and actions."""

    @guarded("viewer")
    async def page(request: web.Request) -> web.Response:
        return render(request, "dashboard.html")

    app.router.add_get("/ui/", page)
