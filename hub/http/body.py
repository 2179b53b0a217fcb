"""The request body as a source reads it: bounded in size and in how long it may stall.

aiohttp's ``client_max_size`` only guards ``request.read()``/``post()``; a source that streams
``request.content`` (as every source should, files go straight to the blob store) would read any amount,
and a chunked body announces no length at all. So the core puts `BoundedBody` between the connection and
the source: it counts the bytes actually handed out, whatever the headers said, gives up on a body that
sends nothing for `stall_seconds`, and turns a client that went away into one `ClientGone`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiohttp import StreamReader, web
from aiohttp.streams import AsyncStreamIterator, ChunkTupleAsyncStreamIterator

from hub.errors import AktenhubError, BadSubmission

T = TypeVar("T")


class ClientGone(AktenhubError):
    """The client closed the connection before its request body was complete."""

    def __init__(self, received: int) -> None:
        super().__init__(f"client disconnected after {received} bytes of the body")
        self.received = received


class BoundedBody:
    """Reads a request body through to the source, refusing it past `limit` bytes or a stall."""

    def __init__(self, inner: StreamReader, limit: int, stall_seconds: float) -> None:
        self._inner = inner
        self.limit = limit
        self.stall_seconds = stall_seconds
        self.received = 0

    def __getattr__(self, name: str) -> Any:
        # Everything but reading (at_eof, exception, total_bytes, ...) is the connection's own stream.
        return getattr(self._inner, name)

    async def _guard(self, read: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.stall_seconds):
                return await read
        except (TimeoutError, ConnectionError) as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: TimeoutError | ConnectionError) -> AktenhubError:
        """What a failed read means: the body stalled (408), or the client went away."""
        if isinstance(exc, TimeoutError):
            return BadSubmission(
                f"the request body stalled: nothing arrived for {self.stall_seconds:g} seconds", 408
            )
        return ClientGone(self.received)

    def _count(self, data: bytes) -> bytes:
        self.received += len(data)
        if self.received > self.limit:
            raise BadSubmission(f"request body exceeds the limit of {self.limit} bytes", 413)
        return data

    async def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (all, for -1)."""
        if n > 0:
            # What has arrived already is handed out without arming the stall timer (a form post
            # mostly arrives in one piece): scheduling and cancelling a timer cost more than the read.
            self._inner.set_read_chunk_size(n)
            try:
                data = self._inner.read_nowait(n)
            except (TimeoutError, ConnectionError) as exc:
                raise self._failure(exc) from None
            if data or self._inner.is_eof():
                return self._count(data)
        return self._count(await self._guard(self._inner.read(n)))

    async def readany(self) -> bytes:
        """Whatever has arrived."""
        return self._count(await self._guard(self._inner.readany()))

    async def readchunk(self) -> tuple[bytes, bool]:
        """The next chunk as sent (chunked transfer encoding)."""
        data, end = await self._guard(self._inner.readchunk())
        return self._count(data), end

    async def readexactly(self, n: int) -> bytes:
        """Exactly `n` bytes."""
        return self._count(await self._guard(self._inner.readexactly(n)))

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        """One line."""
        return self._count(await self._guard(self._inner.readline(max_line_length=max_line_length)))

    async def readuntil(self, separator: bytes = b"\n", *, max_size: int | None = None) -> bytes:
        """Up to and including `separator`."""
        return self._count(await self._guard(self._inner.readuntil(separator, max_size=max_size)))

    def read_nowait(self, n: int = -1) -> bytes:
        """What is buffered, without waiting."""
        return self._count(self._inner.read_nowait(n))

    def iter_chunked(self, n: int) -> AsyncStreamIterator[bytes]:
        """Chunks of at most `n` bytes."""
        self._inner.set_read_chunk_size(n)
        return AsyncStreamIterator(lambda: self.read(n))

    def iter_any(self) -> AsyncStreamIterator[bytes]:
        """Data as it arrives."""
        return AsyncStreamIterator(self.readany)

    def iter_chunks(self) -> ChunkTupleAsyncStreamIterator:
        """Chunks as sent, with their end-of-chunk flag."""
        return ChunkTupleAsyncStreamIterator(self)  # type: ignore[arg-type]

    def __aiter__(self) -> AsyncStreamIterator[bytes]:
        return AsyncStreamIterator(self.readline)


def bound_body(request: web.Request, limit: int, stall_seconds: float) -> BoundedBody:
    """Make `request.content` (what the source reads) a `BoundedBody`; returns it."""
    # aiohttp has no public way to hand a handler another body stream: the request keeps it in
    # `_payload`, and `content` is computed from it once and cached.
    body = BoundedBody(request._payload, limit, stall_seconds)
    request._payload = body  # type: ignore[assignment]
    request._cache.pop("content", None)
    return body
