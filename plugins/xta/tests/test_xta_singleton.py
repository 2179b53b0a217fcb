"""Two processes of one hub read one XTA mailbox: only the holder of the poll's lease asks the mailbox.

A poll whose lease runs out midway (the process paused, or cut off) stops before its next intake, and
the process that takes over reads on from there: every message is filed once and closed once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from hub_xta.simulator import enqueue
from xta_helpers import AUTHORITY, StartXta, antrag_metadata

from hub.journal import ApplicationFilter, open_journal
from hub.leases import LEASE_CAP
from hub.models import Event
from hub.runtime import Hub
from hub.testing.harness import RunningHub
from hub.testing.journal_contract import FakeClock

ANTRAG = b"<baugenehmigung.antrag.0200/>"


async def test_one_process_polls_and_a_lease_lost_mid_poll_files_and_closes_each_message_once(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, hub_factory: Any
) -> None:
    clock = FakeClock()
    xta = await start_xta()

    async def send() -> str:
        queued = await enqueue(http, xta.url, AUTHORITY, metadata=antrag_metadata(), message=ANTRAG)
        return str(queued["message_id"])

    first = await send()
    running: RunningHub = await hub_factory(
        {
            "xta-in": {
                "type": "xta",
                "service": "bauantrag",
                "poll_seconds": 3600,  # polled at start; later polls are the test's
                "xta": {"url": xta.url, "account": {"identifier": AUTHORITY}},
            },
            "rec": {"type": "test-recording"},
        },
        [{"name": "bau", "from": "xta-in", "to": ["rec"]}],
        schemas=str(schema_dir),
        clock=clock,
    )
    a = running.hub
    await running.wait_for(lambda: xta.state.was_closed(first), what="the first message closed")

    # A second process of the same hub: the same configuration, its own client of the journal.
    journal_b = open_journal(a.config.hub.store, clock=clock, guest=True)
    await journal_b.open()
    b = Hub(a.config, a.plugins, clock=clock, journal=journal_b)
    try:
        asked = xta.state.requests["getStatusList"]
        second, third = await send(), await send()
        for _ in range(3):  # its schedule falls due while the first process holds the lease
            assert not await b.poll("xta-in")
        assert xta.state.requests["getStatusList"] == asked  # it never asked the mailbox

        # The holder polls again and pauses after its first intake, long enough to lose its lease.
        def pause(events: tuple[Event, ...]) -> None:
            if not paused and any(e.type == "application.received" for e in events):
                paused.append(True)
                clock.advance(LEASE_CAP + 1)

        paused: list[bool] = []
        a.bus.listeners.append(pause)
        assert await a.poll("xta-in")  # it ran, and stopped at the next intake
        assert paused == [True]
        assert "poll:xta-in" not in a.singletons.held()
        [taken_by_a] = [m for m in (second, third) if xta.state.was_closed(m)]
        left = third if taken_by_a == second else second
        assert left in xta.state.mailbox(AUTHORITY)  # neither filed nor closed by the old holder

        clock.advance(LEASE_CAP + 1)  # whatever the old holder still had ran out
        assert await b.poll("xta-in")  # the other process takes over and reads on
        assert not xta.state.mailbox(AUTHORITY)
        closed = [c.message_id for c in xta.state.closed]
        assert sorted(closed) == sorted([first, second, third])  # each closed once
        apps = await a.journal.list_applications(ApplicationFilter(), limit=10)
        assert len(apps) == 3  # each filed once
        leases = {g.name: g for g in await journal_b.leases()}
        assert (leases["poll:xta-in"].holder, leases["poll:xta-in"].token) == (b.singletons.holder, 2)
    finally:
        await b.singletons.stop()
        await b.close_http()
        await journal_b.close()
