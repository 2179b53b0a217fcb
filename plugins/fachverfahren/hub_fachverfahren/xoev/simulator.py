"""A Fachverfahren that takes XÖV messages from its XTA mailbox and answers over XTA.

It reads its own mailbox on an XTA server (the XTA simulator, `aktenhub simulate xta`), validates every
message against the XSD of the message type it takes (from the schema directory), opens a case per
reference (XPath, by default the xdomea ProzessID) and answers the sender with a receipt carrying the
reference and its case number; a message that does not meet the schema is refused (recorded, closed;
answered with the error only with ``answer_refusals``, as a Fachverfahren that sends error answers
does). Later a clerk "decides": another answer, with the decision as a PDF attachment. Answers are
rendered from a Jinja2 template (default: an xdomea ``Information.EmpfangBestaetigen.0102`` with the
case number and status in ``Hinweis``), so another XÖV profile brings its own; a profile with its own
validation subclasses `XoevFachverfahren` and hands it to `make_app` as `fachverfahren`.

Control endpoints drive it deterministically: ``POST /control/receive`` (read the mailbox once),
``POST /control/decide`` (JSON ``{"reference", "status", "pdf"}``), ``GET /control/cases``.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from hub_xta import OutgoingContent, OutgoingMessage, PartyId, XtaClient, XtaMessage, XtaSettings
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from lxml import etree

from hub import Blobs, Simulator, require_schema_directory, utcnow, xml_schema
from hub.simulation import MalformedRequest, simulator_files
from hub.xml import UnsafeXml, parse_xml

from ..casework import decision_pdf, read_decision

XDOMEA = "urn:xoev-de:xdomea:schema:3.0.0"
INFORMATION_SCHEMA = "xdomea/3.0.0/xsd/xdomea-Nachrichten-InformationAustauschen.xsd"
RECEIPT_TYPE = "Information.EmpfangBestaetigen.0102"
MAX_MESSAGE = 64 * 1024 * 1024

# The Fachverfahren's answer: an xdomea 0102 (valid against its XSD), the reference as ProzessID and
# "<case number> <status>" in Hinweis, the only free text field of its Kopf.
RECEIPT_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<xdomea:Information.EmpfangBestaetigen.0102 xmlns:xdomea="urn:xoev-de:xdomea:schema:3.0.0">
  <xdomea:Kopf>
    <xdomea:ProzessID>{{ reference }}</xdomea:ProzessID>
    <xdomea:Nachrichtentyp listURI="urn:xoev-de:xdomea:codeliste:nachrichtentyp" listVersionID="2.0">
      <code>0102</code>
    </xdomea:Nachrichtentyp>
    <xdomea:Erstellungszeitpunkt>{{ created }}</xdomea:Erstellungszeitpunkt>
    <xdomea:Absender><xdomea:Behoerdenkennung>
      <xdomea:Behoerdenschluessel listURI="urn:de:xoev:behoerde" listVersionID="1"><code>{{ account }}</code>
      </xdomea:Behoerdenschluessel>
    </xdomea:Behoerdenkennung></xdomea:Absender>
    <xdomea:Empfaenger><xdomea:Behoerdenkennung>
      <xdomea:Behoerdenschluessel listURI="urn:de:xoev:behoerde" listVersionID="1"><code>{{ reader }}</code>
      </xdomea:Behoerdenschluessel>
    </xdomea:Behoerdenkennung></xdomea:Empfaenger>
    <xdomea:SendendesSystem><xdomea:Produktname>Fachverfahren-Simulator</xdomea:Produktname></xdomea:SendendesSystem>
    <xdomea:Hinweis>{{ case_number }} {{ status }}</xdomea:Hinweis>
  </xdomea:Kopf>
</xdomea:Information.EmpfangBestaetigen.0102>
"""


class Refused(ValueError):
    """A message the Fachverfahren does not take, with its reference when that could be read."""

    def __init__(self, reason: str, reference: str | None = None) -> None:
        super().__init__(reason)
        self.reference = reference


@dataclass
class XoevCase:
    """A case the simulated Fachverfahren opened for a message."""

    reference: str
    case_number: str
    author: str
    status: str = "eingegangen"


@dataclass
class XoevFachverfahren:
    """The state and behaviour of the simulated Fachverfahren (options as `make_app` takes them)."""

    client: XtaClient
    blobs: Blobs
    schemas: Path
    schema: str = INFORMATION_SCHEMA  # the XSD of the messages it takes, relative to `schemas`
    reference: str = "/*/x:Kopf/x:ProzessID"
    namespaces: dict[str, str] = field(default_factory=lambda: {"x": XDOMEA})
    answer_template: str = RECEIPT_TEMPLATE
    answer_type: str = RECEIPT_TYPE
    answer_namespace: str = XDOMEA
    service: str = XDOMEA
    business_scenario: str = "XDOMEA_DATA"
    prefix: str = "XV"
    answer_refusals: bool = False  # answer a refused message (whose reference is readable) with its error
    refusal_status: str = "abgelehnt"
    cases: dict[str, XoevCase] = field(default_factory=dict)
    refused: list[dict[str, str]] = field(default_factory=list)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # One reader of the mailbox at a time, as the real system: two at once would both take a message.
    _reading: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def receive(self) -> dict[str, list[str]]:
        """Read the mailbox once: validate, open a case and answer, or refuse; close each message."""
        async with self._reading:
            return await self._receive()

    async def _receive(self) -> dict[str, list[str]]:
        opened: list[str] = []
        refused: list[str] = []
        for metadata in await self.client.list_messages():
            message = await self.client.get_message(metadata.message_id)
            try:
                reference = await self._read(message)
            except Refused as exc:
                self.refused.append({"message_id": metadata.message_id, "error": str(exc)})
                refused.append(metadata.message_id)
                if self.answer_refusals and exc.reference is not None:
                    error = XoevCase(exc.reference, "", metadata.author.identifier, self.refusal_status)
                    await self._answer(error, pdf=False, error=str(exc))
            else:
                if reference not in self.cases:  # the same message again opens nothing new
                    number = f"{self.prefix}-{next(self._numbers):05d}"
                    self.cases[reference] = XoevCase(reference, number, metadata.author.identifier)
                    await self._answer(self.cases[reference], pdf=False)
                    opened.append(reference)
            await self.client.close(metadata.message_id, request_id=message.request_id)
        return {"opened": opened, "refused": refused}

    async def decide(self, reference: str, status: str, pdf: bool) -> XoevCase:
        """A clerk's decision (or another status change), answered over XTA."""
        case = self.cases[reference]
        case.status = status
        await self._answer(case, pdf=pdf)
        return case

    def validate(self, document: etree._Element) -> None:
        """Raise ValueError unless `document` meets the XSD of the messages this Fachverfahren takes."""
        schema = xml_schema(self.schemas / self.schema)
        if not schema.validate(document):
            raise ValueError(f"message does not meet {self.schema}: {schema.error_log.last_error}")

    async def _read(self, message: XtaMessage) -> str:
        data = await self.blobs.read_bytes(message.message.blob)
        try:
            document = parse_xml(data, limit=MAX_MESSAGE)
        except UnsafeXml as exc:
            raise Refused(str(exc)) from None
        found = etree.XPath(self.reference, namespaces=self.namespaces)(document)
        values = found if isinstance(found, list) else [found]
        text = "".join(values[0].itertext()) if values and isinstance(values[0], etree._Element) else ""
        reference = text.strip() or None
        try:
            self.validate(document)
        except ValueError as exc:
            raise Refused(str(exc), reference) from None
        if reference is None:
            raise Refused("message names no reference")
        return reference

    async def _answer(self, case: XoevCase, *, pdf: bool, error: str | None = None) -> None:
        env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
        content = env.from_string(self.answer_template).render(
            reference=case.reference,
            case_number=case.case_number,
            status=case.status,
            account=self.client.account.identifier,
            reader=case.author,
            created=utcnow().strftime("%Y-%m-%dT%H:%M:%S"),
            error=error,
            answer_id=str(uuid.uuid4()),
            namespace=self.answer_namespace,
        )
        await self.send_answer(case, content, self.answer_type, pdf=pdf)

    async def send_answer(self, case: XoevCase, content: str, message_type: str, *, pdf: bool) -> None:
        """Send an answer message to the case's author over XTA; with `pdf`, the decision attached."""
        info = await self.blobs.write_bytes(content.encode())
        attachments: tuple[OutgoingContent, ...] = ()
        if pdf:
            decision = await self.blobs.write_bytes(decision_pdf(f"Bescheid {case.case_number}"))
            attachments = (
                OutgoingContent(
                    blob=decision.ref,
                    size=decision.size,
                    content_type="application/pdf",
                    filename=f"Bescheid-{case.case_number}.pdf",
                ),
            )
        await self.client.send_message(
            OutgoingMessage(
                reader=PartyId(identifier=case.author),
                service=self.service,
                business_scenario=self.business_scenario,
                message_type=message_type,
                payload_schema=self.answer_namespace,
                content=OutgoingContent(blob=info.ref, size=info.size, content_type="application/xml"),
                attachments=attachments,
            )
        )


STATE = web.AppKey("xoev", XoevFachverfahren)


async def _receive(request: web.Request) -> web.Response:
    return web.json_response(await request.app[STATE].receive())


async def _decide(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        decision = await read_decision(request)
    except MalformedRequest as exc:
        return web.json_response({"error": exc.message}, status=exc.status)
    if decision.reference not in state.cases:
        return web.json_response({"error": "no such case"}, status=404)
    case = await state.decide(decision.reference, decision.status, decision.pdf)
    return web.json_response(asdict(case))


async def _cases(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"cases": [asdict(c) for c in state.cases.values()], "refused": state.refused})


def make_app(
    xta_url: str = "http://127.0.0.1:8090",
    account: str = "vbe:fachverfahren",
    schemas: str | Path | None = None,
    data_dir: str | Path | None = None,
    model: type[XoevFachverfahren] = XoevFachverfahren,
    **options: Any,
) -> web.Application:
    """The simulated Fachverfahren on the XTA server at `xta_url`, reading the mailbox of `account`.

    `model`: a profile's own subclass (its validation and answers), e.g. Mikropro's.
    """
    schema_dir = require_schema_directory(Path(schemas) if schemas else None, purpose="the xoev simulator")
    blobs = simulator_files(Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="xoev-simulator-")))
    settings = XtaSettings.model_validate({"url": xta_url, "account": {"identifier": account}})
    app = web.Application()

    async def session(app: web.Application) -> AsyncIterator[None]:
        http = aiohttp.ClientSession()
        client = XtaClient(settings, schemas=schema_dir, http=lambda: http, blobs=blobs)
        app[STATE] = model(client, blobs, schema_dir, **options)
        yield
        await http.close()

    app.cleanup_ctx.append(session)
    app.router.add_post("/control/receive", _receive)
    app.router.add_post("/control/decide", _decide)
    app.router.add_get("/control/cases", _cases)
    return app


SIMULATOR = Simulator(
    name="xoev",
    description="a Fachverfahren taking XÖV messages from its XTA mailbox (validated against their XSD) and "
    "answering over XTA with a case number, later a decision PDF",
    make_app=make_app,
)
