"""IMAP IDLE (RFC 2177): a connection of its own waits for new mail and wakes the source's poll at once.

The watcher runs on a thread (IMAPClient blocks), reports on the event loop, renews IDLE before the
29 minutes servers allow, and reconnects after a break with a growing pause. It only wakes the poll:
reading, intake and moving stay with the poll under the hub's singleton lease.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from .config import ImapSettings
from .imap import ImapSession, shut

log = logging.getLogger(__name__)

RENEW_SECONDS = 25 * 60  # re-issue IDLE before a server's 30 minute inactivity limit
RECONNECT_SECONDS = (1.0, 5.0, 30.0, 120.0)  # pauses after consecutive failures


class IdleWatcher:
    """Waits in IDLE on one folder; calls `on_new` (on the event loop) when mail arrives."""

    def __init__(self, settings: ImapSettings, folder: str, on_new: Callable[[], None]) -> None:
        self.settings = settings
        self.folder = folder
        self.on_new = on_new
        self.loop = asyncio.get_running_loop()
        self.stopping = threading.Event()
        self.session: ImapSession | None = None
        self.offered: bool | None = None  # None: not known yet
        self.watching = threading.Event()  # set once the server has been told IDLE
        self.failures = 0  # consecutive broken connections: the pause before the next grows
        self.thread = threading.Thread(target=self._run, name=f"imap-idle-{folder}", daemon=True)

    def start(self) -> None:
        """Start watching."""
        self.thread.start()

    async def stop(self) -> None:
        """Stop watching: break the blocking wait off and wait for the thread."""
        self.stopping.set()
        session = self.session
        if session is not None:
            shut(session.client)
        await asyncio.to_thread(self.thread.join, 10)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._watch()
                return
            except Exception as exc:
                if self.stopping.is_set():
                    return
                pause = RECONNECT_SECONDS[min(self.failures, len(RECONNECT_SECONDS) - 1)]
                self.failures += 1
                log.warning("imap idle broke off, again in %.0f s: %s", pause, type(exc).__name__)
                self.stopping.wait(pause)

    def _watch(self) -> None:
        session = self.session = ImapSession.open(self.settings)
        try:
            self.offered = session.has("IDLE")
            if not self.offered:
                log.info("imap server offers no IDLE: polling on schedule only")
                return
            selected = session.client.select_folder(self.folder)
            if int(selected.get(b"EXISTS", 0)):
                self._wake()  # mail came after the poll looked and before this watch began
            while not self.stopping.is_set():
                session.client.idle()
                self.watching.set()
                self.failures = 0
                responses = session.client.idle_check(timeout=RENEW_SECONDS)
                if self.stopping.is_set():
                    return
                _, more = session.client.idle_done()  # what came while IDLE was being ended
                responses = [*responses, *more]
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    self._wake()
        finally:
            self.watching.clear()
            self.session = None
            session.close()

    def _wake(self) -> None:
        self.loop.call_soon_threadsafe(self.on_new)
