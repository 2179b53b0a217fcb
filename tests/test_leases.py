"""Singleton jobs across hub processes: one lease row per job in the journal, with a fencing token.

Two processes of one hub are two clients of one journal. On SQLite that is the owner and a guest of the
file (`journals`); the PostgreSQL backend is to be added to that fixture's parameters when it lands.
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
from hub.leases import LEASE_CAP, LEASE_FLOOR, NotLeader, Singletons, lease_seconds, process_holder
from hub.metrics import Metrics
from hub.testing import fakes
from hub.testing.harness import base_settings, start_hub, stop_hub

START = 1_700_000_000.0
POLL = "poll:xta-bauportal"


class FakeClock:
    """A clock the test moves by hand (the journal's clock: lease times come from it)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def journals(tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[Journal, Journal]]:
    """Two clients of one journal, as two hub processes have them."""
    path = tmp_path / "journal.db"
    first = SqliteJournal(path, clock=clock)
    await first.open()
    second = SqliteJournal(path, clock=clock, guest=True)
    await second.open()
    yield first, second
    await second.close()
    await first.close()


def leader_gauge() -> Gauge:
    return Metrics().singleton_leader


def leading(gauge: Gauge, job: str) -> float:
    return float(gauge.labels(job)._value.get())


async def test_one_holds_the_other_is_refused_until_the_lease_expires(
    journals: tuple[Journal, Journal], clock: FakeClock
) -> None:
    a, b = journals
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
    journals: tuple[Journal, Journal],
) -> None:
    a, b = journals
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
    journals: tuple[Journal, Journal], clock: FakeClock
) -> None:
    a, _ = journals
    assert await a.take_lease(POLL, "host-a:1:aa", 15) is not None
    clock.advance(100)  # paused or cut off meanwhile: nobody took it, but its old runs must stop
    assert not await a.lease_holds(POLL, "host-a:1:aa", 1)
    again = await a.take_lease(POLL, "host-a:1:aa", 15)
    assert again is not None
    assert (again.token, again.acquired_at.timestamp()) == (2, START + 100)
    assert not await a.lease_holds(POLL, "host-a:1:aa", 1)
    assert await a.lease_holds(POLL, "host-a:1:aa", 2)


async def test_of_two_first_takes_at_once_one_wins(journals: tuple[Journal, Journal]) -> None:
    a, b = journals
    grants = await asyncio.gather(
        a.take_lease("purge", "host-a:1:aa", 60), b.take_lease("purge", "host-b:2:bb", 60)
    )
    assert sorted(g is None for g in grants) == [False, True]
    [winner] = [g for g in grants if g is not None]
    assert winner.token == 1


async def test_leases_lists_every_job_with_holder_and_times(
    journals: tuple[Journal, Journal], clock: FakeClock
) -> None:
    a, b = journals
    await a.take_lease(POLL, "host-a:1:aa", 30)
    await b.take_lease("purge", "host-b:2:bb", 60)
    listed = await b.leases()
    assert [(g.name, g.holder, g.token) for g in listed] == [
        ("poll:xta-bauportal", "host-a:1:aa", 1),
        ("purge", "host-b:2:bb", 1),
    ]
    assert listed[1].acquired_at.timestamp() == START
    assert listed[1].expires_at.timestamp() == START + 60


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
    before = SqliteJournal(path, clock=clock)  # another process of the hub polls the mailbox already
    await before.open()
    assert await before.take_lease("poll:mailbox", "elsewhere:7:ee", 60) is not None
    await before.close()
    running = await start_hub(
        settings, extra_plugins=(fakes, MailboxPlugin()), env={"VIEWER_TOKEN": "v-secret-1"}, clock=clock
    )
    other = SqliteJournal(path, clock=clock, guest=True)
    try:
        await other.open()
        hub = running.hub
        runs: set[object] = set()  # each run moves the schedule on: collect a few runs, all skipped
        await running.wait_for(lambda: runs.add(hub.next_run("poll-mailbox")) or len(runs) > 3, 10, "runs")
        assert Mailbox.calls == []
        status, body = await running.get("/api/v1/leases", headers=VIEWER)
        assert status == 200, body
        assert body["process"] == hub.singletons.holder
        [lease] = [x for x in body["leases"] if x["name"] == "poll:mailbox"]
        assert (lease["holder"], lease["token"]) == ("elsewhere:7:ee", 1)
        _, metrics = await running.get("/metrics")
        assert 'aktenhub_singleton_leader{job="poll:mailbox"} 0.0' in metrics

        assert await other.release_lease("poll:mailbox", "elsewhere:7:ee", 1)  # its graceful stop
        await running.wait_for(lambda: len(Mailbox.calls) >= 3, 10, "polls here")  # no time passed
        _, body = await running.get("/api/v1/leases", headers=VIEWER)
        [lease] = [x for x in body["leases"] if x["name"] == "poll:mailbox"]
        assert (lease["holder"], lease["token"]) == (hub.singletons.holder, 2)
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
        assert ", token 2" in shown.output
    finally:
        await other.close()
        await stop_hub(running)
    # the graceful stop gave the lease back: the other process takes it at once, with the next token
    after = SqliteJournal(path, clock=clock)
    await after.open()
    try:
        taken = await after.take_lease("poll:mailbox", "elsewhere:7:ee", 60)
        assert taken is not None and taken.token == 3
    finally:
        await after.close()
