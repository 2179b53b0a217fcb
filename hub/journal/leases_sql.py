"""The journal's side of singleton work (`hub.leases`): one lease row per job, with a fencing token.

The table comes with migration 0003 (``migrations/<backend>/0003_leases.sql``).

Each rule is one statement, so it is atomic on both backends without a row lock: the UPDATE's WHERE is
the compare-and-set (PostgreSQL re-checks it on the newest row version after waiting for a concurrent
writer; SQLite has one writer at a time), and a first take races through ``ON CONFLICT DO NOTHING``.
A row is never deleted: its token must keep growing over the lease's whole life, or a holder from
before a delete could pass for the holder after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hub.journal.tx import Tx
from hub.leases import LeaseGrant

COLUMNS = "name, holder, token, acquired_at, renewed_at, expires_at"


def _grant(r: Sequence[Any]) -> LeaseGrant:
    return LeaseGrant(
        name=r[0],
        holder=r[1],
        token=r[2],
        acquired_at=datetime.fromtimestamp(r[3], UTC),
        renewed_at=datetime.fromtimestamp(r[4], UTC),
        expires_at=datetime.fromtimestamp(r[5], UTC),
    )


def take(tx: Tx, now: float, name: str, holder: str, seconds: float) -> LeaseGrant | None:
    """Take the lease if free, expired or `holder`'s own (then renew it); None if another holds it.

    The token grows with each new tenure: a new holder, or the old one back after its lease expired.
    """
    until = now + seconds
    row = tx.execute(
        f"INSERT INTO leases ({COLUMNS}) VALUES (?, ?, 1, ?, ?, ?) "
        f"ON CONFLICT (name) DO NOTHING RETURNING {COLUMNS}",
        (name, holder, now, now, until),
    ).fetchone()
    if row is not None:
        return _grant(row)
    # The holder renewing in time keeps its token and `acquired_at`. Anyone taking it after it expired
    # (its own holder too: it was paused, or cut off, meanwhile) starts a new tenure with the next
    # token, so a run begun under the old one fails its `holds` check and stops.
    row = tx.execute(
        "UPDATE leases SET "
        "token = CASE WHEN holder = ? AND expires_at > ? THEN token ELSE token + 1 END, "
        "acquired_at = CASE WHEN holder = ? AND expires_at > ? THEN acquired_at ELSE ? END, "
        "holder = ?, renewed_at = ?, expires_at = ? "
        f"WHERE name = ? AND (holder = ? OR expires_at <= ?) RETURNING {COLUMNS}",
        (holder, now, holder, now, now, holder, now, until, name, holder, now),
    ).fetchone()
    return _grant(row) if row is not None else None


def release(tx: Tx, now: float, name: str, holder: str, token: int) -> bool:
    """Give the lease up at once (it expires now); False if `holder` no longer had it under `token`."""
    cur = tx.execute(
        "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND token = ? AND expires_at > ?",
        (now, name, holder, token, now),
    )
    return cur.rowcount > 0


def expire_all(tx: Tx, now: float) -> int:
    """Free every lease at once (their holders are known to be gone); returns how many were held."""
    return tx.execute("UPDATE leases SET expires_at = ? WHERE expires_at > ?", (now, now)).rowcount


def holds(tx: Tx, now: float, name: str, holder: str, token: int) -> bool:
    """Whether `holder` still holds the lease under `token` (not expired, not taken over)."""
    row = tx.execute(
        "SELECT 1 FROM leases WHERE name = ? AND holder = ? AND token = ? AND expires_at > ?",
        (name, holder, token, now),
    ).fetchone()
    return row is not None


def listing(tx: Tx) -> list[LeaseGrant]:
    """Every lease by name, expired ones too (who ran the job last)."""
    return [_grant(r) for r in tx.execute(f"SELECT {COLUMNS} FROM leases ORDER BY name")]
