"""The journal's `meta` table: small named values (schema version, purge figures, probes)."""

from __future__ import annotations

from hub.journal.tx import Tx


def get_meta(c: Tx, key: str) -> str | None:
    """The value under `key`, or None."""
    row = c.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(c: Tx, key: str, value: str) -> None:
    """Set `key` to `value`, whether or not it was set before."""
    c.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
        (key, value),
    )
