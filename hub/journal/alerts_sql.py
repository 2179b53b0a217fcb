"""The alert outbox in the journal (`hub.mailer`): mails queued, sent, and the dead steps reported.

A mail is queued in the same transaction that marks the dead steps it reports as reported, so a crash
either queues both or neither; it is marked sent only after the mail server accepted it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from hub.alerts import AlertDraft, DeadTask
from hub.journal.base import QueuedAlert, TaskState
from hub.journal.tx import Tx


def unreported(c: Tx) -> list[DeadTask]:
    """Dead steps no mail has reported yet."""
    rows = c.execute(
        "SELECT t.id, t.updated_at, t.application_id, a.route, t.step, t.target, t.error_code, t.attempts "
        "FROM tasks t JOIN applications a ON a.id = t.application_id WHERE t.state = ? AND NOT EXISTS "
        "(SELECT 1 FROM alerted_tasks x WHERE x.task_id = t.id AND x.dead_at = t.updated_at) ORDER BY t.id",
        (TaskState.DEAD,),
    ).fetchall()
    return [DeadTask(*row) for row in rows]


def queue(c: Tx, drafts: Sequence[AlertDraft], now: float) -> int:
    """Queue the mails not queued before (by key) and note what they report; returns how many."""
    queued = 0
    for draft in drafts:
        row = c.execute(
            "INSERT INTO alerts (key, kind, recipients, subject, body, created_at, "
            "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id",
            (draft.key, draft.kind, json.dumps(draft.recipients), draft.subject, draft.body, now, now),
        ).fetchone()
        if row is None:
            continue
        queued += 1
        c.executemany(
            "INSERT INTO alerted_tasks VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [(task_id, dead_at, row[0]) for task_id, dead_at in draft.reports],
        )
    return queued


def prune(c: Tx, sent_before: float) -> None:
    """Forget reports of steps no longer dead (replayed, abandoned), then mails sent before `sent_before`."""
    c.execute(
        "DELETE FROM alerted_tasks WHERE NOT EXISTS (SELECT 1 FROM tasks t "
        "WHERE t.id = alerted_tasks.task_id AND t.state = ? AND t.updated_at = alerted_tasks.dead_at)",
        (TaskState.DEAD,),
    )
    c.execute(
        "DELETE FROM alerts WHERE sent_at < ? AND NOT EXISTS "
        "(SELECT 1 FROM alerted_tasks x WHERE x.alert_id = alerts.id)",
        (sent_before,),
    )


def due(c: Tx, now: float) -> list[QueuedAlert]:
    """Mails not sent yet whose next attempt is due, oldest first."""
    rows = c.execute(
        "SELECT id, key, kind, recipients, subject, body, created_at, attempts, last_error FROM alerts "
        "WHERE sent_at IS NULL AND next_attempt_at <= ? ORDER BY id",
        (now,),
    ).fetchall()
    return [
        QueuedAlert(
            id=r[0],
            key=r[1],
            kind=r[2],
            recipients=tuple(json.loads(r[3])),
            subject=r[4],
            body=r[5],
            created_at=r[6],
            attempts=r[7],
            last_error=r[8],
        )
        for r in rows
    ]


def sent(c: Tx, alert_id: int, at: float) -> None:
    """Mark a mail sent (the server accepted it)."""
    c.execute("UPDATE alerts SET sent_at = ?, attempts = attempts + 1 WHERE id = ?", (at, alert_id))


def failed(c: Tx, alert_id: int, error: str, retry_at: float) -> None:
    """Note a failed attempt; the mail is tried again at `retry_at`."""
    c.execute(
        "UPDATE alerts SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
        (error, retry_at, alert_id),
    )


def unsent(c: Tx) -> int:
    """How many mails wait to be sent."""
    return int(c.execute("SELECT COUNT(*) FROM alerts WHERE sent_at IS NULL").fetchone()[0])
