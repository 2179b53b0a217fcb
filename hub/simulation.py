"""Small pieces every simulator of a remote system needs: Basic credentials, simulated faults.

For plugin authors writing the simulator that ships with their connector (see contrib/plugin-template).
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web
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
