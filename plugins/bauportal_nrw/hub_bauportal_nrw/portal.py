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
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web
from lxml import etree
from pydantic import BaseModel, ConfigDict, ValidationError

from hub.xml import hardened_parser

from .samples import enqueue_bauantrag, enqueue_message, sample_bauantrag, sample_ruecknahme
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


def make_app(**options: Any) -> web.Application:
    """The portal simulator as an aiohttp application."""
    app = web.Application()
    app[OPTIONS] = PortalOptions.model_validate(options)
    app.router.add_post("/sim/bauantrag", _submit)
    app.router.add_post("/sim/ruecknahme", _withdraw)
    app.router.add_post("/sim/nachricht", _raw)
    app.router.add_get("/sim/answers", _answers)
    return app


async def _submit(request: web.Request) -> web.Response:
    opts = request.app[OPTIONS]
    try:
        wish = _Submission.model_validate(await request.json())
    except (ValidationError, ValueError) as exc:
        return web.json_response({"error": f"expected a Bauantrag description: {exc}"}, status=422)
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
    xml = _without_bauvorhaben(sample.xml) if wish.invalid else None
    async with aiohttp.ClientSession() as http:
        message_id = await enqueue_bauantrag(
            http, opts.xta_url, opts.reader, sample, author=opts.author, xml=xml
        )
    return web.json_response(
        {"xta_message_id": message_id, "nachricht_uuid": sample.antrag.identity.uuid}, status=201
    )


async def _withdraw(request: web.Request) -> web.Response:
    opts = request.app[OPTIONS]
    try:
        wish = _Withdrawal.model_validate(await request.json() if request.can_read_body else {})
    except (ValidationError, ValueError) as exc:
        return web.json_response({"error": f"expected the withdrawn application: {exc}"}, status=422)
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
        return web.json_response({"error": f"not a message UUID: {exc}"}, status=422)
    xml = sample_ruecknahme(antrag)
    return await _send(opts, xml, RUECKNAHME, XBAUK)


async def _raw(request: web.Request) -> web.Response:
    opts = request.app[OPTIONS]
    message_type = request.query.get("type", "")
    if not message_type:
        return web.json_response({"error": "say the message type: ?type=<root element name>"}, status=422)
    return await _send(opts, await request.read(), message_type, request.query.get("schema", XBAU))


async def _send(opts: PortalOptions, xml: bytes, message_type: str, schema: str) -> web.Response:
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
    async with aiohttp.ClientSession() as http, http.get(f"{opts.xta_url}/_sim/sent") as resp:
        sent = await resp.json()
    return web.json_response(sent)


def _without_bauvorhaben(xml: bytes) -> bytes:
    """The message without its mandatory bauvorhaben: well-formed, invalid against the XSD."""
    root = etree.fromstring(xml, hardened_parser())
    vorhaben = root.find(f"{{{XBAU}}}bauvorhaben")
    if vorhaben is not None:
        root.remove(vorhaben)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
