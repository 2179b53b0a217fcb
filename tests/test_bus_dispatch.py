"""The workers outlive a journal that is away for a moment: the dispatcher goes on after a failed read."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.config import config_from_dict
from hub.connectors import Intake
from hub.journal import JournalUnavailable, SqliteJournal
from hub.models import Event
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
