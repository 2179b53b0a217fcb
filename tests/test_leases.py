"""Singleton jobs across hub processes: a process runs a job only under its lease, gives it back at a
graceful stop, and a run whose lease was lost meanwhile stops (`hub.leases`, `hub.runtime`).

What the journal itself promises of leases is part of its contract suite (`hub.testing.journal_contract`).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from click.testing import CliRunner
from prometheus_client import Gauge

from hub.cli import main
from hub.connectors import ConnectorConfig, ConnectorContext, IntakeFunc, Manifest, Source
from hub.hookspecs import hookimpl
from hub.journal import Journal, SqliteJournal
from hub.leases import (
    LEASE_CAP,
    LEASE_FLOOR,
    NotLeader,
    Singletons,
    lease_seconds,
    process_holder,
)
from hub.metrics import Metrics
from hub.testing import fakes
from hub.testing.harness import base_settings, start_hub, stop_hub
from hub.testing.journal_backends import SqliteBackend
from hub.testing.journal_contract import FakeClock

POLL = "poll:xta-bauportal"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def journals(tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[Journal, Journal]]:
    """Two clients of one journal, as two processes of one hub have them (the journal's own side of
    leases is in the contract suite, `hub.testing.journal_contract`, on every backend)."""
    backend = SqliteBackend(tmp_path)
    first, second = backend.journal(clock), backend.peer(clock)
    await first.open()
    try:
        await second.open()
        yield first, second
        await second.close()
    finally:
        await first.close()


def leader_gauge() -> Gauge:
    return Metrics().singleton_leader


def leading(gauge: Gauge, job: str) -> float:
    return float(gauge.labels(job)._value.get())


def test_lease_time_is_a_few_intervals_within_floor_and_cap() -> None:
    assert lease_seconds(1) == LEASE_FLOOR
    assert lease_seconds(10) == 30
    assert lease_seconds(86400) == LEASE_CAP


def test_holders_differ_between_processes_and_name_the_host() -> None:
    one, two = process_holder(), process_holder()
    assert one != two
    assert one.startswith(f"{socket.gethostname()}:")


async def test_a_job_runs_in_one_process_and_moves_when_its_holder_stops_renewing(
    journals: tuple[Journal, Journal], clock: FakeClock
) -> None:
    gauge_a, gauge_b = leader_gauge(), leader_gauge()
    a = Singletons(journals[0], gauge_a, holder="host-a:1:aa")
    b = Singletons(journals[1], gauge_b, holder="host-b:2:bb")
    calls: list[str] = []  # the upstream mailbox's log of polls, by process

    async def poll(who: str) -> None:
        calls.append(who)

    for _ in range(3):
        assert await a.run(POLL, 5, lambda: poll("a"))
        assert not await b.run(POLL, 5, lambda: poll("b"))
        clock.advance(5)
    assert calls == ["a", "a", "a"]
    assert (leading(gauge_a, POLL), leading(gauge_b, POLL)) == (1, 0)

    # a stops renewing (paused, or killed): after its lease (3 intervals, at least 15 s) b takes over
    clock.advance(lease_seconds(5))
    assert await b.run(POLL, 5, lambda: poll("b"))
    assert b.held()[POLL].token == 2
    assert not await a.run(POLL, 5, lambda: poll("a"))
    assert calls == ["a", "a", "a", "b"]
    assert (leading(gauge_a, POLL), leading(gauge_b, POLL)) == (0, 1)


async def test_a_run_that_lost_its_lease_meanwhile_stops_at_its_next_write(
    journals: tuple[Journal, Journal], clock: FakeClock
) -> None:
    a = Singletons(journals[0], leader_gauge(), holder="host-a:1:aa")
    b = Singletons(journals[1], leader_gauge(), holder="host-b:2:bb")
    paused, resumed = asyncio.Event(), asyncio.Event()
    outcome: list[str] = []

    async def long_poll() -> None:
        await a.fence()  # holds at the start
        paused.set()
        await resumed.wait()  # a long GC pause or a network cut: the lease runs out meanwhile
        try:
            await a.fence()
        except NotLeader:
            outcome.append("stopped")
            return
        outcome.append("wrote")

    running = asyncio.ensure_future(a.run(POLL, 5, long_poll))
    await paused.wait()
    clock.advance(LEASE_FLOOR)
    assert await b.run(POLL, 5, lambda: asyncio.sleep(0))
    resumed.set()
    assert await running
    assert outcome == ["stopped"]
    assert POLL not in a.held()


async def test_renewal_keeps_the_job_and_a_graceful_stop_hands_it_over_at_once(
    journals: tuple[Journal, Journal], clock: FakeClock
) -> None:
    a = Singletons(journals[0], leader_gauge(), holder="host-a:1:aa")
    b = Singletons(journals[1], leader_gauge(), holder="host-b:2:bb")
    assert await a.run("purge", 3600, lambda: asyncio.sleep(0))
    for _ in range(3):  # the background renewal's step, while the daily job does not run
        clock.advance(LEASE_CAP - 1)
        await a.renew()
        assert not await b.run("purge", 3600, lambda: asyncio.sleep(0))
    await a.stop()
    assert a.held() == {}
    assert await b.run("purge", 3600, lambda: asyncio.sleep(0))  # no time passed since the release
    assert b.held()["purge"].token == 2


class Mailbox(Source[ConnectorConfig]):
    """An upstream mailbox polled often; it logs each poll (its upstream calls)."""

    kind = "test-lease-mailbox"
    manifest = Manifest(name="lease mailbox", version="1")
    calls: ClassVar[list[str]] = []

    def __init__(self, config: Any, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.poll_interval = 0.02

    async def poll(self, intake: IntakeFunc) -> int:
        Mailbox.calls.append(self.name)
        return 0


class MailboxPlugin:
    @hookimpl
    def aktenhub_connector_types(self) -> list[type[Source[ConnectorConfig]]]:
        return [Mailbox]


VIEWER = {"Authorization": "Bearer v-secret-1"}


async def test_a_hub_polls_only_while_no_other_process_holds_the_lease_and_shows_who_does(
    tmp_path: Path, clock: FakeClock
) -> None:
    Mailbox.calls.clear()
    settings = base_settings(
        tmp_path, {"mailbox": {"type": "test-lease-mailbox"}, "rec": {"type": "test-recording"}}, []
    )
    settings["server"] = {
        "listen": "127.0.0.1:0",
        "admin_tokens": [{"name": "d", "token": "${VIEWER_TOKEN}", "role": "viewer"}],
    }
    path = tmp_path / "journal.db"
    running = await start_hub(
        settings, extra_plugins=(fakes, MailboxPlugin()), env={"VIEWER_TOKEN": "v-secret-1"}, clock=clock
    )
    # Another process of the hub, whose clock is far on: to it the hub's lease ran out long ago (as if
    # the hub had paused), so it takes the lease in one write, whatever the hub does meanwhile.
    later = FakeClock()
    later.advance(1000)
    other = SqliteJournal(path, clock=later, guest=True)
    try:
        await other.open()
        hub = running.hub
        await running.wait_for(lambda: Mailbox.calls, 10, "the hub's first poll")
        took = await other.take_lease("poll:mailbox", "elsewhere:7:ee", 60)
        assert took is not None and took.token == 2
        await running.wait_for(lambda: "poll:mailbox" not in hub.singletons.held(), 10, "the hub to notice")
        polled = len(Mailbox.calls)
        runs: set[object] = set()  # each run moves the schedule on: collect a few runs, all skipped
        await running.wait_for(lambda: runs.add(hub.next_run("poll-mailbox")) or len(runs) > 3, 10, "runs")
        assert len(Mailbox.calls) == polled
        status, body = await running.get("/api/v1/leases", headers=VIEWER)
        assert status == 200, body
        assert body["process"] == hub.singletons.holder
        [lease] = [x for x in body["leases"] if x["name"] == "poll:mailbox"]
        assert (lease["holder"], lease["token"]) == ("elsewhere:7:ee", 2)
        _, metrics = await running.get("/metrics")
        assert 'aktenhub_singleton_leader{job="poll:mailbox"} 0.0' in metrics

        clock.advance(1000)  # the hub's time catches up; the other process stops gracefully
        assert await other.release_lease("poll:mailbox", "elsewhere:7:ee", 2)
        await running.wait_for(lambda: len(Mailbox.calls) >= polled + 3, 10, "polls here")
        _, body = await running.get("/api/v1/leases", headers=VIEWER)
        [lease] = [x for x in body["leases"] if x["name"] == "poll:mailbox"]
        assert (lease["holder"], lease["token"]) == (hub.singletons.holder, 3)
        _, metrics = await running.get("/metrics")
        assert 'aktenhub_singleton_leader{job="poll:mailbox"} 1.0' in metrics
        assert await other.take_lease("poll:mailbox", "elsewhere:7:ee", 60) is None

        config = tmp_path / "aktenhub.yaml"
        files = {"type": "filedrop", "path": str(tmp_path / "drop")}  # the command loads no test plugins
        command = {**settings, "server": {}, "connectors": {"k3": files}}
        config.write_text(yaml.safe_dump(command), encoding="utf-8")
        shown = await asyncio.to_thread(CliRunner().invoke, main, ["diagnostics", "-c", str(config)])
        assert shown.exit_code == 0, shown.output
        assert f"singleton job poll:mailbox: {hub.singletons.holder} since " in shown.output
        assert ", token 3" in shown.output
    finally:
        await other.close()
        await stop_hub(running)
    # the graceful stop gave the lease back: the other process takes it at once, with the next token
    after = SqliteJournal(path, clock=clock)
    await after.open()
    try:
        taken = await after.take_lease("poll:mailbox", "elsewhere:7:ee", 60)
        assert taken is not None and taken.token == 4
    finally:
        await after.close()


async def test_a_stopped_process_starts_no_more_runs_and_holds_nothing(
    journals: tuple[Journal, Journal],
) -> None:
    a = Singletons(journals[0], leader_gauge(), holder="host-a:1:aa")
    b = Singletons(journals[1], leader_gauge(), holder="host-b:2:bb")
    ran: list[str] = []

    async def job() -> None:
        ran.append("a")

    await a.stop()  # a scheduled run was just starting as the process stopped
    assert not await a.run("alerts", 60, job)
    assert ran == [] and a.held() == {}
    assert await b.run("alerts", 60, lambda: asyncio.sleep(0))  # nothing was left held
    assert b.held()["alerts"].token == 2
