"""Stateful property test of a journal backend against a model of what it must hold (the contract's
randomised half, beside the example tests of `hub.testing.journal_contract`).

Hypothesis drives random sequences of intakes (with duplicates), claims (with capacity caps), completions
(with follow-up tasks and AfterAll joins), failures (retry or dead), lease renewals, clock advances (so
leases expire and are reclaimed), crashes with reopen + recover, and replays. After every step the
journal's observable state (applications, summaries, tasks, events, next_due, stats) must equal the
model, and the safety properties hold: no acknowledged application is lost, at most one live lease per
task, attempts never decrease, done tasks stay done, capacity caps are respected.

A backend that shares its store between processes keeps leases across a restart until they expire
(`JournalBackend.recovers_leases`); the model follows. `run_journal_machine(backend)` runs it; a deeper
run: ``AKTENHUB_STATEMACHINE_EXAMPLES=2000 pytest tests/test_journal_statemachine.py
--hypothesis-seed=<n>`` (the suite runs `EXAMPLES`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from hub.journal import (
    ActionRefused,
    AfterAll,
    ApplicationFilter,
    Completion,
    FileNumberSequence,
    LeaseLost,
    Task,
    TaskSpec,
    TaskState,
)
from hub.models import Application, ApplicationState, Event, Party
from hub.testing.journal_backends import JournalBackend, SqliteBackend

T = TypeVar("T")

STEPS = ("map", "deliver", "answer")
TARGETS = ("", "a", "b")
CAPPED_TARGETS = ("a", "b")
SOURCES = ("portal", "mail")
EXTERNAL_IDS = tuple(f"ext-{i}" for i in range(5))
OWNERS = ("worker-1", "worker-2", "worker-3")
START = 1_700_000_000.0
SEQUENCE = FileNumberSequence("63-{year}-{seq:05d}", "2023", lambda seq: f"63-2023-{seq:05d}")
FOUND = "63-2019-00815"  # an Akte the e-file already has

task_specs = st.builds(
    TaskSpec,
    step=st.sampled_from(STEPS),
    target=st.sampled_from(TARGETS),
    max_attempts=st.integers(1, 5),
    delay=st.sampled_from([0.0, 0.0, 4.0]),
)
completion_states = st.sampled_from(
    [None, None, ApplicationState.PROCESSING, ApplicationState.COMPLETED, ApplicationState.REJECTED]
)


@dataclass
class TaskModel:
    """What the journal must hold for one task."""

    application_id: str
    step: str
    target: str
    max_attempts: int
    due_at: float
    state: str = TaskState.PENDING
    attempts: int = 0
    attempt_base: int = 0
    token: str | None = None
    lease_until: float | None = None
    last_error: str | None = None
    result: dict[str, Any] | None = None
    checkpoints: dict[str, Any] = field(default_factory=dict)


@dataclass
class AppModel:
    """What the journal must hold for one application."""

    source: str
    external_id: str
    state: ApplicationState = ApplicationState.RECEIVED
    error: str | None = None
    events: int = 0
    file_number: str | None = None


class JournalMachine(RuleBasedStateMachine):
    """A journal driven by random operations, checked against a model after every step."""

    backend: JournalBackend  # set by `run_journal_machine`

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.generation = 0
        self.now = START
        self.run(self.backend.fresh())
        self.journal = self.backend.journal(self.clock)
        self.run(self.journal.open())
        self.apps: dict[str, AppModel] = {}
        self.keys: dict[tuple[str, str], str] = {}
        self.tasks: dict[int, TaskModel] = {}
        self.leases: list[Task] = []  # leases handed out and not yet used successfully
        self.retired: list[Task] = []  # leases already used to complete or fail their task
        self.max_attempts_seen: dict[int, int] = {}
        self.done: set[int] = set()
        self.drawn = 0  # Aktenzeichen drawn from SEQUENCE
        self.akte_numbers: dict[str, str] = {}

    def clock(self) -> float:
        return self.now

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.run(self.journal.close())
        finally:
            self.loop.close()

    # -- model helpers -----------------------------------------------------------------------------

    def lease_is_held(self, lease: Task) -> bool:
        model = self.tasks[lease.id]
        return model.state == TaskState.LEASED and model.token == lease.lease_token

    def set_app_state(self, app_id: str, state: ApplicationState) -> None:
        """Mirror of the journal's rule: a dead task keeps the application dead until replayed."""
        if any(t.state == TaskState.DEAD for t in self.tasks.values() if t.application_id == app_id):
            state = ApplicationState.DEAD
        app = self.apps[app_id]
        app.state = state
        if state in (ApplicationState.PROCESSING, ApplicationState.COMPLETED):
            app.error = None

    def learn_new_tasks(self, app_id: str, specs: list[TaskSpec], queued: float | None = None) -> None:
        """Read the application's tasks; the new ones must be exactly the specs not stored before.

        `queued`: when the completed step that made them became due; its follow-ups without a delay
        keep that place in line.
        """
        existing = {(t.step, t.target) for t in self.tasks.values() if t.application_id == app_id}
        first: dict[tuple[str, str], TaskSpec] = {}
        for spec in specs:
            first.setdefault((spec.step, spec.target), spec)
        expected = {pair: spec for pair, spec in first.items() if pair not in existing}
        stored = self.run(self.journal.tasks(app_id))
        new = [t for t in stored if t.id not in self.tasks]
        assert {(t.step, t.target) for t in new} == set(expected)
        for t in new:
            spec = expected[(t.step, t.target)]
            due = min(self.now, queued) if queued is not None and not spec.delay else self.now + spec.delay
            assert t.state == TaskState.PENDING
            assert (t.attempts, t.attempt_base) == (0, 0)
            assert t.lease_token is None
            assert t.due_at == due
            assert t.max_attempts == spec.max_attempts
            self.tasks[t.id] = TaskModel(
                application_id=app_id,
                step=t.step,
                target=t.target,
                max_attempts=spec.max_attempts,
                due_at=due,
            )

    def pick_lease(self, pick: int) -> Task:
        return self.leases[pick % len(self.leases)]

    # -- rules -------------------------------------------------------------------------------------

    @initialize(
        first=st.lists(
            st.tuples(st.sampled_from(EXTERNAL_IDS), st.lists(task_specs, min_size=1, max_size=3)),
            min_size=1,
            max_size=3,
        )
    )
    def some_applications(self, first: list[tuple[str, list[TaskSpec]]]) -> None:
        """Start with applications that have work, so that the interesting rules run early."""
        for external_id, specs in first:
            self.intake(SOURCES[0], external_id, specs, 1, "Anna Müller")

    @rule(
        source=st.sampled_from(SOURCES),
        external_id=st.sampled_from(EXTERNAL_IDS),
        specs=st.lists(task_specs, max_size=3),
        n_events=st.integers(0, 2),
        name=st.sampled_from(["Anna Müller", "Jan K_walski", "Amt 100%"]),
    )
    def intake(self, source: str, external_id: str, specs: list[TaskSpec], n_events: int, name: str) -> None:
        given, family = name.split(" ", 1)
        app = Application(
            source=source,
            external_id=external_id,
            service="jagdschein",
            route=f"route-{source}",
            received_at=datetime.fromtimestamp(self.now, UTC),
            applicant=Party(given_name=given, family_name=family),
        )
        events = [Event(application_id=app.id, type="application.received") for _ in range(n_events)]
        result = self.run(self.journal.intake(app, events, specs))
        key = (source, external_id)
        if key in self.keys:
            existing = self.keys[key]
            assert result.duplicate
            assert result.application_id == existing
            assert result.events == ()
            # nothing new is stored: no application under the new id, no new tasks or events
            assert self.run(self.journal.get_application(app.id)) is None
            assert self.run(self.journal.tasks(app.id)) == []
            self.learn_new_tasks(existing, [])
            return
        assert not result.duplicate
        assert result.application_id == app.id
        assert [e.type for e in result.events] == ["application.received"] * n_events
        assert all(e.id is not None for e in result.events)
        self.keys[key] = app.id
        self.apps[app.id] = AppModel(source=source, external_id=external_id, events=n_events)
        self.learn_new_tasks(app.id, specs)

    @rule(
        owner=st.sampled_from(OWNERS),
        limit=st.integers(1, 4),
        lease_seconds=st.sampled_from([5.0, 10.0]),
        capacity=st.dictionaries(st.sampled_from(CAPPED_TARGETS), st.integers(0, 3)),
    )
    def claim(self, owner: str, limit: int, lease_seconds: float, capacity: dict[str, int]) -> None:
        now = self.now
        eligible = {
            tid
            for tid, t in self.tasks.items()
            if (t.state == TaskState.PENDING and t.due_at <= now)
            or (t.state == TaskState.LEASED and t.lease_until is not None and t.lease_until < now)
        }
        live = Counter(
            t.target
            for t in self.tasks.values()
            if t.state == TaskState.LEASED and t.lease_until is not None and t.lease_until >= now
        )
        claimed = self.run(self.journal.claim(owner, limit, lease_seconds, capacity))

        ids = [t.id for t in claimed]
        assert len(ids) == len(set(ids)) <= limit
        assert set(ids) <= eligible, "claimed a task that is not due or whose lease is live"
        got = Counter(t.target for t in claimed)
        for target, cap in capacity.items():
            assert got[target] <= max(0, cap - live[target]), f"capacity of {target!r} exceeded"
        # Nothing claimable is left behind when fewer than `limit` were taken.
        per_target = Counter(self.tasks[tid].target for tid in eligible)
        available = sum(
            min(n, max(0, capacity[target] - live[target])) if target in capacity else n
            for target, n in per_target.items()
        )
        assert len(claimed) == min(limit, available)

        if any(self.tasks[tid].state == TaskState.LEASED for tid in ids):
            event("claim: expired lease reclaimed")
        if any(got[target] == max(0, cap - live[target]) for target, cap in capacity.items()):
            event("claim: a capacity cap reached")
        for task in claimed:
            model = self.tasks[task.id]
            model.attempts += 1
            model.state = TaskState.LEASED
            model.token = task.lease_token
            model.lease_until = now + lease_seconds
            assert task.lease_token is not None
            assert (task.application_id, task.step, task.target) == (
                model.application_id,
                model.step,
                model.target,
            )
            assert task.state == TaskState.LEASED
            assert task.attempts == model.attempts
            assert task.lease_until == model.lease_until
            self.leases.append(task)

    @precondition(lambda self: self.leases)
    @rule(
        pick=st.integers(0, 1000),
        specs=st.lists(task_specs, max_size=2),
        state=completion_states,
        error=st.sampled_from([None, None, "abgelehnt"]),
        join=st.booleans(),
        join_own_step=st.booleans(),
        join_step=st.sampled_from(STEPS),
        join_specs=st.lists(task_specs, max_size=2),
        join_state=completion_states,
    )
    def complete(
        self,
        pick: int,
        specs: list[TaskSpec],
        state: ApplicationState | None,
        error: str | None,
        join: bool,
        join_own_step: bool,
        join_step: str,
        join_specs: list[TaskSpec],
        join_state: ApplicationState | None,
    ) -> None:
        lease = self.pick_lease(pick)
        app_id = lease.application_id
        after_all = None
        if join:
            after_all = AfterAll(
                step=lease.step if join_own_step else join_step,
                events=[Event(application_id=app_id, type="step.joined", data={"by": lease.id})],
                tasks=join_specs,
                state=join_state,
            )
        completion = Completion(
            result={"task": lease.id, "attempt": lease.attempts},
            events=[Event(application_id=app_id, type="step.completed", step=lease.step)],
            tasks=specs,
            state=state,
            error=error,
            after_all=after_all,
        )
        self.leases.remove(lease)
        event("complete")
        if not self.lease_is_held(lease):
            event("complete: lease lost")
            with pytest.raises(LeaseLost):
                self.run(self.journal.complete(lease, completion))
            return

        fires = False
        if after_all is not None:
            created_steps = {
                s.step
                for s in specs
                if not any(
                    t.application_id == app_id and (t.step, t.target) == (s.step, s.target)
                    for t in self.tasks.values()
                )
            }
            fires = after_all.step not in created_steps and all(
                t.state == TaskState.DONE
                for tid, t in self.tasks.items()
                if t.application_id == app_id and t.step == after_all.step and tid != lease.id
            )

        stored = self.run(self.journal.complete(lease, completion))
        if after_all is not None:
            event(f"complete: after_all {'fired' if fires else 'held back'}")

        assert [e.type for e in stored] == ["step.completed"] + (["step.joined"] if fires else [])
        assert all(e.id is not None for e in stored)
        model = self.tasks[lease.id]
        model.state = TaskState.DONE
        model.token = None
        model.lease_until = None
        model.last_error = None
        model.result = completion.result
        self.done.add(lease.id)
        self.retired.append(lease)
        app = self.apps[app_id]
        app.events += len(stored)
        if error is not None:
            app.error = error
        if state is not None:
            self.set_app_state(app_id, state)
        if fires and after_all is not None and after_all.state is not None:
            self.set_app_state(app_id, after_all.state)
        self.learn_new_tasks(app_id, specs + (join_specs if fires else []), queued=lease.due_at)

    @precondition(lambda self: self.leases)
    @rule(
        pick=st.integers(0, 1000),
        retry_in=st.one_of(st.none(), st.integers(1, 20).map(float)),
        n_events=st.integers(0, 1),
    )
    def fail(self, pick: int, retry_in: float | None, n_events: int) -> None:
        lease = self.pick_lease(pick)
        app_id = lease.application_id
        retry_at = None if retry_in is None else self.now + retry_in
        error = f"attempt {lease.attempts} of task {lease.id} failed"
        events = [Event(application_id=app_id, type="step.failed") for _ in range(n_events)]
        self.leases.remove(lease)
        if not self.lease_is_held(lease):
            event("fail: lease lost")
            with pytest.raises(LeaseLost):
                self.run(self.journal.fail(lease, error, retry_at, events))
            return
        event(f"fail: {'dead' if retry_at is None else 'retry'}")

        stored = self.run(self.journal.fail(lease, error, retry_at, events))

        assert len(stored) == n_events
        model = self.tasks[lease.id]
        model.token = None
        model.lease_until = None
        model.last_error = error
        app = self.apps[app_id]
        app.events += n_events
        if retry_at is None:
            model.state = TaskState.DEAD
            app.state = ApplicationState.DEAD
            app.error = error
        else:
            model.state = TaskState.PENDING
            model.due_at = retry_at
            if app.state == ApplicationState.RECEIVED:
                app.state = ApplicationState.PROCESSING
        self.retired.append(lease)

    @precondition(lambda self: self.leases)
    @rule(pick=st.integers(0, 1000), lease_seconds=st.sampled_from([5.0, 10.0]), page=st.integers(-1, 9))
    def heartbeat(self, pick: int, lease_seconds: float, page: int) -> None:
        """A running worker renews its lease (page < 0) or records a checkpoint."""
        index = pick % len(self.leases)
        lease = self.leases[index]
        checkpoints = {"page": page, "by": lease.lease_token}
        if not self.lease_is_held(lease):
            with pytest.raises(LeaseLost):
                if page < 0:
                    self.run(self.journal.renew(lease, lease_seconds))
                else:
                    self.run(self.journal.save_checkpoints(lease, checkpoints))
            return
        if page >= 0:
            self.run(self.journal.save_checkpoints(lease, checkpoints))
            self.tasks[lease.id].checkpoints = checkpoints
            return
        renewed = self.run(self.journal.renew(lease, lease_seconds))
        assert renewed.lease_token == lease.lease_token
        assert renewed.lease_until == self.now + lease_seconds
        self.tasks[lease.id].lease_until = self.now + lease_seconds
        self.leases[index] = renewed

    @precondition(lambda self: self.retired)
    @rule(pick=st.integers(0, 1000), complete=st.booleans())
    def reuse_finished_lease(self, pick: int, complete: bool) -> None:
        """A lease that already completed or failed its task cannot end it a second time."""
        lease = self.retired[pick % len(self.retired)]
        with pytest.raises(LeaseLost):
            if complete:
                self.run(self.journal.complete(lease, Completion(result={"again": True})))
            else:
                self.run(self.journal.fail(lease, "again", None))

    @rule(seconds=st.integers(1, 24).map(lambda n: n / 2))
    def advance_clock(self, seconds: float) -> None:
        self.now += seconds

    @precondition(lambda self: any(t.state == TaskState.LEASED for t in self.tasks.values()))
    @rule(hard=st.booleans())
    def crash_and_reopen(self, hard: bool) -> None:
        """The process dies with tasks leased; a new one opens the store and recovers.

        `hard`: the new process opens a copy of the files taken while the old journal was still open
        (what a killed process leaves on disk, WAL included) instead of the same file after close.
        """
        old = self.journal
        backend = self.backend
        if hard and isinstance(backend, SqliteBackend):
            self.generation += 1
            path = backend.directory / f"{backend.path.stem}-{self.generation}.db"
            for suffix in ("", "-wal"):
                source = Path(f"{backend.path}{suffix}")
                if source.exists():
                    shutil.copyfile(source, f"{path}{suffix}")
            self.run(old.close())
            backend.path = path
        else:
            self.run(old.close())  # a shared server keeps what was committed however the client ended
        self.journal = backend.journal(self.clock)
        self.run(self.journal.open())
        released = self.run(self.journal.recover())

        leased = [t for t in self.tasks.values() if t.state == TaskState.LEASED]
        if not backend.recovers_leases:
            assert released == 0  # other processes' leases: they run out instead
            return
        assert released == len(leased)
        event(f"crash: {'hard' if hard else 'close'}, leases released: {min(released, 2)}+")
        for t in leased:
            t.state = TaskState.PENDING
            t.token = None
            t.lease_until = None
            t.due_at = min(t.due_at, self.now)

    @precondition(lambda self: any(a.state == ApplicationState.DEAD for a in self.apps.values()))
    @rule(all_dead=st.booleans(), picks=st.lists(st.integers(0, 1000), min_size=1, max_size=3))
    def replay(self, all_dead: bool, picks: list[int]) -> None:
        app_ids = list(self.apps)  # insertion order: ids are random, their order is not
        if all_dead or not app_ids:
            where = ApplicationFilter()
            candidates = set(app_ids)
        else:
            chosen = tuple(app_ids[p % len(app_ids)] for p in picks)
            where = ApplicationFilter(ids=chosen)
            candidates = set(chosen)
        expected = {a for a in candidates if self.apps[a].state == ApplicationState.DEAD}

        replayed = self.run(self.journal.replay(where))

        assert len(replayed) == len(set(replayed))
        assert set(replayed) == expected
        event(f"replay: {min(len(expected), 2)}+ applications")
        for app_id in expected:
            for t in self.tasks.values():
                if t.application_id == app_id and t.state == TaskState.DEAD:
                    t.state = TaskState.PENDING
                    t.attempt_base = t.attempts
                    t.due_at = self.now
            app = self.apps[app_id]
            app.state = ApplicationState.PROCESSING
            app.error = None
            app.events += 1

    @precondition(lambda self: self.apps)
    @rule(pick=st.integers(0, 1000))
    def abandon(self, pick: int) -> None:
        """An admin abandons an application: refused while a step runs or when nothing is left open."""
        app_ids = list(self.apps)
        app_id = app_ids[pick % len(app_ids)]
        app = self.apps[app_id]
        tasks = [t for t in self.tasks.values() if t.application_id == app_id]
        running = any(
            t.state == TaskState.LEASED and t.lease_until is not None and t.lease_until >= self.now
            for t in tasks
        )
        still_open = [t for t in tasks if t.state in (TaskState.PENDING, TaskState.LEASED, TaskState.DEAD)]
        finished = app.state in (ApplicationState.COMPLETED, ApplicationState.REJECTED)
        if app.state != ApplicationState.ABANDONED and (running or (finished and not still_open)):
            event(f"abandon: refused ({'running' if running else 'finished'})")
            with pytest.raises(ActionRefused):
                self.run(self.journal.abandon(app_id, "chief", "weg"))
            return

        outcome = self.run(self.journal.abandon(app_id, "chief", "weg"))

        if app.state == ApplicationState.ABANDONED:
            assert (outcome.already, outcome.tasks, outcome.events) == (True, 0, ())
            return
        event("abandon")
        assert (outcome.already, outcome.tasks) == (False, len(still_open))
        assert [e.type for e in outcome.events] == ["operator.abandoned"]
        for t in still_open:
            t.state = TaskState.ABANDONED
            t.token = None
            t.lease_until = None
        app.state = ApplicationState.ABANDONED
        app.events += 1

    @precondition(lambda self: self.apps)
    @rule(
        pick=st.integers(0, 1000),
        akte=st.sampled_from([None, "akte-a", "akte-b"]),
        found=st.sampled_from([None, None, FOUND]),
    )
    def assign_file_number(self, pick: int, akte: str | None, found: str | None) -> None:
        """The map step decides the Aktenzeichen: once per application, the Akte's own, else drawn."""
        app_ids = list(self.apps)
        app = self.apps[app_ids[pick % len(app_ids)]]
        number = self.run(
            self.journal.assign_file_number(
                app_ids[pick % len(app_ids)], SEQUENCE, found=found, akte_key=akte
            )
        )
        if app.file_number is None:
            known = self.akte_numbers.get(akte) if akte is not None else None
            decided = found or known
            if decided is None:
                self.drawn += 1
                decided = SEQUENCE.compose(self.drawn)
            if akte is not None and (found is not None or known is None):
                self.akte_numbers[akte] = decided
            app.file_number = decided
            event(f"file number: {'found' if found else 'the Akte' if known else 'drawn'}")
        assert number == app.file_number

    # -- invariants --------------------------------------------------------------------------------

    @invariant()
    def applications_are_never_lost(self) -> None:
        summaries = self.run(self.journal.list_applications(ApplicationFilter(), limit=10_000))
        by_id = {s.id: s for s in summaries}
        assert set(by_id) == set(self.apps), "acknowledged applications missing or unexpected ones"
        app_ids = list(self.apps)
        docs = self.run(_gather(*(self.journal.get_application(a) for a in app_ids)))
        timelines = self.run(_gather(*(self.journal.events(a) for a in app_ids)))
        for app_id, doc, timeline in zip(app_ids, docs, timelines, strict=True):
            model = self.apps[app_id]
            assert doc is not None, f"acknowledged application {app_id} lost"
            assert (doc.id, doc.source, doc.external_id) == (app_id, model.source, model.external_id)
            summary = by_id[app_id]
            assert (summary.state, summary.error) == (model.state, model.error)
            assert summary.file_number == doc.file_number == model.file_number
            assert len(timeline) == model.events
            assert all(e.application_id == app_id for e in timeline)

    @invariant()
    def file_numbers_have_no_gaps(self) -> None:
        drawn = {a.file_number for a in self.apps.values()} - {None, FOUND}
        assert drawn == {SEQUENCE.compose(n) for n in range(1, self.drawn + 1)}

    @invariant()
    def tasks_match_the_model(self) -> None:
        app_ids = list(self.apps)
        per_app = self.run(_gather(*(self.journal.tasks(a) for a in app_ids)))
        stored = {t.id: t for tasks in per_app for t in tasks}
        assert set(stored) == set(self.tasks), "tasks lost or created unexpectedly"
        for tid, t in stored.items():
            model = self.tasks[tid]
            # attempts never decrease; done never comes back
            assert t.attempts >= self.max_attempts_seen.get(tid, 0)
            self.max_attempts_seen[tid] = t.attempts
            if tid in self.done:
                assert t.state == TaskState.DONE, f"done task {tid} came back as {t.state}"
            assert t.state == model.state
            assert (t.attempts, t.attempt_base) == (model.attempts, model.attempt_base)
            assert t.attempts_since_replay >= 0
            # one lease per task: the stored token is the one the model expects to be held
            assert t.lease_token == model.token
            assert (t.lease_token is not None) == (t.state == TaskState.LEASED)
            assert t.lease_until == model.lease_until
            assert t.due_at == model.due_at
            assert t.max_attempts == model.max_attempts
            assert t.last_error == model.last_error
            assert t.result == model.result
            assert t.checkpoints == model.checkpoints
        holders = Counter(lease.id for lease in self.leases if self.lease_is_held(lease))
        assert all(n == 1 for n in holders.values()), "a task has more than one live lease"
        for app_id, app in self.apps.items():
            has_dead = any(
                stored[tid].state == TaskState.DEAD for tid in stored if stored[tid].application_id == app_id
            )
            assert has_dead == (app.state == ApplicationState.DEAD)

    @invariant()
    def next_due_and_stats_match(self) -> None:
        times = [t.due_at for t in self.tasks.values() if t.state == TaskState.PENDING]
        times += [t.lease_until for t in self.tasks.values() if t.lease_until is not None]
        assert self.run(self.journal.next_due()) == (min(times) if times else None)
        stats = self.run(self.journal.stats())
        assert stats.applications_by_state == dict(Counter(str(a.state) for a in self.apps.values()))
        assert stats.tasks_by_step_target_state == dict(
            Counter((t.step, t.target, t.state) for t in self.tasks.values())
        )


async def _gather(*aws: Coroutine[Any, Any, T]) -> list[T]:
    return list(await asyncio.gather(*aws))


# Examples per run in the suite: a PostgreSQL example costs a database (cloned from a template) and
# round trips, ~10 times an SQLite one; deeper runs set AKTENHUB_STATEMACHINE_EXAMPLES.
EXAMPLES = {"sqlite": "100", "postgresql": "40"}


def run_journal_machine(backend: JournalBackend) -> None:
    """Run the state machine against `backend` (a fresh store per example)."""

    class Machine(JournalMachine):
        pass

    Machine.backend = backend
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=int(os.environ.get("AKTENHUB_STATEMACHINE_EXAMPLES", EXAMPLES[backend.name])),
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
