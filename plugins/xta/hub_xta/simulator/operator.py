"""The simulator's operator side as Python calls, for tests and the demo (over HTTP, like an operator)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp


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
        async with http.post(f"{url}/_sim/mailboxes/{reader}", data=form) as response:
            answer: dict[str, Any] = await response.json()
            if response.status != 201:
                raise RuntimeError(f"enqueue refused ({response.status}): {answer}")
            return answer
    finally:
        for f in opened:
            f.close()


async def get_json(http: aiohttp.ClientSession, url: str, path: str) -> Any:
    """GET an operator endpoint's JSON (``/_sim/sent``, ``/_sim/closed``, ``/_sim/mailboxes/{reader}``)."""
    async with http.get(url + path) as response:
        response.raise_for_status()
        return await response.json()


async def set_faults(http: aiohttp.ClientSession, url: str, **knobs: Any) -> dict[str, Any]:
    """Change fault knobs (``POST /_sim/faults``); returns them all."""
    async with http.post(f"{url}/_sim/faults", json=knobs) as response:
        response.raise_for_status()
        answer: dict[str, Any] = await response.json()
        return answer


async def sent_content(http: aiohttp.ClientSession, url: str, message_id: str, index: int = 0) -> bytes:
    """A sent message's content (0: the message, 1..: attachments); for small contents in tests."""
    async with http.get(f"{url}/_sim/sent/{message_id}/parts/{index}") as response:
        response.raise_for_status()
        return await response.read()
