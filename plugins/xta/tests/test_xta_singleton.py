"""Two processes of one hub read one XTA mailbox: only the holder of the poll's lease asks the mailbox.

A poll whose lease runs out midway (the process paused, or cut off) stops before its next intake, and
the process that takes over reads on from there: every message is filed once and closed once. Two real
`aktenhub run` processes on one PostgreSQL journal: one polls; killed with SIGKILL (no release), the
other takes the mailbox over once the lease ran out.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from hub_xta.simulator import enqueue
from xta_helpers import AUTHORITY, StartXta, antrag_metadata

from hub.journal import ApplicationFilter, open_journal
from hub.leases import LEASE_CAP, LEASE_FLOOR
from hub.models import Event
from hub.runtime import Hub
from hub.testing.harness import RunningHub
from hub.testing.journal_contract import FakeClock
from hub.testing.processes import hub_settings

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


# -- two `aktenhub run` processes on one PostgreSQL journal -----------------------------------------

TOKEN = "xta-singleton-viewer"


def hub_config(tmp: Path, name: str, port: int, store: str, xta_url: str, schemas: Path) -> Path:
    config = {
        **hub_settings(tmp, port, TOKEN, "viewer"),
        "store": store,  # the blobs in `tmp`: one store for both, as object storage would be
        "schemas": str(schemas),
        "connectors": {
            "xta-in": {
                "type": "xta",
                "service": "bauantrag",
                "poll_seconds": 1,  # its lease: the floor of 15 s
                "xta": {"url": xta_url, "account": {"identifier": AUTHORITY}},
            },
            "ablage": {"type": "filedrop", "path": str(tmp / "ablage")},
        },
        "routes": [{"name": "bau", "from": "xta-in", "to": ["ablage"]}],
    }
    path = tmp / f"{name}.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def run(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hub", "run", "-c", str(config)], stdout=out, stderr=subprocess.STDOUT
        )


async def until(http: aiohttp.ClientSession, url: str, what: str, ok: Any, timeout: float = 60) -> Any:
    """GET `url` until `ok(answer)` holds: waiting on another process's observable state, bounded."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                if resp.status == 200:
                    last = await (resp.json() if resp.content_type == "application/json" else resp.text())
                    if ok(last):
                        return last
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)  # another process's state: polled, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}; last answer: {last}")


def leading(metrics: str) -> float | None:
    found = re.search(r'^aktenhub_singleton_leader\{job="poll:xta-in"\} (\S+)$', metrics, re.M)
    return float(found[1]) if found else None


def tried(metrics: str) -> bool:
    """Whether the process has run (or skipped) the poll once: its leader gauge exists."""
    return leading(metrics) is not None


async def test_two_hub_processes_on_postgresql_poll_once_and_the_survivor_of_a_sigkill_takes_over(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    tmp_path: Path,
    postgres_url: str,
    reserved_port: Callable[[], int],
) -> None:
    xta = await start_xta()
    ports = {"a": reserved_port(), "b": reserved_port()}
    configs = {n: hub_config(tmp_path, n, p, postgres_url, xta.url, schema_dir) for n, p in ports.items()}
    migrated = subprocess.run(
        [sys.executable, "-m", "hub", "migrate", "-c", str(configs["a"])], capture_output=True, text=True
    )
    assert migrated.returncode == 0, migrated.stderr
    hubs = {n: run(c, tmp_path / f"{n}.log") for n, c in configs.items()}
    try:
        base = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
        # Both have tried the poll once: each shows whether it leads.
        shown = {n: await until(http, f"{base[n]}/metrics", f"{n}'s metrics", tried) for n in base}
        first = await send_antrag(http, xta.url)
        filed = ["completed"]
        await until(
            http,
            f"{base['a']}/api/v1/applications",
            "the first filed",
            lambda b: [a["state"] for a in b["applications"]] == filed,
        )
        listed = await until(http, f"{base['a']}/api/v1/leases", "the poll's lease", lambda b: b["leases"])
        [lease] = [x for x in listed["leases"] if x["name"] == "poll:xta-in"]
        processes = {n: (await until(http, f"{base[n]}/api/v1/leases", n, bool))["process"] for n in base}
        [leader] = [n for n in base if processes[n] == lease["holder"]]
        [other] = [n for n in base if n != leader]
        shown = {n: await until(http, f"{base[n]}/metrics", f"{n}'s metrics", tried) for n in base}
        assert (leading(shown[leader]), leading(shown[other])) == (1.0, 0.0)

        hubs[leader].send_signal(signal.SIGKILL)  # no release: the lease runs out by itself
        hubs[leader].wait(10)
        killed_at = time.monotonic()
        second = await send_antrag(http, xta.url)
        await until(
            http,
            f"{base[other]}/api/v1/applications",
            "the survivor's intake",
            lambda b: len(b["applications"]) == 2,
        )
        took = time.monotonic() - killed_at
        await until(
            http,
            f"{base[other]}/api/v1/applications",
            "both filed",
            lambda b: [a["state"] for a in b["applications"]] == ["completed", "completed"],
        )
        after = await until(http, f"{base[other]}/api/v1/leases", "the new lease", bool)
        [lease] = [x for x in after["leases"] if x["name"] == "poll:xta-in"]
        assert (lease["holder"], lease["token"]) == (processes[other], 2)
        assert took < LEASE_FLOOR + 10  # the lease's 15 s, a poll interval, and the machine's load
        assert leading(await until(http, f"{base[other]}/metrics", "metrics", leading)) == 1.0
    finally:
        for process in hubs.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(20)
    closed = [c.message_id for c in xta.state.closed]
    assert sorted(closed) == sorted([first, second])  # each closed once, by one process or the other
    assert len(list((tmp_path / "ablage").iterdir())) == 2  # each filed once


async def send_antrag(http: aiohttp.ClientSession, url: str) -> str:
    queued = await enqueue(http, url, AUTHORITY, metadata=antrag_metadata(), message=ANTRAG)
    return str(queued["message_id"])
