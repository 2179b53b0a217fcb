"""Admin API of held inbound messages (`hub.held`): list, show, close (admin), keep (operator).

Close and keep take an optional JSON body ``{"reason": "..."}`` for the audit trail. Viewers see no sender
and the reason's code only (`hub.redaction.held_view`, as in the console).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import Field

from hub.held import Decision, HeldFilter, HeldMessage, HeldState
from hub.http.admin import (
    MAX_QUERY,
    BodyRefused,
    Page,
    ReasonBody,
    _error,
    answer,
    page_query,
    query_params,
    reason_body,
    refusal,
)
from hub.http.auth import CALLER, ROLE, sees_personal_data
from hub.http.openapi import ApiRoutes, Operation
from hub.operations import Invalid, NotFound, Refused, UpstreamFailed
from hub.redaction import held_view

if TYPE_CHECKING:
    from hub.runtime import Hub


HELD_ID = re.compile(r"^[0-9]{1,18}$")
LIST_PARAMS = frozenset({"state", "source", "limit", "offset"})
TAGS = ("held messages",)
REFUSALS = (404, 409, 502, 503)  # a decision closes the message upstream, which may fail


class HeldQuery(Page):
    """The filter of the held messages (query parameters)."""

    state: HeldState | None = None
    source: str | None = Field(None, max_length=MAX_QUERY, description="the source connector's name")


class HeldList(Page):
    """Held inbound messages, newest first."""

    held_messages: list[HeldMessage]


def _held_id(request: web.Request) -> int | None:
    raw = request.match_info["id"]
    # ASCII digits only: str.isdigit() also takes "³", which int() refuses (that was a 500).
    return int(raw) if HELD_ID.match(raw) else None


def _personal(request: web.Request) -> bool:
    return sees_personal_data(request[ROLE])


def add_held_routes(api: ApiRoutes, hub: Hub) -> None:
    """Mount ``/api/v1/held-messages``."""

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
        shown = [held_view(h, _personal(request)) for h in rows]
        return answer(HeldList(held_messages=shown, limit=limit, offset=offset))

    async def get_held(request: web.Request) -> web.Response:
        params = query_params(request, frozenset())
        if isinstance(params, str):
            return _error(400, params)
        held_id = _held_id(request)
        held = await hub.journal.held_get(held_id) if held_id is not None else None
        if held is None:
            return _error(404, f"no held message {request.match_info['id']}")
        return answer(held_view(held, _personal(request)))

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
        return answer(held)

    async def close_held(request: web.Request) -> web.Response:
        return await _decide(request, "close")

    async def keep_held(request: web.Request) -> web.Response:
        return await _decide(request, "keep")

    path = "/api/v1/held-messages"
    api.add(
        Operation(
            "GET",
            path,
            "listHeld",
            "Inbound messages a source could not take",
            "viewer",
            HeldList,
            query=HeldQuery,
            tags=TAGS,
        ),
        list_held,
    )
    api.add(
        Operation(
            "GET",
            path + "/{id}",
            "showHeld",
            "One held message",
            "viewer",
            HeldMessage,
            refusals=(404,),
            tags=TAGS,
        ),
        get_held,
    )
    api.add(
        Operation(
            "POST",
            path + "/{id}/close",
            "closeHeld",
            "Close a held message upstream, for good",
            "admin",
            HeldMessage,
            body=ReasonBody,
            refusals=REFUSALS,
            tags=TAGS,
        ),
        close_held,
    )
    api.add(
        Operation(
            "POST",
            path + "/{id}/keep",
            "keepHeld",
            "Keep a held message upstream, ignored",
            "operator",
            HeldMessage,
            body=ReasonBody,
            refusals=REFUSALS,
            tags=TAGS,
        ),
        keep_held,
    )
