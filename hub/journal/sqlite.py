"""SQLite journal: the embedded default for one hub process.

WAL mode with ``synchronous=FULL``: a commit is on disk when it returns. Writes are grouped: the
operations concurrent callers queued while the previous group committed run in one transaction — one
fsync serves many intakes (group commit). One failing operation neither aborts nor is hidden by the
others in its group: the group then runs again with each operation inside its own SAVEPOINT.

Where a group runs: its operations (a few rows each, ~0.1-0.3 ms) on the event loop, its COMMIT (the
fsync) on the writer thread. On the thread, the operations waited for the interpreter lock at each
statement, behind the busy loop: a group took ~3 ms instead of ~0.7 and a write's caller waited ~11 ms
(bench/e2e.py). Operations that may touch many rows (`SqlJournal._write_bulk`), a group that met a
failure, and a group that finds the database locked by an operator's command beside the hub run
wholly on the thread, which may wait. Reads run on a separate thread and connection, which WAL lets
proceed alongside the writer; lookups by key on the loop (`_lookup`).

The state rules themselves are `hub.journal.lifecycle`'s, shared with PostgreSQL; this module only opens,
migrates and runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

from hub import handoff
from hub.errors import StorageFull
from hub.journal import migrations
from hub.journal.base import JournalUnavailable
from hub.journal.lifecycle import SqlJournal, index_all_correlations
from hub.journal.lock import JournalLock
from hub.journal.meta_sql import get_meta
from hub.journal.tx import Tx

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteOp = Callable[[Tx], Any]
# A queued write: the operation, the caller's future and the event loop it awaits it on.
Queued = tuple[WriteOp, "asyncio.Future[Any]", asyncio.AbstractEventLoop]

BACKEND = "sqlite"
MAX_GROUP = 64  # operations per grouped transaction: ~20 ms of the loop at most
BUSY_SECONDS = 30.0  # how long the writer thread waits for a lock an operator's command holds
# Columns hubs before the numbered migrations added on open: (table, column, type). A journal they
# wrote says schema version 1 but may lack some; `_adopt_unversioned` adds what is missing.
ADDED_COLUMNS = (
    ("tasks", "key", "TEXT"),
    ("tasks", "error_code", "TEXT"),
    ("applications", "error_code", "TEXT"),
    ("applications", "purged_at", "REAL"),
    ("applications", "purge_policy", "TEXT"),
)


class SqliteDialect:
    """SQLite's side of `hub.journal.tx.Dialect`: one writer at a time, so no row locks."""

    name = BACKEND
    for_update = ""
    skip_locked = ""

    def __init__(self, path: str) -> None:
        self.path = path

    def try_lock(self, tx: Tx, name: str) -> bool:
        return True  # the writer thread holds the whole database

    def wake_workers(self, tx: Tx) -> None:
        pass  # one process owns the file: its bus wakes its own workers after each commit

    @contextlib.contextmanager
    def erasing(self, tx: Tx) -> Iterator[None]:
        was_secure = tx.execute("PRAGMA secure_delete").fetchone()[0]
        tx.execute("PRAGMA secure_delete=ON")
        try:
            yield
        finally:
            tx.execute(f"PRAGMA secure_delete={int(was_secure)}")

    def hour_bucket(self, column: str) -> str:
        return f"CAST(({column} - ?) / 3600 AS INTEGER)"  # truncates; the values are never negative

    def storage_bytes(self, tx: Tx) -> int:
        """The database file and its write-ahead log."""
        if self.path == ":memory:":
            pages = tx.execute("PRAGMA page_count").fetchone()[0]
            return int(pages * tx.execute("PRAGMA page_size").fetchone()[0])
        total = 0
        for name in (self.path, self.path + "-wal"):
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(name).st_size
        return total

    def rows_loaded(self, tx: Tx, tables: list[str]) -> None:
        pass  # AUTOINCREMENT keeps its counter in sqlite_sequence, which an insert with an id moves on

    def text_columns(self, tx: Tx) -> dict[str, list[str]]:
        tables = [
            r[0]
            for r in tx.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if not r[0].startswith("sqlite_")
        ]
        return {
            table: [
                column[1]
                for column in tx.execute(f'PRAGMA table_info("{table}")')
                if "TEXT" in str(column[2]).upper()
            ]
            for table in tables
        }


class SqliteTx(sqlite3.Connection):
    """A connection that is also the rules' `Tx` (no wrapper between them and SQLite)."""

    dialect: SqliteDialect


def _connect(path: str) -> SqliteTx:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30, factory=SqliteTx)
    conn.dialect = SqliteDialect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class SqliteJournal(SqlJournal):
    """The journal in one SQLite file."""

    def __init__(
        self,
        path: Path | str,
        clock: Callable[[], float] = time.time,
        *,
        read_only: bool = False,
        guest: bool = False,
    ) -> None:
        super().__init__(clock)
        self.path = str(path)
        self.location = self.path
        # Read-only: for commands that only look (no lock, no writer, no recovery); a running hub may
        # own the file meanwhile, which WAL readers do not disturb.
        self.read_only = read_only
        # Guest: an operator's command beside the hub that holds the lock (see `open_journal`).
        self.guest = guest
        self._lock: JournalLock | None = None
        self._conn: SqliteTx | None = None  # the writer's connection: the loop's and the writer thread's
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[tuple[Queued, bool]] = []  # (write, bulk) in the order they came
        self._runner: asyncio.Task[None] | None = None
        self._committing: Future[Any] | None = None  # the writer thread's work on the connection
        self._reader: ThreadPoolExecutor | None = None
        self._read_conn: SqliteTx | None = None
        self._lookup_conn: SqliteTx | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def open(self) -> None:
        if self.read_only:
            self._open_read_only()
            return
        try:
            if self.guest:
                self._open_guest()
                return
            if self.path != ":memory:":
                # Before anything touches the file: a second process gets `JournalInUse` and changes
                # nothing.
                self._lock = JournalLock(self.path)
                self._lock.acquire()
            try:
                self._open_writable()
            except BaseException:
                self._release_lock()
                raise
        except (sqlite3.Error, OSError) as exc:
            raise JournalUnavailable(self.path, _open_failure(self.path, exc)) from None

    def _open_read_only(self) -> None:
        if self.path != ":memory:" and not Path(self.path).is_file():
            raise FileNotFoundError(f"no journal at {self.path}")
        self._open_readers()

    def _open_guest(self) -> None:
        # No lock, no migration, no recovery: the owning hub did (and does) those. Its schema must be
        # this command's, or the command would write rows the hub does not know.
        if not Path(self.path).is_file():
            raise FileNotFoundError(f"no journal at {self.path}")
        conn = _connect(self.path)
        version = _version(conn)
        if version != migrations.latest(BACKEND):
            conn.close()
            older = "older" if version < migrations.latest(BACKEND) else "newer"
            raise JournalUnavailable(
                self.path,
                f"the hub holding it is {older} than this command (schema {version}, this command "
                f"{migrations.latest(BACKEND)}); run the command of the hub's version, or upgrade and "
                "restart the hub first",
            )
        self._start_threads(conn)

    def _start_threads(self, conn: SqliteTx) -> None:
        # A group run again with a SAVEPOINT per operation (after one failed) keeps undo records (the
        # statement journal) that SQLite spills to a temporary file past 64 KiB, which one intake's ~20
        # pages exceed: ~45 pwrite calls per intake to a file deleted unread. In memory: a page copy.
        # Only the savepoints' undo records and temporary tables move to memory: the commit's
        # durability is the write-ahead log's, unchanged (synchronous=FULL).
        conn.execute("PRAGMA temp_store=MEMORY")
        # The loop never waits for a lock: a group that finds the database locked goes to the thread.
        conn.execute("PRAGMA busy_timeout=0")
        self._conn = conn
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-writer")
        self._open_readers()

    def _open_readers(self) -> None:
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-reader")
        self._read_conn = _connect(self.path)
        self._read_conn.execute("PRAGMA query_only=ON")
        # Lookups run on the event loop, on a connection of their own: a connection is used by one
        # thread at a time.
        self._lookup_conn = _connect(self.path)
        self._lookup_conn.execute("PRAGMA query_only=ON")

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def _open_writable(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(self.path)
        try:
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._start_threads(conn)

    def _migrate(self, conn: SqliteTx) -> None:
        """Bring the file to this hub's schema: one process owns it (the lock), so it may do so on open."""
        version = _version(conn)
        steps = migrations.migrations(BACKEND)
        try:
            migrations.refuse_newer(version, BACKEND)
        except migrations.SchemaMismatch as exc:
            raise JournalUnavailable(self.path, str(exc)) from None
        if version == 1:
            _adopt_unversioned(conn)
        for step in steps[version:]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                step.apply(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            log.info("journal %s migrated to schema %d (%s)", self.path, step.version, step.name)

    async def close(self) -> None:
        # Mark the journal closed before finishing the writes queued: a write issued meanwhile fails
        # with "journal is not open" instead of waiting for a writer that is stopping.
        writer, self._writer = self._writer, None
        if writer is not None:
            while self._runner is not None and not self._runner.done():
                await asyncio.shield(self._runner)
            if self._pending:  # queued on an event loop that ended before the group ran
                await self._settle_leftovers(writer)
            writer.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._reader is not None:
            self._reader.shutdown(wait=True)
            self._reader = None
        for conn in (self._read_conn, self._lookup_conn):
            if conn is not None:
                conn.close()
        self._read_conn = self._lookup_conn = None
        self._release_lock()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Tx]:
        conn = _connect(self.path)
        try:
            conn.execute("PRAGMA query_only=ON")
            conn.execute("BEGIN")  # WAL: the snapshot of the first read holds until the end
            yield conn
        finally:
            conn.close()

    def watch_for_work(self, wake: Callable[[], None]) -> None:
        # One process owns the file (the lock): every task in it was added by this process's own bus.
        return None

    @property
    def writer_alive(self) -> bool:
        """Whether the journal takes writes (open, not read-only)."""
        return self._writer is not None

    async def recover(self) -> int:
        if self.guest:
            raise RuntimeError("a guest of the journal never recovers: the hub holding it does")
        return await super().recover()

    # -- writing -----------------------------------------------------------------------------------

    async def _write(self, op: Callable[[Tx], T]) -> T:
        return await self._queue_write(op, bulk=False)

    async def _write_bulk(self, op: Callable[[Tx], T]) -> T:
        return await self._queue_write(op, bulk=True)

    async def _queue_write(self, op: Callable[[Tx], T], *, bulk: bool) -> T:
        if self._writer is None or self._conn is None:
            raise RuntimeError("journal is opened read-only" if self.read_only else "journal is not open")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._pending.append(((op, fut, loop), bulk))
        runner = self._runner
        # (A runner of another loop is gone: that loop ended with it unfinished.)
        if runner is None or runner.done() or runner.get_loop() is not loop:
            self._runner = loop.create_task(self._run_groups(self._writer, self._conn), name="journal-writer")
        try:
            return await fut
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise StorageFull(f"journal {self.path}", "database or disk is full") from None
            raise

    async def _run_groups(self, writer: ThreadPoolExecutor, conn: SqliteTx) -> None:
        """Run the queued writes a group at a time, until none is left."""
        while self._pending:
            if self._committing is not None and not self._committing.done():
                # The group of an event loop that ended while it committed: the connection is the
                # writer thread's until it is done.
                await asyncio.wrap_future(self._committing)
            batch, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            group = [queued for queued, _ in batch]
            try:
                ran = None if any(bulk for _, bulk in batch) else _run_on_loop(conn, group)
            except Exception as exc:  # BEGIN failed (I/O error): as a failed commit
                _answer(group, self._failed(group, exc))
                continue
            if ran is None:
                work = writer.submit(self._run_group, group, isolated=False)
            elif ran is False:
                work = writer.submit(self._run_group, group, isolated=True)
            else:
                work = writer.submit(self._commit, group, ran)
            self._committing = work
            _answer(group, await asyncio.wrap_future(work))

    async def _settle_leftovers(self, writer: ThreadPoolExecutor) -> None:
        batch, self._pending = self._pending, []
        group = [queued for queued, _ in batch]
        _answer(group, await asyncio.wrap_future(writer.submit(self._run_group, group, isolated=False)))

    def _commit(self, group: list[Queued], outcomes: list[tuple[bool, Any]]) -> list[tuple[bool, Any]]:
        """On the writer thread: commit the transaction the loop ran the group's operations in."""
        assert self._conn is not None
        try:
            self._conn.execute("COMMIT")  # synchronous=FULL: durable when this returns
        except BaseException as exc:
            return self._failed(group, exc)
        return self._committed(outcomes)

    def _run_group(self, group: list[Queued], *, isolated: bool) -> list[tuple[bool, Any]]:
        """On the writer thread: the whole group, waiting for a lock if need be."""
        conn = self._conn
        assert conn is not None
        try:
            outcomes = None
            if not isolated:
                _begin(conn, wait=True)
                outcomes = _run_operations(conn, group, isolated=False)
            if outcomes is None:
                # An operation failed: nothing of the group stays. It runs again with each operation
                # in a savepoint, so the failure is its caller's alone (an operation may run again
                # once its transaction rolled back: PostgreSQL's journal does the same).
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                _begin(conn, wait=True)
                outcomes = _run_operations(conn, group, isolated=True)
                assert outcomes is not None
            conn.execute("COMMIT")
        except BaseException as exc:
            return self._failed(group, exc)
        return self._committed(outcomes)

    def _committed(self, outcomes: list[tuple[bool, Any]]) -> list[tuple[bool, Any]]:
        self.commits += 1
        self.operations += len(outcomes)
        return outcomes

    def _failed(self, group: list[Queued], exc: BaseException) -> list[tuple[bool, Any]]:
        assert self._conn is not None
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")
        log.error("journal commit failed: %r", exc)
        # Every operation of the group fails with it: nothing of it was committed.
        return [(False, exc)] * len(group)

    async def _read(self, op: Callable[[Tx], T]) -> T:
        if self._reader is None or self._read_conn is None:
            raise RuntimeError("journal is not open")
        conn = self._read_conn
        return await asyncio.get_running_loop().run_in_executor(self._reader, op, conn)

    async def _lookup(self, op: Callable[[Tx], T]) -> T:
        # A few pages by key, from the page cache as a rule, and the row's parse: ~0.15 ms on the loop
        # under load. On the reading thread the same reads waited for the interpreter lock twice,
        # behind the loop and the writer thread: ~4 ms for the map step's, ~8 ms for the deliver
        # step's (bench/e2e.py, timed per await). In WAL mode a reader never waits for the writer, so
        # the loop is not held up. The journal's callers are on one event loop: one thread uses the
        # connection.
        if self._lookup_conn is None:
            raise RuntimeError("journal is not open")
        return op(self._lookup_conn)


def _begin(conn: SqliteTx, *, wait: bool) -> bool:
    """Take the write lock; False if another process holds it and `wait` is not set.

    The connection's busy timeout is 0: the loop never waits. For the writer thread (`wait`) it is
    raised to `BUSY_SECONDS` for this one BEGIN, so SQLite's own busy handler waits for the lock.
    """
    if wait:
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
        try:
            conn.execute("BEGIN IMMEDIATE")
        finally:
            conn.execute("PRAGMA busy_timeout=0")
        return True
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
            raise
        return False
    return True


def _run_on_loop(conn: SqliteTx, group: list[Queued]) -> list[tuple[bool, Any]] | Literal[False] | None:
    """Begin the group's transaction and run its operations on the calling (event-loop) thread.

    Returns their outcomes, to be committed; None if an operator's command holds the write lock, and
    False (rolled back) if an operation failed: the writer thread then runs the group.
    """
    if not _begin(conn, wait=False):
        return None
    outcomes = _run_operations(conn, group, isolated=False)
    if outcomes is None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return False
    return outcomes


def _run_operations(conn: SqliteTx, group: list[Queued], *, isolated: bool) -> list[tuple[bool, Any]] | None:
    """Run the group's operations in the transaction begun: (succeeded, value or exception) each.

    Not `isolated`, the operations run one after another and the first failure returns None (the
    transaction is then to be rolled back). `isolated`, each runs in a savepoint that its failure
    rolls back. A savepoint costs an undo copy of every page the operation changes (~20 pages an
    intake, a quarter of its CPU in the writer), so it is taken only for a group known to hold a
    failure.
    """
    outcomes: list[tuple[bool, Any]] = []
    for op, fut, _ in group:
        if fut.cancelled():
            # The caller gave up (e.g. its client went away) before the write started: nothing was
            # promised, so nothing is written.
            outcomes.append((False, None))
            continue
        if not isolated:
            try:
                value = op(conn)
            except BaseException:
                return None
            if not conn.in_transaction:  # SQLite rolled it back (full disk, I/O error): the group failed
                raise sqlite3.OperationalError("the transaction was rolled back during an operation")
            outcomes.append((True, value))
            continue
        conn.execute("SAVEPOINT op")
        try:
            value = op(conn)
        except BaseException as exc:  # an operation's failure is its caller's, not the group's
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            outcomes.append((False, exc))
        else:
            conn.execute("RELEASE op")
            outcomes.append((True, value))
    return outcomes


def _answer(group: list[Queued], outcomes: list[tuple[bool, Any]]) -> None:
    """Answer the group's callers on their event loops, one wake-up of each loop (`hub.handoff`)."""
    handoff.settle(
        (loop, fut, value if ok else None, None if ok else value)
        for (_, fut, loop), (ok, value) in zip(group, outcomes, strict=True)
    )


def _version(conn: SqliteTx) -> int:
    """The file's schema version; 0 for a new, empty file, 1 for one of the hubs before numbered
    migrations (whatever they wrote down: `_adopt_unversioned` completes it)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    value = get_meta(conn, migrations.VERSION_KEY) if "meta" in tables else None
    if value is None:
        return 1 if "applications" in tables else 0
    return int(value)


def _adopt_unversioned(conn: SqliteTx) -> None:
    """Complete a journal of a hub from before numbered migrations (it says version 1 whatever it has)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        initial = migrations.migrations(BACKEND)[0].statements
        # CREATE ... IF NOT EXISTS: only what is missing; the tables, their late columns, then indexes
        for statement in initial:
            if statement.startswith("CREATE TABLE"):
                conn.execute(statement)
        for table, column, kind in ADDED_COLUMNS:
            if column not in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        for statement in initial:
            if not statement.startswith("CREATE TABLE"):
                conn.execute(statement)
        if get_meta(conn, "correlations_indexed") is None:
            index_all_correlations(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    if "subject" not in {r[1] for r in conn.execute("PRAGMA table_info(tasks)")}:
        _rebuild_tasks(conn)


def _rebuild_tasks(conn: SqliteTx) -> None:
    """Give a journal from before answers the tasks table keyed by subject too (SQLite cannot alter keys)."""
    initial = migrations.migrations(BACKEND)[0].statements
    create = next(s for s in initial if s.startswith("CREATE TABLE IF NOT EXISTS tasks "))
    columns = (
        "id, application_id, step, target, state, attempts, attempt_base, max_attempts, due_at, "
        "lease_token, lease_until, last_error, result, checkpoints, created_at, updated_at, key, error_code"
    )
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ALTER TABLE tasks RENAME TO tasks_before_subject")
    conn.execute(create)
    conn.execute(f"INSERT INTO tasks ({columns}) SELECT {columns} FROM tasks_before_subject")
    conn.execute("DROP TABLE tasks_before_subject")  # its indexes go with it
    for statement in initial:
        if statement.startswith("CREATE INDEX") and " ON tasks " in statement:
            conn.execute(statement)  # the indexes, now on the new table
    conn.execute("COMMIT")


def _open_failure(path: str, exc: sqlite3.Error | OSError) -> str:
    """Why the journal could not be opened, in an operator's words."""
    file = Path(path)
    if isinstance(exc, OSError):
        if exc.errno == errno.EROFS:
            return "read-only file system (the hub writes its journal and its lock beside it)"
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != path else ""
        return f"{exc.strerror or exc}{where}"
    if file.is_dir():
        return "is a directory, not a journal file"
    if file.exists() and not os.access(file, os.R_OK):
        return "not readable (permission denied)"
    if file.exists() and not os.access(file, os.W_OK):
        return "read-only (the hub writes its journal: check permissions and the mount)"
    if not os.access(file.parent, os.W_OK):
        return "its directory is read-only (SQLite keeps its write-ahead log beside the journal)"
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
        return "not a journal (the file is not an SQLite database)"
    return str(exc)
