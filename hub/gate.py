"""Whether, and how many, tasks a target may start now: the one place the bus asks before every claim.

The bus hands the gate's answer to `Journal.claim` as its `starts`: a target that may start none is not
even scanned, so its tasks are neither attempted nor counted as attempts, and fall due again as soon as
the gate opens. What holds a target back here: an operator's pause (`hub.actions.TargetPause`), kept in
the journal by the operations layer so that it survives a restart and so that a pause made by the CLI
beside the running hub reaches it: the gate reads the pauses again every `refresh_seconds` (the bus's
idle poll), and at once after a pause made in this process (`pauses_changed`). Tasks running when a
target is paused finish; none start after.

This is the pause-only form of the gate; the circuit breaker and rate limit per target (issue 11, item
5) extend the same class with the same methods (`allowance`, `started`, `status`, `pauses_changed`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from pydantic import BaseModel

from hub.actions import TargetPause
from hub.journal.base import Task

__all__ = ["PauseStore", "TargetGate", "TargetPause", "TargetStatus"]


class PauseStore(Protocol):
    """Where operators' pauses are kept (the journal, written by the operations layer)."""

    async def paused_targets(self) -> Mapping[str, TargetPause]:
        """The targets paused now."""


class TargetStatus(BaseModel):
    """A target as operators see it: may it run, and why not."""

    target: str
    paused: TargetPause | None = None


class TargetGate:
    """The one place that decides whether a target may start tasks now."""

    def __init__(
        self,
        targets: Iterable[str],
        clock: Callable[[], float],
        pauses: PauseStore | None = None,
        refresh_seconds: float = 1.0,
    ) -> None:
        self.targets = sorted(targets)
        self.clock = clock
        self.pause_store = pauses
        # Pauses may be set by another process (the CLI beside a running hub): read them again this often.
        self.refresh_seconds = refresh_seconds
        self._pauses_read_at: float | None = None
        self._pauses: dict[str, TargetPause] = {}

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
        return dict.fromkeys(self._pauses, 0)

    def started(self, tasks: Iterable[Task]) -> None:
        """Tasks were claimed (the circuit breaker marks its probes and spends rate tokens here)."""

    def status(self) -> list[TargetStatus]:
        """Every target's pause as the gate last read it, by name."""
        return [TargetStatus(target=t, paused=self._pauses.get(t)) for t in self.targets]
