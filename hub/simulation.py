"""Simulator helpers: the pieces every simulator of a remote system needs, in one place.

For plugin authors writing the strict simulator that ships with their connector (see
contrib/plugin-template); the built-in simulators use them too. Names are stable public API.

Credentials (constant-time, so the answer time tells nothing):
    `basic_credentials` (user, password) of a Basic header · `basic_user` the user whose password
    matches · `bearer_token` the token of a Bearer header · `secret_matches` compare two secrets ·
    `users_option` a simulator's ``users`` option checked.

Faults an operator (or a test) turns on at start-up or at runtime through ``/_sim/faults``:
    `FaultKnobs` (``fail_next``, ``fail_status``, ``latency_seconds``; subclass it for more knobs) ·
    `SimulatedFaults` the state mixin that delays and fails requests by them (`FaultState`) ·
    `fault_middleware` applies them to every request but the operator's · `fault_routes` the
    ``GET|POST /_sim/faults`` endpoints showing and changing the knobs, validated.

Hostile input, refused as the real server does before its own checks:
    `MalformedRequest` (a 4xx with a reason) · `read_body` a body or multipart part up to a limit ·
    `parse_json` strict JSON · `multipart_errors` aiohttp's multipart errors as `MalformedRequest` ·
    `parse_id` a numeric id as a Java service reads it (`MAX_ID`) · `refusal_middleware` these, 404
    and 405 in the simulator's own error shape.

Storage: `simulator_files` a content-addressed store (the `hub.Blobs` protocol) for a simulator's own
files, e.g. the messages a simulated Fachverfahren fetches with the XTA client.

Serving: `SERVER_SSL` (an app key) holds the TLS context of a simulator that serves https (e.g. to
demand client certificates); `aktenhub simulate` serves with it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, NoReturn, Protocol, TypeVar

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware
from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from hub.blobs import Blobs

# A simulator that serves https (e.g. to demand TLS client certificates) puts its server context here;
# `aktenhub simulate` serves the application with it.
SERVER_SSL = web.AppKey("simulator_server_ssl", ssl.SSLContext)


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(user name, password) of an ``Authorization: Basic ...`` header (UTF-8), else None."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def users_option(users: object, default: Mapping[str, str]) -> dict[str, str]:
    """A simulator's ``users`` option (user name → password), else `default`; `ValueError` if malformed."""
    if users is None:
        return dict(default)
    if not isinstance(users, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in users.items()
    ):
        raise ValueError("users must map user names to passwords")
    return dict(users)


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header (RFC 6750), else None."""
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def secret_matches(given: str, expected: str | None) -> bool:
    """Whether `given` is `expected` (None: nothing matches), compared in constant time."""
    # surrogateescape: a header of non-UTF-8 bytes is a wrong secret, not a crash.
    match = hmac.compare_digest(given.encode("utf-8", "surrogateescape"), (expected or "\0").encode())
    return match and expected is not None


def basic_user(header: str, users: Mapping[str, str]) -> str | None:
    """The user a Basic header names if the password is theirs, else None (unknown users take as long)."""
    username, password = basic_credentials(header) or ("", "")
    return username if secret_matches(password, users.get(username)) and username else None


class FaultState(Protocol):
    """A simulator's state that can delay answers and fail the next N requests."""

    async def delay(self) -> None:
        """Wait the configured latency."""

    def take_failure(self) -> bool:
        """Whether this request is one of the next N to fail."""


class FaultKnobs(BaseModel):
    """The fault knobs every simulator has; a simulator subclasses it for its own (drop_after_..., ...)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    fail_next: int = Field(0, ge=0, description="answer the next N requests with `fail_status`")
    fail_status: int = Field(503, ge=400, le=599, description="the status of the failed requests")
    latency_seconds: float = Field(0.0, ge=0, le=600, description="delay every answer by this long")


KnobsT = TypeVar("KnobsT", bound=FaultKnobs)


class SimulatedFaults(Generic[KnobsT]):
    """Mixin for a simulator's state whose `knobs` are `FaultKnobs`: it is then a `FaultState`."""

    knobs: KnobsT
    _released: asyncio.Event | None = None

    def _release_event(self) -> asyncio.Event:
        if self._released is None:
            self._released = asyncio.Event()
        return self._released

    async def delay(self) -> None:
        """The configured latency; ends early when the simulator shuts down (`release`)."""
        if self.knobs.latency_seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release_event().wait(), self.knobs.latency_seconds)

    def release(self) -> None:
        """End every pending delay (at shutdown, so no request outlives the server)."""
        self._release_event().set()

    def take_failure(self) -> bool:
        """Whether this request is one of the next N to fail."""
        if self.knobs.fail_next > 0:
            self.knobs.fail_next -= 1
            return True
        return False


def fault_routes(
    state_key: web.AppKey[Any],
    error: Callable[[int, str], web.StreamResponse] | None = None,
    path: str = "/_sim/faults",
) -> list[web.RouteDef]:
    """``GET`` and ``POST`` `path`: the state's knobs, and changing some of them (validated, 400 if not).

    The state at `state_key` holds its knobs as `knobs`, a pydantic model (usually `FaultKnobs`). A
    refused change is answered by `error`, else raised as `MalformedRequest` (for `refusal_middleware`).
    """

    async def show(request: web.Request) -> web.Response:
        return web.json_response(request.app[state_key].knobs.model_dump())

    async def change(request: web.Request) -> web.StreamResponse:
        try:
            return await changed(request)
        except MalformedRequest as bad:
            if error is None:
                raise
            return error(bad.status, bad.message)

    async def changed(request: web.Request) -> web.Response:
        state = request.app[state_key]
        changes = parse_json(await read_body(request, 64 * 1024), "the body")
        if not isinstance(changes, dict):
            raise MalformedRequest("expected a JSON object of knobs")
        try:
            state.knobs = type(state.knobs).model_validate({**state.knobs.model_dump(), **changes})
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            raise MalformedRequest(
                f"invalid knob {'.'.join(map(str, first['loc']))}: {first['msg']}"
            ) from None
        return web.json_response(state.knobs.model_dump())

    return [web.get(path, show), web.post(path, change)]


def fault_middleware(
    state_key: web.AppKey[Any],
    error: Callable[[int, str], web.StreamResponse],
    operator_prefix: str = "/_sim/",
) -> Middleware:
    """Middleware adding the latency and the failures (503, or the knobs' `fail_status`) the state asks for.

    Operator endpoints (under `operator_prefix`) are never delayed or failed: tests must be able to
    look and turn the knobs back.
    """

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(operator_prefix):
            return await handler(request)
        state: FaultState = request.app[state_key]
        await state.delay()
        if state.take_failure():
            knobs = getattr(state, "knobs", None)
            status = knobs.fail_status if isinstance(knobs, FaultKnobs) else 503
            return error(status, "service temporarily unavailable (simulated)")
        return await handler(request)

    return faults


# -- hostile input: what every strict server refuses before its own checks --------------------------------

# The largest id a Java service takes (a `long`); longer digit strings are not ids, and Python's int()
# would refuse them anyway beyond 4300 digits.
MAX_ID = 2**63 - 1


class MalformedRequest(Exception):
    """A request a strict server cannot read (not JSON, broken multipart): a 4xx with a reason."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


async def read_body(source: web.Request | BodyPartReader, limit: int, what: str = "the body") -> bytes:
    """A request's body (or a multipart part) read to its end, or `MalformedRequest` 413 past `limit`."""
    if isinstance(source, web.Request) and (source.content_length or 0) > limit:
        raise MalformedRequest(f"{what} is larger than {limit} bytes", 413)
    data = bytearray()
    while True:
        # `read(n)` gives what has arrived, not n bytes: read until the end, counting.
        chunk = await (
            source.read_chunk(64 * 1024)
            if isinstance(source, BodyPartReader)
            else source.content.read(64 * 1024)
        )
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > limit:
            raise MalformedRequest(f"{what} is larger than {limit} bytes", 413)


def parse_json(raw: bytes, what: str = "the body") -> Any:
    """The JSON document `raw`; `MalformedRequest` for anything else (not UTF-8, NaN, nested too deep)."""
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        # Jackson, too, refuses documents nested deeper than it will follow (StreamReadConstraints).
        raise MalformedRequest(f"{what} is nested too deeply") from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MalformedRequest(f"{what} is not JSON") from None


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity are Python's extension, not RFC 8259


@contextmanager
def multipart_errors(what: str = "multipart body") -> Iterator[None]:
    """Turn aiohttp's errors on a malformed form body (no boundary, unterminated, huge part header, not
    UTF-8) into `MalformedRequest`; wrap only the reading of the body, so no bug of one's own is hidden."""
    try:
        yield
    except HttpProcessingError as exc:
        raise MalformedRequest(f"malformed {what}: {exc.message or 'unreadable'}"[:300]) from None
    except ValueError as exc:
        raise MalformedRequest(f"malformed {what}: {exc}"[:300]) from None


def parse_id(text: str) -> int | None:
    """A numeric id as a Java service reads one: ASCII digits up to a `long`; else None."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def refusal_middleware(error: Callable[[web.Request, int, str], web.StreamResponse]) -> Middleware:
    """Middleware answering `MalformedRequest`, unknown paths and wrong methods in the simulator's own
    error shape (as the real server does), instead of aiohttp's text pages or a 500."""

    @web.middleware
    async def refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except MalformedRequest as bad:
            return error(request, bad.status, bad.message)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed, web.HTTPRequestEntityTooLarge) as exc:
            message = {
                404: f"no such endpoint: {request.method} {request.path[:200]}",
                405: f"method {request.method[:20]} is not allowed on {request.path[:200]}",
            }.get(exc.status, exc.text or exc.reason)  # 413: "Maximum request body size ... exceeded"
            answer = error(request, exc.status, message)
            if hdrs.ALLOW in exc.headers:
                answer.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
            return answer

    return refusals


def simulator_files(directory: Path) -> Blobs:
    """A content-addressed file store in `directory` for a simulator's own files (`hub.Blobs`)."""
    from hub.blobs import BlobStore

    return BlobStore(directory)
