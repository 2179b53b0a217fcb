"""The journal backends the contract suite (`hub.testing.journal_contract`) runs against.

A `JournalBackend` makes an empty store at this hub's schema and opens journals on it, as a hub
process would; the fixture ``journal_backend`` runs each contract test once per backend: SQLite in a
temporary directory, and PostgreSQL in a fresh database of the session's throw-away cluster
(`hub.testing.postgres`; skipped with the reason outside CI without the server binaries).
"""

from __future__ import annotations

import abc
import asyncio
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from hub.journal.lifecycle import SqlJournal
from hub.journal.postgres import PostgresJournal, migrate_database
from hub.journal.sqlite import SqliteJournal
from hub.testing.postgres import PgBouncer, PostgresServer

T = TypeVar("T")
TEMPLATE = "aktenhub_contract_template"


class JournalBackend(abc.ABC):
    """One kind of journal store, for tests."""

    name: str
    # Whether `Journal.recover` at start releases every lease: true where one process owns the store
    # (SQLite); a store shared by processes keeps their leases until they expire.
    recovers_leases: bool

    @abc.abstractmethod
    async def fresh(self) -> None:
        """Make an empty store at this hub's schema; `journal` opens journals on it from now on."""

    def discard(self) -> None:  # noqa: B027 - a store in a temporary directory goes with it
        """Remove the current store (the journals on it are closed)."""

    @abc.abstractmethod
    def journal(self, clock: Callable[[], float] = time.time) -> SqlJournal:
        """A journal (not yet opened) on the current store."""

    def peer(self, clock: Callable[[], float] = time.time) -> SqlJournal:
        """A journal on the current store as another hub process has it, beside `journal`'s."""
        return self.journal(clock)

    @abc.abstractmethod
    async def concurrently(self, *aws: Awaitable[T]) -> list[T | BaseException]:
        """Run `aws` so that their transactions meet: all started before any of them commits."""


class SqliteBackend(JournalBackend):
    """A journal file in a temporary directory."""

    name = "sqlite"
    recovers_leases = True

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "journal.db"

    async def fresh(self) -> None:
        self.path = self.directory / f"journal-{secrets.token_hex(4)}.db"

    def journal(self, clock: Callable[[], float] = time.time) -> SqlJournal:
        return SqliteJournal(self.path, clock=clock)

    def peer(self, clock: Callable[[], float] = time.time) -> SqlJournal:
        # One process owns the file (its lock); another client of it is a guest.
        return SqliteJournal(self.path, clock=clock, guest=True)

    async def concurrently(self, *aws: Awaitable[T]) -> list[T | BaseException]:
        # A second connection holds the write lock; `gather` starts every operation (each queues its
        # write) before the last awaitable releases the lock, so the writer finds them all queued and
        # runs them in one group.
        blocker = sqlite3.connect(self.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")

        async def release() -> None:
            blocker.execute("ROLLBACK")
            blocker.close()

        *results, _ = await asyncio.gather(*aws, release(), return_exceptions=True)
        return results  # type: ignore[return-value]  # the last one, release(), is left out


class PostgresBackend(JournalBackend):
    """A fresh database per store, cloned from a template migrated once per session."""

    name = "postgresql"
    recovers_leases = False

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.database = ""
        self.url = ""

    async def fresh(self) -> None:
        # The store before goes: a session makes hundreds (the state machine one per example).
        self.discard()
        with psycopg.connect(self.server.url(), autocommit=True) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname=%s", (TEMPLATE,)).fetchone()
            if exists is None:
                admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
                await migrate_database(self.server.url(TEMPLATE))
            self.database = f"journal_{secrets.token_hex(6)}"
            admin.execute(f'CREATE DATABASE "{self.database}" TEMPLATE "{TEMPLATE}"')
        self.url = self.server.url(self.database)

    def discard(self) -> None:
        if not self.database:
            return
        with psycopg.connect(self.server.url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        self.database = ""

    def journal(self, clock: Callable[[], float] = time.time) -> SqlJournal:
        return PostgresJournal(self.url, clock=clock)

    async def concurrently(self, *aws: Awaitable[T]) -> list[T | BaseException]:
        # Each operation runs in its own transaction on its own pooled connection: they meet in the
        # database, which is what the rules must get right.
        results: list[Any] = await asyncio.gather(*aws, return_exceptions=True)
        return results


class PgBouncerBackend(PostgresBackend):
    """The same databases, reached through pgbouncer in transaction pooling mode: the rules and the
    backend must rely on no session state (`hub.testing.postgres.pgbouncer_server`)."""

    name = "postgresql-pgbouncer"

    def __init__(self, bouncer: PgBouncer) -> None:
        super().__init__(bouncer.server)
        self.bouncer = bouncer

    def journal(self, clock: Callable[[], float] = time.time) -> SqlJournal:
        return PostgresJournal(self.bouncer.url(self.database), clock=clock)
