"""The PostgreSQL journal's schema: numbered migrations, applied explicitly by `aktenhub migrate`.

The migrations are the files ``hub/journal/migrations/postgresql/NNNN_name.sql``, numbered from 1
without gaps; the schema version of a database is the highest number applied, as recorded in
``schema_migrations``. `migrate` applies the missing ones, each in a transaction of its own that first
takes a transaction-scoped advisory lock and then reads the version again: two `migrate` runs (or
several hub containers starting a migrate job at once) never race, and the lock needs no session, so
it holds through a transaction-pooling pooler too. A hub never migrates on its own: `check` refuses a
database of another version (an empty one included), so several processes never race to create it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import psycopg

__all__ = ["Migration", "SchemaMismatch", "check", "migrate", "migrations", "schema_version", "version"]

LOCK = "aktenhub.migrate"
FOLDER = resources.files("hub.journal") / "migrations" / "postgresql"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version integer PRIMARY KEY, name text NOT NULL, applied_at double precision NOT NULL)"
)


class SchemaMismatch(Exception):
    """The database's schema is not this hub's: says which it is, which is needed and what to do."""


@dataclass(frozen=True)
class Migration:
    """One numbered step of the schema."""

    version: int
    name: str
    sql: str


def migrations(folder: Traversable = FOLDER) -> list[Migration]:
    """This hub's migrations in order (numbered 1, 2, … without gaps)."""
    found = []
    for entry in folder.iterdir():
        if match := _FILE.match(entry.name):
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"PostgreSQL migrations are not numbered 1..n: {[m.version for m in found]}")
    return found


def version(folder: Traversable = FOLDER) -> int:
    """The schema version this hub needs: its last migration's number."""
    return len(migrations(folder))


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The version of the database's schema: 0 when it has none yet."""
    (ledger,) = _one(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not ledger:
        return 0
    (applied,) = _one(conn, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    return int(applied)


def check(conn: psycopg.Connection[Any], folder: Traversable = FOLDER) -> None:
    """Raise `SchemaMismatch` unless the database's schema is exactly this hub's."""
    have, need = schema_version(conn), version(folder)
    if have == need:
        return
    if have > need:
        raise SchemaMismatch(f"schema {have} is newer than this hub (it needs {need}): upgrade the hub")
    what = "no journal schema yet" if have == 0 else f"schema {have}"
    raise SchemaMismatch(f"{what}, this hub needs {need}: run `aktenhub migrate`")


def migrate(
    conn: psycopg.Connection[Any], clock: Callable[[], float] = time.time, folder: Traversable = FOLDER
) -> list[Migration]:
    """Apply the missing migrations, one transaction each; returns those this call applied."""
    steps = migrations(folder)
    applied: list[Migration] = []
    for migration in steps:
        with conn.transaction():
            # Waits for a concurrent run's transaction; the version is read after it, so what that run
            # applied is seen (READ COMMITTED: each statement reads what was committed before it).
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (LOCK,))
            conn.execute(_LEDGER)
            have = schema_version(conn)
            if have > len(steps):
                raise SchemaMismatch(
                    f"schema {have} is newer than this hub (it needs {len(steps)}): upgrade the hub"
                )
            if migration.version <= have:
                continue
            conn.execute(migration.sql.encode())  # no parameters: several statements, no % processing
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.name, float(clock())),
            )
        applied.append(migration)
    return applied


def _one(conn: psycopg.Connection[Any], sql: str) -> tuple[Any, ...]:
    row = conn.execute(sql.encode()).fetchone()
    assert row is not None  # an aggregate or a catalogue function: always one row
    return tuple(row)
