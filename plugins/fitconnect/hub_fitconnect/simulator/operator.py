"""The simulator's operator endpoints under ``/_sim/`` (loopback only; never delayed or failed by faults).

They show what happened (submissions and their event logs, callbacks, notices), move the clock, and
create destinations and clients. Creating a destination hands out the private keys the receiver needs:
the simulator may know them, the real Zustelldienst never does.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from aiohttp import web
from jwcrypto import jwk
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from hub.simulation import MalformedRequest, parse_json, read_body

from .. import jose
from ..wire import SCOPE_SEND_REGION, SCOPE_SUBSCRIBE
from .common import STATE
from .state import Destination, SimState, Submission

MAX_OPERATOR_BODY = 1024**2


class CallbackSetting(BaseModel):
    """A destination's callback: URL and secret (32 to 512 characters)."""

    model_config = ConfigDict(extra="forbid")

    url: str
    secret: Annotated[str, StringConstraints(min_length=32, max_length=512)]


class NewDestination(BaseModel):
    """``POST /_sim/destinations``: everything optional; keys are generated unless public ones are given."""

    model_config = ConfigDict(extra="forbid")

    services: list[dict[str, Any]] | None = None
    metadataVersions: list[str] | None = None
    encryptionPublicKey: dict[str, Any] | None = None
    signingPublicKey: dict[str, Any] | None = None
    callback: CallbackSetting | None = None


class NewClient(BaseModel):
    """``POST /_sim/clients``: a client with these scopes."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[str] = Field(min_length=1)


class ClockChange(BaseModel):
    """``POST /_sim/clock``: move the simulated time forward."""

    model_config = ConfigDict(extra="forbid")

    advance_seconds: float = Field(ge=0)


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    raw = await read_body(request, MAX_OPERATOR_BODY)
    try:
        return model.model_validate(parse_json(raw) if raw.strip() else {})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise MalformedRequest(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", 422) from None


def _public_key(given: dict[str, Any], alg: str, operation: str, min_bits: int) -> jwk.JWK:
    """A registered public key, checked as the real self-service portal checks it."""
    try:
        key = jwk.JWK(**given)
    except (ValueError, TypeError) as exc:
        raise MalformedRequest(f"not a JWK: {exc}", 422) from None
    if key.has_private or given.get("kty") != "RSA" or given.get("alg") != alg:
        raise MalformedRequest(f"expected a public RSA key with alg {alg}", 422)
    if given.get("key_ops") != [operation]:
        raise MalformedRequest(f"expected key_ops [{operation!r}]", 422)
    if given.get("e") != "AQAB" or len(given.get("n", "")) * 6 < min_bits - 6:
        raise MalformedRequest(f"the key must have at least {min_bits} bits and e AQAB", 422)
    jose.key_id(key)
    return key


def check_callback_url(state: SimState, url: str) -> None:
    """https, or http to a loopback host when the simulator allows it (tests, the demo)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and state.options.allow_http_callbacks and parts.hostname:
        try:
            loopback = parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return
    raise MalformedRequest("the callback URL must be https (http only to loopback)", 422)


def create_destination(state: SimState, request: NewDestination) -> tuple[Destination, dict[str, Any]]:
    """Register a destination and its subscriber client; what the receiver needs, private keys included."""
    handed: dict[str, Any] = {}
    min_bits = state.options.min_key_bits
    if request.encryptionPublicKey is not None:
        encryption = _public_key(request.encryptionPublicKey, jose.ENCRYPTION_ALG, "wrapKey", min_bits)
    else:
        private = jose.generate_encryption_key(size=state.options.key_size)
        handed["encryptionKey"] = private.export(as_dict=True)
        encryption = jose.public_key(private)
    if request.signingPublicKey is not None:
        signing = _public_key(request.signingPublicKey, jose.SIGNATURE_ALG, "verify", min_bits)
    else:
        private = jose.generate_signature_key(size=state.options.key_size)
        handed["signatureKey"] = private.export(as_dict=True)
        signing = jose.public_key(private)
    if request.callback is not None:
        check_callback_url(state, request.callback.url)
    destination = state.add_destination(encryption, signing, request.services, request.metadataVersions)
    if request.callback is not None:
        destination.callback_url = request.callback.url
        destination.callback_secret = request.callback.secret
    client = state.add_client({SCOPE_SUBSCRIBE + destination.destination_id})
    destination.private = dict(handed)
    handed |= {
        "destinationId": destination.destination_id,
        "subscriber": {"clientId": client.client_id, "clientSecret": client.secret},
    }
    return destination, handed


async def post_destination(request: web.Request) -> web.Response:
    """Create a destination (201): its id, subscriber client and, if generated, its private keys."""
    state = request.app[STATE]
    _, handed = create_destination(state, await _body(request, NewDestination))
    return web.json_response(handed, status=201)


async def list_destinations(request: web.Request) -> web.Response:
    """The destinations with their callback URL (never the secret)."""
    state = request.app[STATE]
    return web.json_response(
        {
            "destinations": [
                d.public_view() | {"callbackUrl": d.callback_url} for d in state.destinations.values()
            ]
        }
    )


def _destination(request: web.Request) -> Destination:
    found = request.app[STATE].destinations.get(request.match_info["destinationId"])
    if found is None:
        raise web.HTTPNotFound()
    return found


async def put_callback(request: web.Request) -> web.Response:
    """Set a destination's callback URL and secret."""
    destination = _destination(request)
    setting: CallbackSetting = await _body(request, CallbackSetting)
    check_callback_url(request.app[STATE], setting.url)
    destination.callback_url, destination.callback_secret = setting.url, setting.secret
    return web.json_response({"destinationId": destination.destination_id, "callbackUrl": setting.url})


async def destination_secrets(request: web.Request) -> web.Response:
    """What the receiver of a simulator-made destination needs (private keys, subscriber clients)."""
    destination = _destination(request)
    state = request.app[STATE]
    scope = SCOPE_SUBSCRIBE + destination.destination_id
    clients = [
        {"clientId": c.client_id, "clientSecret": c.secret}
        for c in state.clients.values()
        if scope in c.scopes
    ]
    return web.json_response(
        {**destination.private, "subscribers": clients, "callbackSecret": destination.callback_secret}
    )


async def post_client(request: web.Request) -> web.Response:
    """Register an OAuth client with the given scopes (a sender: ``send:region:DE``)."""
    given: NewClient = await _body(request, NewClient)
    client = request.app[STATE].add_client(set(given.scopes))
    return web.json_response({"clientId": client.client_id, "clientSecret": client.secret}, status=201)


def _submission_view(state: SimState, submission: Submission) -> dict[str, Any]:
    events = []
    for token in state.cases[submission.case_id].events:
        claims = jose.unverified_claims(token)
        if claims.get("sub") == f"submission:{submission.submission_id}":
            events.append(claims)
    return {
        **submission.reduced(),
        "status": submission.status.value,
        "created": submission.created.isoformat(),
        "submitted": submission.submitted.isoformat() if submission.submitted else None,
        "fetched": submission.fetched.isoformat() if submission.fetched else None,
        "uploaded": sorted(submission.attachments),
        "authenticationTags": submission.tags.model_dump(exclude_none=True) if submission.tags else None,
        "faults": submission.faults,
        "events": events,
    }


async def list_submissions(request: web.Request) -> web.Response:
    """Every submission with its state and its decoded events."""
    state = request.app[STATE]
    state.tick()
    return web.json_response(
        {"submissions": [_submission_view(state, s) for s in state.submissions.values()]}
    )


async def show_submission(request: web.Request) -> web.Response:
    """One submission with its state and its decoded events."""
    state = request.app[STATE]
    state.tick()
    submission = state.submissions.get(request.match_info["submissionId"])
    if submission is None:
        raise web.HTTPNotFound()
    return web.json_response(_submission_view(state, submission))


async def list_callbacks(request: web.Request) -> web.Response:
    """Every callback attempt: URL, body, attempt, status or error, faults applied."""
    return web.json_response({"callbacks": [vars(c) for c in request.app[STATE].callbacks]})


async def list_notices(request: web.Request) -> web.Response:
    """Notices to technical contacts (submissions unfetched for 3 days)."""
    state = request.app[STATE]
    state.tick()
    return web.json_response({"notices": [vars(n) for n in state.notices]})


async def show_clock(request: web.Request) -> web.Response:
    """The simulated time and its offset from the wall clock."""
    state = request.app[STATE]
    return web.json_response(
        {"now": state.clock.now().isoformat(), "offset_seconds": state.clock.offset.total_seconds()}
    )


async def move_clock(request: web.Request) -> web.Response:
    """Advance the simulated time, then apply the deadlines."""
    state = request.app[STATE]
    change: ClockChange = await _body(request, ClockChange)
    state.clock.offset += timedelta(seconds=change.advance_seconds)
    state.tick()
    return await show_clock(request)


async def show_info(request: web.Request) -> web.Response:
    """Where things are: token endpoint, API versions, destinations, clients (ids and scopes, no secrets)."""
    state = request.app[STATE]
    return web.json_response(
        {
            "tokenPath": "/token",
            "apiPaths": [f"/{v}" for v in state.options.versions],
            "jwksPath": "/.well-known/jwks.json",
            "issuer": state.options.issuer,
            "destinations": list(state.destinations),
            "clients": [
                {"clientId": c.client_id, "scopes": sorted(c.scopes)} for c in state.clients.values()
            ],
        }
    )


async def show_held(request: web.Request) -> web.Response:
    """How many event posts are held (``hold_events_next``)."""
    return web.json_response({"held": request.app[STATE].held})


async def release_held(request: web.Request) -> web.Response:
    """Let the held event posts go on (they are then processed as usual)."""
    state = request.app[STATE]
    held = state.held
    state.release_held()
    return web.json_response({"released": held})


def operator_routes() -> list[web.RouteDef]:
    """The ``/_sim/`` routes (faults are added by `hub.simulation.fault_routes`)."""
    return [
        web.get("/_sim/info", show_info),
        web.get("/_sim/destinations", list_destinations),
        web.post("/_sim/destinations", post_destination),
        web.put("/_sim/destinations/{destinationId}/callback", put_callback),
        web.get("/_sim/destinations/{destinationId}/secrets", destination_secrets),
        web.post("/_sim/clients", post_client),
        web.get("/_sim/submissions", list_submissions),
        web.get("/_sim/submissions/{submissionId}", show_submission),
        web.get("/_sim/callbacks", list_callbacks),
        web.get("/_sim/notices", list_notices),
        web.get("/_sim/held", show_held),
        web.post("/_sim/held/release", release_held),
        web.get("/_sim/clock", show_clock),
        web.post("/_sim/clock", move_clock),
    ]


SENDER_SCOPE = SCOPE_SEND_REGION + "DE"
