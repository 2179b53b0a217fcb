"""The journal's state rules, once for every backend: what intake, claims, completions, failures, replays,
answers and purges do to applications and tasks.

Each operation is a synchronous function of one transaction (`hub.journal.tx.Tx`) in the SQL SQLite
and PostgreSQL share, handed to the backend's `_write` (one durable transaction) or `_read`. A backend
(`hub.journal.sqlite`, `hub.journal.postgres`) only opens, migrates and runs them. Where transactions of
several processes run side by side, an operation first locks what it decides on: the application's row
for anything that changes its tasks (`_lock_application`), a target's row for a claim of its tasks, so
the same rules hold with one process or many.
"""

from __future__ import annotations

import abc
import json
import logging
import secrets
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from hub.actions import Action, OperatorAction, TargetPause
from hub.alerts import AlertDraft, DeadTask
from hub.answers import Answer, UnknownApplication
from hub.blobs import BLOB_REF
from hub.dashboard import JournalFigures, LiveCounters
from hub.deadletters import DeadLetters, error_group
from hub.events import operator_event
from hub.held import BackOff, HeldFilter, HeldMessage, HeldState
from hub.journal import (
    alerts_sql,
    counts,
    dashboard_sql,
    dead_sql,
    held_sql,
    leases_sql,
    operator_sql,
    purge_sql,
)
from hub.journal.base import (
    Abandoned,
    ActionRefused,
    AnswerPlan,
    ApplicationFilter,
    ApplicationPatch,
    ApplicationSummary,
    CircuitRecord,
    ClaimRequest,
    Completion,
    FileNumberAssigned,
    FileNumberSequence,
    IntakeResult,
    JournalStats,
    LeaseLost,
    PurgeCandidate,
    PurgedApplication,
    PurgeOrder,
    QueuedAlert,
    ReceivedAnswer,
    StoredAnswer,
    Task,
    TaskFailure,
    TaskSpec,
    TaskState,
)
from hub.journal.meta_sql import set_meta
from hub.journal.transfer import Transferred, copy_journal, count_rows
from hub.journal.tx import Tx
from hub.leases import LeaseGrant
from hub.models import Application, ApplicationState, Event
from hub.resubmission import ChangedResend, conflict_event, content_fingerprint, revise, revised_event

log = logging.getLogger(__name__)

T = TypeVar("T")

TASK_COLUMNS = (
    "id, application_id, step, target, state, attempts, attempt_base, max_attempts, due_at, "
    "lease_token, lease_until, last_error, result, checkpoints, created_at, updated_at, key, error_code, "
    "subject"
)
SUMMARY_COLUMNS = (
    "id, source, external_id, service, route, state, received_at, updated_at, file_number, error, "
    "error_code, purged_at, purge_policy"
)


class SqlJournal(abc.ABC):
    """The journal's operations over a backend that runs them (`_write`, `_read`)."""

    location: str  # where the journal is, for messages (never with a password)

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.commits = 0  # transactions committed (for the group-commit benchmark)
        self.operations = 0

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, check (or bring) the schema to this hub's version, start the backend's threads."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish the writes under way and let go of the database."""

    @property
    @abc.abstractmethod
    def writer_alive(self) -> bool:
        """Whether the journal can take writes."""

    @abc.abstractmethod
    async def _write(self, op: Callable[[Tx], T]) -> T:
        """Run `op` in a transaction and commit it durably before returning its value."""

    async def _write_bulk(self, op: Callable[[Tx], T]) -> T:
        """`_write` for an operation that may touch many rows (a recovery, a purge, a bulk action).

        A backend that runs small writes on the event loop (SQLite) runs these on a thread, where
        they hold up no intake.
        """
        return await self._write(op)

    @abc.abstractmethod
    async def _read(self, op: Callable[[Tx], T]) -> T:
        """Run `op` in a transaction that writes nothing."""

    async def _lookup(self, op: Callable[[Tx], T]) -> T:
        """Run `op`, a read of a few rows by their key, in a transaction that writes nothing.

        Every step reads its application and its tasks this way. A backend for which such a read
        costs less than the hop to a reading thread and back runs it at once (SQLite).
        """
        return await self._read(op)

    @abc.abstractmethod
    def snapshot(self) -> AbstractContextManager[Tx]:
        """A read transaction of its own, usable from any thread, seeing one state of the journal
        throughout (a journal's move to another backend reads it while writing the other)."""

    async def ping(self) -> None:
        await self._write(lambda c: c.execute("SELECT 1 FROM meta LIMIT 1").fetchall())

    async def take_over(self, source: SqlJournal) -> Transferred:
        """Copy every row of `source` into this empty journal, in one transaction (`hub.storemove`)."""

        def op(c: Tx) -> Transferred:
            with source.snapshot() as theirs:
                moved = copy_journal(theirs, c)
            # The workers that held them stopped with the old hub: their steps are due again.
            _release_leases(c, self.clock())
            # PostgreSQL's triggers appended a count delta per finished row copied: folded now, or the
            # first /metrics scrape would fold them (4.6 s for a million applications).
            if counts.unfolded(c):
                counts.fold(c)
            return moved

        return await self._write_bulk(op)

    async def row_counts(self) -> dict[str, int]:
        """Rows per table (what a move must have carried over)."""
        return await self._read(count_rows)

    # -- writes ------------------------------------------------------------------------------------

    async def recover(self) -> int:
        """Release every lease: only for a backend whose one process just started (no other worker)."""

        def op(c: Tx) -> int:
            leases_sql.expire_all(c, self.clock())  # the singleton jobs' too: their holder is gone
            return _release_leases(c, self.clock())

        return await self._write_bulk(op)

    async def intake(
        self,
        application: Application,
        events: Sequence[Event],
        tasks: Sequence[TaskSpec],
        state: ApplicationState = ApplicationState.RECEIVED,
        error: str | None = None,
        error_code: str | None = None,
        on_changed: ChangedResend = ChangedResend.REFUSE,
    ) -> IntakeResult:
        now = self.clock()
        received = application.received_at.timestamp()
        doc = application.model_dump_json()
        search = _search_text(application)

        if any(e.application_id != application.id for e in events):
            raise ValueError("intake events must belong to the application taken in")

        def op(c: Tx) -> IntakeResult:
            cur = c.execute(
                "INSERT INTO applications (id, source, external_id, service, route, state, "
                "received_at, updated_at, file_number, error, error_code, search, doc) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (source, external_id) DO NOTHING",
                (
                    application.id,
                    application.source,
                    application.external_id,
                    application.service,
                    application.route,
                    state,
                    received,
                    now,
                    application.file_number,
                    error,
                    error_code,
                    search,
                    doc,
                ),
            )
            if cur.rowcount == 0:
                resent = _Resent(application, events, tasks, state, error, error_code, on_changed)
                return self._resent(c, resent, now)
            _index_correlations(c, application, new=True)
            stored = _insert_events(c, events)
            _insert_tasks(c, application.id, tasks, now)
            return IntakeResult(application_id=application.id, duplicate=False, events=stored)

        return await self._write(op)

    def _resent(self, c: Tx, resent: _Resent, now: float) -> IntakeResult:
        """A submission under a known (source, external_id): duplicate, conflict or new revision."""
        received = resent.application
        row = c.execute(
            f"SELECT doc, state FROM applications WHERE source=? AND external_id=?{c.dialect.for_update}",
            (received.source, received.external_id),
        ).fetchone()
        stored = Application.model_validate_json(row[0])
        if stored.fingerprint is None:  # stored before fingerprints were kept
            stored.fingerprint = content_fingerprint(stored)
        fingerprint = received.fingerprint or content_fingerprint(received)
        if fingerprint == stored.fingerprint:
            return IntakeResult(application_id=stored.id, duplicate=True, revision=stored.revision)
        # An application an admin abandoned stays ended: only an admin could take it up again.
        # A purged one too: its history keeps no content a new revision could be told apart from.
        if (
            resent.on_changed is ChangedResend.REFUSE
            or row[1] == ApplicationState.ABANDONED
            or stored.purged is not None
        ):
            events = _insert_events(c, [conflict_event(stored, fingerprint)])
            return IntakeResult(
                application_id=stored.id,
                duplicate=True,
                conflict=True,
                revision=stored.revision,
                events=events,
            )
        # A new revision: the superseded one is archived with its tasks (their results name what was
        # delivered), then the application starts over with the new content under its own id. A task
        # still leased to a worker is gone with it: that worker's completion is refused (LeaseLost).
        revised = revise(stored, received.model_copy(update={"fingerprint": fingerprint}))
        old_tasks = c.execute(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE application_id=? ORDER BY id", (stored.id,)
        ).fetchall()
        c.execute(
            "INSERT INTO application_revisions (application_id, revision, superseded_at, doc, tasks) "
            "VALUES (?,?,?,?,?)",
            (
                stored.id,
                stored.revision,
                now,
                stored.model_dump_json(),
                json.dumps([dict(zip(TASK_COLUMNS.split(", "), r, strict=True)) for r in old_tasks]),
            ),
        )
        c.execute("DELETE FROM tasks WHERE application_id=?", (stored.id,))
        c.execute(
            "UPDATE applications SET service=?, route=?, state=?, error=?, error_code=?, updated_at=?, "
            "file_number=?, search=?, doc=? WHERE id=?",
            (
                revised.service,
                revised.route,
                resent.state,
                resent.error,
                resent.error_code,
                now,
                revised.file_number,
                _search_text(revised),
                revised.model_dump_json(),
                stored.id,
            ),
        )
        _index_correlations(c, revised)
        inserted = _insert_events(
            c,
            [revised_event(stored, revised)]
            + [e.model_copy(update={"application_id": stored.id}) for e in resent.events],
        )
        _insert_tasks(c, stored.id, resent.tasks, now)
        return IntakeResult(
            application_id=stored.id, duplicate=False, revision=revised.revision, events=inserted
        )

    async def claim(
        self,
        owner: str,
        limit: int,
        lease_seconds: float,
        capacity: dict[str, int],
        starts: Mapping[str, int] | None = None,
    ) -> list[Task]:
        return await self._write(self._claiming(ClaimRequest(limit, lease_seconds, capacity, starts)))

    async def complete_and_claim(
        self, task: Task, completion: Completion, request: ClaimRequest
    ) -> tuple[tuple[Event, ...], list[Task]]:
        completing = self._completing(task, completion)
        claiming = self._claiming(request)
        # The claim runs after the completion in its transaction, so it sees the lease let go.
        return await self._write(lambda c: (completing(c), claiming(c)))

    def _claiming(self, request: ClaimRequest) -> Callable[[Tx], list[Task]]:
        """The transaction's part that leases due tasks (`claim`)."""
        limit, capacity = request.limit, request.capacity

        def op(c: Tx) -> list[Task]:
            # Built anew on every run: a backend may run `op` again after a conflict.
            started: dict[str, int] = dict(request.starts or {})
            now = self.clock()
            claimed: list[Task] = []
            live: dict[str, int] = {}
            held: set[str] = set()

            def take(row: Sequence[Any]) -> None:
                task = _task(row)
                if task.target not in live:
                    return  # paused, or claimed by another process right now: the next claim
                cap = capacity.get(task.target)
                if cap is not None and live[task.target] >= cap:
                    return
                if started.get(task.target, 1) <= 0:
                    return  # paused, circuit open or rate limited: not attempted, not counted
                key = row[16]
                if key is not None:
                    # Another process may have leased its twin since this claim began: asked anew
                    # under a lock on the key, which that process held until its claim committed.
                    if key in held or not c.dialect.try_lock(c, f"task-key:{key}"):
                        return
                    held.add(key)
                    if c.execute(
                        "SELECT 1 FROM tasks WHERE key=? AND state=? AND lease_until>=? LIMIT 1",
                        (key, TaskState.LEASED, now),
                    ).fetchone():
                        return  # its twin is running: it waits for the next claim
                token = secrets.token_hex(8)
                until = now + request.lease_seconds
                c.execute(
                    "UPDATE tasks SET state=?, lease_token=?, lease_until=?, attempts=attempts+1, "
                    "updated_at=? WHERE id=?",
                    (TaskState.LEASED, token, until, now, task.id),
                )
                live[task.target] += 1
                if task.target in started:
                    started[task.target] -= 1
                claimed.append(
                    _replace(
                        task,
                        state=TaskState.LEASED,
                        lease_token=token,
                        lease_until=until,
                        attempts=task.attempts + 1,
                        updated_at=now,
                    )
                )

            targets = [r[0] for r in c.execute("SELECT target FROM task_targets")]
            for target in targets:
                if started.get(target, 1) <= 0:
                    continue  # paused, circuit open or rate limited: not attempted, not counted
                # The target's row is this claim's until it commits: two processes never count the
                # same target's leases at once. One another process is claiming waits for the next.
                # (Where one writer runs at a time there is nothing to lock: no statement.)
                if (
                    c.dialect.skip_locked
                    and c.execute(
                        f"SELECT target FROM task_targets WHERE target=?{c.dialect.skip_locked}", (target,)
                    ).fetchone()
                    is None
                ):
                    continue
                live[target] = c.execute(
                    "SELECT COUNT(*) FROM tasks WHERE state=? AND target=? AND lease_until>=?",
                    (TaskState.LEASED, target, now),
                ).fetchone()[0]
            # Leases of dead workers first: that work is overdue.
            for row in c.execute(
                f"SELECT {TASK_COLUMNS} FROM tasks WHERE state=? AND lease_until<? "
                f"ORDER BY due_at, id{c.dialect.skip_locked}",
                (TaskState.LEASED, now),
            ).fetchall():
                if len(claimed) >= limit:
                    return claimed
                take(row)
            # Then due tasks, asked per target with room left, each walking the (state, target,
            # due_at) index: a full target's backlog is never scanned, so a claim costs the same with
            # ten or a million tasks waiting, and no target starves another.
            due: list[Sequence[Any]] = []
            for target, running in live.items():
                cap = capacity.get(target)
                room = limit - len(claimed) if cap is None else min(limit - len(claimed), cap - running)
                room = min(room, started.get(target, room))
                if room > 0:
                    due += c.execute(
                        f"SELECT {TASK_COLUMNS} FROM tasks WHERE state=? AND target=? AND due_at<=? "
                        f"ORDER BY due_at, id LIMIT ?{c.dialect.skip_locked}",
                        (TaskState.PENDING, target, now, room),
                    ).fetchall()
            for row in sorted(due, key=lambda r: (r[8], r[0])):  # oldest due first, across targets
                if len(claimed) >= limit:
                    break
                take(row)
            return claimed

        return op

    def _check_lease(self, c: Tx, task: Task) -> None:
        """Refuse a worker whose lease token is no longer the task's (the fencing token of its claim).

        The application's row is locked first: its sibling steps completing in other processes wait,
        so a join (`AfterAll`) sees every sibling's outcome and fires exactly once.
        """
        _lock_application(c, task.application_id)
        row = c.execute(
            f"SELECT state, lease_token FROM tasks WHERE id=?{c.dialect.for_update}", (task.id,)
        ).fetchone()
        if row is None or row[0] != TaskState.LEASED or row[1] != task.lease_token:
            raise LeaseLost(f"task {task.id} is no longer leased by this worker")

    async def renew(self, task: Task, lease_seconds: float) -> Task:
        def op(c: Tx) -> Task:
            self._check_lease(c, task)
            until = self.clock() + lease_seconds
            c.execute("UPDATE tasks SET lease_until=? WHERE id=?", (until, task.id))
            return _replace(task, lease_until=until)

        return await self._write(op)

    async def save_checkpoints(self, task: Task, checkpoints: dict[str, Any]) -> None:
        data = json.dumps(checkpoints, sort_keys=True)

        def op(c: Tx) -> None:
            self._check_lease(c, task)
            c.execute(
                "UPDATE tasks SET checkpoints=?, updated_at=? WHERE id=?",
                (data, self.clock(), task.id),
            )

        await self._write(op)

    async def complete(self, task: Task, completion: Completion) -> tuple[Event, ...]:
        return await self._write(self._completing(task, completion))

    def _completing(self, task: Task, completion: Completion) -> Callable[[Tx], tuple[Event, ...]]:
        """The transaction's part that ends a held task with its completion (`complete`)."""
        result = json.dumps(completion.result) if completion.result is not None else None
        # A delivery's last progress goes with its completion: one write for the step, not two.
        checkpoints = completion.checkpoints
        saved = "" if checkpoints is None else ", checkpoints=?"
        progress = () if checkpoints is None else (json.dumps(checkpoints, sort_keys=True),)

        def op(c: Tx) -> tuple[Event, ...]:
            self._check_lease(c, task)
            now = self.clock()
            c.execute(
                "UPDATE tasks SET state=?, lease_token=NULL, lease_until=NULL, result=?, "
                f"last_error=NULL, error_code=NULL, updated_at=?{saved} WHERE id=?",
                (TaskState.DONE, result, now, *progress, task.id),
            )
            _update_application(c, task.application_id, completion, now)
            stored = _insert_events(c, completion.events)
            # The application's next steps keep its place in line (see `_insert_tasks`).
            _insert_tasks(c, task.application_id, completion.tasks, now, queued=task.due_at)
            if completion.assigned is not None:
                stored += _assign(c, task.application_id, completion.assigned, now)
            join = completion.after_all
            if join is not None and not _unfinished(c, task.application_id, join.step):
                if join.state is not None:
                    _set_state(c, task.application_id, join.state, now)
                stored += _insert_events(c, join.events)
                _insert_tasks(c, task.application_id, join.tasks, now, queued=task.due_at)
            if not task.subject and not _own_unfinished(c, task.application_id):
                _release_answer_steps(c, task.application_id, now)
            return stored

        return op

    async def fail(
        self,
        task: Task,
        error: str,
        retry_at: float | None,
        events: Sequence[Event] = (),
        error_code: str | None = None,
        counted: bool = True,
    ) -> tuple[Event, ...]:
        def op(c: Tx) -> tuple[Event, ...]:
            self._check_lease(c, task)
            now = self.clock()
            if not counted:  # `attempts` stays the honest count; the budget starts one later
                c.execute("UPDATE tasks SET attempt_base=attempt_base+1 WHERE id=?", (task.id,))
            if retry_at is None:
                c.execute(
                    "UPDATE tasks SET state=?, lease_token=NULL, lease_until=NULL, last_error=?, "
                    "error_group=?, error_code=?, updated_at=? WHERE id=?",
                    (TaskState.DEAD, error, error_group(error), error_code, now, task.id),
                )
                c.execute(
                    "UPDATE applications SET state=?, error=?, error_code=?, updated_at=? WHERE id=?",
                    (ApplicationState.DEAD, error, error_code, now, task.application_id),
                )
            else:
                c.execute(
                    "UPDATE tasks SET state=?, lease_token=NULL, lease_until=NULL, last_error=?, "
                    "error_group=?, error_code=?, due_at=?, updated_at=? WHERE id=?",
                    (TaskState.PENDING, error, error_group(error), error_code, retry_at, now, task.id),
                )
                c.execute(
                    "UPDATE applications SET state=?, updated_at=? WHERE id=? AND state=?",
                    (
                        ApplicationState.PROCESSING,
                        now,
                        task.application_id,
                        ApplicationState.RECEIVED,
                    ),
                )
            return _insert_events(c, events)

        return await self._write(op)

    async def replay(
        self, where: ApplicationFilter, operator: str | None = None, reason: str | None = None
    ) -> list[str]:
        sql, params = _where(where, dead_only=True)
        steps, step_params = dead_sql.step_clause(where)
        steps = f" AND {steps}" if steps else ""

        def op(c: Tx) -> list[str]:
            now = self.clock()
            # A purged application's payload is gone: a replay would deliver nothing (hub.retention).
            ids = [
                r[0] for r in c.execute(f"SELECT id FROM applications {sql} AND purged_at IS NULL", params)
            ]
            replayed = []
            for app_id in ids:
                _lock_application(c, app_id)
                cur = c.execute(
                    "UPDATE tasks SET state=?, attempt_base=attempts, due_at=?, updated_at=? "
                    f"WHERE application_id=? AND state=?{steps}",
                    (TaskState.PENDING, now, now, app_id, TaskState.DEAD, *step_params),
                )
                if cur.rowcount == 0:
                    continue
                # A dead step the filter left out keeps the application dead (`_set_state`).
                c.execute(
                    "UPDATE applications SET state=?, error=NULL, error_code=NULL, updated_at=? "
                    "WHERE id=? AND NOT EXISTS (SELECT 1 FROM tasks WHERE application_id=? AND state=?)",
                    (ApplicationState.PROCESSING, now, app_id, app_id, TaskState.DEAD),
                )
                _insert_events(
                    c, [operator_event(app_id, Action.REPLAYED, operator, reason, tasks=cur.rowcount)]
                )
                replayed.append(app_id)
            if replayed:
                c.dialect.wake_workers(c)
                operator_sql.record(
                    c, now, operator, Action.REPLAYED, where.describe(), len(replayed), reason
                )
            return replayed

        return await self._write_bulk(op)

    async def abandon(self, application_id: str, operator: str, reason: str) -> Abandoned:
        def op(c: Tx) -> Abandoned:
            now = self.clock()
            outcome = _abandon(c, now, application_id, operator, reason)
            if not outcome.already:
                operator_sql.record(c, now, operator, Action.ABANDONED, application_id, 1, reason)
            return outcome

        return await self._write(op)

    async def abandon_bulk(self, where: ApplicationFilter, operator: str, reason: str) -> list[Abandoned]:
        sql, params = _where(where, dead_only=True)

        def op(c: Tx) -> list[Abandoned]:
            ids = [r[0] for r in c.execute(f"SELECT id FROM applications {sql}", params)]
            subject = where.describe()
            return dead_sql.abandon_all(c, self.clock(), ids, subject, operator, reason, _abandon)

        return await self._write_bulk(op)

    async def count_dead(self, where: ApplicationFilter) -> int:
        sql, params = _where(where, dead_only=True)
        return await self._read(
            lambda c: int(c.execute(f"SELECT COUNT(*) FROM applications {sql}", params).fetchone()[0])
        )

    async def dead_letters(self, where: ApplicationFilter, by_text: bool, limit: int) -> DeadLetters:
        # The application-level part of the filter (route, service, ...); the dead-step part is the
        # grouping's own condition on each task.
        apps = _where(
            replace(where, target=None, error_code=None, error_group=None, dead_from=None, dead_to=None)
        )
        return await self._read(lambda c: dead_sql.groups(c, where, apps, by_text, limit))

    async def append(self, events: Sequence[Event]) -> tuple[Event, ...]:
        return await self._write(lambda c: _insert_events(c, events))

    async def next_sequence(self, name: str, period: str) -> int:
        def op(c: Tx) -> int:
            row = c.execute(
                "INSERT INTO sequences (name, period, value) VALUES (?,?,1) "
                "ON CONFLICT (name, period) DO UPDATE SET value=sequences.value+1 RETURNING value",
                (name, period),
            ).fetchone()
            return int(row[0])

        return await self._write(op)

    async def once(self, namespace: str, key: str, owner: str, until: datetime) -> str:
        """Bind `key` in `namespace` to `owner` until `until` unless bound already; return its owner."""
        expires = until.timestamp()

        def op(c: Tx) -> str:
            # Expired keys go first, so a key whose time is over may be bound anew.
            c.execute("DELETE FROM once_keys WHERE expires_at < ?", (self.clock(),))
            c.execute(
                "INSERT INTO once_keys (namespace, key, owner, expires_at) VALUES (?,?,?,?) "
                "ON CONFLICT (namespace, key) DO NOTHING",
                (namespace, key, owner, expires),
            )
            row = c.execute(
                "SELECT owner FROM once_keys WHERE namespace=? AND key=?", (namespace, key)
            ).fetchone()
            return str(row[0])

        return await self._write(op)

    async def store_answer(self, connector: str, answer: Answer, plan: AnswerPlan) -> StoredAnswer:
        doc = answer.model_dump_json()

        def op(c: Tx) -> StoredAnswer:
            row = c.execute(
                "SELECT application_id, id FROM answers WHERE connector=? AND answer_id=?",
                (connector, answer.answer_id),
            ).fetchone()
            if row is not None:
                return StoredAnswer(application_id=row[0], duplicate=True, answer_row=row[1])
            app_id = _answered_application(c, connector, answer)
            now = self.clock()
            _lock_application(c, app_id)
            (answer_row,) = c.execute(
                "INSERT INTO answers (connector, answer_id, application_id, status, received_at, doc) "
                "VALUES (?,?,?,?,?,?) RETURNING id",
                (connector, answer.answer_id, app_id, answer.status, now, doc),
            ).fetchone()
            app_row = c.execute("SELECT doc, state FROM applications WHERE id=?", (app_id,)).fetchone()
            app = Application.model_validate_json(app_row[0])
            effects = plan(app, ApplicationState(app_row[1]), answer_row)
            stored: tuple[Event, ...] = ()
            if effects.assigned is not None:
                stored += _assign(c, app_id, effects.assigned, now)
            # Filed and told after the application's own steps: the Akte exists, the receipt went first.
            waiting = _own_unfinished(c, app_id)
            _insert_tasks(c, app_id, effects.tasks, now, waiting=waiting)
            if effects.failed_task is not None:
                self._fail_done_task(c, app_id, effects.failed_task, now)
            _update_application(c, app_id, Completion(patch=effects.patch, state=effects.state), now)
            stored = _insert_events(c, effects.events) + stored
            return StoredAnswer(application_id=app_id, duplicate=False, answer_row=answer_row, events=stored)

        return await self._write(op)

    def _fail_done_task(self, c: Tx, application_id: str, failed: TaskFailure, now: float) -> None:
        """Make a task dead after the fact (a remote system refused later what it took), replayable."""
        # Its checkpoints go too: they say "delivered", and the replay must deliver anew what was refused
        # (e.g. an import folder the Fachverfahren consumed and refused would otherwise not be written).
        c.execute(
            "UPDATE tasks SET state=?, lease_token=NULL, lease_until=NULL, last_error=?, error_group=?, "
            "error_code=?, checkpoints='{}', updated_at=? "
            "WHERE application_id=? AND step=? AND target=? AND subject='' AND state!=?",
            (
                TaskState.DEAD,
                failed.error,
                error_group(failed.error),
                failed.error_code,
                now,
                application_id,
                failed.step,
                failed.target,
                TaskState.ABANDONED,
            ),
        )
        c.execute(
            "UPDATE applications SET error=?, error_code=?, updated_at=? WHERE id=? AND state!=?",
            (failed.error, failed.error_code, now, application_id, ApplicationState.ABANDONED),
        )

    async def get_answer(self, row: int) -> ReceivedAnswer | None:
        def op(c: Tx) -> ReceivedAnswer | None:
            found = c.execute(
                "SELECT id, connector, application_id, received_at, doc FROM answers WHERE id=?", (row,)
            ).fetchone()
            return _received_answer(found) if found else None

        return await self._read(op)

    async def answers(self, application_id: str) -> list[ReceivedAnswer]:
        def op(c: Tx) -> list[ReceivedAnswer]:
            rows = c.execute(
                "SELECT id, connector, application_id, received_at, doc FROM answers "
                "WHERE application_id=? ORDER BY id",
                (application_id,),
            ).fetchall()
            return [_received_answer(r) for r in rows]

        return await self._read(op)

    async def assign_file_number(
        self,
        application_id: str,
        sequence: FileNumberSequence | None,
        *,
        found: str | None = None,
        akte_key: str | None = None,
    ) -> str | None:
        def op(c: Tx) -> str | None:
            row = c.execute(
                f"SELECT file_number FROM applications WHERE id=?{c.dialect.for_update}", (application_id,)
            ).fetchone()
            if row is None:
                raise KeyError(f"application {application_id} is not in the journal")
            if row[0]:
                return str(row[0])  # decided by an earlier attempt: a retry never draws again
            number = found
            if number is None and akte_key is not None:
                known = c.execute(
                    "SELECT file_number FROM akte_file_numbers WHERE akte_key=?", (akte_key,)
                ).fetchone()
                number = known[0] if known else None
            if number is None and sequence is not None:
                seq = c.execute(
                    "INSERT INTO sequences (name, period, value) VALUES (?,?,1) "
                    "ON CONFLICT (name, period) DO UPDATE SET value=sequences.value+1 RETURNING value",
                    (sequence.name, sequence.period),
                ).fetchone()
                number = sequence.compose(int(seq[0]))
            if number is None:
                return None
            if akte_key is not None:
                # The e-file's own Akte (found) outranks what this hub decided for it earlier.
                on_conflict = "DO UPDATE SET file_number=excluded.file_number" if found else "DO NOTHING"
                c.execute(
                    "INSERT INTO akte_file_numbers (akte_key, file_number, application_id) VALUES (?,?,?) "
                    f"ON CONFLICT (akte_key) {on_conflict}",
                    (akte_key, number, application_id),
                )
            patch = Completion(patch=ApplicationPatch(file_number=number))
            _update_application(c, application_id, patch, self.clock())
            return number

        return await self._write(op)

    # -- reads -------------------------------------------------------------------------------------

    async def get_application(self, application_id: str) -> Application | None:
        def op(c: Tx) -> Application | None:
            row = c.execute("SELECT doc FROM applications WHERE id=?", (application_id,)).fetchone()
            return Application.model_validate_json(row[0]) if row else None

        return await self._lookup(op)

    async def get_summary(self, application_id: str) -> ApplicationSummary | None:
        def op(c: Tx) -> ApplicationSummary | None:
            row = c.execute(
                f"SELECT {SUMMARY_COLUMNS} FROM applications WHERE id=?", (application_id,)
            ).fetchone()
            return _summary(row) if row else None

        return await self._read(op)

    async def list_applications(
        self, where: ApplicationFilter, limit: int = 100, offset: int = 0
    ) -> list[ApplicationSummary]:
        if where.q and where.find is None:
            # An id any system gave the application is found by index; free text only otherwise.
            exact = await self.list_applications(replace(where, q=None, find=where.q), limit, offset)
            if exact:
                return exact
        sql, params = _where(where)

        def op(c: Tx) -> list[ApplicationSummary]:
            rows = c.execute(
                f"SELECT {SUMMARY_COLUMNS} FROM applications {sql} "
                "ORDER BY received_at DESC, id LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
            return [_summary(r) for r in rows]

        return await self._read(op)

    async def events(self, application_id: str) -> list[Event]:
        def op(c: Tx) -> list[Event]:
            rows = c.execute(
                "SELECT id, application_id, type, at, step, target, data FROM events "
                "WHERE application_id=? ORDER BY id",
                (application_id,),
            ).fetchall()
            return [
                Event(
                    id=r[0],
                    application_id=r[1],
                    type=r[2],
                    at=_dt(r[3]),
                    step=r[4],
                    target=r[5],
                    data=json.loads(r[6]),
                )
                for r in rows
            ]

        return await self._read(op)

    async def tasks(self, application_id: str) -> list[Task]:
        def op(c: Tx) -> list[Task]:
            rows = c.execute(
                f"SELECT {TASK_COLUMNS} FROM tasks WHERE application_id=? ORDER BY id",
                (application_id,),
            ).fetchall()
            return [_task(r) for r in rows]

        return await self._lookup(op)

    async def next_due(self) -> float | None:
        def op(c: Tx) -> float | None:
            row = c.execute(
                "SELECT MIN(t) FROM (SELECT MIN(due_at) AS t FROM tasks WHERE state=? "
                "UNION ALL SELECT MIN(lease_until) FROM tasks WHERE state=?) AS due",
                (TaskState.PENDING, TaskState.LEASED),
            ).fetchone()
            return float(row[0]) if row and row[0] is not None else None

        return await self._read(op)

    async def stats(self) -> JournalStats:
        if await self._read(counts.unfolded):  # PostgreSQL's finished counts, appended by its triggers
            await self._write_bulk(counts.fold)

        def op(c: Tx) -> JournalStats:
            apps, tasks = counts.application_and_task_counts(c)  # finished ones from counters
            purged = purge_sql.totals(c)
            return JournalStats(
                applications_by_state=apps,
                tasks_by_step_target_state=tasks,
                write_transactions=self.commits,
                write_operations=self.operations,
                held_by_source_state_reason=held_sql.counts(c),
                operator_actions=operator_sql.counts(c),
                paused_targets=tuple(operator_sql.pauses(c)),
                purged_applications=purged.applications,
                last_purge_at=purged.last_run,
                purged_blobs=purged.blobs,
                purged_blob_bytes=purged.size,
                unsent_alerts=alerts_sql.unsent(c),
            )

        return await self._read(op)

    async def circuits(self) -> dict[str, CircuitRecord]:
        def op(c: Tx) -> dict[str, CircuitRecord]:
            rows = c.execute(
                "SELECT target, state, failures, open_seconds, open_until, changed_at, error_code "
                "FROM circuits"
            )
            return {r[0]: CircuitRecord(*r) for r in rows}

        return await self._read(op)

    async def save_circuit(self, record: CircuitRecord) -> None:
        def op(c: Tx) -> None:
            c.execute(
                "INSERT INTO circuits (target, state, failures, open_seconds, open_until, changed_at, "
                "error_code) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (target) DO UPDATE SET "
                "state=excluded.state, failures=excluded.failures, open_seconds=excluded.open_seconds, "
                "open_until=excluded.open_until, changed_at=excluded.changed_at, "
                "error_code=excluded.error_code",
                (
                    record.target,
                    record.state,
                    record.failures,
                    record.open_seconds,
                    record.open_until,
                    record.changed_at,
                    record.error_code,
                ),
            )

        await self._write(op)

    async def blob_references(self, excluding: Collection[str] = ()) -> set[str]:
        skip = frozenset(excluding)

        def op(c: Tx) -> set[str]:
            # Every text column of every table: whatever stores a blob reference (application documents,
            # step results, checkpoints, tables added later) keeps its blob from the orphan sweep.
            found: set[str] = set()
            for table, columns in c.dialect.text_columns(c).items():
                owner = "id" if table == "applications" else "application_id"
                # Rows of the excluded applications are read with their owner and left out here.
                owned = bool(skip) and owner in columns
                for column in columns:
                    selected = f'"{owner}", "{column}"' if owned else f'NULL, "{column}"'
                    query = f'SELECT {selected} FROM "{table}" WHERE "{column}" LIKE \'%sha256:%\''
                    for app_id, value in c.execute(query):
                        if app_id is None or app_id not in skip:
                            found.update(BLOB_REF.findall(value))
            return found

        return await self._read(op)

    async def purge_candidates(
        self, changed_before: float, after: tuple[float, str] | None, limit: int
    ) -> list[PurgeCandidate]:
        return await self._read(lambda c: purge_sql.candidates(c, changed_before, after, limit))

    async def purge(self, orders: Sequence[PurgeOrder]) -> list[PurgedApplication]:
        def op(c: Tx) -> list[PurgedApplication]:
            return purge_sql.purge(c, orders, self.clock(), _search_text, _insert_events)

        return await self._write_bulk(op)

    async def record_purge_run(self, at: float, blobs: int, size: int, told_from: float | None) -> None:
        await self._write(lambda c: purge_sql.record_run(c, at, blobs, size, told_from))

    async def purged_untold(self) -> list[str]:
        return await self._read(purge_sql.untold)

    async def unreported_dead(self) -> list[DeadTask]:
        return await self._read(alerts_sql.unreported)

    async def queue_alerts(self, drafts: Sequence[AlertDraft]) -> int:
        return await self._write(lambda c: alerts_sql.queue(c, drafts, self.clock()))

    async def prune_alerts(self, sent_before: float) -> None:
        await self._write_bulk(lambda c: alerts_sql.prune(c, sent_before))

    async def due_alerts(self) -> list[QueuedAlert]:
        return await self._read(lambda c: alerts_sql.due(c, self.clock()))

    async def alert_sent(self, alert_id: int) -> None:
        await self._write(lambda c: alerts_sql.sent(c, alert_id, self.clock()))

    async def alert_failed(self, alert_id: int, error: str, retry_at: float) -> None:
        await self._write(lambda c: alerts_sql.failed(c, alert_id, error, retry_at))

    async def unsent_alerts(self) -> int:
        return await self._read(alerts_sql.unsent)

    async def dashboard_figures(self, now: float, window_seconds: int) -> JournalFigures:
        return await dashboard_sql.figures(self._read, now, window_seconds)

    async def live_counters(self, now: float) -> LiveCounters:
        return await self._read(lambda c: dashboard_sql.counters(c, now))

    async def probe_write(self) -> None:
        def op(c: Tx) -> None:
            set_meta(c, "write_probe", repr(self.clock()))

        await self._write(op)

    # -- operator actions and target pauses (hub.actions) ----------------------------------------

    async def record_action(
        self,
        operator: str | None,
        action: Action,
        subject: str,
        count: int,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> OperatorAction:
        return await self._write(
            lambda c: operator_sql.record(c, self.clock(), operator, action, subject, count, reason, details)
        )

    async def operator_actions(
        self,
        action: Action | None = None,
        operator: str | None = None,
        limit: int = 100,
        offset: int = 0,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
    ) -> list[OperatorAction]:
        period = (since, until, before_id)
        return await self._read(lambda c: operator_sql.listing(c, action, operator, limit, offset, *period))

    async def pause_target(self, target: str, operator: str, reason: str) -> TargetPause | None:
        def op(c: Tx) -> TargetPause | None:
            now = self.clock()
            paused = operator_sql.pause(c, now, target, operator, reason)
            if paused is not None:
                operator_sql.record(c, now, operator, Action.PAUSED, target, 1, reason)
            return paused

        return await self._write(op)

    async def resume_target(self, target: str, operator: str, reason: str | None) -> TargetPause | None:
        def op(c: Tx) -> TargetPause | None:
            lifted = operator_sql.resume(c, target)
            if lifted is not None:
                c.dialect.wake_workers(c)
                details = {"paused_by": lifted.operator, "paused_at": lifted.since.isoformat()}
                operator_sql.record(c, self.clock(), operator, Action.RESUMED, target, 1, reason, details)
            return lifted

        return await self._write(op)

    async def paused_targets(self) -> dict[str, TargetPause]:
        return await self._read(operator_sql.pauses)

    async def count_replayable(self, where: ApplicationFilter) -> int:
        sql, params = _where(where, dead_only=True)
        return await self._read(
            lambda c: int(
                c.execute(
                    f"SELECT COUNT(*) FROM applications {sql} AND purged_at IS NULL", params
                ).fetchone()[0]
            )
        )

    # -- held messages (hub.held) ------------------------------------------------------------------

    async def hold(
        self,
        source: str,
        message_id: str,
        sender: str | None,
        state: HeldState,
        code: str,
        reason: str,
        application_id: str | None = None,
    ) -> HeldMessage:
        return await self._write(
            lambda c: held_sql.hold(
                c, self.clock(), source, message_id, sender, state, code, reason, application_id
            )
        )

    async def held_fetch_failed(
        self, source: str, message_id: str, sender: str | None, code: str, reason: str, backoff: BackOff
    ) -> HeldMessage:
        return await self._write(
            lambda c: held_sql.fetch_failed(
                c, self.clock(), source, message_id, sender, code, reason, backoff
            )
        )

    async def held_taken(self, source: str, message_id: str) -> None:
        await self._write(lambda c: held_sql.taken(c, source, message_id))

    async def held_decide(
        self, held_id: int, state: HeldState, by: str, reason: str | None = None
    ) -> HeldMessage:
        def op(c: Tx) -> HeldMessage:
            now = self.clock()
            held = held_sql.decide(c, now, held_id, state, by)
            action = Action.CLOSED if state == HeldState.CLOSED else Action.KEPT
            details = {"source": held.source, "message_id": held.message_id}
            operator_sql.record(c, now, by, action, f"held:{held_id}", 1, reason, details)
            return held

        return await self._write(op)

    async def held_lookup(self, source: str, message_ids: Sequence[str]) -> dict[str, HeldMessage]:
        return await self._read(lambda c: held_sql.lookup(c, source, message_ids))

    async def held_get(self, held_id: int) -> HeldMessage | None:
        return await self._read(lambda c: held_sql.get(c, held_id))

    async def list_held(self, where: HeldFilter, limit: int = 100, offset: int = 0) -> list[HeldMessage]:
        return await self._read(lambda c: held_sql.listing(c, where, limit, offset))

    # -- singleton jobs (hub.leases) -------------------------------------------------------------

    async def take_lease(self, name: str, holder: str, seconds: float) -> LeaseGrant | None:
        return await self._write(lambda c: leases_sql.take(c, self.clock(), name, holder, seconds))

    async def release_lease(self, name: str, holder: str, token: int) -> bool:
        return await self._write(lambda c: leases_sql.release(c, self.clock(), name, holder, token))

    async def lease_holds(self, name: str, holder: str, token: int) -> bool:
        return await self._read(lambda c: leases_sql.holds(c, self.clock(), name, holder, token))

    async def leases(self) -> list[LeaseGrant]:
        return await self._read(leases_sql.listing)


# -- helpers (run on the journal threads) ----------------------------------------------------------


@dataclass(frozen=True)
class _Resent:
    """An intake whose (source, external_id) is taken: what it brought and the source's policy."""

    application: Application
    events: Sequence[Event]
    tasks: Sequence[TaskSpec]
    state: ApplicationState
    error: str | None
    error_code: str | None
    on_changed: ChangedResend


def _insert_events(c: Tx, events: Sequence[Event]) -> tuple[Event, ...]:
    stored = []
    for e in events:
        (event_id,) = c.execute(
            "INSERT INTO events (application_id, type, at, step, target, data) VALUES (?,?,?,?,?,?) "
            "RETURNING id",
            (
                e.application_id,
                e.type,
                e.at.timestamp(),
                e.step,
                e.target,
                json.dumps(e.data, default=str),
            ),
        ).fetchone()
        stored.append(e.model_copy(update={"id": event_id}))
    return tuple(stored)


def _insert_tasks(
    c: Tx,
    application_id: str,
    tasks: Sequence[TaskSpec],
    now: float,
    waiting: bool = False,
    queued: float | None = None,
) -> None:
    """Add `tasks` (due after their delay); `queued`: when the step that makes them became due.

    A step's follow-ups without a delay are due from `queued` on, not from now: claims take the oldest
    due first, so an application's next step goes before the first steps of applications that came in
    after it. With a backlog (a target down for hours, then back) applications are filed one after
    another in the order they came, instead of every first step of the backlog running before the
    first application is filed.
    """
    for t in tasks:
        due = min(now, queued) if queued is not None and not t.delay else now + t.delay
        # A task that exists already (same step and target) is kept: re-triggering is idempotent.
        c.execute(
            "INSERT INTO tasks (application_id, step, target, state, max_attempts, due_at, "
            "created_at, updated_at, key, subject) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (application_id, step, target, subject) DO NOTHING",
            (
                application_id,
                t.step,
                t.target,
                TaskState.WAITING if (waiting or t.waiting) else TaskState.PENDING,
                t.max_attempts,
                due,
                now,
                now,
                t.key,
                t.subject,
            ),
        )
    if tasks:
        c.dialect.wake_workers(c)
    # Every time, not from a cache of what is known there: a transaction that fails to commit takes
    # its rows with it, and a target that is not in the table is never claimed.
    for target in sorted({t.target for t in tasks}):
        c.execute("INSERT INTO task_targets (target) VALUES (?) ON CONFLICT DO NOTHING", (target,))


def _release_leases(c: Tx, now: float) -> int:
    """Every leased step due again at once (its worker is known to be gone); returns how many."""
    cur = c.execute(
        "UPDATE tasks SET state=?, lease_token=NULL, lease_until=NULL, "
        "due_at=CASE WHEN due_at<? THEN due_at ELSE ? END WHERE state=?",
        (TaskState.PENDING, now, now, TaskState.LEASED),
    )
    return cur.rowcount


def _lock_application(c: Tx, application_id: str) -> None:
    """Hold the application's row until the transaction ends (a no-op where one writer runs at a time)."""
    if c.dialect.for_update:
        c.execute(f"SELECT 1 FROM applications WHERE id=?{c.dialect.for_update}", (application_id,))


def _unfinished(c: Tx, application_id: str, step: str | tuple[str, ...] | None) -> bool:
    """Whether a task of `step` (None: any; a tuple: any of these steps) of the application is not done."""
    sql = "SELECT 1 FROM tasks WHERE application_id=? AND state!=?"
    params: tuple[Any, ...] = (application_id, TaskState.DONE)
    if step is not None:
        steps = (step,) if isinstance(step, str) else step
        sql += f" AND step IN ({','.join('?' * len(steps))})"
        params += steps
    return c.execute(sql + " LIMIT 1", params).fetchone() is not None


def _own_unfinished(c: Tx, application_id: str) -> bool:
    """Whether one of the application's own steps (not an answer's) is not done (also dead or waiting)."""
    return (
        c.execute(
            "SELECT 1 FROM tasks WHERE application_id=? AND subject='' AND state!=? LIMIT 1",
            (application_id, TaskState.DONE),
        ).fetchone()
        is not None
    )


def _release_answer_steps(c: Tx, application_id: str, now: float) -> None:
    """The answer steps that waited for the application's own steps become due (it is processing again)."""
    cur = c.execute(
        "UPDATE tasks SET state=?, due_at=?, updated_at=? WHERE application_id=? AND subject!='' AND state=?",
        (TaskState.PENDING, now, now, application_id, TaskState.WAITING),
    )
    if cur.rowcount:
        c.dialect.wake_workers(c)
        _set_state(c, application_id, ApplicationState.PROCESSING, now)


def _assign(c: Tx, application_id: str, assigned: FileNumberAssigned, now: float) -> tuple[Event, ...]:
    """Record a target's Aktenzeichen unless the application has one; the own steps waiting for it go on."""
    cur = c.execute(
        "UPDATE applications SET file_number=? WHERE id=? AND file_number IS NULL",
        (assigned.file_number, application_id),
    )
    if not cur.rowcount:
        return ()  # the first number stays: a later one (a repeat, a replay) changes nothing
    _update_application(
        c, application_id, Completion(patch=ApplicationPatch(file_number=assigned.file_number)), now
    )
    c.execute(
        "UPDATE tasks SET state=?, due_at=?, updated_at=? WHERE application_id=? AND subject='' AND state=?",
        (TaskState.PENDING, now, now, application_id, TaskState.WAITING),
    )
    c.dialect.wake_workers(c)
    return _insert_events(c, assigned.events)


def _index_correlations(c: Tx, app: Application, new: bool = False) -> None:
    """Make the correlations index hold exactly the application's correlations.

    `new`: the application's row was inserted in this transaction, so no correlation can name it yet
    (their foreign key): one statement less per intake.
    """
    if not new:
        c.execute("DELETE FROM correlations WHERE application_id=?", (app.id,))
    c.executemany(
        "INSERT INTO correlations (application_id, key, value) VALUES (?,?,?)", sorted(_correlation_rows(app))
    )


def _reindex_correlations(c: Tx, before: Application, after: Application) -> None:
    """Bring the index from `before`'s correlations (what it holds) to `after`'s.

    Only the rows that changed: a delivery adds a few ids to the many an application has, and deleting
    and inserting the others again would rewrite their index entries for nothing.
    """
    had, has = _correlation_rows(before), _correlation_rows(after)
    if gone := sorted(had - has):
        c.executemany("DELETE FROM correlations WHERE application_id=? AND key=? AND value=?", gone)
    if added := sorted(has - had):
        c.executemany("INSERT INTO correlations (application_id, key, value) VALUES (?,?,?)", added)


def _correlation_rows(app: Application) -> set[tuple[str, str, str]]:
    """The application's rows in the correlations index."""
    # A value listing several ids (enaio's documents: "12,13,14") is found by each of them too.
    return {
        (app.id, key, part)
        for key, value in app.correlations.items()
        for part in {value, *(p.strip() for p in value.split(","))}
        if part
    }


def index_all_correlations(c: Tx) -> None:
    """Fill the correlations index from every application (a journal from before it existed)."""
    for (doc,) in c.execute("SELECT doc FROM applications").fetchall():
        _index_correlations(c, Application.model_validate_json(doc))
    set_meta(c, "correlations_indexed", "1")


def _answered_application(c: Tx, connector: str, answer: Answer) -> str:
    """The application an answer names, delivered to `connector`; `UnknownApplication` otherwise."""
    if answer.application_id:
        candidates = [answer.application_id]
        named = f"application {answer.application_id!r}"
    elif answer.reference:
        # The sink recorded the reference at delivery as `<connector>` or `<connector>.<key>`.
        candidates = [
            r[0]
            for r in c.execute(
                "SELECT DISTINCT application_id FROM correlations WHERE value=? "
                "AND (key=? OR substr(key, 1, ?)=?)",
                (answer.reference, connector, len(connector) + 1, connector + "."),
            )
        ]
        named = f"reference {answer.reference!r}"
    else:
        raise UnknownApplication("the answer names neither an application id nor a reference")
    delivered = [
        app_id
        for app_id in candidates
        if c.execute(
            "SELECT 1 FROM tasks WHERE application_id=? AND target=? LIMIT 1", (app_id, connector)
        ).fetchone()
    ]
    if len(delivered) > 1:
        raise UnknownApplication(f"{named} is ambiguous: {len(delivered)} applications of {connector!r}")
    if not delivered:
        raise UnknownApplication(f"{named} names no application delivered to {connector!r}")
    return delivered[0]


def _received_answer(r: Sequence[Any]) -> ReceivedAnswer:
    return ReceivedAnswer(
        row=r[0],
        connector=r[1],
        application_id=r[2],
        answer=Answer.model_validate_json(r[4]),
        received_at=_dt(r[3]),
    )


def _update_application(c: Tx, application_id: str, completion: Completion, now: float) -> None:
    sets = ["updated_at=?"]
    params: list[Any] = [now]
    if completion.patch is not None:
        row = c.execute("SELECT doc FROM applications WHERE id=?", (application_id,)).fetchone()
        before = Application.model_validate_json(row[0])
        app = completion.patch.apply(before)
        sets += ["doc=?", "search=?"]
        params += [app.model_dump_json(), _search_text(app)]
        if app.file_number != before.file_number:
            # Only when it changes: SQLite rewrites the entry of every index on an assigned column, so
            # assigning the same number dirtied a page of applications_file_number per delivery.
            sets.append("file_number=?")
            params.append(app.file_number)
        if app.correlations != before.correlations:
            _reindex_correlations(c, before, app)
    error: tuple[str | None, str | None] | None = None
    if completion.error is not None:
        error = (completion.error, completion.error_code)
    if completion.state is not None:
        # The state goes into the same UPDATE (one statement per step, not two), as `_set_state` says.
        state, clear_error = _state_for(c, application_id, completion.state)
        sets.append("state=?")
        params.append(state)
        if clear_error:
            error = (None, None)
    if error is not None:
        sets += ["error=?", "error_code=?"]
        params += error
    c.execute(f"UPDATE applications SET {', '.join(sets)} WHERE id=?", (*params, application_id))


def _set_state(c: Tx, application_id: str, state: str, now: float) -> None:
    state, clear_error = _state_for(c, application_id, state)
    c.execute(
        "UPDATE applications SET state=?, updated_at=?"
        + (", error=NULL, error_code=NULL" if clear_error else "")
        + " WHERE id=?",
        (state, now, application_id),
    )


def _state_for(c: Tx, application_id: str, state: str) -> tuple[str, bool]:
    """The state an application is set to when asked for `state`, and whether its error is cleared."""
    # A dead task keeps the application dead until it is replayed, whatever its siblings do.
    if c.execute(
        "SELECT 1 FROM tasks WHERE application_id=? AND state=? LIMIT 1",
        (application_id, TaskState.DEAD),
    ).fetchone():
        state = ApplicationState.DEAD
    return state, state in (ApplicationState.PROCESSING, ApplicationState.COMPLETED)


def _abandon(c: Tx, now: float, application_id: str, operator: str, reason: str) -> Abandoned:
    """Abandon one application in the caller's transaction: its event; the caller writes the audit row."""
    row = c.execute(
        f"SELECT state FROM applications WHERE id=?{c.dialect.for_update}", (application_id,)
    ).fetchone()
    if row is None:
        raise KeyError(application_id)
    previous = row[0]
    if previous == ApplicationState.ABANDONED:
        return Abandoned(application_id, tasks=0, already=True)
    if c.execute(
        "SELECT 1 FROM tasks WHERE application_id=? AND state=? AND lease_until>=? LIMIT 1",
        (application_id, TaskState.LEASED, now),
    ).fetchone():
        # Its result would be thrown away after the remote system acted on it.
        raise ActionRefused(
            f"a step of application {application_id} is running now; abandon it when it ended"
        )
    cur = c.execute(
        "UPDATE tasks SET state=?, lease_token=NULL, lease_until=NULL, updated_at=? "
        "WHERE application_id=? AND state IN (?,?,?,?)",
        (
            TaskState.ABANDONED,
            now,
            application_id,
            TaskState.PENDING,
            TaskState.LEASED,
            TaskState.DEAD,
            TaskState.WAITING,
        ),
    )
    if cur.rowcount == 0 and previous in (ApplicationState.COMPLETED, ApplicationState.REJECTED):
        raise ActionRefused(f"application {application_id} is {previous}: nothing left to abandon")
    c.execute(
        "UPDATE applications SET state=?, updated_at=? WHERE id=?",
        (ApplicationState.ABANDONED, now, application_id),
    )
    event = operator_event(
        application_id,
        Action.ABANDONED,
        operator,
        reason,
        tasks=cur.rowcount,
        previous_state=previous,
    )
    stored = _insert_events(c, [event])
    return Abandoned(application_id, tasks=cur.rowcount, events=stored)


def _where(f: ApplicationFilter, dead_only: bool = False) -> tuple[str, tuple[Any, ...]]:
    clauses: list[str] = []
    params: list[Any] = []
    if dead_only:
        clauses.append("state=?")
        params.append(ApplicationState.DEAD)
    if f.state is not None:
        clauses.append("state=?")
        params.append(f.state)
    if f.route:
        clauses.append("route=?")
        params.append(f.route)
    if f.service:
        clauses.append("service=?")
        params.append(f.service)
    if f.q:
        escaped = f.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        if f.q_personal:
            clauses.append("search LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        else:
            # The metadata columns only: the search text also holds the applicant's name.
            columns = ("id", "external_id", "service", "COALESCE(file_number, '')")
            clauses.append("(" + " OR ".join(f"LOWER({col}) LIKE ? ESCAPE '\\'" for col in columns) + ")")
            params.extend([f"%{escaped}%"] * len(columns))
    if f.find:
        clauses.append(
            "(id=? OR external_id=? OR file_number=? "
            "OR id IN (SELECT application_id FROM correlations WHERE value=?) "
            # the id a Fachverfahren gave one of its answers (a status message, an event)
            "OR id IN (SELECT application_id FROM answers WHERE answer_id=?))"
        )
        params.extend([f.find] * 5)
    if f.received_from is not None:
        clauses.append("received_at>=?")
        params.append(f.received_from.timestamp())
    if f.received_until is not None:
        clauses.append("received_at<?")
        params.append(f.received_until.timestamp())
    if f.ids:
        clauses.append(f"id IN ({','.join('?' * len(f.ids))})")
        params.extend(f.ids)
    dead_steps, dead_params = dead_sql.application_clause(f)
    if dead_steps:
        clauses.append(dead_steps)
        params.extend(dead_params)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def _search_text(app: Application) -> str:
    parts = [
        app.id,
        app.external_id,
        app.service,
        app.file_number or "",
        app.applicant.display_name,
    ]
    return " ".join(p for p in parts if p).lower()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _summary(r: Sequence[Any]) -> ApplicationSummary:
    return ApplicationSummary(
        id=r[0],
        source=r[1],
        external_id=r[2],
        service=r[3],
        route=r[4],
        state=ApplicationState(r[5]),
        received_at=_dt(r[6]),
        updated_at=_dt(r[7]),
        file_number=r[8],
        error=r[9],
        error_code=r[10],
        purged_at=_dt(r[11]) if r[11] is not None else None,
        purge_policy=r[12],
    )


def _task(r: Sequence[Any]) -> Task:
    return Task(
        id=r[0],
        application_id=r[1],
        step=r[2],
        target=r[3],
        state=r[4],
        attempts=r[5],
        attempt_base=r[6],
        max_attempts=r[7],
        due_at=r[8],
        lease_token=r[9],
        lease_until=r[10],
        last_error=r[11],
        result=json.loads(r[12]) if r[12] else None,
        checkpoints=json.loads(r[13]) if r[13] else {},
        created_at=r[14],
        updated_at=r[15],
        error_code=r[17],
        subject=r[18],
    )


def _replace(task: Task, **changes: Any) -> Task:
    return replace(task, **changes)
