"""The durable event bus: workers claim tasks from the journal, run their step, record the outcome.

Nothing is kept only in memory. A task is leased while it runs (the lease is renewed while the step is
busy); when a worker dies its lease expires and another worker takes the task. A failure is retried
with exponential backoff and jitter (tenacity's wait strategy computes the delay; the journal holds the
due time — no in-process sleeping); after `max_attempts`, or at once on `Permanent`, the task is dead
and waits for an operator's replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryCallState, wait_exponential_jitter

from hub.actions import Action
from hub.connectors import RetryPolicy
from hub.errors import Permanent, StorageFull
from hub.events import operator_event
from hub.gate import Outcome, TargetGate
from hub.journal import Abandoned, ApplicationFilter, ClaimRequest, Completion, Journal, LeaseLost, Task
from hub.metrics import Metrics
from hub.models import Event
from hub.plugins import Plugins

log = logging.getLogger(__name__)

STORAGE_FULL_PAUSE = 5.0  # seconds between claims while the journal's disk is full

StepHandler = Callable[[Task], Awaitable[Completion]]


@dataclass
class BusSettings:
    """How the workers of this process behave."""

    concurrency: int = 16
    lease_seconds: float = 120.0
    idle_poll_seconds: float = 1.0
    capacity: dict[str, int] = field(default_factory=dict)  # target -> max concurrent tasks
    retry: dict[str, RetryPolicy] = field(default_factory=dict)  # target -> policy
    default_retry: RetryPolicy = field(default_factory=lambda: RetryPolicy())


def retry_delay(policy: RetryPolicy, attempt: int) -> float:
    """Seconds to wait before attempt `attempt + 1`: exponential, capped, with jitter."""
    wait = wait_exponential_jitter(
        multiplier=policy.initial_seconds, max=policy.max_seconds, jitter=policy.jitter_seconds
    )
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return float(wait(state))


class Bus:
    """Runs the steps of every application through the journal."""

    def __init__(
        self,
        journal: Journal,
        settings: BusSettings,
        plugins: Plugins,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        gate: TargetGate | None = None,
    ) -> None:
        self.journal = journal
        self.settings = settings
        self.plugins = plugins
        self.metrics = metrics
        self.clock = clock
        # Pause, circuit breaker and rate limit per target: asked before every claim.
        self.gate = gate or TargetGate({}, clock)
        self.cycles = 0  # dispatcher rounds so far (a test waits for rounds, not for time)
        self.owner = f"worker-{secrets.token_hex(4)}"
        self._handlers: dict[str, StepHandler] = {}
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._stopping = False
        # Called with every batch of committed events (tests wait on these instead of sleeping).
        self.listeners: list[Callable[[tuple[Event, ...]], None]] = []

    def handle(self, step: str, handler: StepHandler) -> None:
        """Register the handler of a step."""
        self._handlers[step] = handler

    def wake(self) -> None:
        """New work may be due: let the dispatcher look now instead of at its next poll."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        """Whether the dispatcher is running."""
        return self._dispatcher is not None and not self._dispatcher.done()

    @property
    def busy(self) -> int:
        """Tasks running in this process now."""
        return len(self._running)

    def emit(self, events: tuple[Event, ...]) -> None:
        """Tell observers about committed events and wake the workers."""
        self.plugins.emit(events)
        for listener in self.listeners:
            listener(events)
        self.wake()

    async def start(self) -> None:
        """Start dispatching tasks."""
        self._stopping = False
        # Other processes on a shared journal add work too: its hint wakes the dispatcher like our own.
        self.journal.watch_for_work(self.wake)
        self._dispatcher = asyncio.create_task(self._dispatch(), name="bus-dispatcher")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop claiming; let running steps finish for `grace_seconds`, then cancel them.

        A cancelled step's lease is released at the next start (or expires), so it runs again.
        """
        self._stopping = True
        self._wake.set()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        if self._running:
            _, pending = await asyncio.wait(self._running, timeout=grace_seconds)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def replay(
        self, where: ApplicationFilter, operator: str | None = None, reason: str | None = None
    ) -> list[str]:
        """Make the dead tasks of matching applications due again, on `operator`'s behalf."""
        ids = await self.journal.replay(where, operator, reason)
        if ids:
            # Observers hear of each replay; the journal's copies carry their ids and task counts.
            self.emit(tuple(operator_event(i, Action.REPLAYED, operator, reason) for i in ids))
        return ids

    async def abandon(self, application_id: str, operator: str, reason: str) -> Abandoned:
        """End an application for good on `operator`'s behalf (see `Journal.abandon`)."""
        outcome = await self.journal.abandon(application_id, operator, reason)
        if outcome.events:
            log.info("application abandoned application=%s tasks=%d", application_id, outcome.tasks)
            self.emit(outcome.events)
        return outcome

    async def abandon_bulk(self, where: ApplicationFilter, operator: str, reason: str) -> list[Abandoned]:
        """Abandon every dead application `where` selects on `operator`'s behalf, in one transaction."""
        outcomes = await self.journal.abandon_bulk(where, operator, reason)
        events = tuple(e for o in outcomes for e in o.events)
        if events:
            log.info("applications abandoned applications=%d filter=%s", len(outcomes), where.describe())
            self.emit(events)
        return outcomes

    async def record_operator_action(
        self, application_id: str, action: str, operator: str, reason: str | None = None, **details: Any
    ) -> Event:
        """Put an operator's action (e.g. ``closed`` for a quarantined message) on the timeline.

        For actions whose effect is stored elsewhere; an action stored in the journal records its event
        in its own transaction instead (`hub.events.operator_event`).
        """
        (event,) = await self.journal.append(
            [operator_event(application_id, action, operator, reason, **details)]
        )
        self.emit((event,))
        return event

    async def _dispatch(self) -> None:
        settings = self.settings
        while not self._stopping:
            self._wake.clear()
            self.cycles += 1
            free = settings.concurrency - len(self._running)
            claimed: list[Task] = []
            if free > 0:
                try:
                    claimed = await self.journal.claim(
                        self.owner,
                        free,
                        settings.lease_seconds,
                        settings.capacity,
                        await self.gate.allowance(),
                    )
                    self.gate.started(claimed)
                except StorageFull as exc:
                    # Space seldom returns within a second: look again a little later (or when an
                    # intake succeeded and woke us), one line each time.
                    log.warning("claiming tasks failed, storage full; retrying: %s", exc)
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), STORAGE_FULL_PAUSE)
                    continue
                except Exception:
                    log.exception("claiming tasks failed; retrying")
                    await asyncio.sleep(settings.idle_poll_seconds)
                    continue
                for task in claimed:
                    self._start(task)
            if claimed and len(claimed) == free:
                continue  # maybe more is due; the next loop waits for a free slot if needed
            timeout = settings.idle_poll_seconds
            if free > 0 and not claimed:
                try:
                    due = await self.journal.next_due()
                except Exception:
                    # Like a failed claim: a journal that is away for a moment (a database restarting,
                    # a dropped connection) must not end the dispatcher; the idle poll looks again.
                    log.exception("looking for the next due task failed; retrying")
                    due = None
                if due is not None and due > self.clock():
                    timeout = min(timeout, max(0.001, due - self.clock()))
                opens = self.gate.next_change()
                if opens is not None:
                    timeout = min(timeout, max(0.001, opens - self.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _start(self, task: Task) -> None:
        run = asyncio.create_task(self._run(task), name=f"task-{task.id}")
        self._running.add(run)
        run.add_done_callback(self._running.discard)

    async def _run(self, task: Task) -> None:
        handler = self._handlers.get(task.step)
        started = time.perf_counter()
        keeper = asyncio.create_task(self._keep_lease(task))
        try:
            if handler is None:
                raise Permanent(f"no handler for step {task.step!r} in this hub")
            completion = await handler(task)
        except LeaseLost:
            log.warning("lease lost task=%s step=%s application=%s", task.id, task.step, task.application_id)
            await self.gate.finished(task, "unknown")
            return
        except asyncio.CancelledError:
            await self.gate.finished(task, "unknown")
            raise
        except Exception as exc:
            keeper.cancel()
            await self._failed(task, exc)
            return
        finally:
            keeper.cancel()
            self.metrics.step_took(task.step, task.target, time.perf_counter() - started)
            self.wake()
        await self.gate.finished(task, "ok")
        try:
            events, following = await self._complete(task, completion)
        except StorageFull as exc:
            _unrecorded(task, exc)
            return
        except LeaseLost:
            log.warning(
                "lease lost before completion task=%s step=%s application=%s",
                task.id,
                task.step,
                task.application_id,
            )
            return
        log.info(
            "step done step=%s target=%s application=%s attempt=%d",
            task.step,
            task.target,
            task.application_id,
            task.attempts,
        )
        self.emit(events)
        for claimed in following:
            self._start(claimed)

    async def _complete(self, task: Task, completion: Completion) -> tuple[tuple[Event, ...], list[Task]]:
        """Record the step's completion and lease the next due task in its place, in one transaction.

        Claimed by the dispatcher instead, the freed slot of the target's `max_concurrency` idled for
        a claim's round trip through the journal after each step: with a backlog, a sixth of the
        slots were idle on average (bench/e2e.py). Targets the gate limits now (paused, circuit not
        closed, rate limited) are left to the dispatcher, which spends their exact allowance.
        """
        if self._stopping:
            return await self.journal.complete(task, completion), []
        held_back = dict.fromkeys(await self.gate.allowance(), 0)
        request = ClaimRequest(1, self.settings.lease_seconds, self.settings.capacity, held_back)
        events, claimed = await self.journal.complete_and_claim(task, completion, request)
        self.gate.started(claimed)
        if self._stopping:
            # Stopped meanwhile: its lease is let go at the next start, or expires (as in `stop`).
            return events, []
        return events, claimed

    async def _keep_lease(self, task: Task) -> None:
        interval = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                task = await self.journal.renew(task, self.settings.lease_seconds)
            except LeaseLost:
                return
            except StorageFull as exc:
                log.warning("renewing lease failed, storage full task=%s: %s", task.id, exc)
            except Exception:
                log.exception("renewing lease failed task=%s", task.id)

    async def _failed(self, task: Task, exc: Exception) -> None:
        # The class is the safe part of the error; the message may quote personal data.
        error_code = type(exc).__name__
        error = f"{error_code}: {exc}"
        policy = self.settings.retry.get(task.target, self.settings.default_retry)
        budget = policy.max_attempts  # the configuration in force now, not at task creation
        permanent = isinstance(exc, Permanent)
        # The hub's own full disk says nothing about the back end: it neither opens nor closes a circuit.
        outcome: Outcome = (
            "permanent" if permanent else "unknown" if isinstance(exc, StorageFull) else "retryable"
        )
        # A failed probe of an open circuit: the back end is still down, not this task's fault.
        probe_failed = await self.gate.finished(task, outcome, error_code)
        retry_at: float | None = None
        if probe_failed:
            retry_at = self.gate.retry_at(task.target)
        elif not permanent and task.attempts_since_replay < budget:
            retry_at = self.clock() + retry_delay(policy, task.attempts_since_replay)
        event = Event(
            application_id=task.application_id,
            type="step.failed" if retry_at is not None else "step.dead",
            step=task.step,
            target=task.target or None,
            data={
                "error": error,
                "error_code": error_code,
                "attempt": task.attempts,
                "retry_at": retry_at,
                "permanent": permanent,
                **({"probe": True} if probe_failed else {}),
            },
        )
        try:
            events = await self.journal.fail(
                task, error, retry_at, [event], error_code, counted=not probe_failed
            )
        except StorageFull as full:
            _unrecorded(task, full)
            return
        except LeaseLost:
            return
        self.metrics.step_failed(task.step, task.target, dead=retry_at is None)
        if retry_at is None:
            log.error(
                "step dead step=%s target=%s application=%s attempts=%d error=%s",
                task.step,
                task.target,
                task.application_id,
                task.attempts,
                type(exc).__name__,
            )
        else:
            log.warning(
                "step failed, retry in %.1fs step=%s target=%s application=%s attempt=%d error=%s",
                retry_at - self.clock(),
                task.step,
                task.target,
                task.application_id,
                task.attempts,
                type(exc).__name__,
            )
        self.emit(events)


def _unrecorded(task: Task, exc: StorageFull) -> None:
    # Nothing is lost: the task stays leased in the journal and runs again once the lease expires.
    log.warning(
        "step outcome not recorded, storage full; it runs again after its lease step=%s target=%s "
        "application=%s: %s",
        task.step,
        task.target,
        task.application_id,
        exc,
    )
