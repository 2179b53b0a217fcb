"""The figures of the console's dashboard: what the journal counts, and the blob store's size.

The journal answers `JournalFigures` and `LiveCounters` (`hub.journal.dashboard_sql`) from queries
bounded to the shown window; `Operations.dashboard` adds the gate, certificates, the blob store's size
(`BlobUsageCache`) and retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

log = logging.getLogger(__name__)

HOUR = 3600
Window = Literal["24h", "7d"]
WINDOW_SECONDS: dict[Window, int] = {"24h": 24 * HOUR, "7d": 7 * 24 * HOUR}
# How long a walk of the blob store stands for its size: walking millions of files takes a while.
BLOB_USAGE_SECONDS = 600.0


class LiveCounters(BaseModel):
    """What the dashboard refreshes every few seconds: open work now, finished today, intake now."""

    by_state: dict[str, int] = Field(
        description="received, processing, dead: every such application; completed, rejected, abandoned: "
        "those of them received in the last 24 hours"
    )
    in_flight: int = Field(description="steps running now (leased)")
    received_last_hour: int
    quarantined: int = Field(0, description="held inbound messages awaiting an operator's decision")


class HourFigures(BaseModel):
    """One hour of the window."""

    start: datetime
    received: int = 0
    filed: int = 0  # applications completed in this hour
    dead: int = 0  # applications a step of which went dead in this hour
    median_seconds: float | None = None  # of received → completed, of those completed in this hour
    p90_seconds: float | None = None


class RouteFigures(BaseModel):
    """The applications of one route received in the window, by their state now."""

    route: str | None
    by_state: dict[str, int]

    @property
    def total(self) -> int:
        """All of them."""
        return sum(self.by_state.values())


class TargetWork(BaseModel):
    """A target's steps now and in the window."""

    in_flight: int = 0  # leased now
    due: int = 0  # pending and due: waiting for a worker (or for the circuit, the pause, the rate)
    waiting: int = 0  # pending later (retry) or waiting for another step
    dead: int = 0
    done_in_window: int = 0  # deliveries completed
    failed_in_window: int = 0  # failed attempts, dead ones included
    last_error_at: datetime | None = None  # the last failure in the window
    last_error_code: str | None = None
    last_error: str | None = None  # its text: may quote personal data


class JournalFigures(BaseModel):
    """What the journal counts for the dashboard (`Journal.dashboard_figures`)."""

    counters: LiveCounters
    received_in_window_by_state: dict[str, int]
    hours: list[HourFigures]
    routes: list[RouteFigures]
    targets: dict[str, TargetWork]
    journal_bytes: int = Field(description="the database file and its write-ahead log")
    purged_applications: int
    purged_blobs: int
    purged_bytes: int
    last_purge_at: datetime | None


class BlobUsage(BaseModel):
    """The blob store's size as of its last walk."""

    files: int
    bytes: int
    as_of: datetime


class BlobUsageCache:
    """The blob store's size, walked (in a thread, or listed) at most every `BLOB_USAGE_SECONDS`.

    A request never waits for the walk: it gets the last figure (None before the first walk ends) and,
    if that is stale, starts one walk in the background that the next request sees.
    """

    def __init__(
        self, walk: Callable[[], Awaitable[tuple[int, int]]], clock: Callable[[], float] = time.time
    ) -> None:
        self._walk = walk
        self._clock = clock
        self._usage: BlobUsage | None = None
        self._walked_at = float("-inf")
        self._running: asyncio.Task[None] | None = None

    def current(self) -> BlobUsage | None:
        """The last figure; starts a walk if it is stale and none runs."""
        if self._clock() - self._walked_at >= BLOB_USAGE_SECONDS and self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._refresh())
        return self._usage

    async def refreshed(self) -> BlobUsage | None:
        """The figure after the walk running now (or a new one) has finished."""
        self.current()
        if self._running is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._running)
        return self._usage

    def stop(self) -> None:
        """Stop waiting for a walk that is running (the hub stops; the thread ends by itself)."""
        if self._running is not None:
            self._running.cancel()
            self._running = None

    async def _refresh(self) -> None:
        started = self._clock()
        try:
            files, size = await self._walk()
        except OSError as exc:
            log.warning("the blob store's size could not be read: %s", exc)
        else:
            self._usage = BlobUsage(files=files, bytes=size, as_of=datetime.fromtimestamp(started, UTC))
        finally:
            self._walked_at = started
            self._running = None
