"""The notifier: answers the applicant in their BundID mailbox (Zentrales Bürgerpostfach, ZBP).

- Filed (receipt ``received``): a status update ``RECEIVED`` with the Aktenzeichen, then a message
  (Eingangsbestätigung) with the Aktenzeichen as its reference.
- Rejected (receipt ``rejected``): a status update (ZBP has no "rejected" status: ``COMPLETED`` by
  default, since this application's procedure has ended; ``rejection_status`` may choose
  ``ACTION_REQUIRED`` or none), then a message with the reason.

Each payload travels in the signed envelope (`envelope.seal`). Sending is idempotent per (application,
receipt kind, payload): each request carries the idempotency key ``<application id>/<kind>/<payload>``,
so a retry after a partial failure does not put a second message into the mailbox.

An application without a mailbox handle, or (by default) without a verified identity, gets nothing:
the step completes and a line at INFO says so. Logs never carry the handle or any text sent.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from pydantic import ValidationError

from hub import (
    Application,
    Attachment,
    BlobNotFound,
    CertificateInfo,
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    Manifest,
    Notifier,
    Permanent,
    Receipt,
    ReceiptKind,
    citizen_text,
    utcnow,
)

from . import __version__
from .config import STATUS_OF_ANSWER, ReceiptTexts, ZbpConfig
from .envelope import (
    PayloadKind,
    ZbpAttachment,
    ZbpMessage,
    ZbpPayload,
    ZbpStatus,
    ZbpStatusUpdate,
    application_uuid,
    seal,
    status_text,
)
from .keys import Author, AuthorError, validity_problem
from .transport import Submission, SubmissionFile, make_transport

log = logging.getLogger(__name__)

STANDARDS = ("BundID Postfach (ZBP) REST, signed envelope (RSA-SHA512, RS512 author token)",)


def idempotency_key(
    application_id: str, receipt: ReceiptKind, kind: PayloadKind, answer_id: str | None = None
) -> str:
    """The key that makes sending one payload of one receipt idempotent (of an answer: per answer)."""
    if answer_id is None:
        return f"{application_id}/{receipt.value}/{kind.value}"
    # The answer's id is the Fachverfahren's (any characters, up to 200): a digest keeps the header clean.
    answer = hashlib.sha256(answer_id.encode()).hexdigest()[:32]
    return f"{application_id}/{receipt.value}/{answer}/{kind.value}"


class ZbpNotifier(Notifier[ZbpConfig]):
    """Sends status updates and messages to the applicant's BundID mailbox."""

    kind: ClassVar[str] = "zbp"
    Config: ClassVar[type[ConnectorConfig]] = ZbpConfig
    manifest: ClassVar[Manifest] = Manifest(
        name="BundID mailbox (ZBP)",
        version=__version__,
        standards=STANDARDS,
        description="Receipts (RECEIVED with the Aktenzeichen) and rejections to the citizen's "
        "BundID mailbox, signed with the authority's author key",
    )

    def __init__(self, config: ZbpConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.author: Author = config.author()
        self.signer = config.signer_name()
        self.transport = make_transport(config, lambda: self.context.http)
        self._counters: Counter[str] = Counter()

    # -- operators -------------------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """Key and certificate load and belong together, the certificate is valid, the ZBP answers."""
        details = {
            **self.transport.describe(),
            "signer": self.signer,
            "certificate_subject": self.author.subject,
            "certificate_sha256": self.author.fingerprint,
            "certificate_not_after": self.author.certificate.not_valid_after_utc.isoformat(),
        }
        try:
            author = self.config.author()  # again: a file: secret may have changed since start-up
        except AuthorError as exc:
            return CheckResult(ok=False, message=f"author key and certificate: {exc}", details=details)
        problem = validity_problem(author.certificate)
        if problem:
            return CheckResult(ok=False, message=f"the author certificate is {problem}", details=details)
        probe = await self.transport.probe()
        if not probe.ok:
            return CheckResult(ok=False, message=probe.message, details=details)
        remaining = author.certificate.not_valid_after_utc - utcnow()
        details["certificate_days_left"] = str(remaining.days)
        return CheckResult(
            ok=True,
            message=f"{probe.message}; author certificate valid for {remaining.days} more days",
            details=details,
        )

    def certificates(self) -> Sequence[CertificateInfo]:
        """The author certificate, and those of TLS towards the ZBP."""
        return [CertificateInfo.of(self.author.certificate, "author"), *super().certificates()]

    async def diagnostics(self) -> dict[str, Any]:
        """Configuration without secrets or the certificate text, and what was sent since start."""
        state = await super().diagnostics()
        state["config"].pop("author_certificate", None)
        state["author"] = {
            "subject": self.author.subject,
            "sha256": self.author.fingerprint,
            "not_after": self.author.certificate.not_valid_after_utc.isoformat(),
        }
        state["transport"] = self.transport.describe()
        state["counters"] = dict(self._counters)
        return state

    # -- notify ----------------------------------------------------------------------------------------

    async def notify(self, application: Application, receipt: Receipt) -> dict[str, str] | None:
        """Send the receipt's status update and message to the applicant's mailbox (if there is one).

        Returns the ids the ZBP gave each payload sent (status update, message): they find the application.
        """
        mailbox = (application.applicant.mailbox or "").strip()
        if not mailbox:
            self._counters["skipped_no_mailbox"] += 1
            log.info(
                "zbp nothing sent application=%s target=%s receipt=%s reason=no-mailbox-handle",
                application.id,
                self.name,
                receipt.kind.value,
            )
            return None
        identity = application.identity
        if self.config.require_verified_identity and not (identity.verified and identity.level):
            self._counters["skipped_unverified"] += 1
            log.info(
                "zbp nothing sent application=%s target=%s receipt=%s reason=identity-not-verified",
                application.id,
                self.name,
                receipt.kind.value,
            )
            return None
        if receipt.kind is ReceiptKind.STATUS and receipt.status not in STATUS_OF_ANSWER:
            self._counters["skipped_status"] += 1
            log.info(
                "zbp nothing sent application=%s target=%s receipt=status reason=status-%s",
                application.id,
                self.name,
                receipt.status.value if receipt.status else "missing",
            )
            return None
        if receipt.kind is ReceiptKind.STATUS and not receipt.answer_id:
            raise Permanent("a status receipt without answer_id cannot be sent idempotently")
        problem = validity_problem(self.author.certificate)
        if problem:
            raise Permanent(f"the ZBP author certificate is {problem}: renew it, then replay")
        documents = list(receipt.documents) if self.config.send_documents else []
        attachments = [await self._attachment(document) for document in documents]
        try:
            payloads = self.payloads(application, receipt, mailbox, attachments)
        except ValidationError as exc:
            # e.g. a mailbox handle longer than the ZBP allows: sending again will not help.
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors(include_url=False))
            raise Permanent(f"the ZBP payload would be invalid (fields: {fields})") from None
        ids: dict[str, str] = {}
        for kind, payload in payloads:
            envelope = seal(
                payload,
                self.author,
                self.signer,
                self.config.roles,
                lifetime_seconds=self.config.token_lifetime_seconds,
            )
            files = (
                tuple(self._file(d) for d in documents)
                if isinstance(payload, ZbpMessage) and payload.attachments
                else ()
            )
            accepted = await self.transport.send(
                Submission(
                    kind=kind,
                    envelope=envelope,
                    mailbox=mailbox,
                    idempotency_key=idempotency_key(application.id, receipt.kind, kind, receipt.answer_id),
                    files=files,
                )
            )
            self._counters[f"{kind.value}_{'duplicate' if accepted.duplicate else 'sent'}"] += 1
            log.info(
                "zbp sent application=%s target=%s receipt=%s payload=%s zbp_id=%s duplicate=%s",
                application.id,
                self.name,
                receipt.kind.value,
                kind.value,
                accepted.id,
                accepted.duplicate,
            )
            if accepted.id:
                ids[kind.value] = str(accepted.id)
        return ids

    async def _attachment(self, document: Attachment) -> ZbpAttachment:
        """What the signed message says of a file: its name, SHA-512 and length (read once, streamed)."""
        digest = hashlib.sha512()
        size = 0
        try:
            async for chunk in self.context.blobs.read(document.blob):
                digest.update(chunk)
                size += len(chunk)
        except BlobNotFound:
            raise Permanent(
                f"document {document.name!r} is not in the blob store: nothing to attach"
            ) from None
        if size == 0:
            raise Permanent(f"document {document.name!r} is empty: the ZBP takes no empty attachment")
        return ZbpAttachment(filename=document.name, sha512sum=digest.hexdigest(), contentLength=size)

    def _file(self, document: Attachment) -> SubmissionFile:
        def open_blob() -> AsyncIterator[bytes]:
            return self.context.blobs.read(document.blob)

        return SubmissionFile(document.name, document.media_type, open_blob)

    def payloads(
        self,
        application: Application,
        receipt: Receipt,
        mailbox: str,
        attachments: Sequence[ZbpAttachment] = (),
    ) -> list[tuple[PayloadKind, ZbpPayload]]:
        """What goes to the mailbox for this receipt, in sending order: status update, then message."""
        if receipt.kind is ReceiptKind.STATUS:
            return self._answer_payloads(application, receipt, mailbox, attachments)
        settings = self.config
        rejected = receipt.kind is ReceiptKind.REJECTED
        texts: ReceiptTexts = settings.texts.rejected if rejected else settings.texts.received
        service = settings.public_service_name(application.service)
        file_number = receipt.file_number or application.file_number or ""
        values = {
            "service": service,
            "sender": settings.sender_name,
            "file_number": file_number,
            "reference": file_number or application.id,
            # Citizen-facing: the German text of the code, never an English technical reason.
            "reason": citizen_text(receipt.code, receipt.reason) if rejected else "",
            "application_id": application.id,
        }
        zbp_application_id = application_uuid(application.id)
        out: list[tuple[PayloadKind, ZbpPayload]] = []
        status = ZbpStatus(settings.rejection_status) if rejected and settings.rejection_status else None
        if not rejected:
            status = ZbpStatus.RECEIVED
        if status is not None:
            out.append(
                (
                    PayloadKind.STATUS,
                    ZbpStatusUpdate(
                        applicationId=zbp_application_id,
                        status=status,
                        publicServiceName={"de": service},
                        senderName=settings.sender_name,
                        createdDate=receipt.created_at,
                        statusDetails={"de": status_text(texts.status.format(**values))},
                    ),
                )
            )
        level = application.identity.level
        out.append(
            (
                PayloadKind.MESSAGE,
                ZbpMessage(
                    stork_qaa_level=level.rank if level else 1,
                    mailboxUuid=mailbox,
                    sender=settings.sender_name,
                    title=texts.title.format(**values)[:255],
                    content=texts.content.format(**values),
                    service=service,
                    applicationId=zbp_application_id,
                    reference=file_number or application.id,
                ),
            )
        )
        return out

    def _answer_payloads(
        self,
        application: Application,
        receipt: Receipt,
        mailbox: str,
        attachments: Sequence[ZbpAttachment],
    ) -> list[tuple[PayloadKind, ZbpPayload]]:
        """A Fachverfahren's answer: the status update; a message when there is text or a document."""
        settings = self.config
        texts = settings.texts.answered
        assert receipt.status is not None  # notify() sends nothing for a receipt without one
        service = settings.public_service_name(application.service)
        file_number = receipt.file_number or application.file_number or ""
        values = {
            "service": service,
            "sender": settings.sender_name,
            "file_number": file_number,
            "reference": file_number or application.id,
            "reason": "",
            "application_id": application.id,
            "status_text": texts.status_texts[receipt.status],
            "case_number": receipt.case_number or "",
            "message": (receipt.message or "").strip(),
        }
        zbp_application_id = application_uuid(application.id)
        out: list[tuple[PayloadKind, ZbpPayload]] = [
            (
                PayloadKind.STATUS,
                ZbpStatusUpdate(
                    applicationId=zbp_application_id,
                    status=STATUS_OF_ANSWER[receipt.status],
                    publicServiceName={"de": service},
                    senderName=settings.sender_name,
                    createdDate=receipt.created_at,
                    statusDetails={"de": status_text(texts.status.format(**values))},
                ),
            )
        ]
        if not (values["message"] or attachments):
            return out
        content = "\n".join(line for line in texts.content.format(**values).split("\n") if line.strip())
        level = application.identity.level
        out.append(
            (
                PayloadKind.MESSAGE,
                ZbpMessage(
                    stork_qaa_level=level.rank if level else 1,
                    mailboxUuid=mailbox,
                    sender=settings.sender_name,
                    title=texts.title.format(**values)[:255],
                    content=content,
                    service=service,
                    applicationId=zbp_application_id,
                    reference=file_number or application.id,
                    attachments=list(attachments) or None,
                ),
            )
        )
        return out
