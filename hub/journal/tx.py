"""What the journal's state rules need of a database: one transaction, portable SQL, a few dialect hooks.

The rules (`hub.journal.lifecycle` and its topic modules ``*_sql.py``) are written once, as synchronous
functions of a `Tx`, in the SQL that SQLite and PostgreSQL share: ``?`` placeholders, ``ON CONFLICT``,
``RETURNING``, ``COALESCE``. A backend runs them in a transaction of its own making (SQLite: the
group-commit writer thread; PostgreSQL: a pooled connection on a worker thread) and hands them a `Tx`.
Where the two databases differ (row locks, storage size, catalogue queries), a rule asks `tx.dialect`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

Row = Sequence[Any]


class Cursor(Protocol):
    """The result of one statement."""

    @property
    def rowcount(self) -> int:
        """Rows the statement changed (INSERT/UPDATE/DELETE)."""

    def fetchone(self) -> Any:
        """The next row (a tuple), or None."""

    def fetchall(self) -> list[Any]:
        """The remaining rows (tuples)."""

    def fetchmany(self, size: int, /) -> list[Any]:
        """Up to `size` of the remaining rows."""

    @property
    def description(self) -> Any:
        """The result's columns (DB-API: a sequence whose items start with the column's name)."""

    def __iter__(self) -> Iterator[Any]:
        """The remaining rows, one by one."""


class Dialect(Protocol):
    """What differs between the backends, asked by the rules where it matters."""

    name: str  # "sqlite" | "postgresql"
    # Appended to a SELECT that reads rows the transaction will change: "" where the whole database is
    # written by one writer at a time (SQLite), " FOR UPDATE" where transactions run side by side.
    for_update: str
    # Like `for_update`, but rows another transaction holds are passed over instead of waited for.
    skip_locked: str

    def try_lock(self, tx: Tx, name: str) -> bool:
        """Take a lock on `name` until the transaction ends, or return False at once if another holds it."""

    def wake_workers(self, tx: Tx) -> None:
        """Tell the other processes' idle workers, when this transaction commits, that work is due."""

    def erasing(self, tx: Tx) -> AbstractContextManager[None]:
        """Within it, deleted content is overwritten, not just unlinked (a purge's personal data)."""

    def hour_bucket(self, column: str) -> str:
        """SQL for the whole hours from the first parameter (a window's start) to `column`."""

    def storage_bytes(self, tx: Tx) -> int:
        """The journal's size on disk."""

    def text_columns(self, tx: Tx) -> dict[str, list[str]]:
        """Every table's text columns (where blob references may be written down); every table is a key."""

    def rows_loaded(self, tx: Tx, tables: list[str]) -> None:
        """After rows were inserted with their ids (a journal moved in): ids drawn later come after them."""


class Tx(Protocol):
    """One open transaction of the journal."""

    @property
    def dialect(self) -> Dialect:
        """The backend's differences."""

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        """Run one statement with ``?`` placeholders."""

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Any:
        """Run one statement for each parameter row."""
