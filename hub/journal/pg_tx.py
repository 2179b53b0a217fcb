"""The journal's `Tx` on a psycopg 3 connection: the rules' portable SQL, run on PostgreSQL.

The rules write ``?`` placeholders (SQLite's, and the DB-API's ``qmark``); psycopg takes ``%s`` and reads
every ``%`` as the start of one, so each statement is translated once (and cached by its text): ``?``
outside string literals, quoted identifiers and comments becomes ``%s``, every ``%`` becomes ``%%``.

Nothing here keeps session state: no server-side prepared statements (``prepare_threshold=None`` on the
connection), no SET, no session advisory locks. A transaction-pooling pooler (pgbouncer) may hand each
transaction a different server connection, and the journal must work through one.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.adapt import Loader

from hub.journal.tx import Cursor, Tx

__all__ = ["CHANNEL", "DIALECT", "PgDialect", "PgTx", "configure", "translate"]

CHANNEL = "aktenhub_work"  # the notice that work became due (LISTENed to by `hub.journal.postgres`)

# Characters that open a span in which ``?`` is no placeholder, and the text that closes it.
_SPANS = {"'": "'", '"': '"', "--": "\n", "/*": "*/"}


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """The statement with psycopg's placeholders: ``?`` → ``%s``, ``%`` → ``%%`` (cached per text)."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        opener = sql[i : i + 2] if sql[i : i + 2] in _SPANS else ch if ch in _SPANS else None
        if opener is not None:
            # A doubled quote inside a literal ('it''s') closes and reopens it: the same text results.
            end = sql.find(_SPANS[opener], i + len(opener))
            end = n if end < 0 else end + len(_SPANS[opener])
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif ch == "?":
            if i + 1 < n and sql[i + 1].isdigit():
                raise ValueError(f"numbered placeholders (?NNN) are not portable: {sql!r}")
            out.append("%s")
            i += 1
        elif ch == "%":
            out.append("%%")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class _NumberLoader(Loader):
    """``numeric`` as the rules expect from SQLite: an int when whole (SUM of integers), else a float."""

    def load(self, data: Any) -> int | float:
        value = Decimal(bytes(data).decode())
        return int(value) if value == value.to_integral_value() else float(value)


def configure(conn: psycopg.Connection[Any]) -> None:
    """Adapt a new connection to the rules (called once per pooled connection)."""
    # SQLite sums integers to an integer; PostgreSQL's SUM(bigint) is numeric, which psycopg would
    # load as Decimal and the rules (and the JSON they feed) do not take.
    conn.adapters.register_loader("numeric", _NumberLoader)


class PgDialect:
    """Where PostgreSQL differs: row locks, advisory locks, catalogue queries."""

    name = "postgresql"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def try_lock(self, tx: Tx, name: str) -> bool:
        """A transaction-scoped advisory lock on `name` (released with the transaction: no session state)."""
        row = tx.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(?, 0))", (name,)).fetchone()
        return bool(row[0])

    def wake_workers(self, tx: Tx) -> None:
        """Notify the listening processes, once this transaction commits (never if it rolls back)."""
        tx.execute("SELECT pg_notify(?, '')", (CHANNEL,))

    @contextlib.contextmanager
    def erasing(self, tx: Tx) -> Iterator[None]:
        """Nothing to switch on: an overwritten row's old version is unreachable, and VACUUM (autovacuum)
        reclaims its space; PostgreSQL has no secure_delete to ask for."""
        yield

    def hour_bucket(self, column: str) -> str:
        """Whole hours from the first parameter to `column` (the values are never negative)."""
        return f"FLOOR(({column} - ?) / 3600)::integer"

    def rows_loaded(self, tx: Tx, tables: list[str]) -> None:
        """Move each identity column's sequence past the ids that were inserted as they were."""
        identities = tx.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND is_identity = 'YES'"
        ).fetchall()
        for table, column in identities:
            if table in tables:
                tx.execute(
                    f'SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX("{column}"), 0) + 1, false) '
                    f'FROM "{table}"',
                    (table, column),
                )

    def storage_bytes(self, tx: Tx) -> int:
        """The database's size on disk."""
        return int(tx.execute("SELECT pg_database_size(current_database())").fetchone()[0])

    def text_columns(self, tx: Tx) -> dict[str, list[str]]:
        """Every table of the journal's schema with its text columns (a table without any: empty)."""
        rows = tx.execute(
            "SELECT t.table_name, c.column_name FROM information_schema.tables t "
            "LEFT JOIN information_schema.columns c ON c.table_schema = t.table_schema "
            "AND c.table_name = t.table_name AND c.data_type IN ('text', 'character varying') "
            "WHERE t.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
            "ORDER BY t.table_name, c.ordinal_position"
        ).fetchall()
        columns: dict[str, list[str]] = {}
        for table, column in rows:
            found = columns.setdefault(table, [])
            if column is not None:
                found.append(column)
        return columns


DIALECT = PgDialect()


class PgTx:
    """One open transaction on a psycopg connection, speaking the rules' ``?`` SQL."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    @property
    def dialect(self) -> PgDialect:
        """PostgreSQL's differences."""
        return DIALECT

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        """Run one statement (always with a parameter tuple, so ``%%`` is read as ``%``)."""
        return self._conn.execute(translate(sql), tuple(params))

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Any:
        """Run one statement for each parameter row."""
        cur = self._conn.cursor()
        cur.executemany(translate(sql), [tuple(p) for p in params])
        return cur  # like sqlite3's: its rowcount is the rows changed in all
