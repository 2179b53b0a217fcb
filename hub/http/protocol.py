"""Answers to requests no hub handler answers: JSON with a reason, logged without a traceback.

aiohttp answers some requests itself, as ``text/plain``: one it cannot parse (bad framing, smuggling
attempts, oversized heads, TLS on the plain port) in its protocol layer, after logging the client's
mistake at ERROR with a traceback; and, from its router and `Expect` handling, no such path, method not
allowed, unknown expectation. Every answer of the hub is JSON with an ``error`` member, and a client's
mistake is not the operator's alarm. So the hub's server wraps the application's handler
(`json_http_errors`, which also sees what middlewares do not: the `Expect` handlers) and uses a
protocol whose `handle_error` says what was wrong in JSON and logs one INFO line (DEBUG for non-HTTP
traffic, which the internet sends all the time). A 500 stays an ERROR with its traceback in the log,
never in the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

log = logging.getLogger(__name__)

MAX_REASON = 200  # characters of the parser's reason in an answer; it may quote the offending bytes


def reason_of(message: str | None, status: int) -> str:
    """The first line of aiohttp's parser message, bounded (it may quote the offending bytes)."""
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    first = first.rstrip(":").strip()
    if len(first) > MAX_REASON:
        first = first[:MAX_REASON] + "…"
    return first or f"HTTP {status}"


Handler = Callable[[BaseRequest], Awaitable[web.StreamResponse]]


def json_http_errors(handler: Handler) -> Handler:
    """`handler`, with aiohttp's own plain-text refusals (`HTTPException` 4xx/5xx) turned into JSON."""

    async def answer(request: BaseRequest) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400 or exc.content_type == "application/json":
                raise
            response = web.json_response({"error": _http_error_text(request, exc)}, status=exc.status)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in exc.headers:
                    response.headers[header] = exc.headers[header]
            return response

    return answer


def _http_error_text(request: BaseRequest, exc: web.HTTPException) -> str:
    path = request.path[:MAX_REASON]
    if exc.status == 404:
        return f"no such endpoint: {path!r}"
    if exc.status == 405:
        return f"method {request.method} is not allowed on {path!r}; allowed: {exc.headers.get('Allow', '')}"
    if exc.status == 413:
        return "request body too large"
    return f"{exc.reason}: {exc.text[:MAX_REASON]}" if exc.text else exc.reason


class JsonErrorProtocol(RequestHandler):
    """aiohttp's connection protocol, answering unparseable requests in JSON."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a request that failed outside a handler; close the connection."""
        if status >= 500:
            self.log_exception("error handling a request", exc_info=exc)
            text = "internal error: the request was not processed"
        else:
            level = logging.DEBUG if isinstance(exc, BadHttpMethod) else logging.INFO
            # The class names the mistake; the parser's message may quote headers (tokens) or the path.
            log.log(level, "malformed HTTP request refused status=%d reason=%s", status, type(exc).__name__)
            text = f"malformed HTTP request: {reason_of(message, status)}"
        if request.writer.output_size > 0:
            raise ConnectionError("the answer was partly sent already; closing the connection")
        response = web.json_response({"error": text}, status=status)
        response.force_close()
        return response


class _JsonErrorServer(Server):
    def __call__(self) -> RequestHandler:
        return JsonErrorProtocol(self, loop=self._loop, **self._kwargs)


class HubRunner(web.AppRunner):
    """An `AppRunner` whose connections answer malformed requests in JSON (`JsonErrorProtocol`)."""

    async def _make_server(self) -> Server:
        plain = await super()._make_server()
        kwargs: dict[str, Any] = dict(plain._kwargs)
        return _JsonErrorServer(
            json_http_errors(plain.request_handler),
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            **kwargs,
        )
