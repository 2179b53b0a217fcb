"""A simulator of Bauportal.NRW: submits building applications into an authority's XTA mailbox.

``aktenhub simulate bauportal-nrw --option xta_url=http://127.0.0.1:8098``; then
``POST /sim/bauantrag`` with ``{"bauherr": {"vorname": ..., "familienname": ...}, "flurstueck":
{"gemarkung": ..., "flur": ..., "zaehler": ...}, "bezeichnung": ..., "invalid": false}`` submits a
``baugenehmigung.antrag.0200`` with three Anlagen, as the portal does; ``invalid: true`` sends one
without its mandatory ``bauvorhaben`` (for the 1100 answer). ``POST /sim/ruecknahme`` sends a valid
``prozessnachrichten.ruecknahme.1130`` (the withdrawal of an application; ``{"nachricht_uuid": ...,
"referenz": ...}`` name the application, else a new one is made up): a message type the authority does
not process, answered with a 1100. ``POST /sim/nachricht?type=<root element>&schema=<namespace>`` sends
the request body as it is (any XML, valid or not). ``GET /sim/answers`` lists what the authority sent
back to the portal (read from the XTA server's record).

Refusals are JSON ``{"error": ...}``: 400 a body that is not JSON, 404/405 unknown path or method, 413 a
body over 1 MiB, 415 a body not sent as ``application/json``, 422 a description the portal cannot turn
into a message (or a ``type``/``schema`` that is no XML name/URI); 502 the XTA server refused the message
or cannot be reached. Nothing is sent for a refused request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler
from hub_xta.simulator import get_json
from lxml import etree
from pydantic import BaseModel, ConfigDict, ValidationError

from hub import Permanent, Retryable
from hub.simulation import MalformedRequest, parse_json, refusal_middleware
from hub.xml import hardened_parser

from .samples import SampleBauantrag, enqueue_bauantrag, enqueue_message, sample_bauantrag, sample_ruecknahme
from .xbau import RUECKNAHME, XBAU, XBAUK, Address, Behoerde, Flurstueck, MessageIdentity, Person


class PortalOptions(BaseModel):
    """Where the portal delivers, and who it and the authority are."""

    model_config = ConfigDict(extra="forbid")

    xta_url: str = "http://127.0.0.1:8098"
    reader: str = "vbe:053820004"  # the authority's XTA account (its DVDV Behördenkennung)
    author: str = "bau:0500000001"  # the portal's XTA account (its DVDV Behördenkennung)
    authority_kennung: str = "vbe:053820004"
    authority_name: str = "Rhein-Sieg-Kreis, Untere Bauaufsichtsbehörde"
    portal_kennung: str = "bau:0500000001"
    portal_name: str = "Bauportal.NRW"


class _Submission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bauherr: dict[str, str] | None = None
    ort: str | None = None
    flurstueck: dict[str, str] | None = None
    bezeichnung: str | None = None
    invalid: bool = False


class _Withdrawal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nachricht_uuid: str | None = None  # the withdrawn 0200's message UUID
    referenz: str | None = None  # its referenzAntragsservice


OPTIONS = web.AppKey("bauportal_options", PortalOptions)
# An XBau message type is its root element's name (an XML NCName); its schema a namespace URI.
MESSAGE_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,199}$")
NAMESPACE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[!-~]{1,500}$")
Wish = TypeVar("Wish", bound=BaseModel)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def _refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except _Refused as refused:
        return _error(refused.status, refused.message)


@contextmanager
def _xta_gateway() -> Iterator[None]:
    """The XTA server down, or refusing the message: a 502 saying so."""
    try:
        yield
    except (Retryable, Permanent) as exc:
        raise _Refused(
            502, f"the XTA server did not answer as expected: {str(exc)[:300] or type(exc).__name__}"
        ) from None


def make_app(**options: Any) -> web.Application:
    """The portal simulator as an aiohttp application."""
    refusals = refusal_middleware(lambda request, status, message: _error(status, message))
    app = web.Application(middlewares=[refusals, _refusals])
    app[OPTIONS] = PortalOptions.model_validate(options)
    app.router.add_post("/sim/bauantrag", _submit)
    app.router.add_post("/sim/ruecknahme", _withdraw)
    app.router.add_post("/sim/nachricht", _raw)
    app.router.add_get("/sim/answers", _answers)
    return app


async def _wish(request: web.Request, model: type[Wish], what: str) -> Wish:
    """The JSON body as `model` (an empty body: the defaults); `_Refused` with the reason otherwise."""
    raw = await request.read()
    if not raw:
        body: Any = {}
    elif request.content_type != "application/json":
        raise _Refused(415, f"send {what} as application/json")
    else:
        try:
            body = parse_json(raw)
        except MalformedRequest as bad:
            raise _Refused(bad.status, bad.message) from None
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _Refused(422, f"expected {what}: {_summary(exc)}") from None


def _summary(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '(body)'}: {e['msg']}" for e in exc.errors(include_url=False)[:3]
    )


async def _submit(request: web.Request) -> web.Response:
    opts = request.app[OPTIONS]
    wish = await _wish(request, _Submission, "a Bauantrag description")
    try:
        sample, xml = _bauantrag(opts, wish)
    except ValidationError as exc:
        raise _Refused(422, f"expected a Bauantrag description: {_summary(exc)}") from None
    except ValueError as exc:  # lxml: a value no XML document can hold (a control character)
        raise _Refused(422, f"the Bauantrag cannot be written as XML: {exc}") from None
    with _xta_gateway():
        async with aiohttp.ClientSession() as http:
            message_id = await enqueue_bauantrag(
                http, opts.xta_url, opts.reader, sample, author=opts.author, xml=xml
            )
    return web.json_response(
        {"xta_message_id": message_id, "nachricht_uuid": sample.antrag.identity.uuid}, status=201
    )


def _bauantrag(opts: PortalOptions, wish: _Submission) -> tuple[SampleBauantrag, bytes]:
    """The 0200 the portal builds from a description, and its XML (if asked, the invalid variant)."""
    overrides: dict[str, Any] = {}
    if wish.bauherr:
        overrides["antragsteller"] = [
            Person(
                # XBau requires both names and forbids empty elements: a portal form asks for both.
                vorname=wish.bauherr.get("vorname") or "Max",
                familienname=wish.bauherr.get("familienname") or "Mustermann",
                anschrift=Address(ort=wish.ort or "Siegburg"),
            )
        ]
    if wish.flurstueck:
        overrides["flurstuecke"] = [Flurstueck(**wish.flurstueck)]
    if wish.bezeichnung:
        overrides["bezeichnung"] = wish.bezeichnung
    portal = Behoerde(kennung=opts.portal_kennung, name=opts.portal_name)
    authority = Behoerde(kennung=opts.authority_kennung, name=opts.authority_name)
    sample = sample_bauantrag(autor=portal, leser=authority, **overrides)
    xml = sample.xml  # built here, so a value XML cannot hold is refused before anything is sent
    return sample, _without_bauvorhaben(xml) if wish.invalid else xml


async def _withdraw(request: web.Request) -> web.Response:
    opts = request.app[OPTIONS]
    wish = await _wish(request, _Withdrawal, "the withdrawn application")
    portal = Behoerde(kennung=opts.portal_kennung, name=opts.portal_name)
    authority = Behoerde(kennung=opts.authority_kennung, name=opts.authority_name)
    antrag = sample_bauantrag(autor=portal, leser=authority).antrag
    try:
        if wish.nachricht_uuid:
            created = antrag.identity.created
            identity = MessageIdentity(uuid=wish.nachricht_uuid, code="0200", created=created)
            antrag = antrag.model_copy(update={"identity": identity})
        if wish.referenz:
            antrag = antrag.model_copy(update={"referenz": wish.referenz})
    except ValidationError as exc:
        raise _Refused(422, f"not a message UUID: {_summary(exc)}") from None
    xml = sample_ruecknahme(antrag)
    return await _send(opts, xml, RUECKNAHME, XBAUK)


async def _raw(request: web.Request) -> web.Response:
    opts = request.app[OPTIONS]
    message_type = request.query.get("type", "")
    if not message_type:
        raise _Refused(422, "say the message type: ?type=<root element name>")
    if not MESSAGE_TYPE.match(message_type):
        raise _Refused(422, "type must be an XML element name, e.g. baugenehmigung.antrag.0200")
    schema = request.query.get("schema", XBAU)
    if not NAMESPACE.match(schema):
        raise _Refused(422, "schema must be a namespace URI")
    body = await request.read()
    if not body:
        raise _Refused(422, "the body is the message to send: it is empty")
    return await _send(opts, body, message_type, schema)


async def _send(opts: PortalOptions, xml: bytes, message_type: str, schema: str) -> web.Response:
    with _xta_gateway():
        async with aiohttp.ClientSession() as http:
            message_id = await enqueue_message(
                http,
                opts.xta_url,
                opts.reader,
                xml,
                author=opts.author,
                message_type=message_type,
                payload_schema=schema,
            )
    return web.json_response({"xta_message_id": message_id}, status=201)


async def _answers(request: web.Request) -> web.Response:
    opts = request.app[OPTIONS]
    with _xta_gateway():
        async with aiohttp.ClientSession() as http:
            sent = await get_json(http, opts.xta_url, "/_sim/sent")
    return web.json_response(sent)


def _without_bauvorhaben(xml: bytes) -> bytes:
    """The message without its mandatory bauvorhaben: well-formed, invalid against the XSD."""
    root = etree.fromstring(xml, hardened_parser())
    vorhaben = root.find(f"{{{XBAU}}}bauvorhaben")
    if vorhaben is not None:
        root.remove(vorhaben)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
