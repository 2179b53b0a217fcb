"""The automatic acknowledgement: sent by SMTP (STARTTLS) after the intake, once, never into a loop."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from mailbox_helpers import mail, poll, start

from hub.testing.imap import ImapAccount
from hub.testing.pki import make_pki

OURS = "auslaenderbehoerde@kreis.example"


class Relay:
    """An SMTP relay on loopback that demands STARTTLS and keeps what it is given."""

    def __init__(self, directory: Path, port: int) -> None:
        pki = make_pki(directory, prefix="smtp")
        self.ca = pki.ca
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.server_cert, pki.server_key)
        self.received: list[tuple[str, list[str], EmailMessage]] = []
        self.port = port
        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="relay.test",  # not looked up: the FQDN lookup stalls without DNS
            tls_context=context,
            require_starttls=True,
        )

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 OK"


@pytest.fixture
def relay(tmp_path: Path, reserved_port: Callable[[], int]) -> Iterator[Relay]:
    found = Relay(tmp_path, reserved_port())
    found.controller.start()
    yield found
    found.controller.stop()


def acknowledging(relay: Relay) -> dict[str, Any]:
    return {
        "acknowledgement": {
            "smtp": {"host": "127.0.0.1", "port": relay.port, "tls": "starttls", "ca_file": str(relay.ca)},
            "sender": OURS,
            "subject": "Eingangsbestätigung $application_id",
        }
    }


async def test_acknowledged_once_after_the_intake(
    hub_factory: Any, imap_account: ImapAccount, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raw = mail("Antrag auf Einbürgerung", message_id="<ack-1@example.net>", attachments=False)
    imap_account.append(raw)
    running = await start(hub_factory, imap_account, **acknowledging(relay))
    [outcome] = await poll(running)
    [(envelope_sender, recipients, reply)] = relay.received
    assert envelope_sender == "<>"  # RFC 3834: bounces of the reply go nowhere
    assert recipients == ["erika.mustermann@example.net"]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == "<ack-1@example.net>"
    assert reply["Subject"] == f"Eingangsbestätigung {outcome.application_id}"
    assert outcome.application_id in reply.get_content()

    imap_account.append(raw)  # the same message again: the same application, no second acknowledgement
    [again] = await poll(running)
    assert again.duplicate
    assert len(relay.received) == 1
    # Neither the address nor the subject in the hub's log at INFO or above (the test relay's own
    # log is not the hub's).
    ours = [r for r in caplog.records if r.levelno >= logging.INFO and not r.name.startswith("mail.")]
    assert ours and not [
        r for r in ours if "mustermann" in r.getMessage() or "Einbürgerung" in r.getMessage()
    ]


AUTOMATIC = [
    ({"Auto-Submitted": "auto-replied"}, "erika.mustermann@example.net"),  # an out-of-office reply
    ({"Return-Path": "<>"}, "erika.mustermann@example.net"),  # a bounce: null envelope sender
    ({}, "MAILER-DAEMON@mx.example.net"),
    ({"List-Id": "Verteiler <verteiler.example.net>"}, "erika.mustermann@example.net"),
    ({"Precedence": "bulk"}, "erika.mustermann@example.net"),
    ({}, OURS),  # our own acknowledgement come back
]


async def test_no_acknowledgement_to_automatic_list_or_own_mail(
    hub_factory: Any, imap_account: ImapAccount, relay: Relay
) -> None:
    for n, (headers, sender) in enumerate(AUTOMATIC):
        imap_account.append(mail(f"Automatisch {n}", sender=sender, attachments=False, headers=headers))
    running = await start(hub_factory, imap_account, **acknowledging(relay))
    outcomes = await poll(running)
    assert len(outcomes) == len(AUTOMATIC)  # taken in all the same
    assert relay.received == []
