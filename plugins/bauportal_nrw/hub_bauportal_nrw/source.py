"""``type: bauportal-nrw``: building applications (XBau 2.6 ``baugenehmigung.antrag.0200``) from XTA.

One poll: list the mailbox; for every 0200, fetch it (message and Anlagen streamed by the XTA client
into the blob store), parse the message from its blob (hardened, size-limited), validate it against
the XBau XSD, read applicant(s), Bauvorhaben, plot and Anlagen, hand the application to the core's
intake, and only after that returned close the XTA message. A crash in between leaves the message in
the mailbox; the next poll takes it again, and the intake — idempotent on the XBau message UUID —
stores it once.

A message that is not well-formed, not valid against the schema, addressed to another authority, or
whose referenced Anlagen are not in the transport is taken in as *rejected* (`Intake(rejection=...)`):
stored with the findings, nothing filed; the route's notifier (`bauportal-nrw-answers`) sends the 1100
back. So is an XBau message of another type (a 0201, a 1130 withdrawal, any XBau or Kernmodul message
but a 0200) whose message head can be read: its author is told (1100) that the type is not processed
here (or that it is not schema-conformant), it is closed and recorded as held *rejected*
(``unsupported_message_type``). What cannot be read as XBau at all (not XML, another standard, no
readable head), a 1100 (XBau forbids answering it with a 1100), messages of another standard by their
XTA metadata, and messages too large, encrypted or failing to download are held in the journal for an
operator's decision (`hub_xta.MailboxReader`); the poll goes on.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Any, ClassVar

from hub_xta import (
    MailboxReader,
    MessageMetaData,
    NotTaken,
    Refusal,
    Taken,
    XtaContent,
    XtaMessage,
    XtaOrigin,
    XtaSettings,
)
from lxml import etree

from hub import (
    Address,
    Application,
    Attachment,
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    Intake,
    IntakeFunc,
    Manifest,
    OriginalSubmission,
    Party,
    Permanent,
    Rejection,
    Source,
    utcnow,
)

from .config import BauportalNrwConfig
from .participant import XBauParticipant
from .reply import ReplyTo
from .xbau import (
    ANTRAG,
    KERNMODUL_MESSAGES,
    RUECKWEISUNG,
    XBAU,
    XBAU_MESSAGES,
    XBAUK,
    AntragData,
    Behoerde,
    Head,
    MessageIdentity,
    Person,
    UnsafeXml,
    parse_stream,
    read_antrag,
    read_head,
    read_referenz,
)
from .xbau.schematron import load_schematron

log = logging.getLogger(__name__)

STANDARDS = (
    "XBau 2.6 (baugenehmigung.antrag.0200)",
    "XBau-Kernmodul 1.3.0",
    "XTA 2 Version 3.1",
)
MANIFEST = Manifest(
    name="Bauportal.NRW",
    version="0.1.0",
    standards=STANDARDS,
    description="building applications (XBau 0200) from an XTA mailbox; answers 1120/1121/1100",
)
FOREIGN_AUTHORITY = "foreign_authority"  # a 0200 whose leser is another authority
UNSUPPORTED = "unsupported_message_type"  # an XBau message of another type than 0200, answered
NOT_XBAU = "not_xbau"  # not readable as an XBau message: nobody to answer, an operator decides
UNANSWERABLE = "rueckweisung"  # a 1100 to us: XBau forbids answering it with a 1100
_UUID_IN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class BauportalNrwSource(XBauParticipant, Source[BauportalNrwConfig]):
    """Reads the Bauaufsicht's XTA mailbox: fetch, validate, durable intake, then close."""

    kind = "bauportal-nrw"
    manifest = MANIFEST
    Config: ClassVar[type[ConnectorConfig]] = BauportalNrwConfig

    def __init__(self, config: BauportalNrwConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.poll_interval = config.poll_seconds
        self.reader = MailboxReader()

    @property
    def xta_settings(self) -> XtaSettings:
        """The XTA server and account."""
        return self.config.xta

    async def poll(self, intake: IntakeFunc) -> int:
        """Take the waiting building applications in; close each after its durable intake.

        What cannot be taken is held (`hub.held`) and the poll goes on with the next message.
        """

        async def take(message: XtaMessage) -> Taken:
            submission, refusal = await self._take_in(message)
            outcome = await intake(submission)
            rejection = submission.rejection
            if not outcome.duplicate:
                log.info(
                    "xbau message taken application=%s message_id=%s rejected=%s",
                    outcome.application_id,
                    message.message_id,
                    rejection is not None,
                )
            return Taken(outcome, refusal)

        return await self.reader.poll(
            self.client,
            self.context.held.with_backoff(self.config.fetch_backoff),
            limit=self.config.max_per_poll,
            screen=_screen,
            take=take,
        )

    async def close_upstream(self, message_id: str) -> None:
        """Close a held message in the XTA mailbox (an operator decided so)."""
        await self.reader.close_upstream(self.client, message_id)

    # -- one message -------------------------------------------------------------------------------

    async def intake_of(self, message: XtaMessage) -> Intake:
        """The intake for a fetched message: the application, or the application refused with findings.

        `NotTaken` if the message cannot be read as XBau and is no 0200 by its transport either.
        """
        return (await self._take_in(message))[0]

    async def _take_in(self, message: XtaMessage) -> tuple[Intake, Refusal | None]:
        """The intake, and the held record it makes once closed (a message refused as not ours)."""
        content = message.message
        antrag = message.metadata.message_type == ANTRAG  # what the transport says it is
        try:
            root = await parse_stream(
                self.context.blobs.read(content.blob), limit=int(self.config.max_message)
            )
        except UnsafeXml as exc:
            if not antrag:
                raise NotTaken(Refusal(NOT_XBAU, f"the message is not readable XML: {exc}")) from None
            reason = f"Die Nachricht ist kein verarbeitbares XML: {exc}"
            return self._refused(message, None, "xml", reason), None
        kind = _xbau_message(root)
        if kind == ANTRAG or (kind is None and antrag):
            intake = await self._antrag(message, root)
            rejection = intake.rejection
            if rejection is not None and rejection.code == FOREIGN_AUTHORITY:
                return intake, Refusal(FOREIGN_AUTHORITY, rejection.reason)
            return intake, None
        return await self._other_message(message, root, kind)

    async def _other_message(
        self, message: XtaMessage, root: etree._Element, kind: str | None
    ) -> tuple[Intake, Refusal]:
        """An XBau message of another type than 0200: answered (1100) if its head can be read."""
        if kind is None:
            found = etree.QName(root).text
            raise NotTaken(Refusal(NOT_XBAU, f"the message is not XBau 2.6 (root element {found})"))
        if kind == RUECKWEISUNG:
            reason = "a 1100 (Rückweisung) to this authority: XBau forbids answering it with a 1100"
            raise NotTaken(Refusal(UNANSWERABLE, reason))
        head = read_head(root)
        if head is None:
            reason = (
                f"an XBau {kind} whose message head (nachrichtenkopf.g2g) cannot be read: no one to answer"
            )
            raise NotTaken(Refusal(NOT_XBAU, reason))
        head = _typed(head, root)
        referenz = read_referenz(root)
        findings = await asyncio.to_thread(self.schemas.errors, root)
        if findings:
            reason = f"Die Nachricht ({kind}) ist nicht schemakonform (XBau 2.6): {'; '.join(findings)}"
            return self._refused(message, head, "schema", reason, referenz), Refusal(UNSUPPORTED, reason)
        reason = (
            f"Nachrichten des Typs {kind} werden von dieser Behörde "
            f"({self.config.authority.kennung}) auf diesem Weg nicht verarbeitet; "
            f"angenommen werden hier nur Bauanträge ({ANTRAG})."
        )
        return self._refused(message, head, UNSUPPORTED, reason, referenz), Refusal(UNSUPPORTED, reason)

    async def _antrag(self, message: XtaMessage, root: etree._Element) -> Intake:
        """A building application (0200): the application, or the application refused with findings."""
        schemas = self.schemas
        # Validating a large message takes a while: not on the event loop.
        findings = await asyncio.to_thread(schemas.errors, root)
        head, referenz = read_head(root), read_referenz(root)
        if findings:
            text = "; ".join(findings)
            reason = f"Die Nachricht ist nicht schemakonform (XBau 2.6): {text}"
            return self._refused(message, head, "schema", reason, referenz)
        if self.config.schematron:
            findings = await asyncio.to_thread(self._schematron_errors, root)
            if findings:
                text = "; ".join(f.replace("; ", ", ") for f in findings)
                reason = f"Die Nachricht verletzt Regeln des XBau-Schematron (XBau 2.6): {text}"
                return self._refused(message, head, "schematron", reason, referenz)
        try:
            data = read_antrag(root)
        except ValueError as exc:
            return self._refused(message, head, "schema", f"Die Nachricht ist nicht lesbar: {exc}", referenz)
        attachments, missing = _attachments(data, message.attachments)
        if missing:
            return self._refused(message, data.head, "anlagen", "; ".join(missing), referenz)
        ours = self.config.authority.kennung
        if data.head.leser.kennung != ours:
            # Not ours to file: the sender is told (1100) so it can send it where it belongs.
            reason = (
                f"Die Nachricht ist an {data.head.leser.kennung} adressiert, "
                f"nicht an diese Behörde ({ours}); sie wird hier nicht bearbeitet."
            )
            return self._refused(message, data.head, FOREIGN_AUTHORITY, reason, data.referenz)
        application = self._application(message, data.head, None, data.referenz)
        application.applicant = _party(data.antragsteller[0])
        application.form = _form(data)
        application.attachments = attachments
        return Intake(application)

    def _schematron_errors(self, root: etree._Element) -> list[str]:
        if self.context.schemas is None:
            raise Permanent("no schema directory configured (`schemas:` or $AKTENHUB_SCHEMAS): XBau needs it")
        return load_schematron(self.context.schemas).errors(root)

    async def check(self) -> CheckResult:
        """As every XBau connector; with `schematron` on, also: do the Schematron rules compile?"""
        result = await super().check()
        if not result.ok or not self.config.schematron:
            return result
        try:
            assert self.context.schemas is not None  # the schemas check above passed
            rules = await asyncio.to_thread(load_schematron, self.context.schemas)
        except Permanent as exc:
            return CheckResult(ok=False, message=str(exc))
        return result.model_copy(
            update={"details": {**result.details, "schematron": ", ".join(p.name for p in rules.files)}}
        )

    def _refused(
        self, message: XtaMessage, head: Head | None, kind: str, reason: str, referenz: str | None = None
    ) -> Intake:
        application = self._application(message, head, kind, referenz)
        application.form = {"rueckweisung": reason}
        return Intake(application, rejection=Rejection(reason, code=kind))

    def _application(
        self, message: XtaMessage, head: Head | None, rejection: str | None, referenz: str | None
    ) -> Application:
        meta = message.metadata
        content = message.message
        reply = ReplyTo(
            xta_message_id=meta.message_id,
            xta_author=meta.author,
            xta_service=meta.service,
            xta_scenario=meta.business_scenario,
            xta_scenario_list=meta.business_scenario_list_uri,
            xta_scenario_version=meta.business_scenario_list_version,
            xta_process=meta.process_requester,
            original=head.identity if head is not None else _identity_from_transport(message),
            portal=head.autor if head is not None else _portal_from_transport(message),
            addressee=head.leser if head is not None else None,
            referenz=referenz,
            rejection=rejection,
        )
        return Application(
            source=self.name,
            # The XBau message UUID: the same application re-sent in another XTA message is one.
            external_id=head.identity.uuid if head is not None else meta.message_id,
            service=self.config.service,
            original=OriginalSubmission(
                media_type="application/xml", blob=content.blob, size=content.size, sha256=content.sha256
            ),
            correlations={
                "xta": meta.message_id,
                **XtaOrigin.of(meta).correlations(),
                **reply.correlations(),
            },
        )

    async def diagnostics(self) -> dict[str, Any]:
        """Redacted state: the configuration without secrets."""
        found = await super().diagnostics()
        found["account"] = str(self.config.xta.account)
        return found


def _screen(metadata: MessageMetaData) -> Refusal | None:
    """XBau messages are fetched (a 0200 is taken, others answered); another standard's wait undownloaded."""
    if metadata.message_type == ANTRAG or metadata.payload_schema in (XBAU, XBAUK):
        return None
    return Refusal(
        "message_type",
        f"message type {metadata.message_type!r} ({metadata.payload_schema}) is no XBau message: "
        "not taken by Bauportal.NRW's source",
    )


def _xbau_message(root: etree._Element) -> str | None:
    """The XBau message type a document is by its root element (e.g. 0200's), None if not XBau."""
    name = etree.QName(root)
    return name.localname if name.namespace in (XBAU, XBAUK) else None


def _typed(head: Head, root: etree._Element) -> Head:
    """The head with its message type as the root element says, where the head itself lacks it.

    The 1100 names the refused message's type (idNachricht); an empty code would make it invalid.
    """
    identity = head.identity
    if identity.code and identity.list_uri and identity.list_version:
        return head
    name = etree.QName(root)
    list_uri, version = KERNMODUL_MESSAGES if name.namespace == XBAUK else XBAU_MESSAGES
    typed = identity.model_copy(
        update={
            "code": identity.code or name.localname.rsplit(".", 1)[-1],
            "list_uri": identity.list_uri or list_uri,
            "list_version": identity.list_version or version,
        }
    )
    return head.model_copy(update={"identity": typed})


def _identity_from_transport(message: XtaMessage) -> MessageIdentity:
    """For a message whose head is unreadable: the best reference the transport offers."""
    meta = message.metadata
    found = _UUID_IN.search(meta.message_id)
    value = found.group(0) if found else str(uuid.uuid5(uuid.NAMESPACE_URL, meta.message_id))
    created = meta.origin or meta.delivered or meta.initial_fetch
    return MessageIdentity(
        uuid=value,
        code=meta.message_type.rsplit(".", 1)[-1],
        list_uri=XBAU_MESSAGES[0],
        list_version=XBAU_MESSAGES[1],
        created=created if created is not None else utcnow(),
    )


def _portal_from_transport(message: XtaMessage) -> Behoerde:
    author = message.metadata.author
    return Behoerde(kennung=author.identifier, name=author.name or author.identifier)


def _attachments(data: AntragData, contents: tuple[XtaContent, ...]) -> tuple[list[Attachment], list[str]]:
    """Each Anlage's content among the transport's attachments (by id, else file name); what is missing."""
    by_id = {c.id: c for c in contents if c.id}
    by_name = {c.filename: c for c in contents if c.filename}
    used: set[str] = set()
    attachments: list[Attachment] = []
    missing: list[str] = []
    for anlage in data.anlagen:
        if anlage.link is not None:
            continue  # a link, not content: kept in the form (anlagen), not fetched
        content = by_id.get(anlage.dokumentid or "") or by_name.get(anlage.dateiname or "")
        content = content or by_name.get(anlage.dokumentid or "")
        label = f"Anlage '{anlage.bezeichnung}' ({anlage.dateiname or anlage.dokumentid})"
        if content is None:
            missing.append(f"{label} fehlt in der Übermittlung")
            continue
        if anlage.sha256 and _SHA256.match(anlage.sha256) and anlage.sha256.lower() != content.sha256:
            missing.append(f"{label}: Hashwert stimmt nicht mit dem Inhalt überein")
            continue
        used.add(content.blob)
        attachments.append(
            Attachment(
                name=anlage.dateiname or content.filename or anlage.bezeichnung,
                media_type=content.content_type or anlage.mime_type,
                size=content.size,
                sha256=content.sha256,
                blob=content.blob,
                field=anlage.anlageart,
            )
        )
    for n, content in enumerate(contents, start=1):
        if content.blob not in used:
            # Sent but not described as an Anlage: kept all the same, nothing is lost.
            attachments.append(
                Attachment(
                    name=content.filename or f"anhang-{n}",
                    media_type=content.content_type,
                    size=content.size,
                    sha256=content.sha256,
                    blob=content.blob,
                    field=None,
                )
            )
    return attachments, missing


def _party(person: Person) -> Party:
    address = person.anschrift
    street = " ".join(p for p in (address.strasse, address.hausnummer) if p) or None
    return Party(
        given_name=person.vorname,
        family_name=person.familienname,
        organisation=person.organisation,
        address=Address(street=street, postal_code=address.postleitzahl, city=address.ort)
        if (street or address.postleitzahl or address.ort)
        else None,
        email=person.email,
        phone=person.telefon,
    )


def _person_form(person: Person) -> dict[str, Any]:
    found: dict[str, Any] = {"name": person.display_name}
    address = person.anschrift
    line = ", ".join(
        p
        for p in (
            " ".join(q for q in (address.strasse, address.hausnummer) if q),
            " ".join(q for q in (address.postleitzahl, address.ort) if q),
        )
        if p
    )
    if line:
        found["anschrift"] = line
    if person.email:
        found["email"] = person.email
    if person.telefon:
        found["telefon"] = person.telefon
    return found


def _form(data: AntragData) -> dict[str, Any]:
    plot = data.flurstuecke[0]
    bauherren = data.bauherren or data.antragsteller
    address = data.grundstueck_anschrift
    lage = (
        ", ".join(
            p
            for p in (
                " ".join(q for q in (address.strasse, address.hausnummer) if q),
                " ".join(q for q in (address.postleitzahl, address.ort) if q),
            )
            if p
        )
        if address is not None
        else ""
    )
    vorhaben: dict[str, Any] = {
        "bezeichnung": data.bezeichnung,
        "massnahmen": list(data.massnahmen),
    }
    if data.gebaeude is not None:
        vorhaben["gebaeude"] = data.gebaeude
    if data.weitere_angaben:
        vorhaben["weitere_angaben"] = list(data.weitere_angaben)
    grundstueck: dict[str, Any] = {
        "gemarkung": plot.gemarkung,
        "flur": plot.flur or "",
        "flurstueck": plot.nummer,
    }
    if lage:
        grundstueck["anschrift"] = lage
    return {
        "referenz_antragsservice": data.referenz,
        "nachricht_uuid": data.head.identity.uuid,
        "portal": data.head.autor.name,
        "antragsteller": [_person_form(p) for p in data.antragsteller],
        "bauherr": bauherren[0].display_name,
        "bauherren": [p.display_name for p in bauherren],
        "bauvorhaben": vorhaben,
        "grundstueck": grundstueck,
        "flurstuecke": [
            {"gemarkung": p.gemarkung, "flur": p.flur or "", "flurstueck": p.nummer} for p in data.flurstuecke
        ],
        "anlagen": [
            {
                k: v
                for k, v in {
                    "bezeichnung": a.bezeichnung,
                    "anlageart": a.anlageart,
                    "datei": a.dateiname,
                    "datum": a.datum.isoformat(),
                    "version": a.versionsnummer,
                    "link": a.link,
                }.items()
                if v is not None
            }
            for a in data.anlagen
        ],
    }
