"""The aiohttp application."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import HttpVersion11, web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from hub.answers import UnknownApplication
from hub.blobs import BlobTooLarge
from hub.callbacks import callback_refusal
from hub.connectors import IntakeOutcome
from hub.console.mount import add_console
from hub.errors import BadSubmission, StorageFull
from hub.http.admin import add_admin_routes
from hub.http.auth import TokenAuth
from hub.http.body import ClientGone, bound_body
from hub.http.held import add_held_routes
from hub.http.openapi import ApiRoutes, add_openapi_route
from hub.http.protocol import HubRunner
from hub.journal import JournalUnavailable, LeaseLost

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger(__name__)

HUB: web.AppKey[Hub] = web.AppKey("hub")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def error(status: int, message: str, **extra: Any) -> web.Response:
    """A JSON error answer that says what is wrong."""
    return web.json_response({"error": message, **extra}, status=status)


def refusal(status: int, message: str) -> web.Response:
    """An error answer to a submission, closing the connection.

    The body of a refused request may be unread (a wrong token is refused before reading); closing
    spares the server reading out a large upload only to keep the connection alive.
    """
    response = error(status, message)
    response.force_close()
    return response


def make_app(hub: Hub) -> web.Application:
    """The HTTP application of a hub."""
    app = web.Application(client_max_size=int(hub.config.hub.server.max_body))
    app[HUB] = hub
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    if hub.config.hub.intake.enabled:
        app.router.add_post("/intake/{connector}/{service}", intake, expect_handler=expect_continue)
        for name, source in hub.sources().items():
            for route in source.routes(hub.intake):
                path = f"/intake/{name}/{route.path.lstrip('/')}"
                app.router.add_route(
                    route.method,
                    path,
                    _guarded_route(hub, name, route.handler),
                    expect_handler=expect_continue,
                )
        app.router.add_post("/callback/{connector}", callback)
    else:
        # A worker-only process. A submission sent here by mistake gets an answer to send it again
        # (to another process), never a 404 that a form server or portal would take as final.
        app.router.add_route("*", "/intake/{path:.*}", no_intake)
        app.router.add_route("*", "/callback/{path:.*}", no_intake)
    auth = TokenAuth(hub.config.hub.server.admin_tokens)
    api = ApiRoutes(app, auth)
    add_admin_routes(api, hub)
    add_held_routes(api, hub)
    add_openapi_route(api)
    add_console(app, hub)
    return app


def make_runner(hub: Hub) -> web.AppRunner:
    """The runner serving a hub's application, with its header limits and timeouts."""
    server = hub.config.hub.server
    limit = int(server.max_header)
    return HubRunner(
        make_app(hub),
        access_log=None,
        handle_signals=False,
        max_field_size=limit,
        max_line_size=limit,
        # A compressed request body is refused (415) rather than inflated: no decompression bombs, and
        # the size limits count the bytes a source really reads.
        auto_decompress=False,
        # aiohttp times the wait for a complete request head with this one timer, from the connection's
        # start and after each response: it closes idle keep-alive connections and slow-header clients.
        keepalive_timeout=server.keepalive_timeout,
    )


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue` on an intake route: promise to read the body only if it can be taken.

    The checks that need no body (size, connector, service, route) run first, so a client that waits
    for the promise learns of a refusal before it sends a byte of the body.
    """
    expect = request.headers.get("Expect", "")
    if expect.lower() != "100-continue":
        return refusal(417, f"unsupported Expect: {expect[:100]!r}; only 100-continue is understood")
    hub = request.app[HUB]
    name = request.match_info.get("connector") or request.path.split("/")[2]
    refused = precheck(hub, request, name)
    if refused is None and "service" in request.match_info:
        refused = route_check(hub, name, request.match_info["service"])
    if refused is not None:
        return refused
    if request.version == HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the final answer's head is still to come
    return None


def precheck(hub: Hub, request: web.Request, name: str) -> web.Response | None:
    """The refusal of a submission that is clear from its head alone (size, coding), or None."""
    limit = int(hub.config.hub.server.max_body)
    if request.content_length is not None and request.content_length > limit:
        hub.metrics.intake_rejected.labels(name, "413").inc()
        return refusal(413, f"request body exceeds the limit of {limit} bytes")
    coding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if coding != "identity":
        hub.metrics.intake_rejected.labels(name, "415").inc()
        response = refusal(
            415, "compressed request bodies are not accepted: send it without Content-Encoding"
        )
        response.headers["Accept-Encoding"] = "identity"
        return response
    return None


def route_check(hub: Hub, name: str, service: str) -> web.Response | None:
    """The refusal of a submission to a connector or service the hub does not take, or None."""
    if hub.sources().get(name) is None:
        return refusal(404, f"no source connector named {name!r}")
    if not SERVICE_NAME.match(service):
        return refusal(400, "service name must be 1-100 letters, digits, '.', '_' or '-'")
    if hub.router.route_for(name, service) is None:
        hub.metrics.intake_rejected.labels(name, "404").inc()
        return refusal(404, f"no route takes service {service!r} from {name!r}")
    return None


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness for this process's roles: the journal can be read and written, storage takes writes,
    and (if it runs steps) the workers are running."""
    hub = request.app[HUB]
    roles = hub.config.hub.roles
    problems = []
    try:
        await hub.journal.ping()
    except Exception as exc:
        problems.append(f"journal unreachable: {type(exc).__name__}")
    if "workers" in roles and not hub.bus.alive:
        problems.append("workers are not running")
    full = await hub.storage_problem()
    if full is not None:
        problems.append(f"storage full: {full}")
    if problems:
        return web.json_response(
            {"status": "unavailable", "roles": list(roles), "problems": problems}, status=503
        )
    return web.json_response({"status": "ready", "roles": list(roles), "busy_tasks": hub.bus.busy})


async def no_intake(request: web.Request) -> web.Response:
    """An intake or callback route of a worker-only process: 503, send it again (to another process)."""
    hub = request.app[HUB]
    log.info("submission refused path=%s status=503 reason=intake disabled in this process", request.path)
    response = refusal(
        503,
        "this hub process takes no submissions or answers (intake.enabled: false); send it again to a "
        "process that does",
    )
    response.headers["Retry-After"] = str(hub.config.hub.server.retry_after)
    return response


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition."""
    hub = request.app[HUB]
    hub.metrics.set_certificates(hub.operations.certificates())
    body = hub.metrics.render(await hub.journal.stats(), hub.blobs.syncs)
    # The content type names the text format's version, as scrapers and `promtool` expect.
    return web.Response(
        body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4, "X-Prometheus-Format": "0.0.4"}
    )


async def intake(request: web.Request) -> web.StreamResponse:
    """`POST /intake/{connector}/{service}`: a submission, answered after its durable commit."""
    hub = request.app[HUB]
    name = request.match_info["connector"]
    service = request.match_info["service"]
    refused = route_check(hub, name, service)
    if refused is not None:
        return refused
    source = hub.sources()[name]

    async def take_in() -> web.Response:
        submission = await source.receive(request, service)
        return intake_answer(submission.application.external_id, await hub.intake(submission))

    return await guarded_intake(hub, request, name, take_in)


async def callback(request: web.Request) -> web.StreamResponse:
    """`POST /callback/{connector}`: a Fachverfahren's answers, 200 only after they are stored.

    Authenticated by the sink's `callback_auth()` (HMAC signature with timestamp, or token); the body is
    bounded like an intake's. Each answer goes through the return channel; an answer naming no
    application of this connector is refused with 422 (answers of the same callback stored before it
    stay stored: sending the callback again repeats them harmlessly).
    """
    hub = request.app[HUB]
    name = request.match_info["connector"]
    sink = hub.sinks().get(name)
    auth = sink.callback_auth() if sink is not None else None
    if sink is None or auth is None:
        return refusal(404, f"no connector named {name!r} takes callbacks")

    async def take_in() -> web.Response:
        assert sink is not None and auth is not None
        body = await request.content.read()
        refused = callback_refusal(auth, body, request.headers, time.time())
        if refused is not None:
            hub.metrics.callbacks_refused.labels(name, "401").inc()
            log.warning("callback refused connector=%s status=401 reason=%s", name, refused)
            return refusal(401, f"callback not authenticated: {refused}")
        stored: list[dict[str, Any]] = []
        for answer in await sink.callback_answers(body, request.headers):
            try:
                outcome = await sink.context.answer(answer)  # the way every transport hands answers in
            except UnknownApplication as exc:
                hub.metrics.callbacks_refused.labels(name, "422").inc()
                log.info("callback refused connector=%s status=422 answer=%s", name, answer.answer_id)
                return error(422, str(exc), answer_id=answer.answer_id, stored=stored)
            stored.append({"answer_id": answer.answer_id, **outcome.model_dump(mode="json")})
        return web.json_response({"answers": stored})

    return await guarded_intake(hub, request, name, take_in)


def intake_answer(external_id: str, outcome: IntakeOutcome) -> web.Response:
    """The answer to a stored (202), duplicate (200) or changed and refused (409) submission."""
    if outcome.conflict:
        return error(
            409,
            f"submission {external_id!r} was already received with different content (application "
            f"{outcome.application_id}); the changed re-send was not taken in and the conflict is "
            "recorded on that application's timeline",
            application_id=outcome.application_id,
            conflict=True,
        )
    body: dict[str, Any] = {"application_id": outcome.application_id, "duplicate": outcome.duplicate}
    if outcome.revision > 1:
        body["revision"] = outcome.revision
    return web.json_response(body, status=200 if outcome.duplicate else 202)


async def guarded_intake(
    hub: Hub, request: web.Request, name: str, take_in: Callable[[], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Run a submission's intake under the core's guards, answering what goes wrong.

    The body the source reads is bounded (`server.max_body` on the bytes read, `server.body_timeout`
    per read); the blobs written meanwhile go again unless the stored application keeps them; a full
    disk is a 503 with Retry-After; a client gone mid-upload costs one WARNING line.
    """
    server = hub.config.hub.server
    refused = precheck(hub, request, name)
    if refused is not None:
        return refused
    bound_body(request, int(server.max_body), server.body_timeout)
    with hub.holding():
        try:
            return await take_in()
        except BadSubmission as exc:
            hub.metrics.intake_rejected.labels(name, str(exc.status)).inc()
            log.info(
                "submission refused source=%s path=%s status=%d reason=%s",
                name,
                request.path,
                exc.status,
                exc.message,
            )
            return refusal(exc.status, exc.message)
        except BlobTooLarge as exc:
            hub.metrics.intake_rejected.labels(name, "413").inc()
            return refusal(413, str(exc))
        except ClientGone as exc:
            log.warning(
                "client disconnected mid-upload source=%s path=%s bytes=%d", name, request.path, exc.received
            )
            return refusal(400, str(exc))  # nobody reads it: the connection is gone
        except StorageFull as exc:
            hub.storage_full(exc)
            response = refusal(503, "storage is full; send the submission again later")
            response.headers["Retry-After"] = str(server.retry_after)
            return response
        except (LeaseLost, JournalUnavailable, OSError, RuntimeError) as exc:
            log.error("intake could not be stored source=%s error=%s", name, type(exc).__name__)
            return refusal(503, "the submission could not be stored; send it again later")


def _guarded_route(
    hub: Hub, name: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A source's own webhook route, under the same guards as the standard intake route."""

    async def route(request: web.Request) -> web.StreamResponse:
        return await guarded_intake(hub, request, name, lambda: handler(request))

    return route
