"""The notifier's own record of its answers: one row per (application, message type), in SQLite.

The column ``message_type`` is the answer's key: its message type, or for a status message (1170),
which goes once per answer of the Fachverfahren, ``<message type>/<digest of the answer id>``.

Why a record and not only deterministic ids: an XTA message id is issued by the XTA server
(createMessageId) and a server refuses a second message with a taken id. So the answer is prepared
first — XTA message id, XBau message UUID and the finished XML (as a blob) — and that preparation is
committed before the send. A retry after a crash sends exactly the same message under the same XTA
id: either it never arrived (now it does) or the server refuses the id as taken (then it had
arrived). Once the send is confirmed the row is marked sent and a retry does nothing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    application_id TEXT NOT NULL,
    message_type TEXT NOT NULL,
    xta_message_id TEXT NOT NULL,
    xbau_uuid TEXT NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    prepared_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    sent_at TEXT,
    PRIMARY KEY (application_id, message_type)
)
"""


@dataclass(frozen=True)
class PreparedAnswer:
    """An answer ready to be sent (or already sent)."""

    application_id: str
    message_type: str
    xta_message_id: str
    xbau_uuid: str
    blob: str
    size: int
    sent: bool


class AnswerStore:
    """The record of prepared and sent answers of one notifier."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA synchronous=FULL")
        if not self._ready:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)
            self._ready = True
        return connection

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            connection = self._connect()
            try:
                return work(connection)
            finally:
                connection.close()

        return await asyncio.to_thread(call)

    async def blobs(self) -> set[str]:
        """The blobs of every prepared answer (they are not referenced by the journal)."""

        def work(db: sqlite3.Connection) -> set[str]:
            return {row[0] for row in db.execute("SELECT blob FROM answers")}

        return await self._run(work)

    async def forget(self, application_ids: Sequence[str]) -> set[str]:
        """Drop the answers of these applications (their payloads were purged); returns their blobs."""

        def work(db: sqlite3.Connection) -> set[str]:
            dropped: set[str] = set()
            for application_id in application_ids:
                rows = db.execute("SELECT blob FROM answers WHERE application_id = ?", (application_id,))
                dropped.update(row[0] for row in rows)
                db.execute("DELETE FROM answers WHERE application_id = ?", (application_id,))
            return dropped

        return await self._run(work)

    async def get(self, application_id: str, message_type: str) -> PreparedAnswer | None:
        """The answer of this type for the application, if prepared."""

        def work(db: sqlite3.Connection) -> PreparedAnswer | None:
            row = db.execute(
                "SELECT application_id, message_type, xta_message_id, xbau_uuid, blob, size, sent_at "
                "FROM answers WHERE application_id = ? AND message_type = ?",
                (application_id, message_type),
            ).fetchone()
            return _answer(row) if row is not None else None

        return await self._run(work)

    async def prepare(self, answer: PreparedAnswer) -> PreparedAnswer:
        """Record a prepared answer; if one was recorded meanwhile, that one counts (returned)."""

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR IGNORE INTO answers (application_id, message_type, xta_message_id, xbau_uuid, "
                "blob, size) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    answer.application_id,
                    answer.message_type,
                    answer.xta_message_id,
                    answer.xbau_uuid,
                    answer.blob,
                    answer.size,
                ),
            )

        await self._run(work)
        stored = await self.get(answer.application_id, answer.message_type)
        assert stored is not None
        return stored

    async def mark_sent(self, application_id: str, message_type: str) -> None:
        """The XTA server has the answer."""

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE answers SET sent_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                "WHERE application_id = ? AND message_type = ? AND sent_at IS NULL",
                (application_id, message_type),
            )

        await self._run(work)

    async def all(self) -> list[PreparedAnswer]:
        """Every recorded answer (for diagnostics and tests)."""

        def work(db: sqlite3.Connection) -> list[PreparedAnswer]:
            rows = db.execute(
                "SELECT application_id, message_type, xta_message_id, xbau_uuid, blob, size, sent_at "
                "FROM answers ORDER BY prepared_at"
            ).fetchall()
            return [_answer(r) for r in rows]

        return await self._run(work)


def _answer(row: tuple[Any, ...]) -> PreparedAnswer:
    application_id, message_type, xta_message_id, xbau_uuid, blob, size, sent_at = row
    return PreparedAnswer(
        application_id=str(application_id),
        message_type=str(message_type),
        xta_message_id=str(xta_message_id),
        xbau_uuid=str(xbau_uuid),
        blob=str(blob),
        size=int(size),
        sent=sent_at is not None,
    )
