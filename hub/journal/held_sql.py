"""The journal side of the held-message register (`hub.held`): statements run on the journal's threads.

One row per (source, message id). An operator's decision (``closed``, ``kept``) is final for the
source: a later poll that meets the message again never overwrites it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hub.held import BackOff, HeldFilter, HeldMessage, HeldState
from hub.journal.tx import Tx

COLUMNS = (
    "id, source, message_id, sender, state, reason_code, reason, fetches, next_fetch_at, application_id, "
    "first_seen_at, updated_at, decided_by, decided_at"
)
DECIDED = (HeldState.CLOSED.value, HeldState.KEPT.value)
MAX_LOOKUP = 500  # ids per IN (...) clause


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _held(r: Sequence[Any]) -> HeldMessage:
    return HeldMessage(
        id=r[0],
        source=r[1],
        message_id=r[2],
        sender=r[3],
        state=HeldState(r[4]),
        reason_code=r[5],
        reason=r[6],
        fetches=r[7],
        next_fetch_at=_dt(r[8]),
        application_id=r[9],
        first_seen_at=_dt(r[10]),
        updated_at=_dt(r[11]),
        decided_by=r[12],
        decided_at=_dt(r[13]),
    )


def _one(c: Tx, source: str, message_id: str) -> HeldMessage:
    row = c.execute(
        f"SELECT {COLUMNS} FROM held_messages WHERE source=? AND message_id=?", (source, message_id)
    ).fetchone()
    return _held(row)


def hold(
    c: Tx,
    now: float,
    source: str,
    message_id: str,
    sender: str | None,
    state: HeldState,
    code: str,
    reason: str,
    application_id: str | None,
) -> HeldMessage:
    """Record a message as quarantined or rejected (an operator's decision stays as it is)."""
    c.execute(
        "INSERT INTO held_messages (source, message_id, sender, state, reason_code, reason, application_id, "
        "first_seen_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (source, message_id) DO UPDATE SET sender=COALESCE(excluded.sender, sender), "
        "state=excluded.state, reason_code=excluded.reason_code, reason=excluded.reason, "
        "application_id=COALESCE(excluded.application_id, application_id), next_fetch_at=NULL, "
        f"updated_at=excluded.updated_at WHERE state NOT IN ({','.join('?' * len(DECIDED))})",
        (source, message_id, sender, state.value, code, reason, application_id, now, now, *DECIDED),
    )
    return _one(c, source, message_id)


def fetch_failed(
    c: Tx,
    now: float,
    source: str,
    message_id: str,
    sender: str | None,
    code: str,
    reason: str,
    backoff: BackOff,
) -> HeldMessage:
    """Count a failed fetch: `retrying` with its next fetch time, or `quarantined` after the last one."""
    row = c.execute(
        "SELECT state, fetches FROM held_messages WHERE source=? AND message_id=?", (source, message_id)
    ).fetchone()
    if row is not None and row[0] != HeldState.RETRYING:
        return _one(c, source, message_id)  # settled already: nothing is fetched any more
    fetches = (row[1] if row is not None else 0) + 1
    if fetches >= backoff.max_fetches:
        state, due = HeldState.QUARANTINED, None
        reason = f"{reason} (fetched {fetches} times without success)"
    else:
        state, due = HeldState.RETRYING, now + backoff.delay(fetches)
    c.execute(
        "INSERT INTO held_messages (source, message_id, sender, state, reason_code, reason, fetches, "
        "next_fetch_at, first_seen_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (source, message_id) DO UPDATE SET sender=COALESCE(excluded.sender, sender), "
        "state=excluded.state, reason_code=excluded.reason_code, reason=excluded.reason, "
        "fetches=excluded.fetches, next_fetch_at=excluded.next_fetch_at, updated_at=excluded.updated_at",
        (source, message_id, sender, state.value, code, reason, fetches, due, now, now),
    )
    return _one(c, source, message_id)


def taken(c: Tx, source: str, message_id: str) -> None:
    """Forget a `retrying` record: the message was taken after all."""
    c.execute(
        "DELETE FROM held_messages WHERE source=? AND message_id=? AND state=?",
        (source, message_id, HeldState.RETRYING.value),
    )


def decide(c: Tx, now: float, held_id: int, state: HeldState, by: str) -> HeldMessage:
    """Record an operator's decision (who, when)."""
    c.execute(
        "UPDATE held_messages SET state=?, decided_by=?, decided_at=?, updated_at=?, next_fetch_at=NULL "
        "WHERE id=?",
        (state.value, by, now, now, held_id),
    )
    return _held(c.execute(f"SELECT {COLUMNS} FROM held_messages WHERE id=?", (held_id,)).fetchone())


def lookup(c: Tx, source: str, message_ids: Sequence[str]) -> dict[str, HeldMessage]:
    """The records of these message ids of a source."""
    found: dict[str, HeldMessage] = {}
    for start in range(0, len(message_ids), MAX_LOOKUP):
        chunk = message_ids[start : start + MAX_LOOKUP]
        rows = c.execute(
            f"SELECT {COLUMNS} FROM held_messages WHERE source=? AND message_id IN "
            f"({','.join('?' * len(chunk))})",
            (source, *chunk),
        ).fetchall()
        found.update((r[2], _held(r)) for r in rows)
    return found


def get(c: Tx, held_id: int) -> HeldMessage | None:
    """One record by its id."""
    row = c.execute(f"SELECT {COLUMNS} FROM held_messages WHERE id=?", (held_id,)).fetchone()
    return _held(row) if row else None


def listing(c: Tx, where: HeldFilter, limit: int, offset: int) -> list[HeldMessage]:
    """Records, newest change first."""
    clauses, params = [], []
    if where.state is not None:
        clauses.append("state=?")
        params.append(where.state.value)
    if where.source is not None:
        clauses.append("source=?")
        params.append(where.source)
    sql = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = c.execute(
        f"SELECT {COLUMNS} FROM held_messages {sql} ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).fetchall()
    return [_held(r) for r in rows]


def counts(c: Tx) -> dict[tuple[str, str, str], int]:
    """Records by (source, state, reason code), for /metrics."""
    return {
        (r[0], r[1], r[2]): r[3]
        for r in c.execute(
            "SELECT source, state, reason_code, COUNT(*) FROM held_messages "
            "GROUP BY source, state, reason_code"
        )
    }
