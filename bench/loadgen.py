"""What the benchmarks' load generators share: the open-loop schedule and a raw HTTP/1.1 response read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def open_loop(
    send: Callable[[int, float], Awaitable[None]], rate: float, duration: float, wait: float
) -> int:
    """`send(n, scheduled)` for `rate` submissions a second during `duration` seconds, each started on
    its schedule whatever earlier ones are doing; then up to `wait` seconds for those still running.
    Returns how many were still unanswered then (cancelled)."""
    interval = 1.0 / rate
    t0 = time.monotonic()
    running: set[asyncio.Task[None]] = set()
    for n in range(int(rate * duration)):
        scheduled = t0 + n * interval
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        # Sent on schedule whatever earlier requests are doing: time counts from `scheduled`.
        task = asyncio.ensure_future(send(n, scheduled))
        running.add(task)
        task.add_done_callback(running.discard)
    if not running:
        return 0
    _, pending = await asyncio.wait(running, timeout=max(1.0, wait))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return len(pending)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response (Content-Length or chunked): (status, body, connection kept alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append((await reader.readexactly(size + 2))[:-2])
        await reader.readuntil(b"\r\n")
        body = b"".join(chunks)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() != "close"


async def closed_loop(
    send: Callable[[int, float], Awaitable[None]], count: int, concurrency: int, end: float
) -> None:
    """`send(n, now)` for `count` submissions from `concurrency` connections, each sending when its last
    was answered, none started after the monotonic time `end`."""
    next_n = iter(range(count))

    async def connection() -> None:
        for n in next_n:
            if time.monotonic() > end:
                return
            await send(n, time.monotonic())

    await asyncio.gather(*(connection() for _ in range(concurrency)))
