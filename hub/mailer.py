"""Sending the alert mails (`hub.alerts`) over SMTP, through an outbox in the journal.

Each run (every `alerts.interval_seconds` in the running hub):

1. gathers the dead steps no mail has reported yet and queues one mail per route, in one journal
   transaction that also marks those steps reported: a crash queues both or neither;
2. once a day queues the mail on certificates about to expire (keyed by the date: queued once);
3. sends every queued mail that is due; a mail is marked sent only after the server accepted it. A
   mail the server could not take (down, refused, timeout) stays queued with its error and is tried
   again at the next run, after a restart too.

So nothing is lost, and a mail is sent twice only if the hub dies between the server's acceptance and
the journal's note of it; such a repeat carries the same Message-ID, by which mail systems and readers
recognise it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from hub.alerts import AlertDraft, AlertsConfig, CertificateExpiry, certificate_alert, dead_alerts
from hub.journal import Journal, QueuedAlert
from hub.metrics import Metrics

log = logging.getLogger(__name__)

KEEP_SENT_SECONDS = 90 * 86400  # sent mails stay in the outbox this long (what was told, and when)

# The server is not there (rather than refusing this one mail).
UNREACHABLE = (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, OSError)

# What lists the certificates and keys the hub uses that are about to expire or expired; None: none
# are looked at.
CertificateListing = Callable[[], Awaitable[Sequence[CertificateExpiry]]]


class Mailer:
    """Queues alert mails in the journal and hands them to the mail server."""

    def __init__(
        self,
        config: AlertsConfig,
        journal: Journal,
        metrics: Metrics,
        *,
        certificates: CertificateListing | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.journal = journal
        self.metrics = metrics
        self.certificates = certificates
        self.clock = clock
        self.runs = 0  # runs finished (the schedule's first one is at start)
        self._lock = asyncio.Lock()

    async def run(self) -> int:
        """Queue what is new, then send what is due; returns how many mails were sent."""
        async with self._lock:  # one run at a time: a mail is queued and sent once
            try:
                await self.journal.prune_alerts(self.clock() - KEEP_SENT_SECONDS)
                await self.gather()
                return await self.send_due()
            finally:
                self.runs += 1

    async def gather(self) -> int:
        """Queue the mails on newly dead steps and (once a day) expiring certificates; returns how many."""
        drafts: list[AlertDraft] = dead_alerts(self.config, await self.journal.unreported_dead())
        if self.certificates is not None:
            now = datetime.fromtimestamp(self.clock(), UTC)
            draft = certificate_alert(self.config, await self.certificates(), now)
            if draft is not None:
                drafts.append(draft)
        return await self.journal.queue_alerts(drafts) if drafts else 0

    async def send_due(self) -> int:
        """Send every queued mail that is due; one that fails waits for the next run.

        Once the server cannot be reached, the rest wait too: each would only wait for its timeout.
        """
        sent = 0
        for alert in await self.journal.due_alerts():
            try:
                await self._send(alert)
            except (aiosmtplib.SMTPException, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                retry_at = self.clock() + self.config.interval_seconds
                await self.journal.alert_failed(alert.id, error, retry_at)
                self.metrics.alert_mails.labels(alert.kind, "failed").inc()
                log.warning(
                    "alert mail not sent, tried again in %.0fs alert=%d kind=%s attempt=%d error=%s",
                    self.config.interval_seconds,
                    alert.id,
                    alert.kind,
                    alert.attempts + 1,
                    type(exc).__name__,
                )
                if isinstance(exc, UNREACHABLE):
                    break
                continue
            await self.journal.alert_sent(alert.id)
            self.metrics.alert_mails.labels(alert.kind, "sent").inc()
            sent += 1
            log.info(
                "alert mail sent alert=%d kind=%s recipients=%d", alert.id, alert.kind, len(alert.recipients)
            )
        return sent

    def message(self, alert: QueuedAlert) -> EmailMessage:
        """The mail for a queued alert; the same alert always gives the same Message-ID."""
        msg = EmailMessage()
        msg["From"] = self.config.from_
        msg["To"] = ", ".join(alert.recipients)
        msg["Subject"] = alert.subject
        msg["Date"] = format_datetime(datetime.fromtimestamp(alert.created_at, UTC))
        domain = self.config.from_.rpartition("@")[2]
        msg["Message-ID"] = f"<aktenhub-alert-{alert.id}-{int(alert.created_at)}@{domain}>"
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
        msg.set_content(alert.body)
        return msg

    async def check(self) -> tuple[bool, str]:
        """Whether the mail server takes a connection (with TLS and login as configured); sends nothing."""
        smtp = self.config.smtp
        where = f"{smtp.host}:{smtp.effective_port}"
        try:
            async with self._client() as client:
                if smtp.username is not None and smtp.password is not None:
                    await client.login(smtp.username, smtp.password.get_secret_value())
        except (aiosmtplib.SMTPException, OSError) as exc:
            return False, f"mail server {where}: {type(exc).__name__}: {exc}"
        login = " and the login" if smtp.username is not None else ""
        return True, f"mail server {where} ({smtp.tls}) accepted the connection{login}"

    def _client(self) -> aiosmtplib.SMTP:
        smtp = self.config.smtp
        context = None
        if smtp.tls != "none":
            context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
        return aiosmtplib.SMTP(
            hostname=smtp.host,
            port=smtp.effective_port,
            use_tls=smtp.tls == "ssl",
            start_tls=smtp.tls == "starttls",
            tls_context=context,
            timeout=smtp.timeout_seconds,
        )

    async def _send(self, alert: QueuedAlert) -> None:
        smtp = self.config.smtp
        async with self._client() as client:
            if smtp.username is not None and smtp.password is not None:
                await client.login(smtp.username, smtp.password.get_secret_value())
            errors, _ = await client.send_message(self.message(alert))
        if errors:  # some recipients refused (all refused raises): the others have it, do not resend
            log.warning("alert mail refused for %d of its recipients alert=%d", len(errors), alert.id)
