"""Answering event-loop callers from a worker thread: a whole batch with one wake-up of each loop.

The journal's writer thread and the blob store's committer work in groups (one commit, one sync for
many callers). A `concurrent.futures.Future` per caller, wrapped for its loop, cost a lock, a condition
and a wake-up of the loop for every caller; here each caller awaits a plain loop future and the worker
settles the group's futures in one callback per loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

# One caller's outcome: its loop, its future, and the value or the exception (exception None: value).
Outcome = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Any, BaseException | None]


def settle(outcomes: Iterable[Outcome]) -> None:
    """From any thread: set every future its outcome, on its own loop, one wake-up per other loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0], []).append(outcome)
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None  # a worker thread
    for loop, settled in by_loop.items():
        if loop is running:
            _set(settled)  # called on the loop itself: no wake-up needed
            continue
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits these any more
            loop.call_soon_threadsafe(_set, settled)


def _set(settled: list[Outcome]) -> None:
    for _, future, value, exc in settled:
        if future.done():  # its caller gave up waiting
            continue
        if exc is None:
            future.set_result(value)
        else:
            future.set_exception(exc)
