"""Numbered schema migrations, one directory of SQL files per backend.

``<backend>/NNNN_name.sql`` holds statements separated by ``;`` at the end of a line. A migration
whose data must be computed in Python (no SQL function does it on every backend) has a backfill here,
run in the same transaction after its statements. The journal's ``meta`` row ``schema_version`` holds
the number of the last migration applied; the numbers mean the same schema on every backend, so a
journal export names the version it was taken at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from hub.deadletters import error_group
from hub.journal.meta_sql import set_meta
from hub.journal.tx import Tx

VERSION_KEY = "schema_version"
_FILE = re.compile(r"(\d{4})_(\w+)\.sql")


def _error_groups(c: Tx) -> None:
    """Normalise the error text of every step that failed before the column existed."""
    rows = c.execute("SELECT id, last_error FROM tasks WHERE last_error IS NOT NULL").fetchall()
    c.executemany("UPDATE tasks SET error_group=? WHERE id=?", [(error_group(e), i) for i, e in rows])


BACKFILLS: dict[int, Callable[[Tx], None]] = {2: _error_groups}


@dataclass(frozen=True)
class Migration:
    """One numbered step of a backend's schema."""

    version: int
    name: str
    statements: tuple[str, ...]
    backfill: Callable[[Tx], None] | None

    def apply(self, c: Tx) -> None:
        """Run the step in the caller's transaction and record its number."""
        for statement in self.statements:
            c.execute(statement)
        if self.backfill is not None:
            self.backfill(c)
        set_meta(c, VERSION_KEY, str(self.version))


def migrations(backend: str) -> tuple[Migration, ...]:
    """Every migration of `backend` ("sqlite", "postgresql"), in order."""
    found = []
    for entry in resources.files(__package__).joinpath(backend).iterdir():
        match = _FILE.fullmatch(entry.name)
        if match is None:
            continue
        text = entry.read_text(encoding="utf-8")
        found.append(Migration(int(match[1]), match[2], _statements(text), BACKFILLS.get(int(match[1]))))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{backend} migrations are not numbered 1..n: {[m.version for m in found]}")
    return tuple(found)


def latest(backend: str) -> int:
    """The schema version this hub writes on `backend`."""
    return migrations(backend)[-1].version


class SchemaMismatch(Exception):
    """The database's schema is not this hub's: says which it is, which is needed and what to do."""


def refuse_newer(have: int, backend: str) -> None:
    """Raise `SchemaMismatch` if a journal's schema `have` is newer than this hub writes on `backend`."""
    need = latest(backend)
    if have > need:
        raise SchemaMismatch(f"schema {have} is newer than this hub (it needs {need}): upgrade the hub")


def _statements(text: str) -> tuple[str, ...]:
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    parts = re.split(r";\s*$", "\n".join(lines), flags=re.M)
    # A PostgreSQL function's $$-quoted body has statements of its own: its parts are joined again.
    statements: list[str] = []
    for part in parts:
        if statements and statements[-1].count("$$") % 2:
            statements[-1] += ";" + part
        else:
            statements.append(part)
    return tuple(p.strip() for p in statements if p.strip())
