"""The test kit's IMAP server: a throw-away Dovecot (`hub.localservers`) per test session, a fresh
account per test.

Without the Dovecot binary (Debian's ``dovecot-imapd``, ``/usr/sbin/dovecot`` or ``$AKTENHUB_DOVECOT``)
the tests that need it are skipped, with the reason, except in CI (``CI=true``), where they fail: there
`.ci/run` installs it.

Fixtures (loaded with the test kit's pytest plugin):

- ``dovecot_server``: the session's `DovecotServer` (implicit TLS on ``port``, STARTTLS on
  ``starttls_port``, IDLE, MOVE, UIDPLUS);
- ``imap_account``: a fresh `ImapAccount` (its own user, password and empty INBOX) for one test, with
  helpers to put a message into a folder (APPEND), read a folder's messages and create folders.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.localservers import DovecotServer, ImapAccount, find_dovecot, start_dovecot
from hub.testing.servers import unavailable

__all__ = ["DovecotServer", "ImapAccount", "dovecot_server", "imap_account"]


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """A Dovecot for the whole test session (skipped outside CI without the binary)."""
    binary = find_dovecot()
    if binary is None:
        unavailable("no Dovecot binary (/usr/sbin/dovecot): install Debian's dovecot-imapd")
    server = start_dovecot(binary)
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def imap_account(dovecot_server: DovecotServer) -> ImapAccount:
    """A fresh account on the session's Dovecot, its INBOX empty."""
    return dovecot_server.add_account()
