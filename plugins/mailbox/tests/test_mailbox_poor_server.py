"""A server without MOVE and IDLE: messages are copied, flagged \\Deleted and expunged one by one, and
the folder is read on schedule only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mailbox_helpers import mail, poll, source, start

from hub.journal import ApplicationFilter
from hub.localservers import DovecotServer, ImapAccount, find_dovecot, start_dovecot
from hub.testing.servers import unavailable

DONE = "Aktenhub-Erledigt"


@pytest.fixture(scope="module")
def poor_server() -> Iterator[DovecotServer]:
    binary = find_dovecot()
    if binary is None:
        unavailable("no Dovecot binary (/usr/sbin/dovecot): install Debian's dovecot-imapd")
    # What Dovecot announces after login, less MOVE and IDLE (it announces STARTTLS before login only).
    server = start_dovecot(binary, settings="imap_capability = IMAP4rev1 LITERAL+ UIDPLUS NAMESPACE")
    yield server
    server.remove()


@pytest.fixture
def poor_account(poor_server: DovecotServer) -> ImapAccount:
    return poor_server.add_account()


async def test_without_move_copy_and_uid_expunge_and_without_idle_polling_only(
    hub_factory: Any, poor_account: ImapAccount
) -> None:
    poor_account.append(mail("Erster", message_id="<poor-1@example.net>", attachments=False))
    poor_account.append(mail("Zweiter", message_id="<poor-2@example.net>", attachments=False))
    running = await start(hub_factory, poor_account, intake=True)  # the hub polls at start
    mailbox = source(running)

    async def both_taken() -> bool:
        found = await running.journal.list_applications(ApplicationFilter(), limit=10)
        return len(found) == 2

    await running.wait_for(both_taken, timeout=20, what="the first scheduled poll took both")
    assert poor_account.messages() == [] and len(poor_account.messages(DONE)) == 2
    await running.wait_for(
        lambda: mailbox.watcher is not None and mailbox.watcher.offered is False,
        timeout=20,
        what="IDLE found missing",
    )
    assert (await mailbox.diagnostics())["idle"] == "not offered"
    assert (await mailbox.check()).details["move"] == "COPY + EXPUNGE"

    # Later mail waits for the next poll (here the test's own: the schedule's is an hour away).
    poor_account.append(mail("Dritter", message_id="<poor-3@example.net>", attachments=False))
    [outcome] = await poll(running)
    assert not outcome.duplicate and len(poor_account.messages(DONE)) == 3
