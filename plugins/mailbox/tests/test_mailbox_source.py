"""The mailbox source against a real Dovecot: e-mails APPENDed to the INBOX, the hub polling it."""

from __future__ import annotations

import hashlib
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from hub_mailbox import MailMapping, parse_mail
from hub_mailbox.mapping import Mapped, Refused
from mailbox_helpers import PDF, PNG, mail, poll, source, start

from hub import Application, HeldMessage, HeldState, IntakeOutcome
from hub.errors import ConfigError
from hub.held import HeldFilter
from hub.journal import ApplicationFilter
from hub.testing import RunningHub, SourceContract
from hub.testing.imap import ImapAccount

DONE, QUARANTINE = "Aktenhub-Erledigt", "Aktenhub-Quarantaene"


async def applications(running: RunningHub) -> list[Application]:
    found: list[Application] = await running.journal.list_applications(ApplicationFilter(), limit=1000)
    return found


async def held_messages(running: RunningHub) -> list[HeldMessage]:
    found: list[HeldMessage] = await running.journal.list_held(HeldFilter())
    return found


async def blob(running: RunningHub, ref: str) -> bytes:
    data: bytes = await running.hub.blobs.read_bytes(ref)
    return data


class TestMailboxContract(SourceContract):
    """Each submission is an e-mail in the INBOX; the same `n` is the same message (Message-ID)."""

    @pytest.fixture
    async def source_hub(self, hub_factory: Any, imap_account: ImapAccount) -> RunningHub:
        self.account = imap_account
        return await start(hub_factory, imap_account)

    async def submit(self, running: RunningHub, n: int) -> IntakeOutcome:
        self.account.append(mail(f"Antrag {n}", message_id=f"<antrag-{n}@example.net>"))
        [outcome] = await poll(running)
        assert self.account.messages() == []  # moved to the done folder after the intake
        return outcome

    async def test_malformed_changes_nothing(self, source_hub: RunningHub) -> None:
        """Differs by design: no sender waits for an answer; a malformed message goes to quarantine,
        is held for an operator, and nothing is stored."""
        self.account.append(b"\x00\x01garbage without any header\r\n")
        assert await poll(source_hub) == []
        assert await self._count(source_hub) == 0
        assert len(self.account.messages(QUARANTINE)) == 1
        [held] = await held_messages(source_hub)
        assert held.reason_code == "malformed"


async def test_mail_with_attachments_is_one_application_once_after_restarts(
    hub_factory: Any, imap_account: ImapAccount
) -> None:
    raw = mail(message_id="<antrag-1@example.net>")
    imap_account.append(raw)
    running = await start(hub_factory, imap_account)
    [outcome] = await poll(running)
    assert not outcome.duplicate
    app = await running.journal.get_application(outcome.application_id)
    assert app.external_id == "antrag-1@example.net"
    assert app.original is not None and app.original.media_type == "message/rfc822"
    assert await blob(running, app.original.blob) == raw
    files = {a.name: a for a in app.attachments}
    assert set(files) == {
        "nachricht.txt",
        "nachricht.html",
        "anhang-1.png",
        "Reisepass.pdf",
        "Arbeitsvertrag.eml",
    }
    assert await blob(running, files["Reisepass.pdf"].blob) == PDF
    assert files["Reisepass.pdf"].sha256 == hashlib.sha256(PDF).hexdigest()
    assert await blob(running, files["anhang-1.png"].blob) == PNG
    assert "anbei mein Antrag" in (await blob(running, files["nachricht.txt"].blob)).decode()
    assert (
        message_from_bytes(await blob(running, files["Arbeitsvertrag.eml"].blob))["Subject"]
        == "Arbeitsvertrag"
    )
    assert app.form["mail_subject"] == "Antrag auf Aufenthaltserlaubnis"
    assert app.applicant.email == "erika.mustermann@example.net"
    assert imap_account.messages() == [] and len(imap_account.messages(DONE)) == 1

    # The same message delivered again, read by a restarted hub on the same journal: still one.
    await running.hub.stop()
    imap_account.append(raw)
    again = await start(hub_factory, imap_account, subdir="hub")
    [repeat] = await poll(again)
    assert repeat.duplicate and repeat.application_id == outcome.application_id
    assert len(await applications(again)) == 1
    assert imap_account.messages() == [] and len(imap_account.messages(DONE)) == 2


class Crash(BaseException):
    """The hub dies here: nothing after this point of the poll runs."""


async def test_killed_between_intake_and_move_takes_the_message_once(
    hub_factory: Any, imap_account: ImapAccount
) -> None:
    imap_account.append(mail(message_id="<crash-1@example.net>"))
    running = await start(hub_factory, imap_account)

    async def intake_then_die(submission: Any) -> IntakeOutcome:
        await running.hub.intake(submission)  # committed ...
        raise Crash  # ... and the process gone before the MOVE

    with pytest.raises(Crash):
        await source(running).poll(intake_then_die)
    assert len(await applications(running)) == 1
    assert len(imap_account.messages()) == 1  # still in the INBOX: not acknowledged
    await running.hub.stop()

    restarted = await start(hub_factory, imap_account, subdir="hub")
    [outcome] = await poll(restarted)
    assert outcome.duplicate
    assert len(await applications(restarted)) == 1
    assert imap_account.messages() == [] and len(imap_account.messages(DONE)) == 1


async def test_subject_aktenzeichen_and_sender_domain_mapped(
    hub_factory: Any, imap_account: ImapAccount, tmp_path: Path
) -> None:
    mapping = tmp_path / "mail-mapping.yaml"
    mapping.write_text(
        "rules:\n"
        "  - name: aktenzeichen\n"
        "    subject: '(?P<aktenzeichen>\\d{2}-\\d{4}-\\d{5})'\n"
        "    service: nachreichung\n"
        "  - sender_domains: [bauamt.example]\n"
        "    service: amtshilfe\n"
        "    fields: {kanal: behoerde}\n"
        "  - subject: '(?i)newsletter'\n"
        "    refuse: Newsletter werden nicht angenommen\n"
    )
    imap_account.append(mail("Nachreichung zu 63-2026-00042, Unterlagen", attachments=False))
    imap_account.append(mail("Amtshilfe", sender="sachbearbeitung@bauamt.example", attachments=False))
    imap_account.append(mail("Unser Newsletter", attachments=False))
    running = await start(hub_factory, imap_account, mapping=str(mapping))
    outcomes = await poll(running)
    assert len(outcomes) == 2
    first, second = [await running.journal.get_application(o.application_id) for o in outcomes]
    assert first.service == "nachreichung"
    assert first.form["aktenzeichen"] == "63-2026-00042" and first.form["mail_rule"] == "aktenzeichen"
    assert second.service == "amtshilfe" and second.form["kanal"] == "behoerde"
    [held] = await held_messages(running)
    assert held.state == HeldState.QUARANTINED and held.reason_code == "mapping_refused"
    assert len(imap_account.messages(QUARANTINE)) == 1 and imap_account.messages() == []


async def test_oversize_and_malformed_go_to_quarantine_and_the_poll_goes_on(
    hub_factory: Any, imap_account: ImapAccount
) -> None:
    imap_account.append(mail("Groß", message_id="<big@example.net>"))  # ~13 KB with attachments
    imap_account.append(b"\xff\xfe\x00 no header at all \x00\r\n")
    imap_account.append(mail("Klein", message_id="<small@example.net>", attachments=False))
    running = await start(hub_factory, imap_account, max_message_size=4000)
    [outcome] = await poll(running)
    app = await running.journal.get_application(outcome.application_id)
    assert app.external_id == "small@example.net"
    held = {h.reason_code: h for h in await held_messages(running)}
    assert set(held) == {"oversize", "malformed"}
    assert held["oversize"].message_id == "big@example.net"
    assert all(h.state == HeldState.QUARANTINED for h in held.values())
    assert len(imap_account.messages(QUARANTINE)) == 2 and imap_account.messages() == []

    # An operator closes the oversize one: it is deleted from the quarantine folder.
    await source(running).close_upstream("big@example.net")
    assert len(imap_account.messages(QUARANTINE)) == 1


async def test_untrusted_certificate_is_refused(hub_factory: Any, imap_account: ImapAccount) -> None:
    imap_account.append(mail(attachments=False))
    running = await start(hub_factory, imap_account, imap={"ca_file": None})
    result = await source(running).check()
    assert not result.ok and "not trusted" in result.message
    with pytest.raises(Exception, match="not trusted"):
        await poll(running)
    assert await applications(running) == [] and len(imap_account.messages()) == 1


async def test_starttls_and_check_report_missing_folders(hub_factory: Any, imap_account: ImapAccount) -> None:
    running = await start(
        hub_factory, imap_account, imap={"port": imap_account.starttls_port, "tls": "starttls"}
    )
    result = await source(running).check()
    assert (
        not result.ok and "Aktenhub-Erledigt" in result.message and "Aktenhub-Quarantaene" in result.message
    )
    imap_account.create_folder(DONE, QUARANTINE)
    result = await source(running).check()
    assert result.ok, result.message
    assert result.details["idle"] == "offered"
    diagnostics = await source(running).diagnostics()
    assert imap_account.password not in repr(diagnostics)
    assert diagnostics["config"]["imap"]["tls"] == "starttls"


async def test_idle_wakes_the_poll_at_once(hub_factory: Any, imap_account: ImapAccount) -> None:
    running = await start(hub_factory, imap_account, intake=True)  # poll_seconds 3600: only IDLE wakes it
    mailbox = source(running)
    await running.wait_for(
        lambda: mailbox.watcher is not None and mailbox.watcher.watching.is_set(), timeout=20
    )
    imap_account.append(mail("Per IDLE", message_id="<idle-1@example.net>", attachments=False))

    async def taken() -> bool:
        return len(await applications(running)) == 1 and imap_account.messages() == []

    await running.wait_for(taken, timeout=20, what="the IDLE-woken poll took the message")


def test_the_example_mail_rules_map_an_aktenzeichen_and_refuse_newsletters() -> None:
    rules = MailMapping.load(Path(__file__).parents[3] / "config" / "mail" / "funktionspostfach-rules.yaml")
    mapped = rules.decide(parse_mail(mail("Nachreichung zu 32.1-AT-2026-0815", attachments=False)), "email")
    assert isinstance(mapped, Mapped) and mapped.fields["aktenzeichen"] == "32.1-AT-2026-0815"
    assert isinstance(rules.decide(parse_mail(mail("Unser NEWSLETTER", attachments=False)), "email"), Refused)


async def test_a_broken_mail_rules_file_is_refused_at_start_naming_it(
    hub_factory: Any, imap_account: ImapAccount, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - subject: '(unclosed'\n    service: email\n")
    with pytest.raises(ConfigError, match=r"rules\.yaml"):
        await start(hub_factory, imap_account, mapping=str(rules))


DAMAGED = (
    b"From: erika.mustermann@example.net\r\n"
    b"Subject: Unterlagen\r\n"
    b"Message-ID: <damaged-1@example.net>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=x-unknown-charset\r\n"
    b"\r\n"
    b"Gr\xfc\xdfe, anbei der Nachweis.\r\n"
    b"--b1\r\n"
    b'Content-Type: application/pdf; name="Nachweis.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="../../Nachweis.pdf"\r\n'
    b"\r\n"
    b"JVBERi0xLjQKJSVFT0YK=\r\n"  # base64 with a stray pad: readable, a defect
)  # and no closing boundary


async def test_damaged_mime_is_taken_with_its_defects_noted(
    hub_factory: Any, imap_account: ImapAccount
) -> None:
    imap_account.append(DAMAGED)
    running = await start(hub_factory, imap_account)
    [outcome] = await poll(running)
    app = await running.journal.get_application(outcome.application_id)
    assert "CloseBoundaryNotFoundDefect" in app.form["mail_defects"]
    files = {a.name: a for a in app.attachments}
    assert set(files) == {"nachricht.txt", "Nachweis.pdf"}  # no path taken from the file name
    assert (await blob(running, files["Nachweis.pdf"].blob)).startswith(b"%PDF-1.4")
    assert "Grüße" in (await blob(running, files["nachricht.txt"].blob)).decode()  # unknown charset: Latin-1
    assert imap_account.messages() == []


async def test_a_message_waiting_out_its_back_off_does_not_use_up_max_per_poll(
    hub_factory: Any, imap_account: ImapAccount
) -> None:
    imap_account.append(mail("Hängt", message_id="<stuck@example.net>", attachments=False))
    imap_account.append(mail("Dahinter", message_id="<behind@example.net>", attachments=False))
    running = await start(hub_factory, imap_account, max_per_poll=1)
    # Reading it failed once before: it is not fetched again before its back-off (60 s) has passed.
    await source(running).held.fetch_failed(
        "stuck@example.net", sender=None, code="intake_failed", reason="x"
    )
    [outcome] = await poll(running)
    app = await running.journal.get_application(outcome.application_id)
    assert app.external_id == "behind@example.net"
    assert len(imap_account.messages()) == 1  # the stuck one waits in the INBOX for its next try
