"""The workers outlive a journal that is away for a moment, and hand a target's slot on as they finish."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.config import config_from_dict
from hub.connectors import Intake
from hub.journal import (
    ApplicationFilter,
    ClaimRequest,
    Completion,
    JournalUnavailable,
    SqliteJournal,
    Task,
    TaskState,
)
from hub.models import ApplicationState, Event
from hub.plugins import load_plugins
from hub.runtime import Hub
from hub.testing import fakes
from hub.testing.fakes import RecordingSink
from hub.testing.harness import base_settings, make_application


class FlakyJournal(SqliteJournal):
    """A journal whose look for the next due task fails a few times, as a database restarting does."""

    failures = 3

    async def next_due(self) -> float | None:
        if self.failures > 0:
            self.failures -= 1
            raise JournalUnavailable(str(self.path), "connection lost (injected)")
        return await super().next_due()


async def test_a_failed_look_for_due_work_does_not_stop_the_workers(tmp_path: Path) -> None:
    connectors = {"json": {"type": "test-json"}, "rec": {"type": "test-recording"}}
    settings = base_settings(tmp_path, connectors, [{"name": "plain", "from": "json", "to": ["rec"]}])
    settings["workers"] = {"idle_poll_seconds": 0.05, "lease_seconds": 30}
    plugins = load_plugins([fakes])
    journal = FlakyJournal(tmp_path / "journal.db")
    hub = Hub(config_from_dict(settings, plugins, env={}), plugins, journal=journal)
    completed = asyncio.Event()

    def on_events(events: tuple[Event, ...]) -> None:
        if any(e.type == "application.completed" for e in events):
            completed.set()

    hub.bus.listeners.append(on_events)
    await hub.start()
    try:
        # The idle dispatcher meets the failures first (nothing is due yet) ...
        async with asyncio.timeout(20):
            while journal.failures > 0:
                assert hub.bus.alive, "the dispatcher ended at a failed journal read"
                await asyncio.sleep(0.01)  # polling the injected fault's counter, bounded
        assert hub.bus.alive, "the dispatcher ended at a failed journal read"
        # ... and still files what arrives afterwards.
        app = await make_application(hub.blobs, source="json", external_id="after-the-outage")
        await hub.intake(Intake(application=app))
        await asyncio.wait_for(completed.wait(), 20)
    finally:
        await hub.stop()
    sink = hub.connectors["rec"]
    assert isinstance(sink, RecordingSink)
    assert list(sink.delivered) == [app.id]


class HandOverCountingJournal(SqliteJournal):
    """The SQLite journal, noting the deliveries a delivery's completion leased (`complete_and_claim`)."""

    handed_on: list[str]

    async def complete_and_claim(
        self, task: Task, completion: Completion, request: ClaimRequest
    ) -> tuple[tuple[Event, ...], list[Task]]:
        events, claimed = await super().complete_and_claim(task, completion, request)
        self.handed_on += [t.application_id for t in claimed if t.step == task.step == "deliver"]
        return events, claimed


async def test_a_backlog_takes_the_target_s_one_slot_from_each_completion_before_it(tmp_path: Path) -> None:
    connectors = {"json": {"type": "test-json"}, "rec": {"type": "test-recording", "max_concurrency": 1}}
    settings = base_settings(tmp_path, connectors, [{"name": "plain", "from": "json", "to": ["rec"]}])
    plugins = load_plugins([fakes])
    journal = HandOverCountingJournal(tmp_path / "journal.db")
    journal.handed_on = []
    hub = Hub(config_from_dict(settings, plugins, env={}), plugins, journal=journal)
    await hub.start()
    try:
        # A backlog of deliveries: the target is paused while they are mapped.
        await hub.operations.pause("rec", "test", "a backlog builds")
        apps = [
            await make_application(hub.blobs, source="json", external_id=f"backlog-{i}") for i in range(6)
        ]
        for app in apps:
            await hub.intake(Intake(application=app))
        async with asyncio.timeout(20):
            while await deliveries_waiting(journal, [app.id for app in apps]) < 6:
                await asyncio.sleep(0.01)  # polling the journal for the mapped backlog, bounded
        await hub.operations.resume("rec", "test")
        async with asyncio.timeout(20):
            while (
                len(await journal.list_applications(ApplicationFilter(state=ApplicationState.COMPLETED))) < 6
            ):
                await asyncio.sleep(0.01)
    finally:
        await hub.stop()
    sink = hub.connectors["rec"]
    assert isinstance(sink, RecordingSink)
    assert sorted(sink.delivered) == sorted(app.id for app in apps)
    assert sink.max_in_flight == 1
    # The dispatcher started the first delivery; each one's completion started the next in the same
    # transaction, without a claim of the dispatcher's in between.
    assert len(journal.handed_on) == 5
    assert len(set(journal.handed_on)) == 5


async def deliveries_waiting(journal: SqliteJournal, application_ids: list[str]) -> int:
    tasks = [t for i in application_ids for t in await journal.tasks(i)]
    return sum(t.step == "deliver" and t.state == TaskState.PENDING for t in tasks)
