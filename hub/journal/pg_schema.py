"""The PostgreSQL journal's schema: the numbered migrations, applied explicitly by `aktenhub migrate`.

The migrations are `hub.journal.migrations`' ``postgresql/NNNN_name.sql`` (the same numbers mean the
same schema as SQLite's); the version of a database is its ``meta`` row ``schema_version``. `migrate`
applies the missing ones, each in a transaction of its own that first takes a transaction-scoped
advisory lock and then reads the version again: two `migrate` runs (several hub containers starting a
migrate job at once) never race, and the lock needs no session, so it holds through a
transaction-pooling pooler too. A hub never migrates on its own: `check` refuses a database of another
version, an empty one included, so several starting processes never race to create the schema.
"""

from __future__ import annotations

from typing import Any

import psycopg

from hub.journal import migrations
from hub.journal.meta_sql import get_meta
from hub.journal.migrations import Migration, SchemaMismatch
from hub.journal.pg_tx import PgTx

__all__ = ["BACKEND", "LOCK", "SchemaMismatch", "check", "migrate", "schema_version"]

BACKEND = "postgresql"
LOCK = "aktenhub.migrate"


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The version of the database's schema: 0 when it has none yet."""
    tx = PgTx(conn)
    if tx.execute("SELECT to_regclass('meta')").fetchone()[0] is None:
        return 0
    return int(get_meta(tx, migrations.VERSION_KEY) or 0)


def check(conn: psycopg.Connection[Any]) -> None:
    """Raise `SchemaMismatch` unless the database's schema is exactly this hub's."""
    have, need = schema_version(conn), migrations.latest(BACKEND)
    migrations.refuse_newer(have, BACKEND)
    if have < need:
        what = "no journal schema yet" if have == 0 else f"schema {have}"
        raise SchemaMismatch(f"{what}, this hub needs {need}: run `aktenhub migrate`")


def migrate(conn: psycopg.Connection[Any]) -> list[Migration]:
    """Apply the missing migrations, one transaction each; returns those this call applied."""
    steps = migrations.migrations(BACKEND)
    applied: list[Migration] = []
    for step in steps:
        with conn.transaction():
            # Waits for a concurrent run's transaction; the version is read after it, so what that run
            # applied is seen (READ COMMITTED: each statement reads what was committed before it).
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (LOCK,))
            have = schema_version(conn)
            migrations.refuse_newer(have, BACKEND)
            if step.version <= have:
                continue
            step.apply(PgTx(conn))
        applied.append(step)
    return applied
