"""A simulated Mikropro Bauamt: XBau messages from its XTA mailbox (or an import folder), answers back.

`transport=xoev` (default): it reads its mailbox on the XTA simulator, validates each XBau message against
the XSD of its family from the schema directory (a 0200 against ``xbau-nachrichten-baugenehmigung.xsd``, a
0900 against ``xbau-nachrichten-anzeige.xsd``), opens a case per message (``nachrichtenUUID``) with its
own Aktenzeichen (``63-BA-2026-00001`` …) and answers the sender with a 1121; a clerk's status change
(``POST /control/decide``) is a 1170 with Mikropro's status code, a decision with the Bescheid PDF
attached. A message invalid against its XSD whose head can be read is refused with a 1100 naming the
first schema errors, and so is a Baubeginnanzeige naming an Aktenzeichen Mikropro does not know; one that is
not XBau is only recorded. Every answer is validated against the
Kernmodul XSD before it is sent. `transport=importfolder`: the import folder simulator with Mikropro's
manifest and result files.

Control endpoints as the generic simulators': ``POST /control/receive`` (read the mailbox once) or
``/control/import``, ``POST /control/decide`` (``{"reference", "status", "pdf"}``), ``GET /control/cases``.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from hub_fachverfahren.importfolder import SIMULATOR as IMPORTFOLDER
from hub_fachverfahren.xoev import SIMULATOR as XOEV
from hub_fachverfahren.xoev import Refused, XoevCase, XoevFachverfahren
from hub_xta import XtaMessage
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from lxml import etree

from hub import Simulator, utcnow, xml_schema
from hub.xml import UnsafeXml, parse_xml

from . import profile
from .connector import MANIFEST_NAME, RESULT_ELEMENTS, RESULT_ROOT

ANSWER_TEMPLATE: Final = Path(str(files(__package__).joinpath("templates", "mikropro-answer.xml.j2")))
MAX_MESSAGE: Final = 64 * 1024 * 1024
PREFIX: Final = "63-BA-2026"  # Mikropro's Aktenzeichen: 63-BA-2026-00001 …
_KIND_OF_TYPE: Final = {"aktenzeichen": "1121", "status": "1170", "rueckweisung": "1100"}
_ROOTS: Final = {
    "aktenzeichen": profile.AKTENZEICHEN,
    "status": profile.STATUS,
    "rueckweisung": profile.RUECKWEISUNG,
}


@dataclass
class MikroproBauamt(XoevFachverfahren):
    """The simulated Mikropro on XTA: XBau in, Kernmodul 1121/1170/1100 out."""

    schema: str = profile.xsd_for(profile.ANTRAG)  # unused: each message meets its own family's XSD
    answer_namespace: str = profile.XBAUK
    service: str = profile.SERVICE
    business_scenario: str = profile.BUSINESS_SCENARIO
    prefix: str = PREFIX
    answer_template: str = field(default_factory=lambda: ANSWER_TEMPLATE.read_text(encoding="utf-8"))
    status_codes: dict[str, str] = field(default_factory=lambda: dict(profile.STATUS_WORDS))
    status_list_version: str = profile.STATUS_LIST_VERSION
    # What each received message's head says, by its nachrichtenUUID (the answers refer to it).
    heads: dict[str, dict[str, str]] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)

    async def _read(self, message: XtaMessage) -> str:
        data = await self.blobs.read_bytes(message.message.blob)
        try:
            document = parse_xml(data, limit=MAX_MESSAGE)
        except UnsafeXml as exc:
            raise Refused(f"not readable XML: {exc}") from None
        name = etree.QName(document)
        if name.namespace not in (profile.XBAU, profile.XBAUK) or not profile.known_family(
            self.schemas, name.localname
        ):
            raise Refused(f"not an XBau message Mikropro takes: {name.text}")
        head = _head(document)
        schema = xml_schema(self.schemas / profile.xsd_for(name.localname))
        if not schema.validate(document):
            where = "; ".join(f"Zeile {e.line}: {e.type_name}" for e in list(schema.error_log)[:3])
            reason = f"Die Nachricht ist nicht schemakonform (XBau 2.6): {where}"
            if head is not None:
                await self._refuse(head, message.metadata.author.identifier, reason, data)
            raise Refused(reason)
        if head is None:
            raise Refused("the message head names no nachrichtenUUID")
        # A Baubeginnanzeige refers to the Baugenehmigung's case: Mikropro must know it.
        named = document.findtext(f"{{{profile.XBAU}}}bezug/{{{profile.XBAU}}}mitAktenzeichen/vorgang")
        if named is not None and named not in {c.case_number for c in self.cases.values()}:
            reason = f"Das Aktenzeichen {named} ist in Mikropro nicht bekannt."
            await self._refuse(head, message.metadata.author.identifier, reason, data)
            raise Refused(reason)
        self.heads[head["uuid"]] = head
        return head["uuid"]

    async def _answer(self, case: XoevCase, *, pdf: bool, error: str | None = None) -> None:
        kind = "status" if case.reference in self.answered else "aktenzeichen"
        content = self._render(
            kind,
            self.heads[case.reference],
            case_number=case.case_number,
            status_code=self.status_codes.get(case.status, case.status),
        )
        await self.send_answer(case, content, _ROOTS[kind], pdf=pdf)
        self.answered.add(case.reference)

    async def _refuse(self, head: dict[str, str], author: str, reason: str, original: bytes) -> None:
        content = self._render(
            "rueckweisung", head, reason=reason, original_base64=base64.b64encode(original).decode("ascii")
        )
        refused = XoevCase(reference=head["uuid"], case_number="", author=author, status="abgelehnt")
        await self.send_answer(refused, content, _ROOTS["rueckweisung"], pdf=False)

    def _render(self, kind: str, head: dict[str, str], **values: str) -> str:
        env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
        content = env.from_string(self.answer_template).render(
            kind=kind,
            root=_ROOTS[kind],
            code=_KIND_OF_TYPE[kind],
            uuid=str(uuid.uuid4()),
            created=utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            # The answer goes back the way the message came: its leser answers its autor.
            autor_kennung=head["leser_kennung"],
            autor_name=head["leser_name"],
            leser_kennung=head["autor_kennung"],
            leser_name=head["autor_name"],
            original=head,
            status_list_version=self.status_list_version,
            **values,
        )
        # Strict like the real thing is expected to be: nothing invalid leaves Mikropro.
        schema = xml_schema(self.schemas / profile.xsd_for(_ROOTS[kind]))
        document = parse_xml(content.encode("utf-8"), limit=MAX_MESSAGE)
        if not schema.validate(document):
            raise RuntimeError(f"the simulator's {kind} answer is invalid: {schema.error_log.last_error}")
        return content


def _head(document: etree._Element) -> dict[str, str] | None:
    """The message head's identification, autor and leser; None if it cannot be read."""
    head = document.find("nachrichtenkopf.g2g")
    kind = head.find("identifikation.nachricht/nachrichtentyp") if head is not None else None
    if head is None or kind is None:
        return None
    found = {
        "uuid": head.findtext("identifikation.nachricht/nachrichtenUUID"),
        "code": kind.findtext("code"),
        "list_uri": kind.get("listURI"),
        "list_version": kind.get("listVersionID"),
        "created": head.findtext("identifikation.nachricht/erstellungszeitpunkt"),
        "autor_kennung": head.findtext("autor/kennung"),
        "autor_name": head.findtext("autor/name"),
        "leser_kennung": head.findtext("leser/kennung"),
        "leser_name": head.findtext("leser/name"),
    }
    if any(not value for value in found.values()):
        return None
    return {key: str(value) for key, value in found.items()}


IMPORT_PRESET: Final[dict[str, Any]] = {
    "manifest": MANIFEST_NAME,
    "reference": "/MikroproImport/Vorgang/Referenz",
    "files": "/MikroproImport/Dateien/Datei/@name",
    "answer_format": "xml",
    "answer_root": RESULT_ROOT,
    "answer_names": dict(RESULT_ELEMENTS),
    "prefix": PREFIX,
}


def make_app(transport: str = "xoev", **options: Any) -> web.Application:
    """The simulated Mikropro: on the XTA server (`xta_url`, `account`) or on an import folder
    (`import_dir`, `answer_dir`); `options` override the profile's."""
    if transport == "importfolder":
        return IMPORTFOLDER.make_app(**{**IMPORT_PRESET, **options})
    return XOEV.make_app(model=MikroproBauamt, **options)


SIMULATOR = Simulator(
    name="mikropro",
    description="Mikropro Bauamt: XBau messages from its XTA mailbox (validated per family), its "
    "Aktenzeichen in a 1121, status changes and decisions in 1170s, refusals in 1100s; or an import "
    "folder with MikroproImport manifests and MikroproRueckmeldung result files",
    make_app=make_app,
)
