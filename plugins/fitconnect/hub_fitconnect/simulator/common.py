"""What every handler of the simulated Submission API needs: the state, the token, ids, bodies, paging."""

from __future__ import annotations

import re
from typing import Annotated, Any

from aiohttp import hdrs, web
from pydantic import BaseModel, StringConstraints, ValidationError

from hub.simulation import bearer_token, parse_json, read_body

from .problems import Refused
from .state import Destination, SimState, Submission, Token

STATE = web.AppKey("fitconnect_simulator_state", SimState)
JOSE = "application/jose"
# The string form of a UUID (RFC 4122), as the OpenAPI's `format: uuid` and a Java service read it.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
Uuid = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]


def version_of(request: web.Request) -> str:
    """The API version a request addresses (``v1``, ``v2``)."""
    return request.path.split("/", 2)[1]


def state_of(request: web.Request) -> SimState:
    """The simulator's state, its deadlines applied at this moment."""
    state = request.app[STATE]
    state.tick()
    return state


def token_of(request: web.Request) -> Token:
    """The request's valid access token, else `Refused` 401."""
    value = bearer_token(request.headers.get(hdrs.AUTHORIZATION, ""))
    token = request.app[STATE].token(value) if value else None
    if token is None:
        raise Refused(401, "unauthorized", "a valid access token is required (missing, unknown or expired)")
    return token


def uuid_param(value: str, what: str) -> str:
    """An id from the path or query in the string form of a UUID, else `Refused` 400."""
    if not re.fullmatch(UUID_PATTERN, value):
        raise Refused(400, "invalid-request", f"{what} is not a UUID")
    return value


def require_media_type(request: web.Request, expected: str) -> None:
    """`Refused` 415 unless the body has this content type."""
    if request.content_type != expected:
        raise Refused(
            415, "unsupported-media-type", f"expected Content-Type {expected}, got {request.content_type!r}"
        )


async def json_body(request: web.Request, model: type[BaseModel]) -> Any:
    """The JSON body validated by `model`; 415 not JSON, 400 invalid (the first error named)."""
    require_media_type(request, "application/json")
    raw = await read_body(request, request.app[STATE].options.max_json_bytes)
    try:
        return model.model_validate(parse_json(raw))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(map(str, first["loc"])) or "the body"
        raise Refused(400, "invalid-request", f"{where}: {first['msg']}") from None


def submission_of(state: SimState, submission_id: str) -> Submission:
    """The submission with this id, else `Refused` 404."""
    submission = state.submissions.get(uuid_param(submission_id, "submissionId"))
    if submission is None:
        raise Refused(404, "submission-not-found", "no such submission")
    return submission


def destination_of(state: SimState, destination_id: str) -> Destination:
    """The destination with this id, else `Refused` 404."""
    destination = state.destinations.get(uuid_param(destination_id, "destinationId"))
    if destination is None:
        raise Refused(404, "destination-not-found", "no such destination")
    return destination


def page_of(request: web.Request) -> tuple[int, int]:
    """``limit`` (1..500, default 100) and ``offset`` (>= 0) of a list request, else `Refused` 400."""

    def number(name: str, default: int, low: int, high: int | None) -> int:
        text = request.query.get(name)
        if text is None:
            return default
        if (
            not text.isascii()
            or not text.isdigit()
            or int(text) < low
            or (high is not None and int(text) > high)
        ):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise Refused(400, "invalid-request", f"{name} must be an integer {bound}")
        return int(text)

    return number("limit", 100, 1, 500), number("offset", 0, 0, None)
