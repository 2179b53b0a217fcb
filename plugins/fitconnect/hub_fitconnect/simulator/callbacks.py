"""Callbacks to a destination's callback URL when a submission is submitted, retried until answered 2xx.

Each delivery is ``POST`` with ``callback-authentication`` (hex HMAC-SHA512 over ``"{timestamp}.{body}"``,
`wire.callback_mac`) and ``callback-timestamp`` (Unix seconds). A receiver that does not answer 2xx in
time gets the same body again after ``callback_retry_seconds`` (doubling), up to ``callback_attempts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from ..wire import CALLBACK_AUTHENTICATION, CALLBACK_NEW_SUBMISSIONS, CALLBACK_TIMESTAMP, callback_mac
from .state import CallbackRecord, Destination, SimState, Submission

SESSION = web.AppKey("fitconnect_simulator_session", aiohttp.ClientSession)
TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("fitconnect_simulator_callbacks")
STALE_SECONDS = 600


def _state(app: web.Application) -> SimState:
    from .common import STATE

    return app[STATE]


def schedule_callback(app: web.Application, submission: Submission) -> None:
    """Deliver the new-submissions callback for `submission` in the background (if one is set)."""
    destination = _state(app).destinations[submission.destination_id]
    if destination.callback_url is None or destination.callback_secret is None:
        return
    body = {"type": CALLBACK_NEW_SUBMISSIONS, "submissions": [submission.reference()]}
    task = asyncio.get_running_loop().create_task(_deliver(app, destination, body))
    app[TASKS].add(task)
    task.add_done_callback(app[TASKS].discard)


async def _deliver(app: web.Application, destination: Destination, body: dict[str, Any]) -> None:
    state = _state(app)
    pause = state.options.callback_retry_seconds
    raw = json.dumps(body, separators=(",", ":")).encode("utf-8")
    for attempt in range(1, state.options.callback_attempts + 1):
        if await _attempt(app, destination, body, raw, attempt):
            return
        if attempt < state.options.callback_attempts:
            await asyncio.sleep(pause)  # the Zustelldienst's retry schedule, not a test's synchronisation
            pause *= 2


async def _attempt(
    app: web.Application, destination: Destination, body: dict[str, Any], raw: bytes, attempt: int
) -> bool:
    state = _state(app)
    assert destination.callback_url is not None and destination.callback_secret is not None
    now = state.clock.now()
    record = CallbackRecord(
        destination.destination_id, destination.callback_url, body, attempt, now.isoformat()
    )
    timestamp = int(now.timestamp())
    if state.knobs.stale_callback_next:
        state.knobs.stale_callback_next -= 1
        timestamp -= STALE_SECONDS
        record.faults.append("stale_timestamp")
    mac = callback_mac(destination.callback_secret, str(timestamp), raw)
    if state.knobs.wrong_callback_mac_next:
        state.knobs.wrong_callback_mac_next -= 1
        mac = callback_mac(destination.callback_secret + "x", str(timestamp), raw)
        record.faults.append("wrong_mac")
    state.callbacks.append(record)
    headers = {
        "Content-Type": "application/json",
        CALLBACK_AUTHENTICATION: mac,
        CALLBACK_TIMESTAMP: str(timestamp),
    }
    timeout = aiohttp.ClientTimeout(total=state.options.callback_timeout_seconds)
    try:
        async with app[SESSION].post(
            destination.callback_url, data=raw, headers=headers, timeout=timeout
        ) as answer:
            record.status = answer.status
            await answer.read()
            return 200 <= answer.status < 300
    except (aiohttp.ClientError, TimeoutError) as exc:
        record.error = type(exc).__name__
        return False


async def callback_context(app: web.Application) -> AsyncIterator[None]:
    """The client session callbacks use, and no delivery outliving the simulator."""
    app[SESSION] = aiohttp.ClientSession()
    app[TASKS] = set()
    yield
    pending: set[asyncio.Task[None]] = app[TASKS]
    for task in pending:
        task.cancel()
    for task in list(pending):
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await app[SESSION].close()
