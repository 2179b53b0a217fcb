"""Copy a journal's rows into an empty journal of another backend (``aktenhub migrate-store``).

Both journals must be at the same schema version: then every table has the same columns on both, and
the rows go over as they are, ids included (events, answers and audit rows keep their numbers, which
answers and operators refer to). The target's rows are written in one transaction: a move that breaks
off leaves the target as empty as it was, and can simply be run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hub.journal.meta_sql import get_meta, set_meta
from hub.journal.migrations import VERSION_KEY
from hub.journal.tx import Tx

BATCH = 2000  # rows per INSERT round trip
# Tables whose rows others reference go first (foreign keys are checked row by row).
PARENTS = ("applications", "alerts")
# Not moved: which process holds a singleton job is a fact of the running processes, not of the journal.
# Nor counts the target's triggers keep as the rows arrive (`hub.journal.counts`).
PROCESS_STATE = frozenset({"leases", "final_counts", "final_count_deltas"})
# meta rows that describe the journal file itself, not its content.
OWN_META = frozenset({VERSION_KEY, "write_probe"})


class TransferRefused(Exception):
    """The journals do not fit together (versions differ, or the target holds applications already)."""


@dataclass
class Transferred:
    """Rows copied per table."""

    rows: dict[str, int] = field(default_factory=dict)


def copy_journal(source: Tx, target: Tx, progress: Callable[[str, int], None] | None = None) -> Transferred:
    """Copy every row of `source` into the empty journal `target` (in the caller's transaction on it)."""
    version, theirs = get_meta(source, VERSION_KEY), get_meta(target, VERSION_KEY)
    if version != theirs:
        raise TransferRefused(f"schema versions differ: source {version}, target {theirs}; migrate first")
    if target.execute("SELECT 1 FROM applications LIMIT 1").fetchone() is not None:
        raise TransferRefused("the target journal holds applications already; move into an empty one")
    tables = [t for t in source.dialect.text_columns(source) if t not in PROCESS_STATE]
    missing = set(tables) - set(target.dialect.text_columns(target))
    if missing:
        raise TransferRefused(f"the target lacks the tables {sorted(missing)}")
    ordered = [t for t in PARENTS if t in tables] + sorted(t for t in tables if t not in PARENTS)
    done = Transferred()
    for table in ordered:
        if table == "meta":
            for key, value in source.execute("SELECT key, value FROM meta").fetchall():
                if key not in OWN_META:
                    set_meta(target, key, value)
            continue
        cursor = source.execute(f'SELECT * FROM "{table}"')
        columns = [d[0] for d in cursor.description]
        names = ", ".join(f'"{c}"' for c in columns)
        insert = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'
        count = 0
        while rows := cursor.fetchmany(BATCH):
            target.executemany(insert, rows)
            count += len(rows)
            if progress is not None:
                progress(table, count)
        done.rows[table] = count
    target.dialect.rows_loaded(target, ordered)
    return done


def count_rows(tx: Tx) -> dict[str, int]:
    """Rows per table (what a move must have carried over), process state left out."""
    return {
        table: int(tx.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
        for table in tx.dialect.text_columns(tx)
        if table not in PROCESS_STATE and table != "meta"
    }
