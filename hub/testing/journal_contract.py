"""The journal's contract: what every backend must do, as example tests (`hub.journal.base.Journal`).

Intake is idempotent, leases are exclusive and fenced, joins fire exactly once, dead steps and replays,
sequences without gaps, listing filters, answers, pauses and the audit trail. A backend's test module
runs them all with ``from hub.testing.journal_contract import *``; the ``journal_backend`` fixture
runs each once per backend (`hub.testing.journal_backends`). Time comes from a fake clock; operations
that must meet inside the database run through `JournalBackend.concurrently`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hub.events import operator_event
from hub.journal import (
    ActionRefused,
    AfterAll,
    ApplicationFilter,
    ApplicationPatch,
    ClaimRequest,
    Completion,
    FileNumberAssigned,
    IntakeResult,
    LeaseLost,
    SqlJournal,
    Task,
    TaskSpec,
    TaskState,
)
from hub.leases import LeaseGrant
from hub.models import Application, ApplicationState, Event, Party
from hub.testing.journal_backends import JournalBackend, PostgresBackend, SqliteBackend

T = TypeVar("T")
START = 1_700_000_000.0
LEASE = 30.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JournalBackend]:
    """Each contract test runs once per backend."""
    if request.param == "sqlite":
        yield SqliteBackend(tmp_path)
        return
    backend = PostgresBackend(request.getfixturevalue("postgres_server"))
    yield backend
    backend.discard()


@pytest.fixture
async def journal(journal_backend: JournalBackend, clock: FakeClock) -> AsyncIterator[SqlJournal]:
    """An open journal on an empty store of the backend."""
    await journal_backend.fresh()
    j = journal_backend.journal(clock)
    await j.open()
    yield j
    await j.close()


def application(
    external_id: str,
    *,
    source: str = "portal",
    service: str = "jagdschein",
    route: str | None = None,
    applicant: Party | None = None,
    file_number: str | None = None,
    received: float = 0.0,
) -> Application:
    return Application(
        source=source,
        external_id=external_id,
        service=service,
        route=route,
        applicant=applicant or Party(given_name="Anna", family_name="Müller"),
        file_number=file_number,
        received_at=datetime.fromtimestamp(START + received, UTC),
    )


def received(app: Application) -> list[Event]:
    return [Event(application_id=app.id, type="application.received")]


async def take_in(journal: SqlJournal, app: Application, *specs: TaskSpec) -> str:
    result = await journal.intake(app, received(app), specs)
    assert not result.duplicate
    return result.application_id


async def claim_one(journal: SqlJournal, owner: str = "worker-1") -> Task:
    [task] = await journal.claim(owner, 1, LEASE, {})
    return task


def types(events: Sequence[Event]) -> list[str]:
    return [e.type for e in events]


# -- intake ----------------------------------------------------------------------------------------


async def test_intake_is_idempotent_on_source_and_external_id(journal: SqlJournal) -> None:
    first = application("4711")
    stored = await journal.intake(first, received(first), [TaskSpec("map"), TaskSpec("deliver", "dms")])
    assert (stored.application_id, stored.duplicate) == (first.id, False)
    assert types(stored.events) == ["application.received"]
    assert all(e.id is not None for e in stored.events)

    again = application("4711")  # the same submission parsed again: a new object with a new id
    dup = await journal.intake(again, received(again), [TaskSpec("map"), TaskSpec("other")])
    assert (dup.application_id, dup.duplicate, dup.events) == (first.id, True, ())
    retried = await journal.intake(first, received(first), [TaskSpec("map")])  # the very same call
    assert (retried.application_id, retried.duplicate) == (first.id, True)

    # nothing new stored
    assert await journal.get_application(again.id) is None
    assert [(t.step, t.target) for t in await journal.tasks(first.id)] == [("map", ""), ("deliver", "dms")]
    assert types(await journal.events(first.id)) == ["application.received"]
    assert len(await journal.list_applications(ApplicationFilter())) == 1

    # the key is (source, external_id): another source with the same external id is new
    other = application("4711", source="mail")
    assert (await journal.intake(other, [], [])).duplicate is False
    assert len(await journal.list_applications(ApplicationFilter())) == 2


async def test_concurrent_duplicate_intakes_store_one_application(
    journal: SqlJournal, journal_backend: JournalBackend
) -> None:
    copies = [application("same") for _ in range(5)]

    results = await journal_backend.concurrently(
        *(journal.intake(a, received(a), [TaskSpec("map")]) for a in copies)
    )

    assert all(isinstance(r, IntakeResult) for r in results)
    winners = [r for r in results if isinstance(r, IntakeResult) and not r.duplicate]
    assert len(winners) == 1
    assert {r.application_id for r in results if isinstance(r, IntakeResult)} == {winners[0].application_id}
    assert len(await journal.list_applications(ApplicationFilter())) == 1
    assert len(await journal.tasks(winners[0].application_id)) == 1
    assert len(await journal.events(winners[0].application_id)) == 1


# -- claims and leases -----------------------------------------------------------------------------


async def test_claim_respects_capacity_per_target(journal: SqlJournal, clock: FakeClock) -> None:
    for i in range(4):
        await take_in(journal, application(f"ext-{i}"), TaskSpec("deliver", "dms"), TaskSpec("deliver", "fv"))
    capacity = {"dms": 2, "fv": 0}

    first = await journal.claim("worker-1", 10, LEASE, capacity)
    assert [t.target for t in first] == ["dms", "dms"]  # fv has no capacity at all
    assert await journal.claim("worker-2", 10, LEASE, capacity) == []  # dms is full

    # uncapped targets are not limited; a target missing from `capacity` is uncapped
    assert len(await journal.claim("worker-2", 10, LEASE, {"dms": 2})) == 4

    # finishing a lease frees a slot
    await journal.complete(first[0], Completion())
    [next_dms] = await journal.claim("worker-3", 10, LEASE, capacity)
    assert next_dms.target == "dms"
    assert await journal.claim("worker-3", 10, LEASE, capacity) == []

    # expired leases do not count against the capacity: their tasks are due again
    clock.advance(LEASE + 1)
    again = await journal.claim("worker-4", 10, LEASE, capacity)
    assert [t.target for t in again] == ["dms", "dms"]
    assert await journal.claim("worker-4", 10, LEASE, capacity) == []


async def test_starts_cap_what_one_claim_leases_per_target(journal: SqlJournal, clock: FakeClock) -> None:
    # the gate's answer (hub.gate): dms may start one task now, fv none (circuit open), map unlimited
    for i in range(3):
        await take_in(journal, application(f"ext-{i}"), TaskSpec("deliver", "dms"), TaskSpec("deliver", "fv"))
    starts = {"dms": 1, "fv": 0}

    [first] = await journal.claim("worker-1", 10, LEASE, {}, starts)
    assert first.target == "dms"
    [second] = await journal.claim("worker-1", 10, LEASE, {}, starts)  # a new claim, new starts
    assert second.target == "dms"
    fv = [t for a in await journal.list_applications(ApplicationFilter()) for t in await journal.tasks(a.id)]
    assert {t.attempts for t in fv if t.target == "fv"} == {0}  # held back: not attempted, not counted

    # an expired lease of a held-back target stays where it is too
    clock.advance(LEASE + 1)
    assert [t.target for t in await journal.claim("worker-2", 10, LEASE, {}, {"dms": 0, "fv": 0})] == []
    assert len(await journal.claim("worker-2", 10, LEASE, {}, {"fv": 0})) == 3


async def test_an_uncounted_failure_leaves_the_retry_budget_alone(
    journal: SqlJournal, clock: FakeClock
) -> None:
    await take_in(journal, application("probe"), TaskSpec("deliver", "dms", max_attempts=2))
    task = await claim_one(journal)
    await journal.fail(task, "Retryable: 503", clock.now, error_code="Retryable", counted=False)
    task = await claim_one(journal)
    assert (task.attempts, task.attempts_since_replay) == (2, 1)  # a circuit's failed probe
    await journal.fail(task, "Retryable: 503", clock.now, error_code="Retryable")
    task = await claim_one(journal)
    assert (task.attempts, task.attempts_since_replay) == (3, 2)


async def test_limit_caps_the_number_of_claimed_tasks(journal: SqlJournal) -> None:
    for i in range(5):
        await take_in(journal, application(f"ext-{i}"), TaskSpec("map"))
    assert await journal.claim("worker-1", 0, LEASE, {}) == []
    assert len(await journal.claim("worker-1", 2, LEASE, {})) == 2
    assert len(await journal.claim("worker-1", 10, LEASE, {})) == 3
    assert await journal.claim("worker-1", 10, LEASE, {}) == []


async def test_a_full_target_does_not_starve_the_others(journal: SqlJournal, clock: FakeClock) -> None:
    # a backlog for a target with little capacity (a slow back end, or one whose circuit is open) ...
    for i in range(60):
        await take_in(journal, application(f"slow-{i}"), TaskSpec("deliver", "slow"))
    clock.advance(1)
    # ... is due before the work of other targets
    fast = await take_in(journal, application("fast"), TaskSpec("deliver", "fast"))
    capacity = {"slow": 1}

    claimed = await journal.claim("worker-1", 4, LEASE, capacity)
    assert sorted(t.target for t in claimed) == ["fast", "slow"]
    assert fast in {t.application_id for t in claimed}

    # likewise when the capped target is full before the claim starts
    clock.advance(1)
    late = await take_in(journal, application("late"), TaskSpec("map"))
    [task] = await journal.claim("worker-1", 1, LEASE, capacity)
    assert task.application_id == late
    assert await journal.claim("worker-1", 4, LEASE, {"slow": 0}) == []


async def test_an_application_s_next_step_goes_before_later_applications(
    journal: SqlJournal, clock: FakeClock
) -> None:
    # a backlog of first steps (its target was down): the oldest application's is taken first ...
    backlog = []
    for i in range(3):
        backlog.append(await take_in(journal, application(f"backlog-{i}"), TaskSpec("map", "dms")))
        clock.advance(1)
    clock.advance(600)
    [first] = await journal.claim("worker-1", 1, LEASE, {})
    assert first.application_id == backlog[0]
    # ... and its next step, made now, keeps the application's place: it is filed before the others
    # are mapped, not after the whole backlog
    await journal.complete(first, Completion(tasks=[TaskSpec("deliver", "dms")]))
    [after] = await journal.claim("worker-1", 1, LEASE, {})
    assert (after.application_id, after.step) == (backlog[0], "deliver")
    assert after.due_at == first.due_at
    # a step that asks for a delay waits for it from now
    await journal.complete(after, Completion(tasks=[TaskSpec("notify", "mail", delay=30)]))
    [notify] = [t for t in await journal.tasks(backlog[0]) if t.step == "notify"]
    assert notify.due_at == clock.now + 30


async def test_a_completion_hands_the_target_s_slot_on_to_the_next_due_task(
    journal: SqlJournal, clock: FakeClock
) -> None:
    first_app = await take_in(journal, application("slot-1"), TaskSpec("deliver", "dms"))
    clock.advance(1)
    second_app = await take_in(journal, application("slot-2"), TaskSpec("deliver", "dms"))
    clock.advance(1)
    capacity = {"dms": 1}
    [first] = await journal.claim("worker-1", 2, LEASE, capacity)  # the one slot of the target
    assert first.application_id == first_app

    events, claimed = await journal.complete_and_claim(
        first,
        Completion(events=[Event(application_id=first_app, type="step.completed")]),
        ClaimRequest(2, LEASE, capacity),
    )
    # The completion let go of the slot in the same transaction, so its claim could take it.
    assert [e.type for e in events] == ["step.completed"]
    assert [(t.application_id, t.state, t.attempts) for t in claimed] == [(second_app, TaskState.LEASED, 1)]
    [stored] = await journal.tasks(second_app)
    assert (stored.state, stored.lease_token) == (TaskState.LEASED, claimed[0].lease_token)
    assert [t.state for t in await journal.tasks(first_app)] == [TaskState.DONE]


async def test_a_completion_claims_nothing_the_gate_holds_back_or_a_full_target_has_no_room_for(
    journal: SqlJournal, clock: FakeClock
) -> None:
    apps = []
    for i in range(4):
        apps.append(await take_in(journal, application(f"held-{i}"), TaskSpec("deliver", "dms")))
        clock.advance(1)
    first, second, third = await journal.claim("worker-1", 3, LEASE, {})
    # The gate says the target may start none (paused, circuit open): the completion claims none.
    _, claimed = await journal.complete_and_claim(first, Completion(), ClaimRequest(1, LEASE, {}, {"dms": 0}))
    assert claimed == []
    # A slot is let go, but the third running task fills the target's capacity of one: another
    # target's task is taken instead.
    await take_in(journal, application("other"), TaskSpec("notify", "mail"))
    _, claimed = await journal.complete_and_claim(second, Completion(), ClaimRequest(1, LEASE, {"dms": 1}))
    assert [(t.step, t.target) for t in claimed] == [("notify", "mail")]
    assert [t.state for t in await journal.tasks(apps[3])] == [TaskState.PENDING]
    assert third.state == TaskState.LEASED


async def test_a_completion_whose_lease_is_lost_claims_nothing(journal: SqlJournal, clock: FakeClock) -> None:
    await take_in(journal, application("lost-1"), TaskSpec("deliver", "dms"))
    clock.advance(1)
    waiting = await take_in(journal, application("lost-2"), TaskSpec("deliver", "dms"))
    old = await claim_one(journal, "worker-1")
    clock.advance(LEASE + 1)
    await claim_one(journal, "worker-2")  # the expired lease went to another worker
    with pytest.raises(LeaseLost):
        await journal.complete_and_claim(old, Completion(), ClaimRequest(1, LEASE, {}))
    assert [t.state for t in await journal.tasks(waiting)] == [TaskState.PENDING]


async def test_expired_lease_is_reclaimed_and_the_old_holder_loses_it(
    journal: SqlJournal, clock: FakeClock
) -> None:
    app_id = await take_in(journal, application("4711"), TaskSpec("deliver", "dms"))
    old = await claim_one(journal, "worker-1")
    assert (old.attempts, old.lease_until) == (1, START + LEASE)

    clock.advance(LEASE)  # lease_until == now: still held
    assert await journal.claim("worker-2", 1, LEASE, {}) == []
    assert await journal.next_due() == START + LEASE

    clock.advance(1)
    new = await claim_one(journal, "worker-2")
    assert new.id == old.id
    assert new.lease_token != old.lease_token
    assert (new.attempts, new.lease_until) == (2, clock.now + LEASE)

    with pytest.raises(LeaseLost):
        await journal.complete(old, Completion(result={"by": "old"}))
    with pytest.raises(LeaseLost):
        await journal.fail(old, "boom", None)
    with pytest.raises(LeaseLost):
        await journal.renew(old, LEASE)
    with pytest.raises(LeaseLost):
        await journal.save_checkpoints(old, {"page": 1})

    renewed = await journal.renew(new, 2 * LEASE)
    assert renewed.lease_until == clock.now + 2 * LEASE
    await journal.save_checkpoints(renewed, {"page": 3})
    await journal.complete(renewed, Completion(result={"by": "new"}))

    [task] = await journal.tasks(app_id)
    assert (task.state, task.attempts, task.result) == (TaskState.DONE, 2, {"by": "new"})
    assert task.checkpoints == {"page": 3}
    assert (task.lease_token, task.lease_until) == (None, None)
    with pytest.raises(LeaseLost):  # a finished task cannot be finished twice
        await journal.complete(renewed, Completion())


async def test_a_completion_records_the_step_s_last_progress_in_its_own_transaction(
    journal: SqlJournal,
) -> None:
    app_id = await take_in(journal, application("4712"), TaskSpec("deliver", "dms"))
    first = await claim_one(journal)
    await journal.save_checkpoints(first, {"akte": "1"})
    await journal.complete(first, Completion(result={"akte": "1"}, checkpoints={"akte": "1", "documents": 4}))
    commits = journal.commits
    [done] = await journal.tasks(app_id)
    assert done.checkpoints == {"akte": "1", "documents": 4} and done.result == {"akte": "1"}
    assert journal.commits == commits  # reading wrote nothing

    # Without checkpoints the completion leaves the recorded progress as it was.
    app_id = await take_in(journal, application("4713"), TaskSpec("deliver", "dms"))
    second = await claim_one(journal)
    await journal.save_checkpoints(second, {"page": 2})
    await journal.complete(second, Completion())
    [kept] = await journal.tasks(app_id)
    assert kept.checkpoints == {"page": 2}


async def test_renewed_lease_is_not_reclaimed(journal: SqlJournal, clock: FakeClock) -> None:
    await take_in(journal, application("4711"), TaskSpec("map"))
    task = await claim_one(journal)
    clock.advance(LEASE - 1)
    task = await journal.renew(task, LEASE)
    clock.advance(LEASE - 1)
    assert await journal.claim("worker-2", 1, LEASE, {}) == []
    await journal.complete(task, Completion())


async def test_delayed_and_retried_tasks_wait_until_due(journal: SqlJournal, clock: FakeClock) -> None:
    await take_in(journal, application("4711"), TaskSpec("map", delay=10))
    assert await journal.next_due() == START + 10
    assert await journal.claim("worker-1", 1, LEASE, {}) == []
    clock.advance(10)
    task = await claim_one(journal)
    await journal.fail(task, "timeout", retry_at=clock.now + 60)
    assert await journal.next_due() == clock.now + 60
    clock.advance(59)
    assert await journal.claim("worker-1", 1, LEASE, {}) == []
    clock.advance(1)
    again = await claim_one(journal)
    assert (again.id, again.attempts, again.last_error) == (task.id, 2, "timeout")


async def test_a_restart_gets_the_leases_of_the_process_that_died(
    journal_backend: JournalBackend, clock: FakeClock, journal: SqlJournal
) -> None:
    for i in range(3):
        await take_in(
            journal, application(f"ext-{i}"), TaskSpec("map"), TaskSpec("deliver", "dms", delay=100)
        )
    held = await journal.claim("worker-1", 10, LEASE, {})
    assert [t.step for t in held] == ["map"] * 3
    await journal.complete(held[0], Completion())
    await journal.close()

    reopened = journal_backend.journal(clock)
    await reopened.open()
    try:
        if journal_backend.recovers_leases:
            # The only process of the store: every lease was its own, due at once.
            assert await reopened.recover() == 2
            assert await reopened.recover() == 0
        else:
            # Other processes may hold leases of a shared store: they run out, then go to another.
            assert await reopened.recover() == 0
            assert await reopened.claim("worker-2", 10, LEASE, {}) == []
            clock.advance(LEASE + 1)
        retaken = await reopened.claim("worker-2", 10, LEASE, {})
        assert sorted(t.id for t in retaken) == sorted(t.id for t in held[1:])
        assert all(t.attempts == 2 for t in retaken)
        with pytest.raises(LeaseLost):
            await reopened.complete(held[1], Completion())
        # tasks not yet due stay where they were; the next thing due is the retaken leases' end
        waiting = [t for t in held for t in await reopened.tasks(t.application_id) if t.step == "deliver"]
        assert {(t.state, t.due_at) for t in waiting} == {(TaskState.PENDING, START + 100)}
        assert await reopened.next_due() == clock() + LEASE
    finally:
        await reopened.close()


# -- joins -----------------------------------------------------------------------------------------


def delivered(app_id: str, target: str) -> Completion:
    return Completion(
        result={"target": target},
        patch=ApplicationPatch(correlations={target: f"{target}-ref"}),
        events=[Event(application_id=app_id, type="delivery.completed", target=target)],
        after_all=AfterAll(
            step="deliver",
            events=[Event(application_id=app_id, type="delivery.all_done")],
            tasks=[TaskSpec("answer")],
            state=ApplicationState.COMPLETED,
        ),
    )


@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "in-one-group"])
async def test_after_all_fires_exactly_once(
    journal: SqlJournal, journal_backend: JournalBackend, together: bool
) -> None:
    targets = ["dms", "fv", "mail"]
    app_id = await take_in(journal, application("4711"), *(TaskSpec("deliver", t) for t in targets))
    leases = await journal.claim("worker-1", 10, LEASE, {})
    assert sorted(t.target for t in leases) == targets

    if together:
        outcomes = await journal_backend.concurrently(
            *(journal.complete(t, delivered(app_id, t.target)) for t in leases)
        )
    else:
        outcomes = [await journal.complete(t, delivered(app_id, t.target)) for t in leases]

    returned = [types(o) for o in outcomes if not isinstance(o, BaseException)]
    assert len(returned) == 3
    assert sum(ts.count("delivery.all_done") for ts in returned) == 1
    if not together:
        assert returned[-1] == ["delivery.completed", "delivery.all_done"]
    timeline = types(await journal.events(app_id))
    assert timeline.count("delivery.completed") == 3
    assert timeline.count("delivery.all_done") == 1
    assert timeline[-1] == "delivery.all_done"
    assert [t.step for t in await journal.tasks(app_id)].count("answer") == 1
    summary = await journal.get_summary(app_id)
    assert summary is not None and summary.state == ApplicationState.COMPLETED
    # the concurrent patches merged rather than overwrote each other
    app = await journal.get_application(app_id)
    assert app is not None
    assert app.correlations == {t: f"{t}-ref" for t in targets}


async def test_after_all_waits_for_retrying_and_dead_siblings(journal: SqlJournal, clock: FakeClock) -> None:
    app_id = await take_in(
        journal, application("4711"), TaskSpec("deliver", "dms"), TaskSpec("deliver", "fv")
    )
    dms, fv = await journal.claim("worker-1", 10, LEASE, {})

    await journal.fail(fv, "fv down", retry_at=clock.now + 10)
    assert types(await journal.complete(dms, delivered(app_id, "dms"))) == ["delivery.completed"]
    summary = await journal.get_summary(app_id)
    assert summary is not None and summary.state == ApplicationState.PROCESSING

    clock.advance(10)
    fv = await claim_one(journal)
    await journal.fail(fv, "fv rejects the record", retry_at=None)  # dead: the join must not fire
    assert "answer" not in [t.step for t in await journal.tasks(app_id)]

    await journal.replay(ApplicationFilter(ids=(app_id,)))
    fv = await claim_one(journal)
    assert types(await journal.complete(fv, delivered(app_id, "fv"))) == [
        "delivery.completed",
        "delivery.all_done",
    ]
    assert [t.step for t in await journal.tasks(app_id)] == ["deliver", "deliver", "answer"]
    summary = await journal.get_summary(app_id)
    assert summary is not None
    assert (summary.state, summary.error) == (ApplicationState.COMPLETED, None)


# -- an Aktenzeichen a target assigns ----------------------------------------------------------------


def assigned(app_id: str, number: str) -> Completion:
    """A delivery whose target gave the Aktenzeichen, joined with a `remap` step that waits for it."""
    return Completion(
        assigned=FileNumberAssigned(number, [Event(application_id=app_id, type="file_number.assigned")]),
        after_all=AfterAll(step=("deliver", "remap"), events=[Event(application_id=app_id, type="all_done")]),
    )


async def test_every_id_of_an_application_finds_it_and_a_replaced_one_no_longer_does(
    journal: SqlJournal,
) -> None:
    app = application("ext-ids")
    app.correlations = {"portal": "P-1"}
    await take_in(journal, app, TaskSpec("deliver", "dms"), TaskSpec("deliver", "fv"))
    first, second = await journal.claim("w", 10, LEASE, {})
    ids = {"dms.akte": "4711", "dms.documents": "12,13"}
    await journal.complete(first, Completion(patch=ApplicationPatch(correlations=ids)))
    # a later step gives one of them anew (the documents filed again) and adds its own
    again = {"dms.documents": "14", "fv": "R-9"}
    await journal.complete(second, Completion(patch=ApplicationPatch(correlations=again)))

    async def found(any_id: str) -> list[str]:
        return [a.id for a in await journal.list_applications(ApplicationFilter(find=any_id))]

    for any_id in ("P-1", "4711", "14", "R-9"):
        assert await found(any_id) == [app.id], any_id
    for gone in ("12", "13", "12,13"):
        assert await found(gone) == [], gone
    stored = await journal.get_application(app.id)
    assert stored is not None
    assert stored.correlations == {"portal": "P-1", "dms.akte": "4711", "dms.documents": "14", "fv": "R-9"}


async def test_an_assigned_number_is_taken_once_and_makes_the_waiting_steps_due(
    journal: SqlJournal,
) -> None:
    app_id = await take_in(
        journal, application("4711"), TaskSpec("deliver", "fv"), TaskSpec("remap", waiting=True)
    )
    [deliver] = await journal.claim("worker-1", 10, LEASE, {})  # the waiting step is never claimed
    assert deliver.step == "deliver" and await journal.next_due() == START + LEASE  # only its lease

    # The number makes `remap` due in the same transaction, so the join waits for it.
    assert types(await journal.complete(deliver, assigned(app_id, "63-BA-1"))) == ["file_number.assigned"]
    app = await journal.get_application(app_id)
    assert app is not None and app.file_number == "63-BA-1"
    assert (await journal.list_applications(ApplicationFilter(find="63-BA-1")))[0].id == app_id
    remap = await claim_one(journal)
    assert remap.step == "remap"
    # A second number (a later answer, a replayed delivery) changes nothing and tells nothing.
    assert types(await journal.complete(remap, assigned(app_id, "63-BA-2"))) == ["all_done"]
    app = await journal.get_application(app_id)
    assert app is not None and app.file_number == "63-BA-1"


async def test_abandon_ends_waiting_steps(journal: SqlJournal) -> None:
    app_id = await take_in(journal, application("4711"), TaskSpec("remap", waiting=True))
    outcome = await journal.abandon(app_id, "ops", "Antrag zurückgezogen")
    assert outcome.tasks == 1
    assert [t.state for t in await journal.tasks(app_id)] == [TaskState.ABANDONED]


# -- dead tasks and replay -------------------------------------------------------------------------


async def test_dead_task_makes_application_dead_and_replay_revives_it(
    journal: SqlJournal, clock: FakeClock
) -> None:
    app_id = await take_in(journal, application("4711"), TaskSpec("deliver", "dms", max_attempts=2))
    task = await claim_one(journal)
    await journal.fail(task, "dms timeout", retry_at=clock.now + 5)
    summary = await journal.get_summary(app_id)
    assert summary is not None and summary.state == ApplicationState.PROCESSING
    clock.advance(5)
    task = await claim_one(journal)
    assert task.attempts_since_replay == 2
    failed = Event(application_id=app_id, type="step.dead", step="deliver")
    assert types(await journal.fail(task, "dms rejects the file", retry_at=None, events=[failed])) == [
        "step.dead"
    ]

    [dead] = await journal.tasks(app_id)
    assert (dead.state, dead.attempts, dead.last_error) == (TaskState.DEAD, 2, "dms rejects the file")
    summary = await journal.get_summary(app_id)
    assert summary is not None
    assert (summary.state, summary.error) == (ApplicationState.DEAD, "dms rejects the file")
    assert [
        s.id for s in await journal.list_applications(ApplicationFilter(state=ApplicationState.DEAD))
    ] == [app_id]
    assert await journal.claim("worker-1", 10, LEASE, {}) == []  # dead tasks are not claimed
    assert await journal.next_due() is None

    clock.advance(100)
    assert await journal.replay(ApplicationFilter(ids=(app_id,))) == [app_id]

    [revived] = await journal.tasks(app_id)
    assert revived.state == TaskState.PENDING
    assert (revived.attempts, revived.attempt_base, revived.attempts_since_replay) == (2, 2, 0)
    assert revived.due_at == clock.now
    summary = await journal.get_summary(app_id)
    assert summary is not None
    assert (summary.state, summary.error) == (ApplicationState.PROCESSING, None)
    assert types(await journal.events(app_id))[-1] == "operator.replayed"
    assert await journal.replay(ApplicationFilter(ids=(app_id,))) == []  # nothing dead any more

    task = await claim_one(journal)
    assert (task.attempts, task.attempt_base, task.attempts_since_replay) == (3, 2, 1)


async def test_replay_all_touches_only_dead_applications_and_keeps_completed_steps(
    journal: SqlJournal,
) -> None:
    dead_ids = []
    for i in range(2):
        app_id = await take_in(journal, application(f"dead-{i}"), TaskSpec("map"))
        await journal.complete(
            await claim_one(journal),
            Completion(result={"record": i}, tasks=[TaskSpec("deliver", "dms")]),
        )
        await journal.fail(await claim_one(journal), "broken", retry_at=None)
        dead_ids.append(app_id)
    alive = await take_in(journal, application("alive"), TaskSpec("map"))
    original = await journal.get_application(dead_ids[0])

    replayed = await journal.replay(ApplicationFilter())

    assert sorted(replayed) == sorted(dead_ids)
    for app_id in dead_ids:
        done, revived = await journal.tasks(app_id)
        assert (done.step, done.state, done.result) == (
            "map",
            TaskState.DONE,
            {"record": dead_ids.index(app_id)},
        )
        assert (revived.step, revived.state, revived.attempt_base) == ("deliver", TaskState.PENDING, 1)
    assert await journal.get_application(dead_ids[0]) == original
    [untouched] = await journal.tasks(alive)
    assert (untouched.state, untouched.attempts) == (TaskState.PENDING, 0)
    assert "operator.replayed" not in types(await journal.events(alive))
    assert await journal.replay(ApplicationFilter()) == []


# -- error codes, operator actions ----------------------------------------------------------------


async def test_errors_keep_a_safe_code_beside_the_message(journal: SqlJournal) -> None:
    app_id = await take_in(journal, application("coded"), TaskSpec("map"))
    await journal.fail(await claim_one(journal), "Permanent: Müller, geb. 1.2.1980", None, (), "Permanent")
    [task] = await journal.tasks(app_id)
    summary = await journal.get_summary(app_id)
    assert summary is not None
    assert (task.error_code, summary.error_code, summary.error) == (
        "Permanent",
        "Permanent",
        "Permanent: Müller, geb. 1.2.1980",
    )
    assert await journal.replay(ApplicationFilter(ids=(app_id,)), "ops") == [app_id]
    summary = await journal.get_summary(app_id)
    assert summary is not None and (summary.error, summary.error_code) == (None, None)
    [event] = [e for e in await journal.events(app_id) if e.type == "operator.replayed"]
    assert event.data == {"operator": "ops", "reason": None, "tasks": 1}


async def test_query_without_personal_data_matches_metadata_only(journal: SqlJournal) -> None:
    app_id = await take_in(journal, application("AZ-17", applicant=Party(family_name="Müller")))
    personal = ApplicationFilter(q="müller")
    assert [s.id for s in await journal.list_applications(personal)] == [app_id]
    assert await journal.list_applications(ApplicationFilter(q="müller", q_personal=False)) == []
    for q in ("az-17", app_id[4:12], "jagd"):
        found = await journal.list_applications(ApplicationFilter(q=q, q_personal=False))
        assert [s.id for s in found] == [app_id], q
    assert await journal.list_applications(ApplicationFilter(q="az\\_17", q_personal=False)) == []


async def test_abandon_waits_for_a_running_step_then_ends_every_open_task(
    journal: SqlJournal, clock: FakeClock
) -> None:
    app_id = await take_in(journal, application("gone"), TaskSpec("deliver", "a"), TaskSpec("deliver", "b"))
    running = await claim_one(journal)
    with pytest.raises(ActionRefused, match="running now"):
        await journal.abandon(app_id, "chief", "zurückgezogen")
    clock.advance(LEASE + 1)  # its worker died: nothing runs any more

    outcome = await journal.abandon(app_id, "chief", "zurückgezogen")

    assert (outcome.tasks, outcome.already) == (2, False)
    assert {t.state for t in await journal.tasks(app_id)} == {TaskState.ABANDONED}
    summary = await journal.get_summary(app_id)
    assert summary is not None and summary.state == ApplicationState.ABANDONED
    with pytest.raises(LeaseLost):
        await journal.complete(running, Completion())
    assert await journal.claim("worker-2", 10, LEASE, {}) == []
    assert await journal.next_due() is None
    assert await journal.replay(ApplicationFilter()) == []
    again = await journal.abandon(app_id, "chief", "noch einmal")
    assert (again.tasks, again.already, again.events) == (0, True, ())
    assert types(await journal.events(app_id)).count("operator.abandoned") == 1
    with pytest.raises(KeyError):
        await journal.abandon("app_nope", "chief", "x")


async def test_abandon_refuses_an_application_with_nothing_open(journal: SqlJournal) -> None:
    app_id = await take_in(journal, application("done"), TaskSpec("map"))
    await journal.complete(await claim_one(journal), Completion(state=ApplicationState.COMPLETED))
    with pytest.raises(ActionRefused, match="completed"):
        await journal.abandon(app_id, "chief", "x")
    assert "operator.abandoned" not in types(await journal.events(app_id))


async def test_append_records_an_operator_action_on_the_timeline(journal: SqlJournal) -> None:
    app_id = await take_in(journal, application("noted"))
    [stored] = await journal.append([operator_event(app_id, "closed", "chief", "Dublette", message="m-1")])
    assert stored.id is not None
    assert (await journal.events(app_id))[-1] == stored
    assert stored.data == {"operator": "chief", "reason": "Dublette", "message": "m-1"}


# -- sequences -------------------------------------------------------------------------------------


async def test_next_sequence_counts_per_name_and_period_across_reopen(
    journal: SqlJournal, journal_backend: JournalBackend, clock: FakeClock
) -> None:
    assert [await journal.next_sequence("az", "2025") for _ in range(3)] == [1, 2, 3]
    assert await journal.next_sequence("az", "2026") == 1
    assert await journal.next_sequence("other", "2025") == 1
    await journal.close()

    reopened = journal_backend.journal(clock)
    await reopened.open()
    try:
        assert await reopened.next_sequence("az", "2025") == 4
        assert await reopened.next_sequence("az", "2026") == 2
        assert await reopened.next_sequence("other", "2025") == 2
    finally:
        await reopened.close()


async def test_concurrent_next_sequence_calls_never_repeat(
    journal: SqlJournal, journal_backend: JournalBackend
) -> None:
    numbers = await journal_backend.concurrently(*(journal.next_sequence("az", "2025") for _ in range(50)))
    numbers += await asyncio.gather(*(journal.next_sequence("az", "2025") for _ in range(50)))
    assert sorted(n for n in numbers if isinstance(n, int)) == list(range(1, 101))


# -- listing ---------------------------------------------------------------------------------------


async def test_list_applications_filters_by_state_route_and_service(journal: SqlJournal) -> None:
    waiting = await take_in(journal, application("a", route="bauantrag", received=1), TaskSpec("map"))
    done = await take_in(
        journal, application("b", route="bauantrag", service="wohngeld", received=2), TaskSpec("map")
    )
    dead = await take_in(journal, application("c", route="jagd", received=3), TaskSpec("map"))
    for task in await journal.claim("worker-1", 10, LEASE, {}):
        if task.application_id == done:
            await journal.complete(task, Completion(state=ApplicationState.COMPLETED))
        elif task.application_id == dead:
            await journal.fail(task, "broken", retry_at=None)
        else:
            await journal.fail(task, "later", retry_at=START + 60)

    async def ids(**where: Any) -> list[str]:
        return [s.id for s in await journal.list_applications(ApplicationFilter(**where))]

    assert await ids() == [dead, done, waiting]
    assert await ids(state=ApplicationState.PROCESSING) == [waiting]
    assert await ids(state=ApplicationState.COMPLETED) == [done]
    assert await ids(state=ApplicationState.DEAD) == [dead]
    assert await ids(state=ApplicationState.RECEIVED) == []
    assert await ids(route="bauantrag") == [done, waiting]
    assert await ids(route="bauantrag", state=ApplicationState.COMPLETED) == [done]
    assert await ids(service="wohngeld") == [done]
    assert await ids(service="jagdschein", route="jagd") == [dead]
    assert await ids(ids=(waiting, dead)) == [dead, waiting]
    [summary] = await journal.list_applications(ApplicationFilter(state=ApplicationState.DEAD))
    assert (summary.external_id, summary.route, summary.error) == ("c", "jagd", "broken")


async def test_list_applications_query_escapes_like_wildcards(journal: SqlJournal) -> None:
    async def add(external_id: str, applicant: Party, file_number: str | None = None) -> str:
        return await take_in(journal, application(external_id, applicant=applicant, file_number=file_number))

    percent = await add("p1", Party(organisation="100% Sicher GmbH"))
    await add("p2", Party(organisation="100 Sicher AG"))
    underscore = await add("u1", Party(given_name="Eva", family_name="Meier_Schulz"))
    await add("u2", Party(given_name="Eva", family_name="MeierXSchulz"))
    backslash = await add(r"fb\42", Party(family_name="Roth"))
    await add("fb42", Party(family_name="Roth"))
    filed = await add("f1", Party(family_name="Öztürk"), file_number="AZ-2025/17")

    async def q(text: str) -> set[str]:
        return {s.id for s in await journal.list_applications(ApplicationFilter(q=text))}

    assert await q("100%") == {percent}
    assert await q("0% s") == {percent}
    assert await q("meier_schulz") == {underscore}
    assert await q(r"fb\4") == {backslash}
    assert await q("%") == {percent}
    assert await q("r_s") == {underscore}  # ids ("app_...") contain "_" too
    # case-insensitive, also beyond ASCII; matches file number, external id and id too
    assert await q("ÖZTÜRK") == {filed}
    assert await q("az-2025/17") == {filed}
    assert await q("U1") == {underscore}
    assert await q(percent) == {percent}
    assert await q("nobody") == set()


async def test_list_applications_newest_first_with_limit_and_offset(journal: SqlJournal) -> None:
    ids = [await take_in(journal, application(f"ext-{i}", received=i)) for i in range(7)]
    newest_first = ids[::-1]
    page = await journal.list_applications(ApplicationFilter(), limit=3)
    assert [s.id for s in page] == newest_first[:3]
    page = await journal.list_applications(ApplicationFilter(), limit=3, offset=3)
    assert [s.id for s in page] == newest_first[3:6]
    page = await journal.list_applications(ApplicationFilter(), limit=3, offset=6)
    assert [s.id for s in page] == newest_first[6:]
    [first] = await journal.list_applications(ApplicationFilter(), limit=1, offset=6)
    assert first.received_at == datetime.fromtimestamp(START, UTC)
    assert first.state == ApplicationState.RECEIVED


# -- lifecycle -------------------------------------------------------------------------------------


async def test_writes_issued_while_closing_fail_instead_of_hanging(journal: SqlJournal) -> None:
    app = application("late")
    closed, late = await asyncio.wait_for(
        asyncio.gather(journal.close(), journal.intake(app, [], []), return_exceptions=True), timeout=10
    )
    assert closed is None
    assert isinstance(late, RuntimeError)
    with pytest.raises(RuntimeError):
        await journal.next_sequence("az", "2025")


async def test_stats_count_by_state(journal: SqlJournal) -> None:
    a = await take_in(journal, application("a"), TaskSpec("deliver", "dms"), TaskSpec("deliver", "fv"))
    await take_in(journal, application("b"), TaskSpec("map"))
    [dms] = await journal.claim("worker-1", 1, LEASE, {"fv": 0, "": 0})
    await journal.fail(dms, "broken", retry_at=None)
    stats = await journal.stats()
    assert stats.applications_by_state == {"dead": 1, "received": 1}
    assert stats.tasks_by_step_target_state == {
        ("deliver", "dms", "dead"): 1,
        ("deliver", "fv", "pending"): 1,
        ("map", "", "pending"): 1,
    }
    summary = await journal.get_summary(a)
    assert summary is not None and summary.state == ApplicationState.DEAD
    await journal.ping()


async def test_intake_refuses_events_of_another_application(journal: SqlJournal) -> None:
    app = application("ext-own")
    with pytest.raises(ValueError, match="must belong to the application"):
        await journal.intake(app, [Event(application_id="app_other", type="application.received")], [])
    assert await journal.get_application(app.id) is None


async def test_tasks_with_one_key_run_one_after_the_other(journal: SqlJournal) -> None:
    apps = [application(f"ext-key-{i}") for i in range(3)]
    keys = ["akte:groß", "akte:groß", "akte:çelik"]
    for app, key in zip(apps, keys, strict=True):
        await journal.intake(app, received(app), [TaskSpec("deliver", "enaio", key=key)])
    first = await journal.claim("w", 10, 30, {})
    assert sorted(t.application_id for t in first) == sorted([apps[0].id, apps[2].id])
    assert await journal.claim("w", 10, 30, {}) == []  # the twin waits while its key is held
    (held,) = [t for t in first if t.application_id == apps[0].id]
    await journal.complete(held, Completion())
    (second,) = await journal.claim("w", 10, 30, {})
    assert second.application_id == apps[1].id


async def test_a_target_the_gate_holds_back_is_not_claimed_and_counts_no_attempt(
    journal: SqlJournal,
) -> None:
    held_back = await take_in(journal, application("e-1"), TaskSpec("deliver", "dms"))
    other = await take_in(journal, application("e-2"), TaskSpec("deliver", "archive"))
    claimed = await journal.claim("w", 10, LEASE, {}, {"dms": 0})
    assert [t.application_id for t in claimed] == [other]
    [waiting] = await journal.tasks(held_back)
    assert (waiting.state, waiting.attempts) == (TaskState.PENDING, 0)
    second = await take_in(journal, application("e-3"), TaskSpec("deliver", "dms"))
    # Allowed one start: the oldest due task of the target goes, the next waits.
    assert [t.application_id for t in await journal.claim("w", 10, LEASE, {}, {"dms": 1})] == [held_back]
    assert [t.application_id for t in await journal.claim("w", 10, LEASE, {}, {})] == [second]


async def test_pauses_and_the_audit_trail_are_kept_in_the_journal(
    journal: SqlJournal, journal_backend: JournalBackend
) -> None:
    paused = await journal.pause_target("dms", "alice", "Wartung")
    assert paused is not None and paused.operator == "alice"
    assert await journal.pause_target("dms", "bob", "nochmal") is None  # the first pause stays
    await journal.close()
    reopened = journal_backend.journal()
    await reopened.open()
    try:
        assert {t: (p.operator, p.reason) for t, p in (await reopened.paused_targets()).items()} == {
            "dms": ("alice", "Wartung")
        }
        lifted = await reopened.resume_target("dms", "bob", None)
        assert lifted is not None and lifted.operator == "alice"
        assert await reopened.resume_target("dms", "bob", None) is None
        assert await reopened.paused_targets() == {}
        trail = [(a.operator, a.action, a.subject, a.count) for a in await reopened.operator_actions()]
        assert trail == [("bob", "resumed", "dms", 1), ("alice", "paused", "dms", 1)]
        assert (await reopened.stats()).operator_actions == {"paused": 1, "resumed": 1}
    finally:
        await reopened.close()
        await journal.open()  # the fixture closes it


async def test_a_date_range_lists_what_was_received_in_it(journal: SqlJournal) -> None:
    early, middle, late = (application(n, received=h * 3600.0) for n, h in (("a", 0), ("b", 1), ("c", 2)))
    for app in (early, middle, late):
        await take_in(journal, app)
    start = datetime.fromtimestamp(START, UTC)

    async def listed(**dates: Any) -> list[str]:
        return [s.external_id for s in await journal.list_applications(ApplicationFilter(**dates))]

    assert await listed(received_from=start + timedelta(hours=1)) == ["c", "b"]  # from: inclusive
    assert await listed(received_until=start + timedelta(hours=1)) == ["a"]  # until: exclusive
    assert await listed(received_from=start, received_until=start + timedelta(hours=2)) == ["b", "a"]
    where = ApplicationFilter(received_from=start, received_until=start + timedelta(hours=2))
    assert where.describe() == (
        "received_from=2023-11-14T22:13:20+00:00 received_until=2023-11-15T00:13:20+00:00"
    )


# -- singleton jobs (hub.leases): one lease row per job, shared by the hub's processes -------------

POLL = "poll:xta-bauportal"


@pytest.fixture
async def peer(
    journal_backend: JournalBackend, journal: SqlJournal, clock: FakeClock
) -> AsyncIterator[SqlJournal]:
    """Another hub process's journal on `journal`'s store."""
    other = journal_backend.peer(clock)
    await other.open()
    yield other
    await other.close()


async def test_one_holds_the_other_is_refused_until_the_lease_expires(
    journal: SqlJournal, peer: SqlJournal, clock: FakeClock
) -> None:
    a, b = journal, peer
    taken = await a.take_lease(POLL, "host-a:1:aa", 30)
    assert taken is not None
    assert (taken.holder, taken.token, taken.expires_at.timestamp()) == ("host-a:1:aa", 1, START + 30)
    assert await b.take_lease(POLL, "host-b:2:bb", 30) is None

    clock.advance(20)  # the holder renews: same token, later expiry
    renewed = await a.take_lease(POLL, "host-a:1:aa", 30)
    assert renewed is not None
    assert (renewed.token, renewed.acquired_at, renewed.expires_at.timestamp()) == (
        1,
        taken.acquired_at,
        START + 50,
    )
    clock.advance(29)
    assert await b.take_lease(POLL, "host-b:2:bb", 30) is None  # not expired yet
    assert await a.lease_holds(POLL, "host-a:1:aa", 1)

    clock.advance(1)  # the holder stopped renewing (dead, or paused): expired at START + 50
    took_over = await b.take_lease(POLL, "host-b:2:bb", 30)
    assert took_over is not None
    assert (took_over.holder, took_over.token) == ("host-b:2:bb", 2)
    assert not await a.lease_holds(POLL, "host-a:1:aa", 1)
    assert await b.lease_holds(POLL, "host-b:2:bb", 2)
    # the old holder comes back: it neither renews nor releases what is no longer its own
    assert await a.take_lease(POLL, "host-a:1:aa", 30) is None
    assert not await a.release_lease(POLL, "host-a:1:aa", 1)
    assert await b.lease_holds(POLL, "host-b:2:bb", 2)


async def test_a_released_lease_is_taken_at_once_with_the_next_token(
    journal: SqlJournal,
    peer: SqlJournal,
) -> None:
    a, b = journal, peer
    taken = await a.take_lease(POLL, "host-a:1:aa", 60)
    assert taken is not None
    assert await a.release_lease(POLL, "host-a:1:aa", taken.token)
    assert not await a.lease_holds(POLL, "host-a:1:aa", taken.token)
    took = await b.take_lease(POLL, "host-b:2:bb", 60)  # no time passed
    assert took is not None and took.token == 2
    # taken back later: the token keeps growing (the row outlives its holders)
    assert await b.release_lease(POLL, "host-b:2:bb", 2)
    again = await a.take_lease(POLL, "host-a:1:aa", 60)
    assert again is not None and again.token == 3


async def test_a_holder_back_after_its_lease_expired_starts_a_new_tenure(
    journal: SqlJournal, peer: SqlJournal, clock: FakeClock
) -> None:
    a = journal
    assert await a.take_lease(POLL, "host-a:1:aa", 15) is not None
    clock.advance(100)  # paused or cut off meanwhile: nobody took it, but its old runs must stop
    assert not await a.lease_holds(POLL, "host-a:1:aa", 1)
    again = await a.take_lease(POLL, "host-a:1:aa", 15)
    assert again is not None
    assert (again.token, again.acquired_at.timestamp()) == (2, START + 100)
    assert not await a.lease_holds(POLL, "host-a:1:aa", 1)
    assert await a.lease_holds(POLL, "host-a:1:aa", 2)


async def test_of_two_takes_at_once_one_wins(
    journal_backend: JournalBackend, journal: SqlJournal, peer: SqlJournal, clock: FakeClock
) -> None:
    a, b = journal, peer
    for name in ("purge", "alerts"):
        if name == "alerts":  # the second round: a lease expired, both see it free
            assert await a.take_lease(name, "host-a:1:aa", 10) is not None
            clock.advance(10)
        grants = await journal_backend.concurrently(
            a.take_lease(name, "host-c:3:cc", 60), b.take_lease(name, "host-b:2:bb", 60)
        )
        assert sorted(g is None for g in grants) == [False, True], grants
        [winner] = [g for g in grants if isinstance(g, LeaseGrant)]
        assert winner.token == (1 if name == "purge" else 2)


async def test_leases_lists_every_job_with_holder_and_times(
    journal: SqlJournal, peer: SqlJournal, clock: FakeClock
) -> None:
    a, b = journal, peer
    await a.take_lease(POLL, "host-a:1:aa", 30)
    await b.take_lease("purge", "host-b:2:bb", 60)
    listed = await b.leases()
    assert [(g.name, g.holder, g.token) for g in listed] == [
        ("poll:xta-bauportal", "host-a:1:aa", 1),
        ("purge", "host-b:2:bb", 1),
    ]
    assert listed[1].acquired_at.timestamp() == START
    assert listed[1].expires_at.timestamp() == START + 60


async def test_recovery_frees_the_singleton_jobs_only_where_one_process_owns_the_store(
    journal_backend: JournalBackend, journal: SqlJournal
) -> None:
    assert await journal.take_lease(POLL, "host-a:1:aa", 60) is not None
    await journal.recover()  # a hub started again on the store, under a new holder name
    taken = await journal.take_lease(POLL, "host-a:2:bb", 60)
    if journal_backend.recovers_leases:
        assert taken is not None and taken.token == 2  # at once: the one process before it is gone
    else:
        assert taken is None  # other processes may run: it waits until the lease runs out
