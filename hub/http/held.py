"""Admin API of held inbound messages (`hub.held`): list, show, close (admin), keep (operator).

Close and keep take an optional JSON body ``{"reason": "..."}`` for the audit trail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from hub.held import Decision, HeldFilter, HeldState
from hub.http.admin import (
    MAX_QUERY,
    BodyRefused,
    ReasonBody,
    _error,
    page_query,
    query_params,
    reason_body,
    refusal,
)
from hub.http.auth import CALLER, TokenAuth
from hub.operations import Invalid, NotFound, Refused, UpstreamFailed

if TYPE_CHECKING:
    from hub.runtime import Hub


LIST_PARAMS = frozenset({"state", "source", "limit", "offset"})


def _held_id(request: web.Request) -> int | None:
    raw = request.match_info["id"]
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


def add_held_routes(app: web.Application, hub: Hub, auth: TokenAuth) -> None:
    """Mount ``/api/v1/held-messages``."""

    @auth.require("viewer")
    async def list_held(request: web.Request) -> web.Response:
        page = page_query(request, LIST_PARAMS)
        if isinstance(page, str):
            return _error(400, page)
        limit, offset, params = page
        if len(params.get("source", "")) > MAX_QUERY:
            return _error(400, f"source must be at most {MAX_QUERY} characters")
        state = request.query.get("state") or None
        if state is not None and state not in {s.value for s in HeldState}:
            return _error(400, f"state must be one of {', '.join(s.value for s in HeldState)}")
        where = HeldFilter(
            state=HeldState(state) if state else None, source=request.query.get("source") or None
        )
        rows = await hub.journal.list_held(where, limit=limit, offset=offset)
        return web.json_response(
            {"held_messages": [r.model_dump(mode="json") for r in rows], "limit": limit, "offset": offset}
        )

    @auth.require("viewer")
    async def get_held(request: web.Request) -> web.Response:
        params = query_params(request, frozenset())
        if isinstance(params, str):
            return _error(400, params)
        held_id = _held_id(request)
        held = await hub.journal.held_get(held_id) if held_id is not None else None
        if held is None:
            return _error(404, f"no held message {request.match_info['id']}")
        return web.json_response(held.model_dump(mode="json"))

    async def _decide(request: web.Request, decision: Decision) -> web.Response:
        held_id = _held_id(request)
        if held_id is None:
            return _error(404, f"no held message {request.match_info['id']}")
        try:
            reason = await reason_body(request, ReasonBody)
            held = await hub.operations.decide_held(held_id, decision, request[CALLER], reason)
        except BodyRefused as exc:
            return _error(exc.status, exc.message)
        except (NotFound, Invalid, Refused, UpstreamFailed) as exc:
            return refusal(exc)
        return web.json_response(held.model_dump(mode="json"))

    @auth.require("admin")
    async def close_held(request: web.Request) -> web.Response:
        return await _decide(request, "close")

    @auth.require("operator")
    async def keep_held(request: web.Request) -> web.Response:
        return await _decide(request, "keep")

    app.router.add_get("/api/v1/held-messages", list_held)
    app.router.add_get("/api/v1/held-messages/{id}", get_held)
    app.router.add_post("/api/v1/held-messages/{id}/close", close_held)
    app.router.add_post("/api/v1/held-messages/{id}/keep", keep_held)
