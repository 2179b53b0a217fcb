"""The statements a journal's operations run, and their query plans (tests, ``bench/claim.py``).

`wrapped_writes` runs every write operation of a journal through a wrapper (a benchmark times them);
`recording` writes down every statement they run. `explain` asks the database how it would run them, and
`full_scans` names the steps that read a table growing with the journal's history from end to end: such
a statement gets slower with every finished application, however few are open.

On a small test database PostgreSQL's planner scans a few-row table rather than use its index; with
``discourage_scans`` the plans are asked with ``enable_seqscan`` off, so a scan shows only where no index
serves the statement. A benchmark's large journal is asked as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from hub.journal.lifecycle import SqlJournal
from hub.journal.tx import Cursor, Dialect, Tx

__all__ = ["LARGE_TABLES", "Plan", "Recording", "explain", "full_scans", "recording", "wrapped_writes"]

T = TypeVar("T")
# The tables that grow with the journal's whole history.
LARGE_TABLES = ("applications", "events", "tasks", "correlations", "answers")
Statement = tuple[str, tuple[Any, ...]]
Plan = tuple[str, list[str]]  # a statement and its plan, one step a line


class OpWrapper(Protocol):
    """Turns a write operation into another that runs it."""

    def __call__(self, op: Callable[[Tx], T], /) -> Callable[[Tx], T]:
        """The operation to run instead of `op`."""


class Recording:
    """A `Tx` that writes down every statement (with its parameters) before running it."""

    def __init__(self, tx: Tx, statements: list[Statement]) -> None:
        self._tx = tx
        self._statements = statements

    @property
    def dialect(self) -> Dialect:
        """The backend's differences."""
        return self._tx.dialect

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        """Write the statement down, then run it."""
        self._statements.append((sql, tuple(params)))
        return self._tx.execute(sql, params)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Any:
        """Write the statement down (with its first parameter row), then run it."""
        rows = list(params)
        self._statements.append((sql, tuple(rows[0]) if rows else ()))
        return self._tx.executemany(sql, rows)


@contextmanager
def wrapped_writes(journal: SqlJournal, wrap: OpWrapper) -> Iterator[None]:
    """Within it, every write operation of `journal` runs as `wrap(op)`."""
    inner = journal._write

    async def write(op: Callable[[Tx], T]) -> T:
        return await inner(wrap(op))

    # On the instance only: the journal's class, and other journals, stay as they are.
    outer = journal.__dict__.get("_write")  # a wrapper around this one keeps wrapping after it
    journal.__dict__["_write"] = write
    try:
        yield
    finally:
        if outer is None:
            journal.__dict__.pop("_write", None)
        else:
            journal.__dict__["_write"] = outer


@contextmanager
def recording(journal: SqlJournal) -> Iterator[list[Statement]]:
    """Within it, the statements of `journal`'s write operations are appended to the list it gives."""
    statements: list[Statement] = []

    def wrap(op: Callable[[Tx], T]) -> Callable[[Tx], T]:
        return lambda c: op(Recording(c, statements))

    with wrapped_writes(journal, wrap):
        yield statements


def explain(tx: Tx, statements: Iterable[Statement], discourage_scans: bool = False) -> list[Plan]:
    """The plan of each distinct statement (with the parameters it first ran with)."""
    distinct: dict[str, tuple[Any, ...]] = {}
    for sql, params in statements:
        distinct.setdefault(sql, params)
    postgres = tx.dialect.name == "postgresql"
    if postgres and discourage_scans:
        tx.execute("SET LOCAL enable_seqscan = off")
    prefix = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
    return [
        (sql, [str(row[-1]) for row in tx.execute(prefix + sql, params).fetchall()])
        for sql, params in distinct.items()
    ]


_LARGE = "|".join(LARGE_TABLES)
# SQLite: SEARCH walks an index to the rows asked for; SCAN reads the table (or a whole index) through.
_SQLITE_SCAN = re.compile(rf"^SCAN ({_LARGE})\b")
# PostgreSQL: a sequential scan, or an index scan without an index condition (the index read through).
_POSTGRES_SCAN = re.compile(
    rf"^(?:Parallel )?(Seq Scan|Index Scan|Index Only Scan)(?: Backward)?(?: using \S+)? on ({_LARGE})\b"
)


def full_scans(plan: Sequence[str]) -> list[str]:
    """The steps of `plan` that read a large table from end to end."""
    found = []
    for n, step in enumerate(plan):
        node = step.strip().removeprefix("->").strip()
        if _SQLITE_SCAN.match(node):
            found.append(step)
            continue
        scan = _POSTGRES_SCAN.match(node)
        if scan is None:
            continue
        details = []
        for line in plan[n + 1 :]:
            if "->" in line:
                break
            details.append(line)
        if scan.group(1) == "Seq Scan" or not any("Index Cond:" in line for line in details):
            found.append(step)
    return found
