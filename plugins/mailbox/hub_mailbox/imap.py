"""The IMAP side of the Funktionspostfach: one blocking session (IMAPClient), run on a worker thread.

IMAPClient speaks IMAP4rev1 with STARTTLS, IDLE, MOVE and UIDPLUS; its calls block, so the source runs
each on a worker thread (`asyncio.to_thread`) and the IDLE watcher on a thread of its own (`idle.py`).
Messages are addressed by UID within one UIDVALIDITY of the folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from hub import Permanent, Retryable

from .config import ImapSettings, TlsMode

log = logging.getLogger(__name__)
T = TypeVar("T")

DELETED = b"\\Deleted"
HEADER = b"BODY[HEADER]"
WHOLE = b"BODY[]"
SIZE = b"RFC822.SIZE"


class ImapRefused(Permanent):
    """The IMAP server refused us (login, an untrusted certificate, a missing capability)."""


class ImapTrouble(Retryable):
    """The IMAP server could not be reached or broke off; the next poll tries again."""


@dataclass(frozen=True)
class Waiting:
    """A message waiting in the folder, as the overview shows it before its download."""

    uid: int
    size: int
    header: bytes


class ImapSession:
    """One logged-in IMAP session (blocking: call it on a worker thread)."""

    def __init__(self, client: IMAPClient) -> None:
        self.client = client

    @classmethod
    def open(cls, settings: ImapSettings) -> ImapSession:
        """Connect (implicit TLS, STARTTLS or, when written out, plain) and log in."""
        context = settings.ssl_context()
        try:
            client = IMAPClient(
                settings.host,
                port=settings.resolved_port,
                ssl=settings.tls == TlsMode.IMPLICIT,
                ssl_context=context,
                timeout=settings.timeout_seconds,
            )
        except ssl.SSLCertVerificationError as exc:
            raise ImapRefused(f"IMAP server certificate not trusted: {exc.verify_message}") from None
        except (OSError, IMAPClientError) as exc:
            raise ImapTrouble(f"IMAP server not reachable: {type(exc).__name__}: {exc}") from None
        session = cls(client)
        try:
            if settings.tls == TlsMode.STARTTLS:
                if not client.has_capability("STARTTLS"):
                    raise ImapRefused("IMAP server offers no STARTTLS (tls: starttls)")
                client.starttls(context)
            client.login(settings.user, settings.password.get_secret_value())
        except ssl.SSLCertVerificationError as exc:
            session.close()
            raise ImapRefused(f"IMAP server certificate not trusted: {exc.verify_message}") from None
        except LoginError:
            session.close()
            raise ImapRefused("IMAP login refused (user or password wrong)") from None
        except ImapRefused:
            session.close()
            raise
        except (OSError, IMAPClientError) as exc:
            session.close()
            raise ImapTrouble(f"IMAP session failed: {type(exc).__name__}: {exc}") from None
        return session

    def close(self) -> None:
        """Log out (errors ignored: the connection is given up either way)."""
        try:
            self.client.logout()
        except (OSError, IMAPClientError):
            with contextlib.suppress(OSError):
                self.client.shutdown()

    def has(self, capability: str) -> bool:
        """Whether the server offers `capability` (after login)."""
        return bool(self.client.has_capability(capability))

    def exists(self, folder: str) -> bool:
        """Whether `folder` exists."""
        return bool(self.client.folder_exists(folder))

    def create(self, folder: str) -> None:
        """Create `folder`."""
        self.client.create_folder(folder)

    def select(self, folder: str) -> int:
        """Select `folder` for reading and moving; returns its UIDVALIDITY."""
        info = self.client.select_folder(folder)
        return int(info[b"UIDVALIDITY"])

    def uids(self) -> list[int]:
        """The UIDs of the selected folder's messages not flagged \\Deleted, oldest first."""
        return sorted(int(u) for u in self.client.search(["UNDELETED"]))

    def waiting(self, uids: Sequence[int]) -> list[Waiting]:
        """These messages as the overview shows them: UID, size, header (gone ones left out)."""
        if not uids:
            return []
        found = self._fetch(uids, ["RFC822.SIZE", "BODY.PEEK[HEADER]"])
        return [
            Waiting(uid, int(found[uid][SIZE]), bytes(found[uid].get(HEADER) or b""))
            for uid in uids
            if uid in found
        ]

    def fetch(self, uid: int) -> bytes | None:
        """The whole message (None: gone meanwhile); \\Seen is not set."""
        found = self._fetch([uid], ["BODY.PEEK[]"])
        if uid not in found or WHOLE not in found[uid]:
            return None
        return bytes(found[uid][WHOLE])

    def move(self, uid: int, folder: str) -> None:
        """Move a message: MOVE (RFC 6851), else COPY + \\Deleted + UID EXPUNGE (RFC 4315)."""
        if self.has("MOVE"):
            self.client.move([uid], folder)
            return
        self.client.copy([uid], folder)
        self.delete(uid)

    def delete(self, uid: int) -> None:
        """Remove a message: \\Deleted, then expunged (only this one where the server has UIDPLUS)."""
        self.client.add_flags([uid], [DELETED], silent=True)
        if self.has("UIDPLUS"):
            self.client.uid_expunge([uid])
        else:
            self.client.expunge()

    def _fetch(self, uids: Sequence[int], parts: list[str]) -> dict[int, dict[bytes, Any]]:
        return cast("dict[int, dict[bytes, Any]]", self.client.fetch(list(uids), parts))


def shut(client: IMAPClient) -> None:
    """Break a blocking read off from another thread (the IDLE watcher's stop)."""
    with contextlib.suppress(OSError):
        client.socket().shutdown(socket.SHUT_RDWR)


async def on_thread(call: Callable[..., T], *args: Any) -> T:
    """Run a blocking session call on a worker thread; a broken connection becomes `ImapTrouble`."""
    try:
        return await asyncio.to_thread(call, *args)
    except (ImapRefused, ImapTrouble):
        raise
    except (OSError, IMAPClientError) as exc:
        raise ImapTrouble(f"IMAP command failed: {type(exc).__name__}: {exc}") from None
