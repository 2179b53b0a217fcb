"""The bounded request body: data handed out as it arrived, refusals by the same rules whether a read
waited or found its bytes buffered."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import StreamReader
from aiohttp.base_protocol import BaseProtocol

from hub.errors import BadSubmission
from hub.http.body import BoundedBody, ClientGone


@pytest.fixture
async def stream() -> AsyncIterator[StreamReader]:
    """A request body the test feeds, read through aiohttp's connection protocol on a socket pair."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, connection = await loop.connect_accepted_socket(lambda: BaseProtocol(loop), ours)
    try:
        yield StreamReader(connection, 2**16, loop=loop)
    finally:
        transport.close()
        theirs.close()


async def test_buffered_chunks_and_the_end_are_read_in_order_and_counted(stream: StreamReader) -> None:
    stream.feed_data(b"a" * 100)
    stream.feed_data(b"b" * 50)
    stream.feed_eof()
    body = BoundedBody(stream, limit=1000, stall_seconds=0.01)
    chunks = [chunk async for chunk in body.iter_chunked(64)]
    assert b"".join(chunks) == b"a" * 100 + b"b" * 50 and max(map(len, chunks)) <= 64
    assert body.received == 150


async def test_a_buffered_body_past_the_limit_is_refused_with_413(stream: StreamReader) -> None:
    stream.feed_data(b"x" * 200)
    stream.feed_eof()
    body = BoundedBody(stream, limit=100, stall_seconds=0.01)
    with pytest.raises(BadSubmission) as refused:
        await body.read(1000)
    assert refused.value.status == 413


async def test_a_read_that_must_wait_gets_what_arrives_later(stream: StreamReader) -> None:
    body = BoundedBody(stream, limit=1000, stall_seconds=5)
    read = asyncio.ensure_future(body.read(64))
    # Callbacks run in order: the read starts (finds nothing, waits), then the data arrives.
    asyncio.get_running_loop().call_soon(stream.feed_data, b"late")
    assert await asyncio.wait_for(read, 5) == b"late"


async def test_a_body_that_sends_nothing_is_refused_as_stalled(stream: StreamReader) -> None:
    body = BoundedBody(stream, limit=1000, stall_seconds=0.01)
    with pytest.raises(BadSubmission) as refused:
        await body.read(64)
    assert refused.value.status == 408


@pytest.mark.parametrize("buffered", [b"", b"part of the body"])
async def test_a_reset_connection_is_a_client_gone_whether_or_not_bytes_were_buffered(
    stream: StreamReader, buffered: bytes
) -> None:
    body = BoundedBody(stream, limit=1000, stall_seconds=5)
    if buffered:
        stream.feed_data(buffered)
    stream.set_exception(ConnectionResetError("reset by peer"))
    with pytest.raises(ClientGone):
        await body.read(64)


async def test_a_timeout_the_connection_reports_is_a_stall_like_the_timer_s_own(stream: StreamReader) -> None:
    stream.feed_data(b"x")
    stream.set_exception(TimeoutError())
    body = BoundedBody(stream, limit=1000, stall_seconds=5)
    with pytest.raises(BadSubmission) as refused:
        await body.read(64)
    assert refused.value.status == 408
