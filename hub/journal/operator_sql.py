"""The journal side of the audit trail and target pauses (`hub.actions`): statements on the journal's threads.

Each function runs inside the caller's transaction, so an action and its audit row commit together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hub.actions import Action, OperatorAction, TargetPause
from hub.journal.tx import Tx

COLUMNS = "id, at, operator, action, reason, subject, count, details"


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _action(r: Sequence[Any]) -> OperatorAction:
    return OperatorAction(
        id=r[0],
        at=_dt(r[1]),
        operator=r[2],
        action=Action(r[3]),
        reason=r[4],
        subject=r[5],
        count=r[6],
        details=json.loads(r[7]),
    )


def record(
    c: Tx,
    now: float,
    operator: str | None,
    action: Action,
    subject: str,
    count: int,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> OperatorAction:
    """Add one row to the audit trail."""
    data = json.dumps(details or {}, sort_keys=True, default=str)
    (action_id,) = c.execute(
        f"INSERT INTO operator_actions ({COLUMNS.removeprefix('id, ')}) VALUES (?,?,?,?,?,?,?) RETURNING id",
        (now, operator, action.value, reason, subject, count, data),
    ).fetchone()
    return _action((action_id, now, operator, action.value, reason, subject, count, data))


def listing(
    c: Tx,
    action: Action | None,
    operator: str | None,
    limit: int,
    offset: int,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
) -> list[OperatorAction]:
    """Audit rows in [since, until), below row `before_id` (for paging through an export), newest first."""
    clauses: list[str] = []
    params: list[Any] = []
    if action is not None:
        clauses.append("action=?")
        params.append(action.value)
    if operator is not None:
        clauses.append("operator=?")
        params.append(operator)
    if since is not None:
        clauses.append("at>=?")
        params.append(since.timestamp())
    if until is not None:
        clauses.append("at<?")
        params.append(until.timestamp())
    if before_id is not None:
        clauses.append("id<?")
        params.append(before_id)
    sql = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = c.execute(
        f"SELECT {COLUMNS} FROM operator_actions {sql} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).fetchall()
    return [_action(r) for r in rows]


def counts(c: Tx) -> dict[str, int]:
    """Subjects acted on, by action (for /metrics)."""
    return dict(c.execute("SELECT action, SUM(count) FROM operator_actions GROUP BY action").fetchall())


def pause(c: Tx, now: float, target: str, operator: str, reason: str) -> TargetPause | None:
    """Pause `target`; None if it was paused already (the first pause, its operator and reason stay)."""
    cur = c.execute(
        "INSERT INTO target_pauses (target, operator, reason, paused_at) VALUES (?,?,?,?) "
        "ON CONFLICT (target) DO NOTHING",
        (target, operator, reason, now),
    )
    return TargetPause(operator=operator, reason=reason, since=_dt(now)) if cur.rowcount else None


def resume(c: Tx, target: str) -> TargetPause | None:
    """Lift the pause of `target`; the pause it lifted, or None if it was not paused."""
    found = pauses(c).get(target)
    if found is not None:
        c.execute("DELETE FROM target_pauses WHERE target=?", (target,))
    return found


def pauses(c: Tx) -> dict[str, TargetPause]:
    """Every paused target."""
    return {
        r[0]: TargetPause(operator=r[1], reason=r[2], since=_dt(r[3]))
        for r in c.execute("SELECT target, operator, reason, paused_at FROM target_pauses ORDER BY target")
    }
