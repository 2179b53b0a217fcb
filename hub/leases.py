"""Singleton work across hub processes: a job that must run once per hub runs where its lease is held.

Several `aktenhub run` processes may share one journal. A scheduled job that acts on something all of
them share (an upstream mailbox, the purge, the alert outbox) runs only in the process holding the
job's lease, a row in the journal (`Journal.take_lease`). Before each run a process takes or renews the
lease; one that does not hold it skips the run. The holder renews its leases in the background, so the
job stays where it is while that process lives; when it dies without giving them back, another process
takes over at its next run after the lease expired (a few times the job's interval, capped at
`LEASE_CAP` seconds). A graceful stop gives the leases back: another process takes over at once.

A lease that changes hands gets the next fencing token. A run in a process that lost its lease (paused
long enough for another to take over) is stopped at its next write to the journal: intake and answers
taken by a job check `Singletons.fence` first (`NotLeader`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Protocol

from prometheus_client import Gauge
from pydantic import BaseModel, ConfigDict, Field

from hub.errors import Retryable

log = logging.getLogger(__name__)

# A lease lasts a few intervals of its job (a slow run does not lose it), at least LEASE_FLOOR seconds
# (a short interval must not make it expire between two renewals), at most LEASE_CAP seconds (a daily
# job's lease would else outlive a dead holder by days).
LEASE_FLOOR = 15.0
LEASE_CAP = 60.0
# The holder renews every lease it holds this often: at least three times within the shortest lease.
RENEW_SECONDS = LEASE_FLOOR / 3


class LeaseGrant(BaseModel):
    """A singleton job's lease as the journal has it: who runs the job, since when, until when."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="the job, e.g. poll:xta-bauportal, purge")
    holder: str = Field(description="the hub process holding it: host, process id, random suffix")
    token: int = Field(description="fencing token: grows by one each time the lease changes holder")
    acquired_at: datetime = Field(description="since when this holder has it")
    renewed_at: datetime = Field(description="when this holder last renewed it")
    expires_at: datetime = Field(description="when it lapses unless renewed; past: free to take")


class LeaseStore(Protocol):
    """The journal's lease rows (`hub.journal.base.Journal`)."""

    async def take_lease(self, name: str, holder: str, seconds: float) -> LeaseGrant | None:
        """Take or renew the lease for `seconds`; None if another holder has it."""

    async def release_lease(self, name: str, holder: str, token: int) -> bool:
        """Give the lease up at once; False if `holder` no longer had it."""

    async def lease_holds(self, name: str, holder: str, token: int) -> bool:
        """Whether `holder` still holds the lease under `token`."""


class NotLeader(Retryable):
    """This process lost the lease of the job it runs: the run stops, the new holder carries on."""


def process_holder() -> str:
    """This process's name as a lease holder: host, process id, and a random suffix (pids repeat)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def lease_seconds(interval: float) -> float:
    """How long a job's lease lasts: a few of its intervals, within the floor and the cap."""
    return min(max(3 * interval, LEASE_FLOOR), LEASE_CAP)


# The lease under which the current task runs its job (unset outside singleton jobs: HTTP intake).
_running: ContextVar[LeaseGrant | None] = ContextVar("singleton_lease", default=None)


class Singletons:
    """The singleton jobs of one process: takes each job's lease before a run, renews, gives them back."""

    def __init__(
        self,
        store: LeaseStore,
        leader: Gauge,
        holder: str | None = None,
        renew_seconds: float = RENEW_SECONDS,
    ) -> None:
        self.store = store
        self.holder = holder or process_holder()
        self._leader = leader
        self._renew_seconds = renew_seconds
        self._seconds: dict[str, float] = {}
        self._held: dict[str, LeaseGrant] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._stopped = False

    def held(self) -> dict[str, LeaseGrant]:
        """The leases this process holds, as last taken or renewed."""
        return dict(self._held)

    async def run(self, name: str, interval: float, job: Callable[[], Awaitable[object]]) -> bool:
        """Run `job` (due every `interval` seconds) if this process holds or can take the lease `name`;
        False if another process runs it."""
        if name not in self._seconds:
            self._seconds[name] = lease_seconds(interval)
            self._leader.labels(name).set(0)
        try:
            grant = await self._take(name)
        except Exception as exc:  # the journal is unreachable: nobody can know who leads, so skip
            log.warning(
                "singleton job skipped, lease unknown job=%s error=%s: %s", name, type(exc).__name__, exc
            )
            return False
        if grant is None:
            return False
        if self._stopped:  # a run that was starting while the process stopped: give it back
            await self._release(name, grant)
            return False
        running = _running.set(grant)
        try:
            await job()
        finally:
            _running.reset(running)
        return True

    async def fence(self) -> None:
        """Before a singleton job writes what it cannot take back: raise `NotLeader` if it lost its lease.

        Asks the journal (not this process's memory, which a long pause makes stale). Outside a
        singleton job (e.g. HTTP intake) there is nothing to check.
        """
        grant = _running.get()
        if grant is None:
            return
        if not await self.store.lease_holds(grant.name, grant.holder, grant.token):
            self._lost(grant.name)
            raise NotLeader(f"this process lost the lease of {grant.name} (token {grant.token})")

    def start(self) -> None:
        """Renew the held leases in the background while the process runs."""
        self._stopped = False
        if self._renewer is None:
            self._renewer = asyncio.get_running_loop().create_task(self._renew_loop(), name="lease-renewer")

    async def stop(self) -> None:
        """Stop renewing and give every held lease back, so another process takes over at once."""
        self._stopped = True
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        for name, grant in list(self._held.items()):
            await self._release(name, grant)

    async def _release(self, name: str, grant: LeaseGrant) -> None:
        try:
            await self.store.release_lease(name, self.holder, grant.token)
        except Exception as exc:  # it expires by itself; the next holder waits that long
            log.warning("lease not released job=%s error=%s: %s", name, type(exc).__name__, exc)
        self._lost(name)

    async def renew(self) -> None:
        """Renew every held lease once (the background loop's step)."""
        for name in list(self._held):
            try:
                await self._take(name)
            except Exception as exc:  # kept until it expires; a later renewal may get through
                log.warning("lease not renewed job=%s error=%s: %s", name, type(exc).__name__, exc)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self._renew_seconds)
            await self.renew()

    async def _take(self, name: str) -> LeaseGrant | None:
        grant = await self.store.take_lease(name, self.holder, self._seconds[name])
        if grant is None:
            self._lost(name)
            return None
        if name not in self._held:
            log.info(
                "singleton job runs in this process job=%s holder=%s token=%d", name, self.holder, grant.token
            )
            self._leader.labels(name).set(1)
        self._held[name] = grant
        return grant

    def _lost(self, name: str) -> None:
        if self._held.pop(name, None) is not None:
            log.info("singleton job left this process job=%s holder=%s", name, self.holder)
            self._leader.labels(name).set(0)
