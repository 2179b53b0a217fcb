"""The target gate: circuit breaker and rate limit per target, on the hub's (here: a test's) clock.

The gate's decisions are read where the bus reads them (`allowance()`: how many tasks a target may
start now) and its saved state from a real journal, as `aktenhub diagnostics` and a restart read it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.connectors import CircuitPolicy
from hub.gate import CLOSED, HALF_OPEN, OPEN, GatePolicy, TargetGate
from hub.journal import SqliteJournal, Task, TaskState
from hub.metrics import Metrics


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def task(task_id: int, target: str = "dms") -> Task:
    """A claimed task against `target` (as `Journal.claim` hands it to the bus)."""
    return Task(
        id=task_id,
        application_id=f"app-{task_id}",
        step="deliver",
        target=target,
        state=TaskState.LEASED,
        attempts=1,
        attempt_base=0,
        max_attempts=8,
        due_at=0.0,
        lease_token="t",
        lease_until=None,
        last_error=None,
        result=None,
        checkpoints={},
        created_at=0.0,
        updated_at=0.0,
    )


POLICY = CircuitPolicy(failure_threshold=3, open_seconds=60, max_open_seconds=200)


def gate(clock: Clock, **policy: GatePolicy) -> TargetGate:
    return TargetGate(policy or {"dms": GatePolicy(circuit=POLICY)}, clock)


async def test_retryable_failures_in_a_row_open_the_circuit_and_stop_starts() -> None:
    clock = Clock()
    g = gate(clock)
    assert await g.allowance() == {}  # closed: only max_concurrency limits it
    for n in range(2):
        assert await g.finished(task(n), "retryable", "Retryable") is False
    await g.finished(task(2), "ok")  # a success in between: the back end works
    for n in range(3, 5):
        await g.finished(task(n), "retryable", "Retryable")
    assert await g.allowance() == {}  # two in a row: still closed
    await g.finished(task(5), "retryable", "Unanswered")
    assert await g.allowance() == {"dms": 0}
    [status] = g.status()
    assert (status.circuit, status.failures, status.error_code) == (OPEN, 3, "Unanswered")
    clock.now += 59.9
    assert await g.allowance() == {"dms": 0}  # the cool-down is not over


async def test_permanent_failures_say_nothing_about_the_back_end() -> None:
    clock = Clock()
    g = gate(clock)
    for n in range(10):
        await g.finished(task(n), "permanent", "Permanent")
    assert await g.allowance() == {}
    assert g.status()[0].circuit == CLOSED


async def test_half_open_lets_one_probe_through_and_a_failed_probe_doubles_the_cool_down() -> None:
    clock = Clock()
    g = gate(clock)
    for n in range(3):
        await g.finished(task(n), "retryable", "Retryable")
    clock.now += 60
    assert await g.allowance() == {"dms": 1}
    assert g.status()[0].circuit == HALF_OPEN
    g.started([task(10)])
    assert await g.allowance() == {"dms": 0}  # the probe runs alone
    assert g.status()[0].probe_running
    assert await g.finished(task(10), "retryable", "Retryable") is True  # uncounted, rescheduled
    assert g.retry_at("dms") == clock.now + 120
    assert await g.allowance() == {"dms": 0}
    clock.now += 120
    assert await g.allowance() == {"dms": 1}
    g.started([task(11)])  # the next probe fails again
    await g.finished(task(11), "retryable", "Retryable")
    assert g.retry_at("dms") == clock.now + 200  # doubled, but capped at max_open_seconds


async def test_a_probe_that_succeeds_closes_the_circuit() -> None:
    clock = Clock()
    g = gate(clock)
    for n in range(3):
        await g.finished(task(n), "retryable", "Retryable")
    clock.now += 60
    assert await g.allowance() == {"dms": 1}
    g.started([task(7)])
    assert await g.finished(task(7), "ok") is False
    assert await g.allowance() == {}
    [status] = g.status()
    assert (status.circuit, status.failures, status.open_until) == (CLOSED, 0, None)
    for n in range(2):  # a fresh count, and the first cool-down again
        await g.finished(task(20 + n), "retryable", "Retryable")
    assert await g.allowance() == {}


async def test_a_probe_with_bad_data_frees_the_slot_for_another_probe() -> None:
    clock = Clock()
    g = gate(clock)
    for n in range(3):
        await g.finished(task(n), "retryable", "Retryable")
    clock.now += 60
    await g.allowance()
    g.started([task(8)])
    assert await g.finished(task(8), "permanent", "Permanent") is False
    assert await g.allowance() == {"dms": 1}
    assert g.status()[0].circuit == HALF_OPEN


async def test_several_probes_may_be_required() -> None:
    clock = Clock()
    g = gate(clock, dms=GatePolicy(circuit=POLICY.model_copy(update={"probe_successes": 2})))
    for n in range(3):
        await g.finished(task(n), "retryable", "Retryable")
    clock.now += 60
    await g.allowance()
    g.started([task(8)])
    await g.finished(task(8), "ok")
    assert await g.allowance() == {"dms": 1}  # one more probe
    g.started([task(9)])
    await g.finished(task(9), "ok")
    assert await g.allowance() == {}


async def test_a_disabled_circuit_never_opens() -> None:
    clock = Clock()
    g = gate(clock, dms=GatePolicy(circuit=CircuitPolicy(enabled=False, failure_threshold=1)))
    for n in range(5):
        await g.finished(task(n), "retryable", "Retryable")
    assert await g.allowance() == {}


async def test_the_rate_limit_counts_task_starts_per_second() -> None:
    clock = Clock()
    g = gate(clock, dms=GatePolicy(circuit=POLICY, max_per_second=2), other=GatePolicy())
    assert await g.allowance() == {"dms": 2}  # one second's worth at once, no more
    g.started([task(1), task(2), task(3, "other")])
    assert await g.allowance() == {"dms": 0}
    assert g.next_change() == pytest.approx(clock.now + 0.5)
    clock.now += 0.5
    assert await g.allowance() == {"dms": 1}
    clock.now += 100  # an idle minute earns no more than the bucket holds
    assert await g.allowance() == {"dms": 2}
    started = 0
    for _ in range(40):  # ten seconds in quarter steps, starting whatever is allowed
        clock.now += 0.25
        n = (await g.allowance())["dms"]
        g.started([task(100 + started + i) for i in range(n)])
        started += n
    assert started == 2 + 19  # the full bucket at once, then two per second for the other 9.75 s


async def test_a_slow_rate_still_lets_one_task_through() -> None:
    clock = Clock()
    g = gate(clock, dms=GatePolicy(max_per_second=0.1))
    assert await g.allowance() == {"dms": 1}
    g.started([task(1)])
    assert await g.allowance() == {"dms": 0}
    clock.now += 10
    assert await g.allowance() == {"dms": 1}


async def test_the_open_circuit_is_kept_in_the_journal_and_in_metrics(tmp_path: Path) -> None:
    clock = Clock()
    journal = SqliteJournal(tmp_path / "journal.db", clock=clock)
    await journal.open()
    metrics = Metrics()
    policies = {"dms": GatePolicy(circuit=POLICY)}
    g = TargetGate(policies, clock, journal, metrics)
    state = metrics.circuit_state.labels("dms")
    assert state._value.get() == 0
    for n in range(3):
        await g.finished(task(n), "retryable", "Retryable")
    assert state._value.get() == 2
    assert metrics.circuit_opened.labels("dms")._value.get() == 1
    await journal.close()

    reopened = SqliteJournal(tmp_path / "journal.db", clock=clock, read_only=True)
    await reopened.open()
    restarted = TargetGate(policies, clock)
    await restarted.load(reopened)
    await reopened.close()
    [status] = restarted.status()
    assert (status.circuit, status.failures, status.error_code) == (OPEN, 3, "Retryable")
    assert await restarted.allowance() == {"dms": 0}
    clock.now += 60
    assert await restarted.allowance() == {"dms": 1}


def test_a_cool_down_cap_below_the_first_cool_down_is_refused() -> None:
    with pytest.raises(ValidationError, match="max_open_seconds must be at least open_seconds"):
        CircuitPolicy(open_seconds=60, max_open_seconds=30)
