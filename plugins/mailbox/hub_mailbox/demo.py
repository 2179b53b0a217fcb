"""The e-mail part of `aktenhub demo`: citizens write to the Ausländerbehörde's Funktionspostfach.

A throw-away Dovecot (`hub.localservers`, the test kit's server) holds the Funktionspostfach; the hub
reads it over IMAPS with IDLE. Three e-mails become applications filed into enaio: two name the same
Aktenzeichen in the subject (the mail rules put it into the form, the route's mapping files both into
that Akte), one names none (a new Posteingangsakte). A newsletter is refused by the mail rules and held
in quarantine. Without Dovecot (Debian's ``dovecot-imapd``) the scenario says so and sends nothing.
"""

from __future__ import annotations

import asyncio
import atexit
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from hub import Application, ApplicationState, DemoRun, DemoScenario, DemoSite, Expectation
from hub.localservers import DovecotServer, DovecotUnavailable, ImapAccount, find_dovecot, start_dovecot

SOURCE = "funktionspostfach"
PASSWORD = "MAILBOX_PASSWORD"  # noqa: S105 - the name of the demo's secret, not a secret
AKTENZEICHEN = "32.1-AT-2026-0815"
OBJECT_TYPES = ["Posteingangsakte", "Posteingang", "EMail", "EMailAnlage"]


def _mail(n: int, subject: str, sender: str, attachment: tuple[str, bytes] | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "auslaenderbehoerde@kreis.example"
    message["Subject"] = subject
    message["Date"] = "Mon, 07 Dec 2026 09:00:00 +0100"
    message["Message-ID"] = f"<demo-{n}@mail.example.net>"
    message.set_content(f"Sehr geehrte Damen und Herren,\n\n{subject}.\n\nMit freundlichen Grüßen")
    if attachment is not None:
        message.add_attachment(attachment[1], maintype="application", subtype="pdf", filename=attachment[0])
    return message.as_bytes(policy=SMTP)


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
SAMPLES = [
    (1, "Antrag auf Verlängerung meiner Aufenthaltserlaubnis", "a.nowak@example.net", ("Reisepass.pdf", PDF)),
    (2, f"Nachreichung zu {AKTENZEICHEN}: Arbeitsvertrag", "o.kovalenko@example.net", ("Vertrag.pdf", PDF)),
    (3, f"Terminwunsch zu {AKTENZEICHEN}", "o.kovalenko@example.net", None),
]
NEWSLETTER = (4, "Newsletter Dezember", "news@verlag.example", None)


class MailboxScenario(DemoScenario):
    """E-mails into a throw-away Dovecot, read by the ``mailbox`` source, filed into enaio."""

    name = "mailbox"
    requires = ("enaio",)
    inbound = "E-Mail (IMAP)"

    def __init__(self) -> None:
        self.server: DovecotServer | None = None
        self.account: ImapAccount | None = None
        self.skipped: str | None = None

    async def prepare(self, site: DemoSite) -> None:
        binary = find_dovecot()
        if binary is None:
            self._skip("no Dovecot here (install Debian's dovecot-imapd)")
            return
        try:
            self.server = await asyncio.to_thread(start_dovecot, binary)
        except (DovecotUnavailable, OSError) as exc:
            self._skip(f"Dovecot did not start: {exc}")
            return
        atexit.register(self.server.remove)  # the demo has no teardown of its own: gone with the process
        self.account = self.server.add_account(site.secret(PASSWORD))

    def _skip(self, reason: str) -> None:
        self.skipped = reason
        self.inbound = "E-Mail (skipped)"

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        if self.account is None:
            return {}
        rules = site.mapping("funktionspostfach.yaml").parents[1] / "mail" / "funktionspostfach-rules.yaml"
        return {
            SOURCE: {
                "type": "mailbox",
                "imap": {
                    "host": self.account.host,
                    "port": self.account.port,
                    "ca_file": str(self.account.ca_file),
                    "user": self.account.user,
                    "password": site.secret_reference(PASSWORD),
                },
                "mapping": str(rules),
                "poll_seconds": 30,  # IDLE takes new mail at once; the poll is the safety net
            },
            "enaio": {"object_types": OBJECT_TYPES},
        }

    def routes(self, site: DemoSite) -> list[dict[str, Any]]:
        if self.account is None:
            return []
        return [
            {
                "name": "funktionspostfach",
                "from": SOURCE,
                "map": str(site.mapping("funktionspostfach.yaml")),
                "to": ["enaio"],
            }
        ]

    async def submit(self, run: DemoRun) -> None:
        account = self.account
        if account is None:
            return
        tally = run.tally("E-mails into the Funktionspostfach", len(SAMPLES) + 1)
        for n, subject, sender, attachment in [*SAMPLES, NEWSLETTER]:
            await asyncio.to_thread(account.append, _mail(n, subject, sender, attachment))
            tally.advance()
            if n != NEWSLETTER[0]:
                external_id = f"demo-{n}@mail.example.net"
                run.expect(
                    Expectation(state=ApplicationState.COMPLETED, source=SOURCE, external_id=external_id)
                )

    async def check(self, application: Application, state: ApplicationState, run: DemoRun) -> list[str]:
        if application.source != SOURCE or self.account is None:
            return []
        problems = []
        subject = str(application.form.get("mail_subject") or "")
        if AKTENZEICHEN in subject and application.form.get("aktenzeichen") != AKTENZEICHEN:
            problems.append("the Aktenzeichen in the subject was not mapped")
        if await asyncio.to_thread(self.account.messages):
            problems.append("mail left in the INBOX after its intake")
        return problems

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        if self.account is None:
            return [("E-mail Funktionspostfach", f"skipped: {self.skipped}")]
        account = self.account
        return [
            (
                "E-mail Funktionspostfach",
                f"IMAPS 127.0.0.1:{account.port}, user {account.user}, CA {account.ca_file}; "
                "the newsletter waits in quarantine: aktenhub messages",
            )
        ]
