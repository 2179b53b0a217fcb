"""``type: bauportal-nrw-answers``: the Bauaufsicht's XBau answers to the portal, over XTA.

- receipt RECEIVED (filed): ``prozessnachrichten.eingangsbestaetigung.1120`` and then
  ``prozessnachrichten.aktenzeichen.1121`` with the Aktenzeichen (the receipt's file number);
- receipt REJECTED (refused at intake, e.g. schema-invalid): ``prozessnachrichten.rueckweisung.G2G.1100``
  with the findings and the refused message;
- receipt STATUS (a Fachverfahren's answer): ``prozessnachrichten.statusFuerAntragsportal.1170`` with
  the status code configured for the answer's status (``status_codes``), once per answer.

Each answer has the original's author as reader and its reader as author (``nachrichtenkopf.g2g``),
refers to the original (``bezug``: referenzAntragsservice, Aktenzeichen, ``bezugNachricht`` = the
0200's identification; in XTA: In-Reply-To = the original XTA message id), is validated against the
Kernmodul XSD before it is sent, and is sent at most once per (application, message type) — a 1170
per (application, answer) — see `store.py` for how.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from hub_xta import OutgoingContent, OutgoingMessage, ParameterIsNotValidFault, XtaSettings

from hub import (
    Application,
    ConnectorConfig,
    ConnectorContext,
    Notifier,
    Permanent,
    Receipt,
    ReceiptKind,
    utcnow,
)

from .config import BauportalNrwAnswersConfig
from .participant import XBauParticipant
from .reply import ReplyTo
from .source import MANIFEST
from .store import AnswerStore, PreparedAnswer
from .xbau import (
    AKTENZEICHEN,
    EINGANGSBESTAETIGUNG,
    MESSAGE_CODES,
    RUECKWEISUNG,
    STATUS_ANTRAGSPORTAL,
    XBAUK,
    MessageIdentity,
    build_aktenzeichen,
    build_eingangsbestaetigung,
    build_rueckweisung,
    build_status_antragsportal,
    kernmodul_identity,
    parse_bytes,
)

log = logging.getLogger(__name__)

# XBau UUIDs of the answers are derived from (application, message type): the same answer, prepared
# again after its preparation was lost, keeps its identity.
ANSWER_NAMESPACE = uuid.UUID("6f1c8a52-5d8e-4f51-9a43-0b7f3d2a9e10")
ID_TAKEN = "9024"  # ParameterIsNotValidException: "MessageID is taken" — the message had arrived
MAX_FINDINGS = 20
MAX_FINDING_CHARS = 1000
# DIN 91379 datatypeC (fehlertext) admits Latin letters and common signs; others are replaced.
_NOT_DATATYPE_C = re.compile("[^\t\n\r\u0020-\u007e\u00a0-\u00ac\u00ae-\u017e]")
SUBJECTS = {
    EINGANGSBESTAETIGUNG: "Eingangsbestätigung zu Ihrem Bauantrag",
    AKTENZEICHEN: "Aktenzeichen zu Ihrem Bauantrag",
    RUECKWEISUNG: "Rückweisung Ihrer Nachricht",
    STATUS_ANTRAGSPORTAL: "Neuer Stand zu Ihrem Bauantrag",
}


class BauportalNrwAnswers(XBauParticipant, Notifier[BauportalNrwAnswersConfig]):
    """Answers Bauportal.NRW: 1120 + 1121 when filed, 1100 when refused, 1170 per answer; once each."""

    kind = "bauportal-nrw-answers"
    manifest = MANIFEST
    Config: ClassVar[type[ConnectorConfig]] = BauportalNrwAnswersConfig

    def __init__(self, config: BauportalNrwAnswersConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.store = AnswerStore(context.data_dir / f"bauportal-answers-{context.name}.sqlite")

    @property
    def xta_settings(self) -> XtaSettings:
        """The XTA server and account."""
        return self.config.xta

    async def blob_references(self) -> set[str]:
        """The prepared answers' documents: kept in this notifier's store, not in the journal."""
        return await self.store.blobs()

    async def forget(self, application_ids: Sequence[str]) -> set[str]:
        """Purged applications: their answers (XBau messages naming the applicant) go from the store."""
        return await self.store.forget(application_ids)

    async def notify(self, application: Application, receipt: Receipt) -> dict[str, str]:
        """Send the answers this receipt calls for, each at most once; returns their XTA and XBau ids."""
        reply = ReplyTo.from_correlations(application.correlations)
        ids: dict[str, str] = {}
        authority = self.config.authority
        if receipt.kind is ReceiptKind.STATUS:
            return await self._status(application, reply, receipt)
        if receipt.kind is ReceiptKind.REJECTED:
            original = await self._original(application)
            reasons = self._reasons(reply, receipt.reason)

            def rueckweisung(identity: MessageIdentity) -> bytes:
                return build_rueckweisung(
                    identity,
                    leser=reply.portal,
                    autor=authority,
                    original=reply.original,
                    original_message=original,
                    reasons=reasons,
                    reasons_version=self.config.rejection_codes_version,
                )

            ids.update(await self._answer(application, reply, RUECKWEISUNG, rueckweisung, None))
            return ids

        file_number = receipt.file_number or application.file_number

        def eingang(identity: MessageIdentity) -> bytes:
            return build_eingangsbestaetigung(
                identity,
                leser=reply.portal,
                autor=authority,
                original=reply.original,
                referenz=reply.referenz,
                vorgang=file_number,
                information=self.config.information,
            )

        ids.update(await self._answer(application, reply, EINGANGSBESTAETIGUNG, eingang, file_number))
        if not self.config.send_aktenzeichen:
            return ids
        if not file_number:
            raise Permanent("no Aktenzeichen to send (1121): neither the mapping nor a target assigned one")

        def aktenzeichen(identity: MessageIdentity) -> bytes:
            return build_aktenzeichen(
                identity,
                leser=reply.portal,
                autor=authority,
                original=reply.original,
                referenz=reply.referenz,
                aktenzeichen=file_number,
            )

        ids.update(await self._answer(application, reply, AKTENZEICHEN, aktenzeichen, file_number))
        return ids

    async def _status(self, application: Application, reply: ReplyTo, receipt: Receipt) -> dict[str, str]:
        """A Fachverfahren's answer: a 1170 with the status code configured for its status."""
        code = self.config.status_codes.get(receipt.status) if receipt.status else None
        if code is None:
            log.info(
                "xbau 1170 not sent application=%s target=%s reason=no-status-code status=%s",
                application.id,
                self.name,
                receipt.status.value if receipt.status else "missing",
            )
            return {}
        if not receipt.answer_id:
            raise Permanent("a status receipt without answer_id cannot be sent once only (1170)")
        file_number = receipt.file_number or application.file_number
        reason = [receipt.message] if self.config.status_reason and receipt.message else []

        def status(identity: MessageIdentity) -> bytes:
            return build_status_antragsportal(
                identity,
                leser=reply.portal,
                autor=self.config.authority,
                original=reply.original,
                referenz=reply.referenz,
                vorgang=file_number,
                status=code,
                status_list_version=self.config.status_list_version,
                begruendung=reason,
            )

        # One 1170 per answer: the answer's id (a digest of it) is part of the record's key.
        answer = hashlib.sha256(receipt.answer_id.encode()).hexdigest()[:32]
        key = f"{STATUS_ANTRAGSPORTAL}/{answer}"
        return await self._answer(application, reply, STATUS_ANTRAGSPORTAL, status, file_number, key=key)

    async def _answer(
        self,
        application: Application,
        reply: ReplyTo,
        message_type: str,
        build: Callable[[MessageIdentity], bytes],
        file_number: str | None,
        *,
        key: str | None = None,
    ) -> dict[str, str]:
        """Send an answer once; `key` names it in the store (default: its message type)."""
        key = key or message_type
        prepared = await self.store.get(application.id, key)
        if prepared is not None and prepared.sent:
            log.info("xbau answer already sent application=%s type=%s", application.id, message_type)
            return _ids(prepared, message_type)
        retry = prepared is not None
        if prepared is None:
            prepared = await self._prepare(application, message_type, key, build)
        outgoing = OutgoingMessage(
            reader=reply.xta_author,
            service=reply.xta_service,
            business_scenario=reply.xta_scenario or self.config.business_scenario,
            business_scenario_list_uri=reply.xta_scenario_list,
            business_scenario_list_version=reply.xta_scenario_version,
            message_type=message_type,
            payload_schema=XBAUK,
            subject=SUBJECTS[message_type],
            message_id=prepared.xta_message_id,
            in_reply_to=(reply.xta_message_id,),
            process_requester=reply.xta_process,
            process_responder=file_number,
            test=self.config.test,
            content=OutgoingContent(
                blob=prepared.blob,
                size=prepared.size,
                content_type="application/xml",
                filename=f"{message_type}.xml",
            ),
        )
        try:
            await self.client.send_message(outgoing)
        except ParameterIsNotValidFault as exc:
            if not (retry and exc.code == ID_TAKEN):
                raise
            # Sent before a crash lost the confirmation: the server knows the id, so it has the message.
            log.info("xbau answer had arrived before application=%s type=%s", application.id, message_type)
        await self.store.mark_sent(application.id, key)
        log.info(
            "xbau answer sent application=%s type=%s xta_message_id=%s",
            application.id,
            message_type,
            prepared.xta_message_id,
        )
        return _ids(prepared, message_type)

    async def _prepare(
        self, application: Application, message_type: str, key: str, build: Callable[[MessageIdentity], bytes]
    ) -> PreparedAnswer:
        """Build, validate and store the answer, reserve its XTA message id; commit before the send."""
        xbau_uuid = str(uuid.uuid5(ANSWER_NAMESPACE, f"{application.id}/{key}"))
        identity = kernmodul_identity(xbau_uuid, MESSAGE_CODES[message_type], utcnow())
        xml = build(identity)
        self.schemas.check(parse_bytes(xml, limit=len(xml)), message_type)
        info = await self.context.blobs.write_bytes(xml)
        xta_message_id = await self.client.create_message_id()
        return await self.store.prepare(
            PreparedAnswer(
                application_id=application.id,
                message_type=key,
                xta_message_id=xta_message_id,
                xbau_uuid=xbau_uuid,
                blob=info.ref,
                size=info.size,
                sent=False,
            )
        )

    async def _original(self, application: Application) -> bytes:
        """The refused message, to go back inside the 1100; a note instead if it cannot go back."""
        original = application.original
        limit = int(self.config.max_returned_message)
        if original is None or original.size == 0:
            # XBau forbids empty elements (Schematron sch-xbau-gen-001): the 1100 says why there is none.
            return b"Die zurueckgewiesene Nachricht ist nicht vorhanden."
        if original.size > limit:
            note = f"Die zurueckgewiesene Nachricht ({original.size} Bytes) ist groesser als {limit} Bytes"
            return f"{note} und wird nicht zurueckgesandt.".encode("ascii")
        return await self.context.blobs.read_bytes(original.blob)

    def _reasons(self, reply: ReplyTo, reason: str | None) -> list[tuple[str, str | None]]:
        codes = self.config.rejection_codes
        code = codes.get(reply.rejection or "", self.config.default_rejection_code)
        if not reason:
            return [(code, None)]
        findings = [f.strip() for f in reason.split("; ") if f.strip()][:MAX_FINDINGS]
        return [(code, _datatype_c(f)) for f in findings] or [(code, None)]

    async def diagnostics(self) -> dict[str, Any]:
        """Redacted state: configuration without secrets, answers prepared and sent."""
        found = await super().diagnostics()
        answers = await self.store.all()
        found["answers"] = {"prepared": len(answers), "sent": sum(a.sent for a in answers)}
        return found


def _datatype_c(text: str) -> str:
    text = _NOT_DATATYPE_C.sub("?", " ".join(text.split()))
    return text if len(text) <= MAX_FINDING_CHARS else text[: MAX_FINDING_CHARS - 3] + "..."


def _ids(prepared: PreparedAnswer, kind: str) -> dict[str, str]:
    """The ids of a sent answer, kept as correlations: its XTA message id and XBau message UUID."""
    return {f"{kind}.xta_message_id": prepared.xta_message_id, f"{kind}.xbau_uuid": prepared.xbau_uuid}
