"""Whether, and how many, tasks a target may start now: pause, circuit breaker and rate limit in one place.

The bus asks `TargetGate.allowance()` before every claim and hands the answer to `Journal.claim` as its
`starts`: a target that may start none (paused, circuit open, a probe already running, no rate tokens)
is not even scanned, so its tasks are neither attempted nor counted as attempts — nothing goes dead
because a back end was down or an operator paused it.

Circuit breaker, per target (`CircuitPolicy` in the connector's configuration)::

    closed --(failure_threshold retryable failures in a row)--> open --(open_seconds)--> half_open
    half_open --(probe_successes probes succeed)--> closed
    half_open --(the probe fails retryably)--> open again, the cool-down doubled up to max_open_seconds

In half-open one task at a time is the probe. A probe that fails is rescheduled for the end of the new
cool-down and its attempt is left out of the retry budget (`Journal.fail(counted=False)`). `Permanent`
failures (bad data) say nothing about the back end: they neither open nor close a circuit. A success
seen while the circuit is open (a task started before it opened) closes it: the back end answers.

Rate limit (`max_per_second`): a token bucket per target holding up to one second's tokens (at least
one); each task started spends one. It bounds task starts, so a back end sees at most
``max_per_second`` deliveries per second (plus the first second's burst), whatever their request count.

The circuit's state changes are saved through a `CircuitStore` (the journal), so a restart keeps an
open circuit open and `aktenhub diagnostics` shows it; the counters between changes live in memory.
Written here rather than taken from a circuit-breaker library (pybreaker, aiobreaker, purgatory): those
wrap a call, while the hub must decide before it claims a task from the journal, with the hub's clock.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import BaseModel

from hub.actions import TargetPause
from hub.connectors import CircuitPolicy, ConnectorConfig
from hub.journal.base import CircuitRecord, CircuitState, Task

log = logging.getLogger(__name__)

CLOSED: CircuitState = "closed"
OPEN: CircuitState = "open"
HALF_OPEN: CircuitState = "half_open"
# The value of `aktenhub_circuit_state{target}`: the worse, the higher.
STATE_VALUES: dict[CircuitState, int] = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}

Outcome = Literal["ok", "retryable", "permanent", "unknown"]


class CircuitStore(Protocol):
    """Where circuits are kept between changes (the journal; shared by all hub processes later)."""

    async def circuits(self) -> dict[str, CircuitRecord]:
        """Every target's circuit as last saved."""

    async def save_circuit(self, record: CircuitRecord) -> None:
        """Store a target's circuit after it changed state."""


class PauseStore(Protocol):
    """Where operators' pauses are kept (the journal, written by the operations layer)."""

    async def paused_targets(self) -> Mapping[str, TargetPause]:
        """The targets paused now."""


class GateMetrics(Protocol):
    """What the gate reports to `/metrics` (`hub.metrics.Metrics`)."""

    def circuit_changed(self, target: str, state: CircuitState, opened: bool) -> None:
        """A target's circuit is now `state`; `opened`: it has just opened (counted)."""


class TargetStatus(BaseModel):
    """A target as operators see it: may it run, and why not."""

    target: str
    circuit: CircuitState
    failures: int  # retryable failures in a row
    open_until: datetime | None = None
    error_code: str | None = None  # the class of the failure that opened the circuit
    probe_running: bool = False
    circuit_enabled: bool = True
    max_per_second: float | None = None
    paused: TargetPause | None = None

    def summary(self) -> str:
        """One line for a terminal: may it run, and why not."""
        parts = [f"circuit {self.circuit.replace('_', '-')}" if self.circuit_enabled else "no circuit"]
        if self.circuit != CLOSED:
            parts.append(f"{self.failures} failures in a row, last {self.error_code or 'unknown'}")
        if self.open_until is not None:
            parts.append(f"next probe {self.open_until:%Y-%m-%d %H:%M:%S} UTC")
        if self.max_per_second is not None:
            parts.append(f"at most {self.max_per_second:g} tasks/s")
        if self.paused is not None:
            parts.append(f"PAUSED by {self.paused.operator}: {self.paused.reason}")
        return " · ".join(parts)


@dataclass(frozen=True)
class GatePolicy:
    """A target's limits, from its connector's configuration."""

    circuit: CircuitPolicy = field(default_factory=CircuitPolicy)
    max_per_second: float | None = None


class TokenBucket:
    """Task starts per second: refills continuously, holds at most one second's worth (at least one)."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = now

    def available(self, now: float) -> int:
        """Whole tokens now (tasks that may start)."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = max(self.stamp, now)
        return math.floor(self.tokens)

    def spend(self, n: int) -> None:
        """Take `n` tokens (one per task started)."""
        self.tokens -= n

    def next_token(self, now: float) -> float | None:
        """When the next whole token is there, if none is now."""
        if self.available(now) >= 1:
            return None
        return now + (1.0 - self.tokens) / self.rate


class Circuit:
    """One target's circuit breaker: a state machine over the outcomes of its tasks."""

    def __init__(self, target: str, policy: CircuitPolicy, record: CircuitRecord | None = None) -> None:
        self.policy = policy
        self.record = record or CircuitRecord(
            target=target,
            state=CLOSED,
            failures=0,
            open_seconds=policy.open_seconds,
            open_until=None,
            changed_at=0.0,
        )
        self.probe: int | None = None  # the id of the task probing now (half-open)
        self.successes = 0  # probes in a row that succeeded
        self.changed = False  # its state changed and is not saved yet

    @property
    def state(self) -> CircuitState:
        """closed, open or half_open."""
        return self.record.state

    def allowance(self, now: float) -> int | None:
        """Tasks it lets start now (None: no limit); open past its cool-down, it turns half-open."""
        if not self.policy.enabled or self.state == CLOSED:
            return None
        if self.state == OPEN:
            if self.record.open_until is not None and now < self.record.open_until:
                return 0
            self._change(HALF_OPEN, now)
        return 0 if self.probe is not None else 1

    def started(self, task: Task) -> None:
        """A task was claimed: in half-open it is the probe."""
        if self.policy.enabled and self.state == HALF_OPEN and self.probe is None:
            self.probe = task.id
            log.info("circuit half-open, probing target=%s task=%s", self.record.target, task.id)

    def finished(self, task: Task, outcome: Outcome, now: float, error_code: str | None) -> bool:
        """Take a task's outcome; whether it was a failed probe (then its attempt is not counted)."""
        probe = self.probe == task.id
        if probe:
            self.probe = None
        if not self.policy.enabled or outcome in ("permanent", "unknown"):
            return False
        if outcome == "ok":
            self._succeeded(now, probe)
            return False
        if self.state == CLOSED:
            self.record = replace(self.record, failures=self.record.failures + 1)
            if self.record.failures >= self.policy.failure_threshold:
                self._open(now, self.policy.open_seconds, error_code)
            return False
        if probe:
            doubled = min(self.record.open_seconds * 2, self.policy.max_open_seconds)
            self.record = replace(self.record, failures=self.record.failures + 1)
            self._open(now, doubled, error_code)
            return True
        return False  # a task started before the circuit opened: already accounted for

    def _succeeded(self, now: float, probe: bool) -> None:
        if self.state == HALF_OPEN and probe:
            self.successes += 1
            if self.successes < self.policy.probe_successes:
                return
        if self.state != CLOSED:
            self.record = replace(self.record, open_seconds=self.policy.open_seconds, error_code=None)
            self._change(CLOSED, now)
        self.record = replace(self.record, failures=0)

    def _open(self, now: float, seconds: float, error_code: str | None) -> None:
        self.record = replace(
            self.record, open_seconds=seconds, open_until=now + seconds, error_code=error_code
        )
        self._change(OPEN, now)

    def _change(self, state: CircuitState, now: float) -> None:
        self.successes = 0
        until = self.record.open_until if state == OPEN else None
        self.record = replace(self.record, state=state, changed_at=now, open_until=until)
        self.changed = True


class TargetGate:
    """The one place that decides whether a target may start tasks now (pause, circuit, rate limit)."""

    def __init__(
        self,
        policies: Mapping[str, GatePolicy],
        clock: Callable[[], float],
        store: CircuitStore | None = None,
        metrics: GateMetrics | None = None,
        pauses: PauseStore | None = None,
        refresh_seconds: float = 1.0,
    ) -> None:
        self.clock = clock
        self.store = store
        self.metrics = metrics
        self.pause_store = pauses
        # Pauses may be set by another process (the CLI beside a running hub): read them again this often.
        self.refresh_seconds = refresh_seconds
        self._pauses_read_at: float | None = None
        self.policies = dict(policies)
        self._circuits = {t: Circuit(t, p.circuit) for t, p in self.policies.items()}
        now = clock()
        self._buckets = {
            t: TokenBucket(p.max_per_second, now)
            for t, p in self.policies.items()
            if p.max_per_second is not None
        }
        self._pauses: dict[str, TargetPause] = {}
        for target, circuit in self._circuits.items():
            self._report(target, circuit, opened=False)

    async def load(self, store: CircuitStore | None = None) -> None:
        """Take the circuits as last saved (an open circuit stays open over a restart)."""
        store = store or self.store
        if store is None:
            return
        for target, record in (await store.circuits()).items():
            policy = self.policies.get(target)
            if policy is not None:
                circuit = self._circuits[target] = Circuit(target, policy.circuit, record)
                self._report(target, circuit, opened=False)

    def pauses_changed(self) -> None:
        """An operator paused or resumed a target: read the pauses again before the next claim."""
        self._pauses_read_at = None

    async def allowance(self) -> dict[str, int]:
        """Targets limited now → how many tasks each may start; a target not named is not limited."""
        now = self.clock()
        stale = self._pauses_read_at is None or now - self._pauses_read_at >= self.refresh_seconds
        if self.pause_store is not None and stale:
            self._pauses = dict(await self.pause_store.paused_targets())
            self._pauses_read_at = now
        found: dict[str, int] = {}
        for target in self._pauses:
            found[target] = 0
        for target, circuit in self._circuits.items():
            if target in found:
                continue
            limit = circuit.allowance(now)
            bucket = self._buckets.get(target)
            if bucket is not None:
                tokens = bucket.available(now)
                limit = tokens if limit is None else min(limit, tokens)
            if limit is not None:
                found[target] = limit
            await self._save(target, circuit)
        return found

    def next_change(self) -> float | None:
        """When a limited target may start a task again by time alone (cool-down end, next token)."""
        now = self.clock()
        times: list[float] = []
        for target, circuit in self._circuits.items():
            if target in self._pauses:
                continue
            if circuit.state == OPEN and circuit.record.open_until is not None:
                times.append(circuit.record.open_until)
            bucket = self._buckets.get(target)
            if bucket is not None and (when := bucket.next_token(now)) is not None:
                times.append(when)
        return min(times, default=None)

    def started(self, tasks: Iterable[Task]) -> None:
        """Tasks were claimed: spend their rate tokens, mark half-open probes."""
        for task in tasks:
            if (bucket := self._buckets.get(task.target)) is not None:
                bucket.spend(1)
            if (circuit := self._circuits.get(task.target)) is not None:
                circuit.started(task)

    async def finished(self, task: Task, outcome: Outcome, error_code: str | None = None) -> bool:
        """Take a task's outcome; True if it was a failed probe (reschedule it uncounted, see `retry_at`)."""
        circuit = self._circuits.get(task.target)
        if circuit is None:
            return False
        failed_probe = circuit.finished(task, outcome, self.clock(), error_code)
        await self._save(task.target, circuit)
        return failed_probe

    def retry_at(self, target: str) -> float:
        """When a failed probe's task is due again: when the circuit lets the next probe run."""
        circuit = self._circuits.get(target)
        until = circuit.record.open_until if circuit is not None else None
        return until if until is not None else self.clock()

    def status(self) -> list[TargetStatus]:
        """Every configured target's pause, circuit and rate limit, by name."""
        found = []
        for target in sorted(self._circuits):
            circuit = self._circuits[target]
            record = circuit.record
            until = record.open_until
            found.append(
                TargetStatus(
                    target=target,
                    circuit=circuit.state,
                    failures=record.failures,
                    open_until=datetime.fromtimestamp(until, UTC) if until is not None else None,
                    error_code=record.error_code,
                    probe_running=circuit.probe is not None,
                    circuit_enabled=circuit.policy.enabled,
                    max_per_second=self.policies[target].max_per_second,
                    paused=self._pauses.get(target),
                )
            )
        return found

    async def _save(self, target: str, circuit: Circuit) -> None:
        if not circuit.changed:
            return
        circuit.changed = False
        opened = circuit.state == OPEN
        self._report(target, circuit, opened=opened)
        if opened:
            log.warning(
                "circuit open target=%s failures=%d retry_in=%.0fs error=%s",
                target,
                circuit.record.failures,
                circuit.record.open_seconds,
                circuit.record.error_code,
            )
        elif circuit.state == CLOSED:
            log.info("circuit closed target=%s", target)
        if self.store is None:
            return
        try:
            await self.store.save_circuit(circuit.record)
        except Exception as exc:  # the decision stands in memory; only its display lags
            log.warning("saving circuit failed target=%s: %s", target, exc)

    def _report(self, target: str, circuit: Circuit, opened: bool) -> None:
        if self.metrics is not None:
            self.metrics.circuit_changed(target, circuit.state, opened)


def policies_of(connectors: Mapping[str, ConnectorConfig]) -> dict[str, GatePolicy]:
    """Each connector's gate policy from its configuration (`circuit`, `max_per_second`)."""
    return {
        name: GatePolicy(circuit=config.circuit, max_per_second=config.max_per_second)
        for name, config in connectors.items()
    }
