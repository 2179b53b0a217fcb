"""The target gate: the one place that decides whether a target may start a task now.

The bus asks the gate before every claim and hands its answer to the journal, which leaves the tasks of
a held-back target where they are: not started, no attempt counted, due again as soon as the gate
opens. What holds a target back:

- an operator's pause (`hub.actions.TargetPause`), kept in the journal so that it survives a restart
  and so that a pause made by the CLI beside the running hub reaches it: the gate reads the pauses
  again every `refresh_seconds` (the bus's idle poll), and at once after a pause made in this process;
- the circuit breaker and rate limit of a target (kept in memory by this gate; hooks below).

Tasks running when a target is paused finish; none start after.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from pydantic import BaseModel

from hub.actions import TargetPause
from hub.journal import Journal, Task


class TargetState(BaseModel):
    """What the gate knows of one target, for the API, the CLI and the console."""

    name: str
    paused: TargetPause | None = None


class TargetGate:
    """Decides per target how many tasks it may start now."""

    def __init__(
        self, journal: Journal, clock: Callable[[], float] = time.monotonic, refresh_seconds: float = 1.0
    ) -> None:
        self.journal = journal
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self._pauses: dict[str, TargetPause] = {}
        self._read_at: float | None = None

    async def allowance(self) -> dict[str, int]:
        """Target -> how many tasks it may start now (0: none); targets not named are not limited."""
        pauses = await self.pauses()
        return dict.fromkeys(pauses, 0)

    async def pauses(self) -> dict[str, TargetPause]:
        """The paused targets, as last read from the journal (at most `refresh_seconds` ago)."""
        now = self.clock()
        if self._read_at is None or now - self._read_at >= self.refresh_seconds:
            self._pauses = await self.journal.paused_targets()
            self._read_at = now
        return self._pauses

    def pauses_changed(self) -> None:
        """A pause was made or lifted: read them again before the next claim."""
        self._read_at = None

    def started(self, tasks: Sequence[Task]) -> None:
        """These tasks were claimed (for the rate limit and the half-open probe)."""

    def succeeded(self, target: str) -> None:
        """A task of `target` succeeded (closes a half-open circuit)."""

    def failed(self, target: str, exc: Exception) -> None:
        """A task of `target` failed with `exc` (a retryable failure counts towards opening the circuit)."""

    async def states(self, targets: Sequence[str]) -> list[TargetState]:
        """The state of each of `targets` (read fresh from the journal: an operator asks)."""
        self.pauses_changed()
        pauses = await self.pauses()
        return [TargetState(name=name, paused=pauses.get(name)) for name in targets]
