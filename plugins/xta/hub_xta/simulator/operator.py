"""The simulator's operator side as Python calls, for tests and the demo (over HTTP, like an operator).

Each call goes through the hub's `Outbound`: bounded answers, and a refusal or an unreachable simulator
raised as `Permanent`/`Retryable` with the simulator's message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from hub.outbound import HttpEndpoint, Outbound

SYSTEM = "the XTA simulator"


def _operator(http: aiohttp.ClientSession, url: str) -> Outbound:
    return Outbound(lambda: http, HttpEndpoint(base_url=url), system=SYSTEM)


async def enqueue(
    http: aiohttp.ClientSession,
    url: str,
    reader: str,
    *,
    metadata: dict[str, Any],
    message: bytes | Path,
    message_type: str = "application/xml",
    message_name: str = "message.xml",
    attachments: list[tuple[str, bytes | Path, str]] | None = None,
) -> dict[str, Any]:
    """Put a message into `reader`'s mailbox (``POST /_sim/mailboxes/{reader}``); files are streamed.

    `attachments`: (file name, content or path, media type). Returns the simulator's answer
    (``message_id``, ``size``, ``sha256``).
    """
    form = aiohttp.FormData()
    form.add_field("metadata", json.dumps(metadata), content_type="application/json")
    opened = []
    try:
        for name, field, content, media_type in [
            ("message", message_name, message, message_type),
            *(("attachment", n, c, t) for n, c, t in attachments or []),
        ]:
            value: Any = content
            if isinstance(content, Path):
                value = content.open("rb")  # streamed by aiohttp, never read whole
                opened.append(value)
            form.add_field(name, value, filename=field, content_type=media_type)
        what = "enqueue"
        answer = await _operator(http, url).request("POST", f"/_sim/mailboxes/{reader}", what, data=form)
        enqueued: dict[str, Any] = answer.json(what)
        return enqueued
    finally:
        for f in opened:
            f.close()


async def get_json(http: aiohttp.ClientSession, url: str, path: str) -> Any:
    """GET an operator endpoint's JSON (``/_sim/sent``, ``/_sim/closed``, ``/_sim/mailboxes/{reader}``)."""
    return (await _operator(http, url).request("GET", path, f"GET {path}")).json(f"GET {path}")


async def set_faults(http: aiohttp.ClientSession, url: str, **knobs: Any) -> dict[str, Any]:
    """Change fault knobs (``POST /_sim/faults``); returns them all."""
    answer = await _operator(http, url).request("POST", "/_sim/faults", "set faults", json=knobs)
    changed: dict[str, Any] = answer.json("set faults")
    return changed


async def sent_content(http: aiohttp.ClientSession, url: str, message_id: str, index: int = 0) -> bytes:
    """A sent message's content (0: the message, 1..: attachments); for small contents in tests."""
    path = f"/_sim/sent/{message_id}/parts/{index}"
    return (await _operator(http, url).request("GET", path, "sent content")).body
