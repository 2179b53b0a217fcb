"""The BundID IdP simulator over HTTP (``aktenhub simulate bundid``).

- ``GET /metadata``: the IdP's SAML metadata (EntityDescriptor with the signing certificate).
- ``POST /sim/response`` with JSON ``{"person": "U01", "level": 3, "means": "Elster", "audience": ...,
  "destination": ..., "issuer": ..., "fault": "expired"}`` (all optional) → ``{"response": <base64>,
  "assertion_id": ..., "person": ...}``. Faults: see `Fault`.
- ``GET /sim/persons``: the test persons (id, names, bPK2, mailbox handle).
- ``GET|POST /sso?person=U01&level=3&RelayState=...``: the HTTP-POST binding as a browser sees it, an
  auto-submitting form that posts ``SAMLResponse`` to the ACS URL.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.simulation import MalformedRequest, multipart_errors, parse_json, refusal_middleware

from .idp import (
    DEFAULT_ACS_URL,
    DEFAULT_IDP_ENTITY_ID,
    DEFAULT_SP_ENTITY_ID,
    Fault,
    IdpSimulator,
    SimulatorError,
)

IDP = web.AppKey("bundid_idp_simulator", IdpSimulator)
MAX_REQUEST = 64 * 1024


class SimulatorOptions(BaseModel):
    """Options of the simulator (from a test, or YAML-parsed values from the command line)."""

    model_config = ConfigDict(extra="forbid")

    reference: Path | None = Field(None, description="schema directory (default: $AKTENHUB_SCHEMAS)")
    entity_id: str = DEFAULT_IDP_ENTITY_ID
    sp_entity_id: str = DEFAULT_SP_ENTITY_ID
    acs_url: str = DEFAULT_ACS_URL
    validity_seconds: float = Field(300.0, gt=0)
    base_url: str = Field("http://127.0.0.1:8096", description="where the simulator is reached")
    key_file: Path | None = Field(None, description="keep the signing key here (created if missing)")
    metadata_file: Path | None = Field(None, description="also write the metadata to this file")
    sign_response: bool = Field(False, description="sign the Response as well as the Assertion")


class ResponseRequest(BaseModel):
    """The body of ``POST /sim/response``."""

    model_config = ConfigDict(extra="forbid")

    person: str = "U01"
    level: int | str | None = None
    means: str | None = None
    audience: str | None = None
    destination: str | None = None
    issuer: str | None = None
    fault: Fault | None = None


def make_app(**options: Any) -> web.Application:
    """The simulator as an aiohttp application; `app[IDP]` is its `IdpSimulator`."""
    settings = SimulatorOptions.model_validate(options)
    idp = IdpSimulator(
        settings.reference,
        entity_id=settings.entity_id,
        sp_entity_id=settings.sp_entity_id,
        acs_url=settings.acs_url,
        validity_seconds=settings.validity_seconds,
        base_url=settings.base_url,
        key_file=settings.key_file,
        sign_response=settings.sign_response,
    )
    if settings.metadata_file is not None:
        idp.write_metadata(settings.metadata_file)
    refusals = refusal_middleware(lambda request, status, message: _error(status, message))
    app = web.Application(client_max_size=MAX_REQUEST, middlewares=[refusals])
    app[IDP] = idp
    app.router.add_get("/metadata", _metadata)
    app.router.add_post("/sim/response", _response)
    app.router.add_get("/sim/persons", _persons)
    app.router.add_route("GET", "/sso", _sso)
    app.router.add_route("POST", "/sso", _sso)
    return app


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _metadata(request: web.Request) -> web.Response:
    body = request.app[IDP].metadata_xml()
    return web.Response(body=body, content_type="application/samlmetadata+xml", charset="utf-8")


async def _response(request: web.Request) -> web.Response:
    try:
        body = parse_json(await request.read()) if request.can_read_body else {}
        ask = ResponseRequest.model_validate(body)
    except MalformedRequest as bad:
        return _error(bad.status, bad.message)
    except ValidationError as exc:
        return _error(422, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    idp = request.app[IDP]
    try:
        encoded = idp.response(
            ask.person,
            level=ask.level,
            means=ask.means,
            audience=ask.audience,
            destination=ask.destination,
            issuer=ask.issuer,
            fault=ask.fault,
        )
    except SimulatorError as exc:
        return _error(422, str(exc))
    return web.json_response(
        {"response": encoded, "assertion_id": idp.last_assertion_id, "person": ask.person}
    )


async def _persons(request: web.Request) -> web.Response:
    idp = request.app[IDP]
    return web.json_response(
        [
            {
                "id": person_id,
                "given_name": person.get("givenname"),
                "family_name": person.get("surname"),
                "bpk2": person.get("bpk2"),
                "mailbox": idp.mailbox(person_id),
            }
            for person_id, person in idp.persons.items()
        ]
    )


async def _sso(request: web.Request) -> web.Response:
    idp = request.app[IDP]
    query: dict[str, str] = dict(request.query)
    if request.method == "POST":
        with multipart_errors("form body"):
            form = await request.post()
        query.update({k: str(v) for k, v in form.items() if isinstance(v, str)})
    try:
        encoded = idp.response(query.get("person", "U01"), level=query.get("level"), means=query.get("means"))
    except SimulatorError as exc:
        return _error(422, str(exc))
    relay = query.get("RelayState", "")
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>BundID (Simulator)</title></head>"
        "<body onload='document.forms[0].submit()'>"
        f"<form method='post' action='{escape(idp.acs_url)}'>"
        f"<input type='hidden' name='SAMLResponse' value='{escape(encoded)}'>"
        f"<input type='hidden' name='RelayState' value='{escape(relay)}'>"
        "<noscript><button type='submit'>Weiter</button></noscript></form></body></html>"
    )
    return web.Response(text=page, content_type="text/html")
