"""The automatic acknowledgement: an RFC 3834 auto-reply to the sender, after the durable intake.

Loop protection (RFC 3834 section 2): no reply to mail that is itself automatic (``Auto-Submitted``
other than ``no``), to bounces (null Return-Path ``<>``, MAILER-DAEMON, postmaster), to list or bulk
mail (``List-Id``, ``Precedence: bulk|list|junk``) or to our own addresses. The reply carries
``Auto-Submitted: auto-replied`` and ``In-Reply-To``/``References``, and goes to the Return-Path (the
envelope sender) where there is one, else to the From address.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from string import Template

import aiosmtplib

from hub import Retryable, utcnow

from .config import AcknowledgementSettings, TlsMode
from .message import Mail

BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
BULK = ("bulk", "list", "junk")


def no_reply_reason(mail: Mail, settings: AcknowledgementSettings) -> str | None:
    """Why this message gets no acknowledgement (a short fixed code); None: it gets one."""
    if mail.auto_submitted is not None and mail.auto_submitted.split(";")[0].strip().lower() != "no":
        return "auto-submitted"
    if mail.return_path == "":
        return "bounce"
    recipient = reply_address(mail)
    if recipient is None:
        return "no-address"
    if recipient.partition("@")[0].lower() in BOUNCE_SENDERS or (
        mail.sender is not None and mail.sender.partition("@")[0] in BOUNCE_SENDERS
    ):
        return "bounce"
    if mail.list_id is not None or (mail.precedence or "").strip().lower() in BULK:
        return "list"
    own = {a.lower() for a in (settings.sender, *settings.own_addresses)}
    if recipient.lower() in own or (mail.sender or "") in own:
        return "own-address"
    return None


def reply_address(mail: Mail) -> str | None:
    """Where an automatic reply goes: the Return-Path, else the From address."""
    return mail.return_path or mail.sender


def acknowledgement(mail: Mail, settings: AcknowledgementSettings, application_id: str) -> EmailMessage:
    """The acknowledgement of `mail`, taken in as `application_id`."""
    values = {
        "application_id": application_id,
        "subject": mail.subject,
        "received_at": utcnow().strftime("%d.%m.%Y %H:%M UTC"),
    }
    reply = EmailMessage()
    reply["From"] = settings.sender
    reply["To"] = reply_address(mail) or ""
    reply["Subject"] = " ".join(Template(settings.subject).safe_substitute(values).split())  # one line
    reply["Date"] = format_datetime(utcnow())
    reply["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    reply["Auto-Submitted"] = "auto-replied"
    if mail.message_id and not mail.message_id.startswith("sha256:"):
        reply["In-Reply-To"] = f"<{mail.message_id}>"
        reply["References"] = f"<{mail.message_id}>"
    reply.set_content(Template(settings.body).safe_substitute(values))
    return reply


async def send(reply: EmailMessage, settings: AcknowledgementSettings) -> None:
    """Hand the acknowledgement to the SMTP relay; `Retryable` if it does not take it."""
    smtp = settings.smtp
    try:
        await aiosmtplib.send(
            reply,
            hostname=smtp.host,
            port=smtp.resolved_port,
            use_tls=smtp.tls == TlsMode.IMPLICIT,
            start_tls=smtp.tls == TlsMode.STARTTLS,
            tls_context=smtp.ssl_context(),
            username=smtp.user,
            password=smtp.password.get_secret_value() if smtp.password is not None else None,
            timeout=smtp.timeout_seconds,
            # Named rather than looked up: the system's FQDN lookup can stall on a host without DNS.
            local_hostname=smtp.helo_name or settings.sender.rpartition("@")[2] or None,
            # The envelope sender is empty, as RFC 3834 asks: a bounce of the reply goes nowhere.
            sender="",
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise Retryable(f"SMTP relay did not take the acknowledgement: {type(exc).__name__}") from None
