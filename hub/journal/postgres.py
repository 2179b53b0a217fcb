"""PostgreSQL journal: for several hub processes on several machines sharing one database.

The state rules are `hub.journal.lifecycle`'s, the same functions SQLite runs: each operation is a synchronous
function of a `Tx`, run here on a worker thread with a connection from a psycopg pool, in a transaction
of its own (READ COMMITTED; rows it will change are locked with ``FOR UPDATE``, claims pass over locked
rows with ``SKIP LOCKED``). A write returns once its transaction is committed.

A write whose transaction failed on a serialization failure, a deadlock or a unique violation (two
processes inserting the same key), or whose connection broke before COMMIT was sent, is run again on a
fresh connection: nothing of it was committed. A connection
that breaks after COMMIT was sent leaves the outcome unknown: that write raises `JournalUnavailable`
and is never repeated blindly (the caller's step is retried through the journal like any failure).

Nothing relies on session state (see `hub.journal.pg_tx`), so the URL may name a transaction-pooling
pgbouncer. The wake-up hint is the one exception: once the bus watches for work, a thread LISTENs on
``aktenhub_work`` (which the rules NOTIFY, on commit, when work becomes due) on a connection of its own,
to ``listen_url`` or else the store URL. LISTEN does not pass a transaction-pooling pooler: behind one,
give ``listen_url`` a direct address of the server, or leave it and the workers' idle poll (the
guarantee in any case) finds the work a little later.

Store URL: ``postgresql://user[:password]@host[:port]/dbname[?libpq options]`` with two options of the
hub's own: ``pool_size`` (connections and worker threads, default 10) and ``listen_url`` (percent-encoded
libpq URL). Without a password in the URL libpq's rules apply (``PGPASSWORD``, ``~/.pgpass``). The
password is never logged or shown: messages name the journal by `location`, which leaves it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg.errors
import psycopg_pool

from hub.journal import pg_schema
from hub.journal.base import JournalUnavailable
from hub.journal.lifecycle import SqlJournal
from hub.journal.migrations import Migration
from hub.journal.pg_tx import CHANNEL, PgTx, configure
from hub.journal.transfer import Transferred
from hub.journal.tx import Tx

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_POOL_SIZE = 10
# Seconds to reach the server, unless the URL says (libpq's connect_timeout). An operation waits as long
# for a connection from the pool: each worker thread holds at most one, so a wait means the server
# cannot be reached, and an intake should get its 503 soon rather than hold its client.
CONNECT_TIMEOUT = 10
ATTEMPTS = 5  # runs of one operation when its transaction may be repeated safely
LISTEN_POLL = 0.25  # seconds the listener waits for a notice before it looks whether to stop
# SQLSTATEs after which the transaction was rolled back and may run again: serialization failure,
# deadlock detected, and a unique violation: two processes inserted the same key (an intake, an
# answer) at once; run again, the operation sees the other's row and takes the path for it.
RETRYABLE = (
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.UniqueViolation,
)


@dataclass(frozen=True)
class PgStore:
    """A ``store: postgresql://…`` URL, split into what libpq gets and what the hub keeps for itself."""

    conninfo: str
    location: str  # for messages: without password and options
    pool_size: int
    listen_conninfo: str | None
    connect_timeout: float

    @classmethod
    def parse(cls, url: str) -> PgStore:
        """Split the store URL; `ValueError` names what is wrong."""
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"expected postgresql://…, got scheme {parts.scheme!r}")
        options = parse_qsl(parts.query, keep_blank_values=True)
        own = {k: v for k, v in options if k in ("pool_size", "listen_url")}
        rest = [(k, v) for k, v in options if k not in own]
        try:
            pool_size = int(own.get("pool_size", DEFAULT_POOL_SIZE))
        except ValueError:
            raise ValueError(f"pool_size must be a whole number, got {own['pool_size']!r}") from None
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        listen = own.get("listen_url") or None
        if listen is not None and urlsplit(listen).scheme not in ("postgresql", "postgres"):
            raise ValueError("listen_url must be a postgresql:// URL (percent-encoded)")
        try:
            timeout = float(dict(rest).get("connect_timeout", CONNECT_TIMEOUT))
        except ValueError:
            raise ValueError("connect_timeout must be a number of seconds") from None
        # Spaces as %20: libpq decodes percent escapes only, so a `+` would reach the server as itself.
        conninfo = urlunsplit(parts._replace(query=urlencode(rest, quote_via=quote)))
        return cls(conninfo, redact(url), pool_size, listen, max(timeout, 1.0))


def redact(url: str) -> str:
    """The URL without password and query: safe for logs and messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def why(exc: BaseException) -> str:
    """A short reason for a failure to reach the database (libpq's message, classified where known)."""
    text = str(exc).strip()
    lowered = text.lower()
    if "connection refused" in lowered:
        return "connection refused: is PostgreSQL (or the pooler) running at that address?"
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return "authentication failed: check the user and its password (URL, PGPASSWORD or ~/.pgpass)"
    if "does not exist" in lowered and "database" in lowered:
        return "the database does not exist: create it (createdb), then run `aktenhub migrate`"
    if "timeout" in lowered:
        return f"no answer in time: {text.splitlines()[-1]}"
    return text.splitlines()[-1] if text else type(exc).__name__


class _Lost(Exception):
    """The connection broke before COMMIT was sent: the server rolled the transaction back."""

    def __init__(self, cause: psycopg.OperationalError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _CommitUnknown(Exception):
    """The connection broke after COMMIT was sent: the transaction may or may not have committed."""


class PostgresJournal(SqlJournal):
    """The journal in a PostgreSQL database, shared by any number of hub processes."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time, *, read_only: bool = False) -> None:
        super().__init__(clock)
        self.store = PgStore.parse(url)
        self.location = self.store.location
        self.read_only = read_only
        self._counted = threading.Lock()  # commits/operations are counted from several threads
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._listener: _Listener | None = None
        self._wake: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, refuse a schema of another version, start the pool (and the listener, if watched)."""
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(None, self._open)
        self._start_listener()

    def _open(self) -> None:
        try:
            with _session(self.store.conninfo, self.store.connect_timeout) as conn:
                pg_schema.check(conn)
        except pg_schema.SchemaMismatch as exc:
            raise JournalUnavailable(self.location, str(exc)) from None
        except psycopg.Error as exc:
            raise JournalUnavailable(self.location, why(exc)) from None
        size = self.store.pool_size
        pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = psycopg_pool.ConnectionPool(
            self.store.conninfo,
            min_size=1,
            max_size=size,
            open=False,
            # No server-side prepared statements: a transaction-pooling pooler may run the next
            # transaction on another server connection, which never saw them.
            kwargs={
                "prepare_threshold": None,
                "autocommit": False,
                "connect_timeout": int(self.store.connect_timeout),
            },
            configure=_configure,
            timeout=self.store.connect_timeout,
            name="journal",
        )
        try:
            pool.open(wait=True, timeout=self.store.connect_timeout)
        except psycopg_pool.PoolTimeout as exc:
            pool.close()
            raise JournalUnavailable(self.location, why(exc)) from None
        self._pool = pool
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="journal-pg")

    async def close(self) -> None:
        """Stop the listener, finish the running operations, close the connections (may open again)."""
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        executor, self._executor = self._executor, None
        loop = asyncio.get_running_loop()
        if listener is not None:
            await loop.run_in_executor(None, listener.stop)
        if executor is not None:
            await loop.run_in_executor(None, executor.shutdown)
        if pool is not None:
            await loop.run_in_executor(None, pool.close)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Tx]:
        """A REPEATABLE READ, READ ONLY transaction on a pooled connection: one state throughout."""
        pool = self._pool
        if pool is None:
            raise RuntimeError("journal is not open")
        with pool.connection() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield PgTx(conn)
            conn.rollback()

    @property
    def writer_alive(self) -> bool:
        """Whether the journal can take writes (its pool is open)."""
        return self._pool is not None and not self._pool.closed and not self.read_only

    async def recover(self) -> int:
        """Nothing to release: the other processes' leases are theirs until they run out."""
        return 0

    def watch_for_work(self, wake: Callable[[], None]) -> None:
        """Call `wake` (on the event loop) whenever another process says work became due."""
        self._wake = wake
        self._start_listener()

    def _start_listener(self) -> None:
        if self._wake is None or self._pool is None or self._listener is not None:
            return
        conninfo = self.store.listen_conninfo or self.store.conninfo
        self._listener = _Listener(conninfo, int(self.store.connect_timeout), self._woken)
        self._listener.start()

    def _woken(self) -> None:
        """Called on the listener's thread for every notice (and after connecting: one may be lost)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake)

    async def take_over(self, source: SqlJournal) -> Transferred:
        """As every journal (`SqlJournal.take_over`), then the count deltas' table vacuumed."""
        moved = await super().take_over(source)
        # The move's fold deleted a delta row per finished application again. Until autovacuum comes
        # by, their dead pages (100 MB for a million) and the table's statistics make every /metrics
        # scrape scan them with parallel workers: 47 ms instead of 5.
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._vacuum_count_deltas)
        except psycopg.Error as exc:  # the move itself is committed: this only spares the scrapes
            log.warning(
                "vacuum of the count deltas after the move failed, autovacuum will do it: %s", why(exc)
            )
        return moved

    def _vacuum_count_deltas(self) -> None:
        """VACUUM (ANALYZE) the count deltas: outside any transaction, so on a connection of its own.

        A role that does not own the table gets a warning from the server and nothing done: autovacuum
        then does it later.
        """
        with _session(self.store.conninfo, self.store.connect_timeout) as conn:
            conn.execute("VACUUM (ANALYZE) final_count_deltas")

    # -- running operations ------------------------------------------------------------------------

    async def _write(self, op: Callable[[Tx], T]) -> T:
        """Run `op` in a transaction of its own; returns once it is committed."""
        if self.read_only:
            raise RuntimeError("journal is opened read-only")
        value = await self._submit(self._run_write, op)
        with self._counted:
            self.commits += 1
            self.operations += 1
        return value

    async def _read(self, op: Callable[[Tx], T]) -> T:
        """Run `op` in a READ ONLY transaction."""
        return await self._submit(self._run_read, op)

    async def _submit(self, runner: Callable[[Callable[[Tx], T]], T], op: Callable[[Tx], T]) -> T:
        if self._executor is None:
            raise RuntimeError("journal is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, runner, op)

    def _run_write(self, op: Callable[[Tx], T]) -> T:
        return self._attempts(op, read_only=False)

    def _run_read(self, op: Callable[[Tx], T]) -> T:
        return self._attempts(op, read_only=True)

    def _attempts(self, op: Callable[[Tx], T], *, read_only: bool) -> T:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._once(op, read_only=read_only)
            except RETRYABLE as exc:
                reason = f"{type(exc).__name__} ({exc.sqlstate})"
                if attempt == ATTEMPTS:
                    if isinstance(exc, psycopg.errors.UniqueViolation):
                        raise  # the operation's own conflict, not another process's: a fault to see
                    raise JournalUnavailable(self.location, f"{reason} {ATTEMPTS} times in a row") from None
            except _Lost as exc:
                if attempt == ATTEMPTS:
                    raise JournalUnavailable(self.location, f"connection lost: {why(exc.cause)}") from None
                reason = "connection lost before commit"
            except _CommitUnknown:
                if not read_only:
                    raise JournalUnavailable(
                        self.location,
                        "the connection broke while committing: whether the change was saved is unknown",
                    ) from None
                if attempt == ATTEMPTS:
                    raise JournalUnavailable(self.location, "connection lost") from None
                reason = "connection lost"  # a read changed nothing: it may run again
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
                raise JournalUnavailable(self.location, why(exc)) from None
            # Several processes running into each other: each waits a different while before it
            # tries again, so they do not collide once more.
            delay = random.uniform(0, 0.01 * 2**attempt)
            log.info("journal %s: %s, running the operation again (%d)", self.location, reason, attempt)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _once(self, op: Callable[[Tx], T], *, read_only: bool) -> T:
        pool = self._pool
        if pool is None:
            raise RuntimeError("journal is not open")
        with pool.connection() as conn:
            try:
                if read_only:
                    conn.execute("SET TRANSACTION READ ONLY")  # this transaction only: no session state
                value = op(PgTx(conn))
            except psycopg.OperationalError as exc:
                if conn.broken:  # before COMMIT: nothing was committed, the operation may run again
                    raise _Lost(exc) from exc
                raise
            try:
                conn.commit()
            except psycopg.OperationalError:
                if conn.broken:
                    raise _CommitUnknown from None
                raise
            return value


def _configure(conn: psycopg.Connection[Any]) -> None:
    configure(conn)
    # Explicit, whatever the server's default_transaction_isolation: the rules lock what they change.
    conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
    conn.commit()  # leave the pool's new connection idle, not in a transaction


class _Listener:
    """A thread holding one direct connection that LISTENs on ``aktenhub_work``, reconnecting when lost."""

    def __init__(self, conninfo: str, connect_timeout: int, woken: Callable[[], None]) -> None:
        self._conninfo = conninfo
        self._connect_timeout = connect_timeout
        self._woken = woken
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="journal-listen", daemon=True)
        self.listening = threading.Event()  # set while LISTEN is in force (for tests and diagnostics)

    def start(self) -> None:
        """Start listening in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread (at most one `LISTEN_POLL` later)."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with _session(self._conninfo, self._connect_timeout) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    failures = 0
                    self._woken()  # notices sent while not listening are lost: look once anyway
                    self.listening.set()
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=LISTEN_POLL):
                            self._woken()
            except psycopg.Error as exc:
                self.listening.clear()
                failures += 1
                log.warning("journal listener: %s; reconnecting", why(exc))
                # Back off while the server is away; the workers poll meanwhile.
                self._stop.wait(min(30.0, 0.5 * 2 ** min(failures, 6)))
        self.listening.clear()


def _session(conninfo: str, connect_timeout: float) -> psycopg.Connection[Any]:
    """A connection of its own, outside the pool: autocommit, no server-side prepared statements."""
    return psycopg.connect(
        conninfo, autocommit=True, prepare_threshold=None, connect_timeout=int(connect_timeout)
    )


def migrate(url: str) -> tuple[list[Migration], int]:
    """Bring the database's schema up to date (`aktenhub migrate`): the migrations applied, the version."""
    store = PgStore.parse(url)
    try:
        with _session(store.conninfo, store.connect_timeout) as conn:
            configure(conn)
            applied = pg_schema.migrate(conn)
            return applied, pg_schema.schema_version(conn)
    except pg_schema.SchemaMismatch as exc:
        raise JournalUnavailable(store.location, str(exc)) from None
    except psycopg.Error as exc:
        raise JournalUnavailable(store.location, why(exc)) from None


async def migrate_database(url: str) -> tuple[list[Migration], int]:
    """`migrate` off the event loop (its connection is closed when it returns)."""
    return await asyncio.to_thread(migrate, url)
