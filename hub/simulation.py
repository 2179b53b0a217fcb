"""Small pieces every simulator of a remote system needs: Basic credentials, simulated faults.

For plugin authors writing the simulator that ships with their connector (see contrib/plugin-template).
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, Protocol

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

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


class FaultState(Protocol):
    """A simulator's state that can delay answers and fail the next N requests."""

    async def delay(self) -> None:
        """Wait the configured latency."""

    def take_failure(self) -> bool:
        """Whether this request is one of the next N to fail."""


def fault_middleware(
    state_key: web.AppKey[Any],
    error: Callable[[int, str], web.StreamResponse],
    operator_prefix: str = "/_sim/",
) -> Middleware:
    """Middleware adding the latency and the 503 failures the state's knobs ask for.

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
            return error(503, "service temporarily unavailable (simulated)")
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
