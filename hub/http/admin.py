"""Admin JSON API under /api/v1/: list, inspect and replay applications."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import ValidationError

from hub.http.auth import RANK, ROLE, TokenAuth
from hub.journal import ApplicationFilter
from hub.models import ApplicationState

if TYPE_CHECKING:
    from hub.runtime import Hub

MAX_PAGE = 500


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


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
    for key in ("route", "service", "q"):
        if params.get(key) is not None and not isinstance(params[key], str):
            return f"{key} must be a string"
    return ApplicationFilter(
        state=state,
        route=params.get("route") or None,
        service=params.get("service") or None,
        q=params.get("q") or None,
        ids=tuple(ids),
    )


def add_admin_routes(app: web.Application, hub: Hub, auth: TokenAuth) -> None:
    """Mount the admin API."""

    @auth.require("viewer")
    async def list_applications(request: web.Request) -> web.Response:
        where = _filter(dict(request.query))
        if isinstance(where, str):
            return _error(400, where)
        try:
            limit = min(int(request.query.get("limit", "100")), MAX_PAGE)
            offset = max(int(request.query.get("offset", "0")), 0)
        except ValueError:
            return _error(400, "limit and offset must be integers")
        rows = await hub.journal.list_applications(where, limit=limit, offset=offset)
        return web.json_response(
            {
                "applications": [r.model_dump(mode="json") for r in rows],
                "limit": limit,
                "offset": offset,
            }
        )

    @auth.require("viewer")
    async def get_application(request: web.Request) -> web.Response:
        app_id = request.match_info["id"]
        summary = await hub.journal.get_summary(app_id)
        if summary is None:
            return _error(404, f"no application {app_id}")
        events = await hub.journal.events(app_id)
        tasks = await hub.journal.tasks(app_id)
        body: dict[str, Any] = {
            **summary.model_dump(mode="json"),
            "timeline": [e.model_dump(mode="json") for e in events],
            "tasks": [
                {
                    "id": t.id,
                    "step": t.step,
                    "target": t.target or None,
                    "state": t.state,
                    "attempts": t.attempts,
                    "last_error": t.last_error,
                    "due_at": t.due_at,
                    "result": t.result,
                }
                for t in tasks
            ],
        }
        # The document holds personal data: operators see it, viewers see the metadata only.
        if RANK[request[ROLE]] >= RANK["operator"]:
            document = await hub.journal.get_application(app_id)
            body["application"] = document.model_dump(mode="json") if document else None
        return web.json_response(body)

    @auth.require("operator")
    async def replay_one(request: web.Request) -> web.Response:
        app_id = request.match_info["id"]
        if await hub.journal.get_summary(app_id) is None:
            return _error(404, f"no application {app_id}")
        ids = await hub.bus.replay(ApplicationFilter(ids=(app_id,)))
        if not ids:
            return _error(409, f"application {app_id} has no dead step to replay")
        return web.json_response({"replayed": ids, "count": len(ids)})

    @auth.require("operator")
    async def replay_bulk(request: web.Request) -> web.Response:
        try:
            params = await request.json() if request.can_read_body else {}
        except (json.JSONDecodeError, ValidationError, UnicodeDecodeError):
            return _error(400, "body must be a JSON object: {state?, route?, service?, q?, ids?}")
        if not isinstance(params, dict):
            return _error(400, "body must be a JSON object: {state?, route?, service?, q?, ids?}")
        unknown = set(params) - {"state", "route", "service", "q", "ids"}
        if unknown:
            return _error(400, f"unknown filter keys: {', '.join(sorted(unknown))}")
        if not any(params.get(k) for k in ("state", "route", "service", "q", "ids")):
            # An empty selection must not mean "everything": say so explicitly.
            return _error(400, 'give a filter, e.g. {"state": "dead"} to replay every dead application')
        where = _filter(params)
        if isinstance(where, str):
            return _error(400, where)
        ids = await hub.bus.replay(where)
        return web.json_response({"replayed": ids, "count": len(ids)})

    app.router.add_get("/api/v1/applications", list_applications)
    app.router.add_get("/api/v1/applications/{id}", get_application)
    app.router.add_post("/api/v1/applications/{id}/replay", replay_one)
    app.router.add_post("/api/v1/replay", replay_bulk)
