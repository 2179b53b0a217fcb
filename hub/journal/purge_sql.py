"""Purge in the journal: which applications qualify, and erasing their payload (`hub.erasure`).

Runs on the journal's threads like every statement of `hub.journal.lifecycle`. Each batch of orders is one
write operation: the writer serves other callers between batches, so a large purge never holds it long.
The purge overwrites the rows in place with ``secure_delete`` on, so the erased content does not linger
in the database file's free pages (the write-ahead log holds it until its next checkpoint).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from hub.answers import Answer
from hub.blobs import BLOB_REF
from hub.erasure import erase_answer, erase_application, erase_event_data
from hub.events import APPLICATION_PURGED
from hub.journal.base import PURGEABLE_STATES, PurgeCandidate, PurgedApplication, PurgeOrder, TaskState
from hub.journal.meta_sql import set_meta
from hub.journal.tx import Tx
from hub.models import Application, Event

# A task in any other state is open (pending, leased, waiting, dead): its application is not purged.
CLOSED_TASK_STATES = (TaskState.DONE, TaskState.ABANDONED)
LAST_RUN_KEY, BLOBS_KEY, BYTES_KEY = "purge_last_run", "purge_blobs", "purge_bytes"
TOLD_KEY = "purge_connectors_told_from"  # connectors forgot every application purged before this time

_FINAL = ",".join("?" * len(PURGEABLE_STATES))
_CLOSED = ",".join("?" * len(CLOSED_TASK_STATES))
_QUALIFIES = (
    f"state IN ({_FINAL}) AND purged_at IS NULL AND NOT EXISTS (SELECT 1 FROM tasks t "
    f"WHERE t.application_id=applications.id AND t.state NOT IN ({_CLOSED}))"
)
_QUALIFY_PARAMS = (*PURGEABLE_STATES, *CLOSED_TASK_STATES)


def candidates(
    c: Tx, changed_before: float, after: tuple[float, str] | None, limit: int
) -> list[PurgeCandidate]:
    """A page of applications that may be purged, unchanged since `changed_before`, oldest first."""
    sql = f"SELECT id, route, service, updated_at FROM applications WHERE {_QUALIFIES} AND updated_at<=?"
    params: tuple[object, ...] = (*_QUALIFY_PARAMS, changed_before)
    if after is not None:
        sql += " AND (updated_at>? OR (updated_at=? AND id>?))"
        params += (after[0], after[0], after[1])
    rows = c.execute(sql + " ORDER BY updated_at, id LIMIT ?", (*params, limit)).fetchall()
    return [PurgeCandidate(id=r[0], route=r[1], service=r[2], final_since=r[3]) for r in rows]


def purge(
    c: Tx,
    orders: Sequence[PurgeOrder],
    now: float,
    search_text: Callable[[Application], str],
    insert_events: Callable[[Tx, Sequence[Event]], object],
) -> list[PurgedApplication]:
    """Erase the payload of the ordered applications that still qualify; returns those purged."""
    with c.dialect.erasing(c):
        return [p for order in orders if (p := _purge_one(c, order, now, search_text, insert_events))]


def _purge_one(
    c: Tx,
    order: PurgeOrder,
    now: float,
    search_text: Callable[[Application], str],
    insert_events: Callable[[Tx, Sequence[Event]], object],
) -> PurgedApplication | None:
    app_id = order.application_id
    # Checked again inside the transaction: an answer may have reopened it since it was selected.
    row = c.execute(
        f"SELECT doc FROM applications WHERE id=? AND {_QUALIFIES} AND updated_at<=?{c.dialect.for_update}",
        (app_id, *_QUALIFY_PARAMS, order.cutoff),
    ).fetchone()
    if row is None:
        return None
    refs: set[str] = set()
    app = Application.model_validate_json(row[0])
    refs.update(BLOB_REF.findall(row[0]))
    erased = erase_application(app, order.purged)
    c.execute(
        "UPDATE applications SET doc=?, search=?, error=NULL, purged_at=?, purge_policy=? WHERE id=?",
        (erased.model_dump_json(), search_text(erased), now, order.purged.policy, app_id),
    )
    for task_id, result, checkpoints, error in c.execute(
        "SELECT id, result, checkpoints, last_error FROM tasks WHERE application_id=?", (app_id,)
    ).fetchall():
        refs.update(BLOB_REF.findall(f"{result or ''} {checkpoints or ''} {error or ''}"))
        c.execute(
            "UPDATE tasks SET result=NULL, checkpoints='{}', last_error=NULL, error_group=NULL WHERE id=?",
            (task_id,),
        )
    for answer_row, doc in c.execute(
        "SELECT id, doc FROM answers WHERE application_id=?", (app_id,)
    ).fetchall():
        refs.update(BLOB_REF.findall(doc))
        answer = erase_answer(Answer.model_validate_json(doc))
        c.execute("UPDATE answers SET doc=? WHERE id=?", (answer.model_dump_json(), answer_row))
    for revision, doc, tasks in c.execute(
        "SELECT revision, doc, tasks FROM application_revisions WHERE application_id=?", (app_id,)
    ).fetchall():
        refs.update(BLOB_REF.findall(doc + tasks))
        old = erase_application(Application.model_validate_json(doc), order.purged)
        # Its steps stay listed with their states and error codes, like the current revision's.
        steps = [{**t, "result": None, "checkpoints": "{}", "last_error": None} for t in json.loads(tasks)]
        c.execute(
            "UPDATE application_revisions SET doc=?, tasks=? WHERE application_id=? AND revision=?",
            (old.model_dump_json(), json.dumps(steps), app_id, revision),
        )
    for event_id, event_type, data in c.execute(
        "SELECT id, type, data FROM events WHERE application_id=?", (app_id,)
    ).fetchall():
        refs.update(BLOB_REF.findall(data))
        event = Event(application_id=app_id, type=event_type, data=json.loads(data))
        c.execute(
            "UPDATE events SET data=? WHERE id=?",
            (json.dumps(erase_event_data(event), default=str), event_id),
        )
    insert_events(
        c,
        [
            Event(
                application_id=app_id,
                type=APPLICATION_PURGED,
                at=datetime.fromtimestamp(now, UTC),
                data={
                    "policy": order.purged.policy,
                    "retention_days": order.retention_days,
                    "operator": order.operator,
                    "attachments": len(app.attachments),
                    "blobs": len(refs),
                },
            )
        ],
    )
    return PurgedApplication(application_id=app_id, policy=order.purged.policy, blobs=frozenset(refs))


def record_run(c: Tx, at: float, blobs: int, size: int, told_from: float | None) -> None:
    """Note when a purge run ended; add what it deleted to the totals; advance what connectors know."""
    set_meta(c, LAST_RUN_KEY, repr(at))
    if told_from is not None:
        set_meta(c, TOLD_KEY, repr(told_from))
    for key, value in ((BLOBS_KEY, blobs), (BYTES_KEY, size)):
        c.execute(
            "INSERT INTO meta VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value=CAST(CAST(meta.value AS BIGINT)+? AS TEXT)",
            (key, str(value), value),
        )


def untold(c: Tx) -> list[str]:
    """Applications purged at or after the time up to which connectors heard of every purge."""
    row = c.execute("SELECT value FROM meta WHERE key=?", (TOLD_KEY,)).fetchone()
    since = float(row[0]) if row else float("-inf")
    return [r[0] for r in c.execute("SELECT id FROM applications WHERE purged_at>=? ORDER BY id", (since,))]


@dataclass(frozen=True)
class PurgeTotals:
    """What purges did, ever (for /metrics)."""

    applications: int
    last_run: float | None
    blobs: int
    size: int


def totals(c: Tx) -> PurgeTotals:
    """How many applications are purged, when the last run ended, and the files purges deleted."""
    purged = c.execute("SELECT COUNT(*) FROM applications WHERE purged_at IS NOT NULL").fetchone()[0]
    meta = dict(
        c.execute("SELECT key, value FROM meta WHERE key IN (?,?,?)", (LAST_RUN_KEY, BLOBS_KEY, BYTES_KEY))
    )
    last = meta.get(LAST_RUN_KEY)
    return PurgeTotals(
        applications=int(purged),
        last_run=float(last) if last is not None else None,
        blobs=int(meta.get(BLOBS_KEY, 0)),
        size=int(meta.get(BYTES_KEY, 0)),
    )
