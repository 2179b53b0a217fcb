"""Durable record of the assertions already used, to refuse a replayed one.

One small SQLite file per connector in the hub's data directory. An assertion id is bound to the first
application that presented it: presenting it again for that application is allowed (a step retried
after a crash must not reject itself), for any other application it is a replay.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from hub import utcnow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_assertion (
    issuer TEXT NOT NULL,
    assertion_id TEXT NOT NULL,
    application_id TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    keep_until TEXT NOT NULL,
    PRIMARY KEY (issuer, assertion_id)
)
"""


class ReplayStore:
    """Assertion ids seen, each bound to the application that used it first."""

    def __init__(self, path: Path, retention: timedelta) -> None:
        self.path = path
        self.retention = retention
        self._lock = asyncio.Lock()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        return db

    def _claim(self, issuer: str, assertion_id: str, application_id: str, valid_until: datetime) -> str:
        now = utcnow()
        keep_until = max(valid_until, now) + self.retention
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM seen_assertion WHERE keep_until < ?", (now.isoformat(),))
            db.execute(
                "INSERT OR IGNORE INTO seen_assertion VALUES (?, ?, ?, ?, ?)",
                (issuer, assertion_id, application_id, now.isoformat(), keep_until.isoformat()),
            )
            row = db.execute(
                "SELECT application_id FROM seen_assertion WHERE issuer = ? AND assertion_id = ?",
                (issuer, assertion_id),
            ).fetchone()
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()
        return str(row[0])

    async def claim(self, issuer: str, assertion_id: str, application_id: str, valid_until: datetime) -> bool:
        """Bind the assertion to the application; False if another application used it already."""
        async with self._lock:
            owner = await asyncio.to_thread(self._claim, issuer, assertion_id, application_id, valid_until)
        return owner == application_id

    def check(self) -> None:
        """Open (and create) the store, raising `sqlite3.Error` or `OSError` if it cannot be used."""
        self._connect().close()
