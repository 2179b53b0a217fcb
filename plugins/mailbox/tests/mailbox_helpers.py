"""Helpers of the mailbox tests: e-mails as a mail client writes them, the hub's configuration."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from hub_mailbox import MailboxSource

from hub import IntakeOutcome
from hub.testing import RunningHub
from hub.testing.imap import ImapAccount

PASSWORD_ENV = "MAILBOX_PASSWORD"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def mail(
    subject: str = "Antrag auf Aufenthaltserlaubnis",
    *,
    sender: str = "erika.mustermann@example.net",
    message_id: str | None = None,
    attachments: bool = True,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A message with a text and an HTML body, a PDF, an inline image and a forwarded message."""
    msg = EmailMessage()
    msg["From"] = f"Erika Mustermann <{sender}>"
    msg["To"] = "auslaenderbehoerde@kreis.example"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 07 Dec 2026 09:00:00 +0100"
    msg["Message-ID"] = message_id or make_msgid(domain="example.net")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content("Sehr geehrte Damen und Herren,\nanbei mein Antrag.\nGrüße")
    if attachments:
        msg.add_alternative(
            "<p>Sehr geehrte Damen und Herren,<br>anbei mein Antrag.</p><img src='cid:logo'>", subtype="html"
        )
        msg.get_payload()[1].add_related(PNG, maintype="image", subtype="png", cid="<logo>")
        msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="Reisepass.pdf")
        forwarded = EmailMessage()
        forwarded["From"] = "arbeitgeber@example.com"
        forwarded["Subject"] = "Arbeitsvertrag"
        forwarded.set_content("Vertrag folgt.")
        msg.add_attachment(forwarded)
    return msg.as_bytes(policy=policy.SMTP)


def connector(account: ImapAccount, **settings: Any) -> dict[str, Any]:
    """The ``type: mailbox`` connector reading `account` over implicit TLS."""
    imap = {
        "host": account.host,
        "port": account.port,
        "user": account.user,
        "password": "${" + PASSWORD_ENV + "}",
        "ca_file": str(account.ca_file),
        **settings.pop("imap", {}),
    }
    return {"type": "mailbox", "imap": imap, "poll_seconds": 3600, **settings}


async def start(
    hub_factory: Any, account: ImapAccount, *, subdir: str = "hub", intake: bool = False, **settings: Any
) -> RunningHub:
    """A hub with the mailbox source feeding a recording sink; polls are the test's unless `intake`."""
    running: RunningHub = await hub_factory(
        {"mail": connector(account, **settings), "rec": {"type": "test-recording"}},
        [{"name": "post", "from": "mail", "to": ["rec"]}],
        env={PASSWORD_ENV: account.password},
        subdir=subdir,
        intake={"enabled": intake},
        workers={"concurrency": 2, "lease_seconds": 30, "idle_poll_seconds": 0.2, "enabled": False},
    )
    return running


def source(running: RunningHub) -> MailboxSource:
    found = running.hub.connectors["mail"]
    assert isinstance(found, MailboxSource)
    return found


async def poll(running: RunningHub) -> list[IntakeOutcome]:
    """One poll through the hub's intake; the outcomes of the intakes it made."""
    outcomes: list[IntakeOutcome] = []

    async def intake(submission: Any) -> IntakeOutcome:
        outcome = await running.hub.intake(submission)
        outcomes.append(outcome)
        return outcome

    with running.hub.holding():
        await source(running).poll(intake)
    return outcomes
