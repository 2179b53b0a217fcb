"""What only the SQLite journal does: group commit (one transaction for the writes queued together, each
in its own savepoint), journals of older hubs, and guests beside the hub that owns the file.

Everything every backend must do is the contract suite (`hub.testing.journal_contract`,
tests/test_journal_contract.py). Concurrency is made deterministic by holding SQLite's write lock from a
second connection while the operations are queued, so that they meet in one group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import pytest

from hub.journal import (
    ApplicationFilter,
    Completion,
    IntakeResult,
    JournalUnavailable,
    LeaseLost,
    SqliteJournal,
    TaskSpec,
    TaskState,
)
from hub.journal.tx import Tx
from hub.testing.journal_backends import SqliteBackend
from hub.testing.journal_contract import (
    LEASE,
    FakeClock,
    application,
    claim_one,
    received,
    take_in,
    types,
)

T = TypeVar("T")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


@pytest.fixture
async def journal(db_path: Path, clock: FakeClock) -> AsyncIterator[SqliteJournal]:
    j = SqliteJournal(db_path, clock=clock)
    await j.open()
    yield j
    await j.close()


async def grouped(db_path: Path, *aws: Awaitable[T]) -> list[T | BaseException]:
    """Run `aws` so that the writer finds their writes queued together (one group)."""
    backend = SqliteBackend(db_path.parent)
    backend.path = db_path
    return await backend.concurrently(*aws)


# -- group commit ----------------------------------------------------------------------------------


async def test_concurrent_intakes_share_commits(journal: SqliteJournal, db_path: Path) -> None:
    apps = [application(f"ext-{i}", received=i) for i in range(100)]

    results = await grouped(db_path, *(journal.intake(a, received(a), [TaskSpec("map")]) for a in apps))

    assert all(isinstance(r, IntakeResult) and not r.duplicate for r in results)
    assert journal.operations == 100
    assert journal.commits < journal.operations
    # all queued while the lock was held: the first one alone at most, then everything else together
    assert journal.commits <= 2
    listed = await journal.list_applications(ApplicationFilter(), limit=1000)
    assert {s.id for s in listed} == {a.id for a in apps}
    for a in apps[::10]:
        assert [t.step for t in await journal.tasks(a.id)] == ["map"]
        assert types(await journal.events(a.id)) == ["application.received"]


async def test_a_steps_lookups_do_not_wait_behind_a_long_read(journal: SqliteJournal) -> None:
    """A step reads its application and its tasks while an operator's listing holds the reading thread."""
    app = application("ext-lookup")
    await journal.intake(app, received(app), [TaskSpec("map")])
    reading, release = threading.Event(), threading.Event()

    def long_read(c: Tx) -> None:
        reading.set()
        release.wait(10)

    listing = asyncio.ensure_future(journal._read(long_read))
    try:
        await asyncio.to_thread(reading.wait, 10)
        assert reading.is_set()
        found = await asyncio.wait_for(journal.get_application(app.id), 5)
        tasks = await asyncio.wait_for(journal.tasks(app.id), 5)
        assert not listing.done()  # the reading thread was busy throughout
    finally:
        release.set()
        await listing
    assert found is not None and found.id == app.id
    assert [t.step for t in tasks] == ["map"]


async def test_lookups_fail_once_the_journal_is_closed(db_path: Path, clock: FakeClock) -> None:
    j = SqliteJournal(db_path, clock=clock)
    await j.open()
    await j.close()
    with pytest.raises(RuntimeError, match="not open"):
        await j.get_application("nothing")


def _sqlite_temporary_files() -> list[str]:
    """The files this process holds open that SQLite made for temporary use (``etilqs_*``)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if "etilqs_" in (target := os.readlink(f"/proc/self/fd/{fd}")):
                found.append(target)
    return found


async def test_an_intake_is_five_inserts_in_its_group(journal: SqliteJournal, db_path: Path) -> None:
    apps = [application(f"ext-{i}") for i in range(10)]
    for a in apps:
        a.correlations = {"portal": a.external_id}
    statements: list[str] = []
    await journal._write(lambda c: c.set_trace_callback(statements.append))  # the writer's connection

    results = await grouped(db_path, *(journal.intake(a, received(a), [TaskSpec("map", "x")]) for a in apps))
    await journal._write(lambda c: c.set_trace_callback(None))

    assert all(isinstance(r, IntakeResult) and not r.duplicate for r in results)
    # no savepoint (no operation failed), no DELETE of correlations a new application cannot have
    kinds = [" ".join(s.split()[:3]) for s in statements if not s.startswith(("BEGIN", "COMMIT"))]
    # SQLite traces the program of a table's trigger (hub.journal.counts) as its statement once more.
    kinds = [k for k, previous in zip(kinds, [None, *kinds], strict=False) if k != previous]
    rows = ["INSERT INTO applications", "INSERT INTO correlations", "INSERT INTO events"]
    assert kinds == [*rows, "INSERT INTO tasks", "INSERT INTO task_targets"] * 10


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads the open files from /proc")
async def test_a_group_with_a_failure_writes_no_temporary_file(journal: SqliteJournal, db_path: Path) -> None:
    # A group with a failing operation runs each operation in a savepoint, which keeps undo records of
    # the pages it changes; past 64 KiB SQLite would spill them into a temporary file, never read.
    apps = [application(f"ext-{i}") for i in range(40)]

    def broken(c: Tx) -> None:
        raise sqlite3.IntegrityError("FOREIGN KEY constraint failed")

    calls: list[Awaitable[object]] = [journal.intake(a, received(a), [TaskSpec("map")]) for a in apps]
    calls.append(journal._write(broken))
    calls.append(journal._write(lambda c: _sqlite_temporary_files()))  # still inside the group

    results = await grouped(db_path, *calls)

    assert results.pop() == []
    assert isinstance(results.pop(), sqlite3.IntegrityError)
    assert all(isinstance(r, IntakeResult) and not r.duplicate for r in results)
    assert journal.commits <= 2
    assert len(await journal.list_applications(ApplicationFilter(), limit=100)) == 40


async def test_failing_operation_in_a_group_leaves_the_others_alone(
    journal: SqliteJournal, db_path: Path
) -> None:
    good = [application(f"ext-{i}") for i in range(20)]
    bad = application("ext-bad")

    def half_done_then_broken(c: sqlite3.Connection) -> None:
        # stores the application row, then fails mid-operation as a constraint or bug would
        c.execute(
            "INSERT INTO applications (id, source, external_id, service, state, received_at, "
            "updated_at, search, doc) VALUES (?, 'formcycle', 'ext-bad', 'x', 'received', 0, 0, '', ?)",
            (bad.id, bad.model_dump_json()),
        )
        raise sqlite3.IntegrityError("FOREIGN KEY constraint failed")

    calls = [journal.intake(a, received(a), [TaskSpec("map")]) for a in good]
    calls.insert(10, journal._write(half_done_then_broken))

    results = await grouped(db_path, *calls)

    failure = results.pop(10)
    assert isinstance(failure, sqlite3.IntegrityError)
    assert all(isinstance(r, IntakeResult) and not r.duplicate for r in results)
    assert journal.operations == 21
    assert journal.commits <= 2  # the failing intake shared its transaction with others
    # the failed intake left nothing behind (its savepoint was rolled back) ...
    assert await journal.get_application(bad.id) is None
    assert await journal.tasks(bad.id) == []
    # ... and every other intake of the group is stored completely
    listed = await journal.list_applications(ApplicationFilter(), limit=100)
    assert {s.id for s in listed} == {a.id for a in good}
    for a in good:
        assert [t.step for t in await journal.tasks(a.id)] == ["map"]
        assert types(await journal.events(a.id)) == ["application.received"]
    # and the same application can be taken in again once its data is right
    assert (await journal.intake(bad, received(bad), [TaskSpec("map")])).duplicate is False


async def test_lease_lost_in_a_group_leaves_the_others_alone(
    journal: SqliteJournal, db_path: Path, clock: FakeClock
) -> None:
    ids = [await take_in(journal, application(f"ext-{i}"), TaskSpec("map")) for i in range(3)]
    stale, *held = await journal.claim("worker-1", 3, LEASE, {})
    clock.advance(LEASE + 1)
    [retaken] = await journal.claim("worker-2", 1, LEASE, {})  # the oldest expired lease: `stale`
    assert retaken.id == stale.id
    # `held` expired too, but nobody took them: their holder may still finish them

    results = await grouped(
        db_path,
        journal.complete(held[0], Completion(result={"n": 0})),
        journal.complete(stale, Completion(result={"n": 1})),
        journal.complete(held[1], Completion(result={"n": 2})),
    )

    assert isinstance(results[1], LeaseLost)
    assert not isinstance(results[0], BaseException)
    assert not isinstance(results[2], BaseException)
    by_app = {t.application_id: t for app_id in ids for t in await journal.tasks(app_id)}
    assert by_app[held[0].application_id].state == TaskState.DONE
    assert by_app[held[1].application_id].state == TaskState.DONE
    still = by_app[stale.application_id]
    assert (still.state, still.lease_token, still.result) == (TaskState.LEASED, retaken.lease_token, None)


async def test_an_aborted_group_fails_every_caller_and_the_journal_carries_on(
    journal: SqliteJournal,
) -> None:
    loop = asyncio.get_running_loop()
    entered, gate = threading.Event(), threading.Event()

    def hold(c: sqlite3.Connection) -> None:  # keeps the writer busy while the next group is queued
        entered.set()
        gate.wait(10)

    def abort(c: sqlite3.Connection) -> None:  # what SQLite itself does on a full disk or an I/O error
        c.execute("ROLLBACK")

    async def open_gate() -> None:
        gate.set()

    holder = asyncio.ensure_future(journal._write_bulk(hold))  # a bulk write runs on the writer thread
    assert await loop.run_in_executor(None, entered.wait, 10)
    apps = [application(f"ext-{i}") for i in range(4)]
    calls = [journal.intake(a, received(a), [TaskSpec("map")]) for a in apps]
    calls.insert(2, journal._write(abort))

    # all of `calls` form one group behind `hold`; none of them may be left waiting
    _, *results, _ = await asyncio.wait_for(
        asyncio.gather(holder, *calls, open_gate(), return_exceptions=True), timeout=10
    )

    assert all(isinstance(r, sqlite3.Error) for r in results), results
    assert await journal.list_applications(ApplicationFilter()) == []  # the whole group rolled back
    assert journal.writer_alive
    assert (await journal.intake(apps[0], received(apps[0]), [TaskSpec("map")])).duplicate is False
    assert [t.step for t in await journal.tasks(apps[0].id)] == ["map"]


async def test_a_write_whose_caller_gave_up_before_it_started_is_skipped(
    journal: SqliteJournal, db_path: Path
) -> None:
    kept, dropped = application("kept"), application("dropped")
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # nothing queued below can start yet
    keeping = asyncio.ensure_future(journal.intake(kept, received(kept), [TaskSpec("map")]))
    dropping = asyncio.ensure_future(journal.intake(dropped, received(dropped), [TaskSpec("map")]))

    async def give_up_then_release() -> None:
        dropping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dropping
        blocker.execute("ROLLBACK")
        blocker.close()

    result, _ = await asyncio.gather(keeping, give_up_then_release())

    assert dropping.cancelled()
    assert result.application_id == kept.id
    assert await journal.get_application(dropped.id) is None
    assert await journal.tasks(dropped.id) == []
    assert [s.id for s in await journal.list_applications(ApplicationFilter())] == [kept.id]


async def test_a_write_waits_for_a_lock_held_elsewhere_without_holding_up_the_loop(
    journal: SqliteJournal, db_path: Path
) -> None:
    first, second = application("first"), application("second")
    await journal.intake(first, received(first), [TaskSpec("map")])
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # an operator's command beside the hub, writing
    writing = asyncio.ensure_future(journal.intake(second, received(second), [TaskSpec("map")]))

    # The loop goes on meanwhile: a step's lookup is answered while the intake waits for the lock.
    for _ in range(20):
        await asyncio.sleep(0)
    assert (await journal.get_application(first.id)) is not None
    assert not writing.done()
    blocker.execute("COMMIT")
    blocker.close()

    assert (await writing).duplicate is False
    assert [t.step for t in await journal.tasks(second.id)] == ["map"]


async def test_closing_finishes_the_writes_queued_before(db_path: Path, clock: FakeClock) -> None:
    journal = SqliteJournal(db_path, clock=clock)
    await journal.open()
    app = application("queued")
    writing = asyncio.ensure_future(journal.intake(app, received(app), [TaskSpec("map")]))
    await asyncio.sleep(0)  # queued, its group not run yet

    await journal.close()

    assert (await writing).duplicate is False
    reopened = SqliteJournal(db_path, clock=clock)
    await reopened.open()
    try:
        assert [t.step for t in await reopened.tasks(app.id)] == ["map"]
    finally:
        await reopened.close()


# -- older hubs, guests ----------------------------------------------------------------------------


async def test_journals_from_before_error_codes_gain_the_columns(db_path: Path) -> None:
    old = sqlite3.connect(db_path)
    old.executescript(
        "CREATE TABLE applications (id TEXT PRIMARY KEY, source TEXT NOT NULL, external_id TEXT NOT NULL,"
        " service TEXT NOT NULL, route TEXT, state TEXT NOT NULL, received_at REAL NOT NULL,"
        " updated_at REAL NOT NULL, file_number TEXT, error TEXT, search TEXT NOT NULL, doc TEXT NOT NULL,"
        " UNIQUE (source, external_id));"
        "CREATE TABLE tasks (id INTEGER PRIMARY KEY AUTOINCREMENT, application_id TEXT NOT NULL,"
        " step TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
        " attempt_base INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL, due_at REAL NOT NULL,"
        " lease_token TEXT, lease_until REAL, last_error TEXT, result TEXT,"
        " checkpoints TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL, updated_at REAL NOT NULL,"
        " UNIQUE (application_id, step, target));"
    )
    old.close()
    journal = SqliteJournal(db_path)
    await journal.open()
    try:
        app_id = await take_in(journal, application("old"), TaskSpec("map"))
        await journal.fail(await claim_one(journal), "boom", None, (), "RuntimeError")
        [task] = await journal.tasks(app_id)
        assert task.error_code == "RuntimeError"
    finally:
        await journal.close()


async def test_a_guest_beside_an_older_hub_is_refused_and_never_recovers(db_path: Path) -> None:
    owner = SqliteJournal(db_path)
    await owner.open()
    await owner.close()
    with sqlite3.connect(db_path) as conn:  # as a hub of the release before the last migration left it
        conn.executescript("DROP TABLE leases; UPDATE meta SET value='2' WHERE key='schema_version';")
    with pytest.raises(JournalUnavailable, match="older than this command"):
        await SqliteJournal(db_path, guest=True).open()
    owner = SqliteJournal(db_path)
    await owner.open()  # the hub, upgraded, migrates
    await owner.close()
    guest = SqliteJournal(db_path, guest=True)
    await guest.open()
    try:
        with pytest.raises(RuntimeError, match="never recovers"):
            await guest.recover()
        assert await guest.operator_actions() == []
    finally:
        await guest.close()
