"""``type: mailbox``: an e-mail Funktionspostfach read over IMAP — every message one application.

One poll logs in, selects the folder and looks at its messages in UID order. For each:

1. larger than allowed (RFC822.SIZE, before the download): quarantined;
2. downloaded (``BODY.PEEK[]``, \\Seen untouched), parsed; malformed beyond use or refused by the
   mapping file: quarantined;
3. the original (``message/rfc822``), the body and the attachments are written to the blob store and
   handed to the hub's intake, idempotent on the Message-ID (else a digest of the message);
4. only after that durable commit the message is moved to the done folder (MOVE, else COPY, \\Deleted,
   UID EXPUNGE). A crash in between finds it in the folder again: the intake answers "duplicate" and it
   is moved then — one application;
5. then, if configured, one acknowledgement by SMTP (at most once per application, never to automatic
   mail: `acknowledgement.py`).

Quarantined means: recorded in `ConnectorContext.held` with a reason and moved to the quarantine
folder; the poll goes on. An operator's ``close`` deletes it there, ``keep`` leaves it.

No UID watermark is kept: the folder is the work queue, emptied as messages are taken, so a new
UIDVALIDITY (a folder recreated) loses nothing. UIDs are remembered only within one UIDVALIDITY, for
messages taken whose move failed (moved at the next poll without a new download).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any, ClassVar

from hub import (
    Application,
    Attachment,
    BlobTooLarge,
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    HeldMessage,
    HeldMessages,
    HeldState,
    Intake,
    IntakeFunc,
    IntakeOutcome,
    Manifest,
    OriginalSubmission,
    Party,
    Permanent,
    Retryable,
    Source,
    utcnow,
)

from . import acknowledgement
from .config import MailboxConfig
from .idle import IdleWatcher
from .imap import ImapRefused, ImapSession, ImapTrouble, Waiting, on_thread
from .mapping import Refused
from .message import Mail, Unreadable, header_key, header_sender, parse_mail

log = logging.getLogger(__name__)

OVERSIZE, MALFORMED, REFUSED, INTAKE_REFUSED, INTAKE_FAILED = (
    "oversize",
    "malformed",
    "mapping_refused",
    "intake_refused",
    "intake_failed",
)
ACK_NAMESPACE = "mailbox-acknowledgement"
ACK_RECORD_DAYS = 400  # longer than any retention: an application is acknowledged once, ever
MAX_REPEATS = 10  # polls run back to back while IDLE keeps reporting new mail


class MailboxSource(Source[MailboxConfig]):
    """Reads an IMAP folder: download, durable intake, then move to the done folder."""

    kind = "mailbox"
    manifest = Manifest(
        name="E-Mail-Funktionspostfach (IMAP)",
        version="0.1.0",
        standards=(
            "IMAP4rev1 (RFC 3501) with IDLE (RFC 2177), MOVE (RFC 6851), UIDPLUS (RFC 4315)",
            "Internet Message Format (RFC 5322), MIME (RFC 2045-2049)",
            "Automatic responses (RFC 3834)",
        ),
        description="each e-mail of a Funktionspostfach an application: original .eml, body, attachments",
    )
    Config: ClassVar[type[ConnectorConfig]] = MailboxConfig

    def __init__(self, config: MailboxConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.poll_interval = config.poll_seconds
        self.mapping = config.mail_rules()
        self.watcher: IdleWatcher | None = None
        self._polling = False
        self._woken = False
        # Taken, but the move failed: (UIDVALIDITY, UID) -> application id, moved at the next poll.
        self._unmoved: dict[tuple[int, int], str] = {}
        self.last_poll: dict[str, Any] = {}

    @property
    def held(self) -> HeldMessages:
        """The register of messages this source could not take."""
        return self.context.held.with_backoff(self.config.fetch_backoff)

    async def stop(self) -> None:
        """Stop the IDLE watcher."""
        if self.watcher is not None:
            await self.watcher.stop()
            self.watcher = None

    async def check(self) -> CheckResult:
        """Log in and select the folders; a missing done or quarantine folder is reported."""
        try:
            session = await on_thread(ImapSession.open, self.config.imap)
        except (ImapRefused, ImapTrouble) as exc:
            return CheckResult(ok=False, message=str(exc))
        try:
            details: dict[str, str] = {}
            missing = []
            for role, folder in self._folders().items():
                if await on_thread(session.exists, folder):
                    uidvalidity = await on_thread(session.select, folder)
                    details[role] = f"{folder} (UIDVALIDITY {uidvalidity})"
                else:
                    missing.append(f"{role} folder {folder!r}")
            details["idle"] = "offered" if await on_thread(session.has, "IDLE") else "not offered: polling"
            details["move"] = "MOVE" if await on_thread(session.has, "MOVE") else "COPY + EXPUNGE"
        except ImapTrouble as exc:
            return CheckResult(ok=False, message=str(exc))
        finally:
            await on_thread(session.close)
        if missing:
            later = " (created at the first poll: create_folders)" if self.config.create_folders else ""
            return CheckResult(ok=False, message="missing: " + ", ".join(missing) + later, details=details)
        return CheckResult(ok=True, message="logged in, folders selected", details=details)

    async def diagnostics(self) -> dict[str, Any]:
        """Redacted state: configuration without secrets, the IDLE watcher, the last poll's counts."""
        found = await super().diagnostics()
        found["config"]["imap"].pop("password", None)
        found["idle"] = (
            "off"
            if self.watcher is None
            else {None: "connecting", True: "watching", False: "not offered"}[self.watcher.offered]
        )
        found["awaiting_move"] = len(self._unmoved)
        found["last_poll"] = self.last_poll
        return found

    def _folders(self) -> dict[str, str]:
        c = self.config
        return {"inbox": c.folder, "done": c.done_folder, "quarantine": c.quarantine_folder}

    def _heard_new_mail(self) -> None:
        # A poll running now might have listed the folder before this mail came: it repeats itself.
        if self._polling:
            self._woken = True
        elif self.wake_poll is not None:
            self.wake_poll()

    async def poll(self, intake: IntakeFunc) -> int:
        """Take the waiting messages in; returns how many became new applications."""
        self._polling = True
        taken = 0
        try:
            for _ in range(MAX_REPEATS):
                self._woken = False
                taken += await self._poll_once(intake)
                if not self._woken:
                    break
        finally:
            self._polling = False
        if self.watcher is None and self.config.idle and self.wake_poll is not None:
            self.watcher = IdleWatcher(self.config.imap, self.config.folder, self._heard_new_mail)
            self.watcher.start()
        return taken

    async def _poll_once(self, intake: IntakeFunc) -> int:
        session = await on_thread(ImapSession.open, self.config.imap)
        try:
            for folder in (self.config.done_folder, self.config.quarantine_folder):
                if self.config.create_folders and not await on_thread(session.exists, folder):
                    await on_thread(session.create, folder)
            uidvalidity = await on_thread(session.select, self.config.folder)
            uids = await on_thread(session.uids)
            taken = downloads = 0
            # Page by page: messages passed over without a download (held, awaiting their move) do not
            # count against max_per_poll, so however many wait at the head, those behind are reached.
            page = self.config.max_per_poll
            for start in range(0, len(uids), page):
                waiting = await on_thread(session.waiting, uids[start : start + page])
                records = await self.held.lookup([header_key(w.header) for w in waiting])
                for message in waiting:
                    if downloads >= self.config.max_per_poll:
                        break
                    new, downloaded = await self._one(
                        session, uidvalidity, message, records.get(header_key(message.header)), intake
                    )
                    taken += new
                    downloads += downloaded
            self.last_poll = {"at": utcnow().isoformat(), "waiting": len(uids), "taken": taken}
            return taken
        finally:
            await on_thread(session.close)

    async def _one(
        self,
        session: ImapSession,
        uidvalidity: int,
        message: Waiting,
        record: HeldMessage | None,
        intake: IntakeFunc,
    ) -> tuple[int, bool]:
        """Take one message: (1 if it became a new application, else 0; whether it was downloaded)."""
        key = header_key(message.header)
        if (uidvalidity, message.uid) in self._unmoved:
            await self._move_done(session, uidvalidity, message.uid)
            return 0, False
        if record is not None and record.blocks_fetch(utcnow()):
            if record.state == HeldState.QUARANTINED:  # its move to quarantine failed before
                await self._move(session, message.uid, self.config.quarantine_folder)
            return 0, False
        limit = self._size_limit()
        if message.size > limit:
            reason = f"message of {message.size} bytes exceeds the limit of {limit} bytes"
            await self._quarantine(session, message, OVERSIZE, reason)
            return 0, False
        raw = await on_thread(session.fetch, message.uid)
        if raw is None:
            return 0, True  # gone meanwhile (another client took it)
        try:
            mail = parse_mail(raw)
            decided = self.mapping.decide(mail, self.config.service)
            if isinstance(decided, Refused):
                await self._quarantine(session, message, REFUSED, decided.reason)
                return 0, True
            application = await self.application(mail, decided.service, decided.fields)
            outcome = await intake(Intake(application))
        except Unreadable as exc:
            await self._quarantine(session, message, MALFORMED, str(exc))
            return 0, True
        except BlobTooLarge as exc:
            await self._quarantine(session, message, OVERSIZE, str(exc))
            return 0, True
        except Permanent as exc:  # e.g. no route takes the service: an operator must look
            await self._quarantine(session, message, INTAKE_REFUSED, str(exc))
            return 0, True
        except (OSError, Retryable):
            raise  # the hub's own trouble (journal, disk): not this message's fault
        except Exception as exc:
            # Something in this message trips the reader: back off, quarantine after the last try.
            await self.held.fetch_failed(
                key,
                sender=header_sender(message.header),
                code=INTAKE_FAILED,
                reason=f"{type(exc).__name__}: {exc}",
            )
            return 0, True
        self._unmoved[(uidvalidity, message.uid)] = outcome.application_id
        await self._move_done(session, uidvalidity, message.uid)
        if record is not None and record.state == HeldState.RETRYING:
            await self.held.taken(key)
        await self._acknowledge(mail, outcome)
        return (0 if outcome.duplicate else 1), True

    def _size_limit(self) -> int:
        store = self.context.blobs.max_size
        own = int(self.config.max_message_size)
        return own if store is None else min(own, store)

    async def _quarantine(self, session: ImapSession, message: Waiting, code: str, reason: str) -> None:
        """Record the message as held, then move it to the quarantine folder."""
        await self.held.quarantine(
            header_key(message.header), sender=header_sender(message.header), code=code, reason=reason
        )
        await self._move(session, message.uid, self.config.quarantine_folder)

    async def _move_done(self, session: ImapSession, uidvalidity: int, uid: int) -> None:
        # Taken durably: a failed move is tried again at the next poll, without a new download.
        if await self._move(session, uid, self.config.done_folder):
            self._unmoved.pop((uidvalidity, uid), None)

    async def _move(self, session: ImapSession, uid: int, folder: str) -> bool:
        """Move a message; a refusal (e.g. a missing folder) is logged and the poll goes on."""
        try:
            await on_thread(session.move, uid, folder)
        except ImapTrouble as exc:
            log.warning(
                "imap move failed, tried again next poll source=%s folder=%s: %s", self.name, folder, exc
            )
            return False
        return True

    async def _acknowledge(self, mail: Mail, outcome: IntakeOutcome) -> None:
        settings = self.config.acknowledgement
        if settings is None:
            return
        reason = acknowledgement.no_reply_reason(mail, settings)
        if reason is not None:
            log.info(
                "no acknowledgement source=%s application=%s reason=%s",
                self.name,
                outcome.application_id,
                reason,
            )
            return
        # Recorded before sending: a crash in between loses this acknowledgement rather than repeating it.
        until = utcnow() + timedelta(days=ACK_RECORD_DAYS)
        first = await self.context.once(
            f"{ACK_NAMESPACE}:{self.name}", outcome.application_id, secrets.token_hex(8), until
        )
        if not first:
            return
        reply = acknowledgement.acknowledgement(mail, settings, outcome.application_id)
        try:
            await acknowledgement.send(reply, settings)
        except Retryable as exc:
            log.warning(
                "acknowledgement not sent source=%s application=%s: %s",
                self.name,
                outcome.application_id,
                exc,
            )
            return
        log.info("acknowledgement sent source=%s application=%s", self.name, outcome.application_id)

    async def application(self, mail: Mail, service: str, fields: dict[str, str]) -> Application:
        """The application for a message, its files written to the blob store."""
        blobs = self.context.blobs
        original = await blobs.write_bytes(mail.raw)
        attachments = []
        for file in mail.files:
            info = await blobs.write_bytes(file.data)
            attachments.append(
                Attachment(
                    name=file.name,
                    media_type=file.media_type,
                    size=info.size,
                    sha256=info.sha256,
                    blob=info.ref,
                )
            )
        form: dict[str, Any] = {
            "mail_from": mail.sender,
            "mail_to": mail.to,
            "mail_subject": mail.subject,
            "mail_date": mail.date,
            "mail_message_id": mail.message_id,
            **fields,
        }
        if mail.defects:
            form["mail_defects"] = mail.defects
        return Application(
            source=self.name,
            external_id=mail.key,
            service=service,
            applicant=Party(email=mail.sender),
            form=form,
            attachments=attachments,
            original=OriginalSubmission(
                media_type="message/rfc822", blob=original.ref, size=original.size, sha256=original.sha256
            ),
            correlations={"email": mail.key},
        )

    async def close_upstream(self, message_id: str) -> None:
        """Delete a held message from the quarantine folder for good (an operator decided so)."""
        session = await on_thread(ImapSession.open, self.config.imap)
        try:
            await on_thread(session.select, self.config.quarantine_folder)
            for message in await on_thread(session.waiting, await on_thread(session.uids)):
                if header_key(message.header) == message_id:
                    await on_thread(session.delete, message.uid)
        finally:
            await on_thread(session.close)
