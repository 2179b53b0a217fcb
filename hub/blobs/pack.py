"""Small blobs packed into one SQLite database of the local store (``<root>/pack.db``), not one file each.

A form's submission brings two or three small files and each filing adds a rendition. As files, each cost
the blob committer an inode, a write, a rename and its share of a filesystem sync: 0.38 ms of CPU per
FormCycle post on this machine, more than half of what the event loop spent on the post
(bench/intake_vs_nodered.py). In one database a group of them is one transaction: rows appended to the
write-ahead log, one fsync. SQLite stores blobs of this size faster than a filesystem does
(https://www.sqlite.org/fasterthanfs.html).

Measured side by side with the store of one file each (`python -m bench.intake_ab`, six rounds): the
hub's CPU per acknowledged post fell by 14 % (median of the pairs).

Each row is content under its sha256 and when it was last written (``written``, the orphan sweep's
file modification time). The store's committer thread writes new content in groups and removes what
a dropped intake stored; the sweep and purges remove from their own threads. Each thread uses a
connection of its own, and in WAL mode readers never wait for a writer. Deleted content is
overwritten (``secure_delete``): personal data whose retention ended does not stay in free pages, and
the freed pages are given back to the filesystem after a sweep (`Pack.give_back_space`).
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

PACK_FILE = "pack.db"

# Columns before the content: listing them (the sweep, `usage`) never reads a row's content pages.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    written REAL NOT NULL,
    content BLOB NOT NULL
)
"""


class Pack:
    """The packed blobs of one store: `store` a group at once; `get`, `remove` and list by digest."""

    def __init__(self, root: Path) -> None:
        self.path = root / PACK_FILE
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Set up now, on the opening thread: a store that cannot create its database is refused at start.
        conn = self._connection()
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new database only
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (each thread has its own: SQLite serialises within one)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # Autocommit unless a transaction is begun. `close` closes it from another thread, hence
            # check_same_thread off (the module is built thread-safe).
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            # Removals need not be durable (what a crash brings back, the sweep removes again), so they
            # do not wait for the disk, on the event loop least of all; `store` makes its commits durable.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA secure_delete=ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def store(self, contents: Iterable[tuple[str, bytes]]) -> set[str]:
        """Store content under its digest in one durable transaction; the digests that were new.

        Content stored before is marked as just written again, so the orphan sweep spares it.
        """
        now = time.time()
        conn = self._connection()
        if not getattr(self._local, "durable", False):
            conn.execute("PRAGMA synchronous=FULL")  # a commit is durable when it returns (and all before)
            self._local.durable = True
        created = set()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for digest, data in contents:
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO blobs (digest, size, written, content) VALUES (?, ?, ?, ?)",
                    (digest, len(data), now, data),
                ).rowcount
                if inserted:
                    created.add(digest)
                else:
                    conn.execute("UPDATE blobs SET written = ? WHERE digest = ?", (now, digest))
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:  # as a file's write says it
                raise OSError(errno.ENOSPC, "database or disk is full", str(self.path)) from None
            raise
        return created

    def get(self, digest: str) -> bytes | None:
        """The content stored under `digest`, or None."""
        # fetchall: the statement ends here, so no read transaction stays open and holds up checkpoints.
        rows = self._connection().execute("SELECT content FROM blobs WHERE digest = ?", (digest,)).fetchall()
        return bytes(rows[0][0]) if rows else None

    def size(self, digest: str) -> int | None:
        """The size of the content stored under `digest`, or None."""
        rows = self._connection().execute("SELECT size FROM blobs WHERE digest = ?", (digest,)).fetchall()
        return int(rows[0][0]) if rows else None

    def entries(self) -> Iterator[tuple[str, int, float]]:
        """Each packed blob's digest, size and when it was last written."""
        # One row at a time: a million blobs' rows at once would take ~150 MB.
        yield from self._connection().execute("SELECT digest, size, written FROM blobs")

    def remove(self, digests: Iterable[str], older_than: float | None = None) -> dict[str, int]:
        """Remove content (only what was last written before `older_than`, if given): digest -> size.

        The condition and the deletion are one statement, so content the committer stored again
        meanwhile (it marks it written now) is never removed.
        """
        digests = list(digests)
        if not digests:
            return {}
        limit = float("inf") if older_than is None else older_than
        conn = self._connection()
        removed: dict[str, int] = {}
        conn.execute("BEGIN IMMEDIATE")
        try:
            for digest in digests:
                rows = conn.execute(
                    "DELETE FROM blobs WHERE digest = ? AND written < ? RETURNING size", (digest, limit)
                ).fetchall()
                if rows:
                    removed[digest] = int(rows[0][0])
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return removed

    def give_back_space(self) -> None:
        """After removals by a sweep or purge: no copy of removed content stays in the pack's files.

        ``secure_delete`` overwrote it in the database's pages, and the vacuum returns the freed pages to
        the filesystem; the checkpoint then copies the pages into the database and empties the
        write-ahead log, which still held earlier copies (a reader in the middle of a read may keep it
        from emptying it: the next one does).
        """
        conn = self._connection()
        conn.execute("PRAGMA incremental_vacuum").fetchall()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def close(self) -> None:
        """Close every thread's connection (each opens again when its thread next needs it)."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for conn in connections:
            conn.close()
