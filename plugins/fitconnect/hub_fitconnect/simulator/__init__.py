"""A simulator of FIT-Connect: OAuth token endpoint, Submission API (``/v1``, ``/v2``), callbacks, deadlines.

As strict as the real Zustelldienst, so that a sender or subscriber written against the public OpenAPI
(Submission API 1.1.3) works against it unchanged:

- ``POST /token``: client credentials (``client_secret_basic`` or ``client_secret_post``); 401
  ``invalid_client``, 400 ``invalid_scope``/``unsupported_grant_type``. Scopes: receivers
  ``subscribe:destination:<id>``; senders ``send:region:DE...`` or ``send:destination:<id>``. A missing or
  expired token is 401, a token without the scope 403.
- Sender side: ``POST /{v}/submissions`` (announce: destination, service type, announced attachment ids),
  ``PUT /{v}/submissions/{id}/attachments/{aid}`` (``application/jose``: 204; unannounced 422, not a JWE
  422, other content type 415, too large 413), ``PUT /{v}/submissions/{id}`` (encrypted metadata and data:
  202; an announced attachment missing 422). Submitting writes the Zustelldienst's signed
  ``submit-submission`` event with the authentication tags (key at ``/.well-known/jwks.json``) and calls
  the destination's callback.
- Receiver side: ``GET /{v}/submissions?destinationId=&limit=&offset=`` (limit 1..500),
  ``GET /{v}/submissions/{id}``, ``.../attachments/{aid}``, ``GET|POST /{v}/cases/{caseId}/events``.
  An accept or reject is a SET verified against the destination's registered signature key, ``iss`` =
  the destination, ``sub``/``txn`` naming the submission and case, an accept's tags equal to the real
  ones: 204; else 422; a second accept, or any event after accept/reject, 409. After accept/reject the
  submission leaves the pickup list and its content is deleted (404).
- ``GET /{v}/destinations/{id}`` and ``/keys/{kid}`` (public JWKs with ``key_ops`` and ``x5c``).
- Deadlines on a clock the operator moves: a notice after 3 days unfetched, the Zustelldienst's own
  reject after 14 days in ``submitted``.

Errors are RFC 7807 ``application/problem+json``. Operator endpoints live under ``/_sim/`` (see
`operator`); faults (``/_sim/faults``, or options): ``fail_next``/``fail_status``/``latency_seconds``,
``wrong_kid_next``, ``corrupt_ciphertext_next``, ``metadata_hash_mismatch_next``, ``stale_callback_next``,
``wrong_callback_mac_next``, ``expire_tokens``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from hub.simulation import fault_middleware, fault_routes, refusal_middleware

from .api import STATE, api_routes, jwks, token_endpoint
from .callbacks import callback_context
from .operator import SENDER_SCOPE, NewDestination, create_destination, operator_routes
from .problems import Refused, problem
from .state import SimState, SimulatorOptions

__all__ = ["STATE", "SimState", "SimulatorOptions", "make_app"]


@web.middleware
async def _refused(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as refused:
        return problem(refused.status, refused.slug, refused.detail)


def _error(request: web.Request, status: int, message: str) -> web.Response:
    return problem(status, "invalid-request" if status < 500 else "server-error", message)


def _write_secret(directory: Path, name: str, content: str) -> Path:
    path = directory / name
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def _start_defaults(state: SimState) -> list[str]:
    """The default destination and sender; lines saying where a receiver and a sender find what they need."""
    destination, handed = create_destination(state, NewDestination())
    sender = state.add_client({SENDER_SCOPE})
    subscriber = handed["subscriber"]
    lines = [
        "token endpoint:  <this server>/token",
        f"Submission API:  {', '.join(f'<this server>/{v}' for v in state.options.versions)}",
        f"destination:     {destination.destination_id}",
        f"subscriber:      client id {subscriber['clientId']}",
        f"sender:          client id {sender.client_id} (scope {SENDER_SCOPE})",
    ]
    if state.options.secrets_dir:
        directory = Path(state.options.secrets_dir)
        directory.mkdir(parents=True, exist_ok=True)
        written = [
            _write_secret(directory, "encryption-key.jwk.json", json.dumps(handed["encryptionKey"])),
            _write_secret(directory, "signature-key.jwk.json", json.dumps(handed["signatureKey"])),
            _write_secret(directory, "subscriber-client-secret", subscriber["clientSecret"]),
            _write_secret(directory, "sender-client-secret", sender.secret),
            # The ids (no secrets), so that a hub configuration can be written before anyone asks.
            _write_secret(directory, "destination-id", destination.destination_id),
            _write_secret(directory, "subscriber-client-id", subscriber["clientId"]),
            _write_secret(directory, "sender-client-id", sender.client_id),
        ]
        lines.append("secrets written: " + ", ".join(str(p) for p in written))
    else:
        lines.append(
            f"secrets:         GET /_sim/destinations/{destination.destination_id}/secrets "
            "(or start with --option secrets_dir=DIR)"
        )
    return lines


def make_app(**options: Any) -> web.Application:
    """The simulator as an aiohttp application; `options` as in `SimulatorOptions` (plus ``announce``)."""
    announce = bool(options.pop("announce", False))
    try:
        settings = SimulatorOptions.model_validate(options)
    except ValidationError as exc:
        raise ValueError(f"FIT-Connect simulator options: {exc}") from None
    state = SimState(settings)
    app = web.Application(
        middlewares=[
            fault_middleware(STATE, lambda status, message: problem(status, "server-error", message)),
            refusal_middleware(_error),
            _refused,
        ],
        client_max_size=max(settings.max_json_bytes, settings.max_attachment_bytes) + 1024,
    )
    app[STATE] = state
    app.router.add_post("/token", token_endpoint)
    app.router.add_get("/.well-known/jwks.json", jwks)
    for version in settings.versions:
        app.router.add_routes(api_routes(version))
    app.router.add_routes(operator_routes())
    app.router.add_routes(fault_routes(STATE))
    app.cleanup_ctx.append(callback_context)
    lines = _start_defaults(state) if settings.default_destination else []

    async def _announce(app: web.Application) -> None:
        if announce:
            print("\n".join(lines), flush=True)  # the operator's console; ids only, no secrets

    async def _release(app: web.Application) -> None:
        state.release()  # delayed and held requests end before the server waits for them

    app.on_startup.append(_announce)
    app.on_shutdown.append(_release)
    return app
