"""A simulated Fachverfahren with an OpenAPI-described JSON API (`fachverfahren.yaml` beside this file).

Strict as a real one: every API request is validated against the description with openapi-core
(security, parameters, body; 400 with the misfits), the bearer token must be one the OAuth2 token
endpoint issued (`POST /oauth/token`, client credentials, client_secret_basic or _post), and the
`Idempotency-Key` of a repeated request returns the same Vorgang (another body under a used key: 422).

Operator endpoints (never delayed or failed):

- ``POST /_sim/vorgaenge/{id}/status`` ``{"status": "BESCHIEDEN", "message": "...", "bescheid": true}``
  changes the Vorgang's status and sends the callback (HMAC-signed: ``X-Timestamp``, ``X-Signature:
  sha256=hex(HMAC-SHA256(secret, "<timestamp>.<body>"))``) to ``callback_url``; the answer tells the
  hub's HTTP status. The same event sent again (``"event_id"``) is a repeat, as real systems retry.
  Without a callback URL the event only waits for polling clients: ``GET /api/v1/antworten`` lists
  the answers not yet acknowledged, ``DELETE /api/v1/antworten/{id}`` acknowledges one.
- ``GET /_sim/vorgaenge``: every Vorgang; ``POST /_sim/faults`` ``{"fail_next": N, "latency_seconds": s}``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import BodyPartReader, web
from openapi_core.contrib.aiohttp import AIOHTTPOpenAPIWebRequest
from pydantic import Field, SecretStr

from hub import CallbackAuth, sign_callback
from hub.simulation import (
    FaultKnobs,
    SimulatedFaults,
    basic_credentials,
    fault_middleware,
    fault_routes,
    multipart_errors,
    parse_json,
    refusal_middleware,
)

from .openapi import InvalidRequest, OpenApiDocument

SPEC = Path(__file__).with_name("fachverfahren.yaml")
OPERATOR_PREFIX = "/_sim/"
API = "/api/v1/vorgaenge"
DEFAULT_CLIENTS = {"hub": "simulator-client-secret-1"}
TOKEN_SECONDS = 300
STATUSES = ("EINGEGANGEN", "IN_BEARBEITUNG", "NACHFORDERUNG", "BESCHIEDEN", "ABGELEHNT", "IMPORTFEHLER")
# A minimal valid PDF: the decision the simulator issues.
DECISION_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


class Knobs(FaultKnobs):
    """Faults an operator turns on through ``POST /_sim/faults`` (`FaultKnobs` and one of its own)."""

    fail_uploads: int = Field(0, ge=0, description="answer the next N document uploads with 503")


@dataclass
class Vorgang:
    """A case in the simulated Fachverfahren."""

    id: str
    aktenzeichen: str
    key: str
    request: dict[str, Any]
    status: str = "EINGEGANGEN"
    decision: bytes | None = None
    documents: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (name, sha256)
    events: list[str] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "aktenzeichen": self.aktenzeichen,
            "status": self.status,
            "aktenhubId": self.request["aktenhubId"],
        }


class RestFvState(SimulatedFaults[Knobs]):
    """What the simulated Fachverfahren holds: Vorgänge, issued tokens, callbacks sent, knobs."""

    def __init__(
        self,
        clients: dict[str, str],
        knobs: Knobs,
        callback_url: str | None,
        callback_secret: str | None,
        spec: Path = SPEC,
    ) -> None:
        self.api = OpenApiDocument(spec, None)
        self.clients = clients
        self.knobs = knobs
        self.callback_url = callback_url
        self.callback_secret = callback_secret
        self.cases: dict[str, Vorgang] = {}
        self.by_key: dict[str, Vorgang] = {}
        self.tokens: dict[str, float] = {}  # access token -> expiry (monotonic)
        self.token_requests = 0
        self.create_requests = 0
        self.upload_requests = 0
        self.pending: dict[str, dict[str, Any]] = {}  # answers not yet acknowledged, by event id
        self.acknowledged: Counter[str] = Counter()  # event id -> acknowledgements by a polling client
        self.callbacks: list[tuple[int, dict[str, Any]]] = []  # (hub's status, body) per callback sent
        self._ids = itertools.count(1)
        self._events = itertools.count(1)
        self.session: aiohttp.ClientSession | None = None

    def create(self, key: str, request: dict[str, Any]) -> tuple[Vorgang, bool]:
        """The Vorgang for this idempotency key: a new one, or (with the same body) the earlier one."""
        known = self.by_key.get(key)
        if known is not None:
            if known.request != request:
                raise InvalidRequest("the Idempotency-Key was used before with another body")
            return known, False
        n = next(self._ids)
        case = Vorgang(
            id=f"V-{n:06d}", aktenzeichen=f"ABH-{time.gmtime().tm_year}-{n:05d}", key=key, request=request
        )
        self.cases[case.id] = case
        self.by_key[key] = case
        return case, True

    def event_id(self) -> str:
        """A new callback event id."""
        return f"evt-{next(self._events):06d}"


STATE = web.AppKey("rest_fv_state", RestFvState)


def _problem(status: int, message: str) -> web.Response:
    return web.json_response(
        {"title": message, "status": status}, status=status, content_type="application/problem+json"
    )


def _refusal(request: web.Request, status: int, message: str) -> web.StreamResponse:
    return _problem(status, message)


async def _token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.token_requests += 1
    if request.content_type != "application/x-www-form-urlencoded":
        return web.json_response({"error": "invalid_request"}, status=400)
    form = await request.post()
    if form.get("grant_type") != "client_credentials":
        return web.json_response({"error": "unsupported_grant_type"}, status=400)
    credentials = basic_credentials(request.headers.get("Authorization", ""))
    if credentials is None:
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
    else:
        client_id, secret = credentials
    expected = state.clients.get(client_id)
    if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
        return web.json_response({"error": "invalid_client"}, status=401)
    token = secrets.token_urlsafe(24)
    state.tokens[token] = time.monotonic() + TOKEN_SECONDS
    return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_SECONDS})


async def _validated(request: web.Request, *, streamed: bool = False) -> bytes:
    """The body of an API request that fits the description and carries a token we issued.

    `streamed`: an upload, read by the handler as a stream (only its parameters are checked here).
    """
    state = request.app[STATE]
    body = b"" if streamed else await request.read()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expiry = state.tokens.get(token) if scheme.lower() == "bearer" else None
    if expiry is None or expiry < time.monotonic():
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "invalid_token", "title": "no valid access token"}),
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    try:
        # The token was checked above: openapi-core knows no OAuth2 security scheme.
        state.api.check(AIOHTTPOpenAPIWebRequest(request, body=body or None), body=not streamed)
    except InvalidRequest as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"title": "request does not fit the API", "detail": str(exc)[:2000]}),
            content_type="application/problem+json",
        ) from None
    return body


async def _create(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await _validated(request)
    state.create_requests += 1
    try:
        case, new = state.create(request.headers["Idempotency-Key"], parse_json(body))
    except InvalidRequest as exc:
        return _problem(422, str(exc))
    headers = {} if new else {"Idempotent-Replayed": "true"}
    return web.json_response(case.view(), status=201 if new else 200, headers=headers)


async def _upload(request: web.Request) -> web.Response:
    state = request.app[STATE]
    await _validated(request, streamed=True)
    case = state.cases.get(request.match_info["vorgangId"])
    if case is None:
        return _problem(404, "no such Vorgang")
    state.upload_requests += 1
    if state.knobs.fail_uploads > 0:
        state.knobs.fail_uploads -= 1
        return _problem(503, "document store temporarily unavailable (simulated)")
    key = request.headers["Idempotency-Key"]
    if key in case.documents:
        return web.json_response({"name": case.documents[key][0]}, status=200)
    if request.content_type != "multipart/form-data":
        return _problem(415, "multipart/form-data expected")
    with multipart_errors():
        reader = await request.multipart()
        part = await reader.next()
        if not isinstance(part, BodyPartReader) or part.name != "datei" or not part.filename:
            return _problem(400, "expected the file in the form field 'datei'")
        digest = hashlib.sha256()
        while chunk := await part.read_chunk(64 * 1024):
            digest.update(chunk)
    case.documents[key] = (part.filename, digest.hexdigest())
    return web.json_response({"name": part.filename}, status=201)


async def _get(request: web.Request) -> web.Response:
    state = request.app[STATE]
    await _validated(request)
    case = state.cases.get(request.match_info["vorgangId"])
    if case is None:
        return _problem(404, "no such Vorgang")
    return web.json_response(case.view())


async def _decision(request: web.Request) -> web.Response:
    state = request.app[STATE]
    await _validated(request)
    case = state.cases.get(request.match_info["vorgangId"])
    if case is None or case.decision is None:
        return _problem(404, "no decision for this Vorgang")
    return web.Response(body=case.decision, content_type="application/pdf")


async def _sim_status(request: web.Request) -> web.Response:
    """Change a Vorgang's status and tell the hub by a signed callback."""
    state = request.app[STATE]
    case = state.cases.get(request.match_info["id"])
    if case is None:
        return _problem(404, "no such Vorgang")
    order = parse_json(await request.read())
    status = order.get("status") if isinstance(order, dict) else None
    if status not in STATUSES:
        return _problem(400, f"status must be one of {', '.join(STATUSES)}")
    case.status = status
    event: dict[str, Any] = {
        "eventId": order.get("event_id") or state.event_id(),
        "caseId": case.id,
        "aktenzeichen": case.aktenzeichen,
        "status": status,
    }
    if order.get("message"):
        event["message"] = str(order["message"])
    if order.get("bescheid"):
        case.decision = DECISION_PDF
        origin = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        event["decision"] = {
            "name": f"Bescheid-{case.aktenzeichen}.pdf",
            "mediaType": "application/pdf",
            "url": f"{origin}{API}/{case.id}/bescheid",
        }
    case.events.append(event["eventId"])
    state.pending[event["eventId"]] = event  # for polling clients, until acknowledged
    if state.callback_url is None or state.callback_secret is None:
        return web.json_response({"event": event, "hub_status": None, "hub_answer": None})
    hub_status, answer = await _send_callback(state, event)
    return web.json_response({"event": event, "hub_status": hub_status, "hub_answer": answer})


async def _list_answers(request: web.Request) -> web.Response:
    state = request.app[STATE]
    await _validated(request)
    return web.json_response({"antworten": list(state.pending.values())})


async def _ack_answer(request: web.Request) -> web.Response:
    state = request.app[STATE]
    await _validated(request)
    if state.pending.pop(request.match_info["antwortId"], None) is None:
        return _problem(404, "no such pending answer")
    state.acknowledged[request.match_info["antwortId"]] += 1
    return web.Response(status=204)


async def _send_callback(state: RestFvState, event: dict[str, Any]) -> tuple[int, str]:
    assert state.callback_url is not None and state.callback_secret is not None
    body = json.dumps(event).encode()
    auth = CallbackAuth(secret=SecretStr(state.callback_secret))
    headers = {"Content-Type": "application/json", **sign_callback(auth, body, time.time())}
    if state.session is None:
        state.session = aiohttp.ClientSession()
    try:
        async with state.session.post(state.callback_url, data=body, headers=headers) as response:
            status, text = response.status, (await response.text())[:500]
    except aiohttp.ClientError as exc:
        status, text = 0, f"{type(exc).__name__}: {exc}"
    state.callbacks.append((status, event))
    return status, text


async def _sim_cases(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        [{**c.view(), "request": c.request, "events": c.events} for c in state.cases.values()]
    )


async def _shutdown(app: web.Application) -> None:
    state = app[STATE]
    state.release()
    if state.session is not None:
        await state.session.close()


def make_app(
    clients: dict[str, str] | None = None,
    callback_url: str | None = None,
    callback_secret: str | None = None,
    spec: str | Path = SPEC,
    **knobs: Any,
) -> web.Application:
    """The simulated Fachverfahren: API under ``/api/v1``, token endpoint ``/oauth/token``.

    `spec`: another description of the same paths (a profile's own request schema, e.g. hub_k3's); its
    request bodies must carry ``aktenhubId``, as the simulator's views name the application by it.
    """
    state = RestFvState(
        dict(clients or DEFAULT_CLIENTS),
        Knobs.model_validate(knobs),
        callback_url,
        callback_secret,
        Path(spec),
    )
    app = web.Application(
        middlewares=[fault_middleware(STATE, _problem, OPERATOR_PREFIX), refusal_middleware(_refusal)],
        client_max_size=1024**2,
    )
    app[STATE] = state
    app.on_shutdown.append(_shutdown)
    r = app.router
    r.add_post("/oauth/token", _token)
    r.add_post(API, _create)
    r.add_get(API + "/{vorgangId}", _get)
    r.add_post(API + "/{vorgangId}/dokumente", _upload)
    r.add_get(API + "/{vorgangId}/bescheid", _decision)
    r.add_get("/api/v1/antworten", _list_answers)
    r.add_delete("/api/v1/antworten/{antwortId}", _ack_answer)
    r.add_post("/_sim/vorgaenge/{id}/status", _sim_status)
    r.add_get("/_sim/vorgaenge", _sim_cases)
    app.router.add_routes(fault_routes(STATE, _problem))
    return app


def decision_sha256() -> str:
    """The sha256 of the decision PDF the simulator issues (for tests)."""
    return hashlib.sha256(DECISION_PDF).hexdigest()


__all__ = ["API", "DEFAULT_CLIENTS", "SPEC", "STATE", "RestFvState", "Vorgang", "decision_sha256", "make_app"]
