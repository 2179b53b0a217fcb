"""Circuit breaker and rate limit per target, end to end against the enaio simulator.

A real hub (JSON intake → enaio over the DMS Service API) runs on a clock the test moves forward, so
cool-downs and rate-limit seconds pass when the test says so while the hub's workers run for real.
What is asserted is seen from outside: the simulator's failed-request count (its ``fail_next`` knob
counts down with each request it fails) and objects, task attempts and the gate in the admin API,
`aktenhub_circuit_state` in `/metrics`. "Nothing happens while the circuit is open" is checked after
the bus's dispatcher went round several more times (`Bus.cycles`), not after a sleep.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
import yaml
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from hub_enaio.simulator import make_app
from prometheus_client.parser import text_string_to_metric_families

from hub.cli import main
from hub.models import ApplicationState
from hub.testing.harness import RunningHub

PASSWORD = "enaio-simulator"  # the simulator's default user aktenhub
OPERATOR_TOKEN = "op-circuit-test-token-0123456789"
ENV = {"ENAIO_PASSWORD": PASSWORD, "OPERATOR_TOKEN": OPERATOR_TOKEN}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
DOWN = 100_000  # "every request fails" for the simulator's fail_next
SERVER = {
    "listen": "127.0.0.1:0",
    "admin_tokens": [{"name": "ops", "token": "${OPERATOR_TOKEN}", "role": "operator"}],
}


class Clock:
    """Real time plus an offset the test adds to; `freeze()` stops it (for counting rate-limit starts)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.frozen: float | None = None

    def __call__(self) -> float:
        return (self.frozen if self.frozen is not None else time.time()) + self.offset

    def freeze(self) -> None:
        self.frozen = time.time()


class Enaio:
    """The simulator as the test sees it: its operator endpoints."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http

    async def faults(self, **knobs: Any) -> dict[str, Any]:
        """POST (with knobs) or GET ``/_sim/faults``."""
        method = self.http.post if knobs else self.http.get
        async with method(f"{self.url}/_sim/faults", **({"json": knobs} if knobs else {})) as resp:
            assert resp.status == 200, await resp.text()
            found: dict[str, Any] = await resp.json()
            return found

    async def failed(self) -> int:
        """Requests the simulator failed since it went down."""
        return DOWN - int((await self.faults())["fail_next"])

    async def documents(self) -> list[dict[str, Any]]:
        """Every document object filed."""
        async with self.http.get(f"{self.url}/_sim/objects") as resp:
            objects: list[dict[str, Any]] = (await resp.json())["objects"]
        return [o for o in objects if o["type"] == "Originalantrag"]


@pytest_asyncio.fixture
async def enaio() -> AsyncIterator[Enaio]:
    server = TestServer(make_app(), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        yield Enaio(f"http://127.0.0.1:{server.port}", http)
    await server.close()


def connectors(enaio: Enaio, **target: Any) -> dict[str, Any]:
    return {
        "json": {"type": "test-json"},
        "enaio": {
            "type": "enaio",
            "base_url": enaio.url,
            "username": "aktenhub",
            "password": "${ENAIO_PASSWORD}",
            "without_akte": "tray",
            "document_types": {"original": "Originalantrag", "attachment": "Anlage"},
            "document_title_field": "Titel",
            "timeout_seconds": 5,
            **target,
        },
    }


ROUTES = [{"name": "ablage", "from": "json", "to": ["enaio"]}]


async def start(hub_factory: Any, enaio: Enaio, clock: Clock, **target: Any) -> RunningHub:
    running: RunningHub = await hub_factory(
        connectors(enaio, **target), ROUTES, env=ENV, server=SERVER, clock=clock
    )
    return running


async def diagnostics(home: Path, connectors: dict[str, Any]) -> dict[str, Any]:
    """The enaio target as `aktenhub diagnostics --json` shows it beside the running hub."""
    config = home / "diagnostics.yaml"
    settings = {
        "store": f"sqlite:///{home / 'journal.db'}",
        "blobs": str(home / "blobs"),
        "connectors": {k: v for k, v in connectors.items() if k != "json"},  # a fake: not installed
        "routes": [],
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["diagnostics", "-c", str(config), "--json"], env=ENV
    )
    assert result.exit_code == 0, result.output
    [found] = [c["gate"] for c in json.loads(result.stdout) if c["name"] == "enaio"]
    assert isinstance(found, dict)
    return found


async def submit(running: RunningHub, n: int) -> list[str]:
    ids = []
    for i in range(n):
        status, body = await running.post("/intake/json/jagdschein", json={"id": f"a{i}", "form": {}})
        assert status == 202, body
        ids.append(body["application_id"])
    return ids


async def gate_of(running: RunningHub, target: str = "enaio") -> dict[str, Any]:
    """The target's gate as `GET /api/v1/connectors` shows it."""
    status, body = await running.get("/api/v1/connectors", headers=OPERATOR)
    assert status == 200, body
    [found] = [c["gate"] for c in body["connectors"] if c["name"] == target]
    assert isinstance(found, dict)
    return found


async def attempts(running: RunningHub, ids: list[str]) -> int:
    """Attempts of all their tasks against enaio, as the admin API shows them."""
    total = 0
    for app_id in ids:
        status, body = await running.get(f"/api/v1/applications/{app_id}", headers=OPERATOR)
        assert status == 200, body
        total += sum(t["attempts"] for t in body["tasks"] if t["target"] == "enaio")
    return total


async def metric(running: RunningHub, name: str, **labels: str) -> float:
    status, text = await running.get("/metrics")
    assert status == 200
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise AssertionError(f"no {name} {labels}")


async def quiet(running: RunningHub) -> None:
    """Wait until nothing runs and the dispatcher went round five more times (had every chance to claim)."""
    bus = running.hub.bus
    await running.wait_for(lambda: bus.busy == 0, what="running tasks to end")
    rounds = bus.cycles + 5
    bus.wake()
    await running.wait_for(lambda: bus.cycles >= rounds and bus.busy == 0, what="five dispatcher rounds")


async def test_a_failing_target_opens_its_circuit_and_nothing_is_lost(
    hub_factory: Any, enaio: Enaio, tmp_path: Path
) -> None:
    clock = Clock()
    await enaio.faults(fail_next=DOWN)
    # Two attempts would make every application dead within a second without the circuit.
    target = {
        "max_concurrency": 2,
        "retry": {"max_attempts": 2, "initial_seconds": 0.05, "max_seconds": 0.1, "jitter_seconds": 0.01},
        "circuit": {"failure_threshold": 2, "open_seconds": 600, "max_open_seconds": 3600},
    }
    running = await start(hub_factory, enaio, clock, **target)
    ids = await submit(running, 3)

    await running.wait_for(lambda: running.hub.bus.gate.status()[0].circuit == "open", what="circuit open")
    await quiet(running)
    gate = await gate_of(running)
    assert (gate["circuit"], gate["error_code"]) == ("open", "Retryable")
    assert await metric(running, "aktenhub_circuit_state", target="enaio") == 2
    assert await metric(running, "aktenhub_circuit_opened_total", target="enaio") == 1
    failed, tried = await enaio.failed(), await attempts(running, ids)
    assert tried <= 3  # the two that opened it, and at most one more already running then

    await quiet(running)  # while open: not one request, not one attempt
    assert (await enaio.failed(), await attempts(running, ids)) == (failed, tried)
    shown = await diagnostics(tmp_path / "hub", connectors(enaio, **target))
    assert (shown["circuit"], shown["failures"], shown["error_code"]) == ("open", 2, "Retryable")

    # Each cool-down ends with one probe, which fails: open again for twice as long. Two probes reach
    # a task that had failed before: counted, it would be dead now (two attempts).
    for probes, cool_down in enumerate((600, 1200), start=1):
        clock.offset += cool_down
        await running.wait_for(
            lambda n=probes: running.hub.metrics.circuit_opened.labels("enaio")._value.get() == 1 + n,
            what="a failed probe",
        )
        await quiet(running)
        assert (await enaio.failed(), await attempts(running, ids)) == (failed + probes, tried + probes)
        assert (await gate_of(running))["circuit"] == "open"
    clock.offset += 1200
    await quiet(running)
    assert await attempts(running, ids) == tried + 2  # the cool-down is 2400 s now

    await enaio.faults(fail_next=0)  # the back end is back
    clock.offset += 1200
    await running.wait_all_final()
    for app_id in ids:  # every application filed, none went dead on the way
        assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    assert len(await enaio.documents()) == 3
    assert (await gate_of(running))["circuit"] == "closed"
    assert await metric(running, "aktenhub_circuit_state", target="enaio") == 0


async def test_permanent_failures_do_not_open_the_circuit(hub_factory: Any, enaio: Enaio) -> None:
    clock = Clock()
    await enaio.faults(fail_next=DOWN, fail_status=422)  # enaio refuses what it is sent
    running = await start(hub_factory, enaio, clock, circuit={"failure_threshold": 1})
    ids = await submit(running, 3)
    for app_id in ids:
        assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    assert (await gate_of(running))["circuit"] == "closed"
    assert await metric(running, "aktenhub_circuit_opened_total", target="enaio") == 0


async def test_the_rate_limit_bounds_task_starts_per_second(hub_factory: Any, enaio: Enaio) -> None:
    clock = Clock()
    clock.freeze()  # seconds pass only when the test moves the clock
    running = await start(hub_factory, enaio, clock, max_per_second=2, max_concurrency=10)
    journal = running.hub.journal

    async def tasks_run() -> int:
        stats = await journal.stats()
        counts = stats.tasks_by_step_target_state.items()
        return sum(n for (_, target, state), n in counts if (target, state) == ("enaio", "done"))

    ids = await submit(running, 7)
    assert (await gate_of(running))["max_per_second"] == 2
    for second in range(4):
        expected = min(7, 2 + 2 * second)
        await running.wait_for(lambda e=expected: _at_least(tasks_run(), e), what=f"{expected} tasks")
        await quiet(running)
        assert await tasks_run() == expected  # no more than the second's tokens
        clock.offset += 1
    await running.wait_all_final()
    assert len(await enaio.documents()) == 7
    for app_id in ids:
        assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED


async def _at_least(count: Any, expected: int) -> bool:
    return int(await count) >= expected
