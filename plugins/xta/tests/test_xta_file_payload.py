"""A file part of an MTOM message goes out with sendfile(2) where the connection allows, else in chunks.

Either way the receiver reads exactly the file's bytes; which way it went is the payload's to say.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import uvloop
from aiohttp import hdrs, web
from aiohttp.test_utils import TestServer
from hub_xta.mtom import FilePayload, OutgoingPart, part_chunks, read_related, related_writer

SIZE = 3 * 1024**2 + 17  # more than the socket takes at once, and not a multiple of any chunk


async def _unsized() -> AsyncIterator[bytes]:
    yield b"a part of unknown length makes the body chunked"


async def _roundtrip(content: Path, *, chunked: bool) -> tuple[dict[str, str], list[FilePayload]]:
    """Serve one MTOM answer with `content` as a file part: the sha256 of each part the client read,
    and the file payloads the server sent."""
    sent: list[FilePayload] = []

    async def answer(request: web.Request) -> web.Response:
        parts = [OutgoingPart("file@test", "application/octet-stream", None, SIZE, path=content)]
        if chunked:
            parts.insert(0, OutgoingPart("unsized@test", "text/plain", _unsized(), None))
        writer = related_writer(b"<Envelope/>", "urn:test", parts)
        sent.extend(p for p, _, _ in writer if isinstance(p, FilePayload))
        return web.Response(body=writer, headers={hdrs.CONTENT_TYPE: writer.headers[hdrs.CONTENT_TYPE]})

    app = web.Application()
    app.router.add_post("/", answer)
    received: dict[str, str] = {}

    async def on_part(cid: str, part: aiohttp.BodyPartReader) -> None:
        digest = hashlib.sha256()
        async for chunk in part_chunks(part):
            digest.update(chunk)
        received[cid] = digest.hexdigest()

    async with (
        TestServer(app) as server,
        aiohttp.ClientSession() as http,
        http.post(server.make_url("/")) as resp,
    ):
        assert resp.status == 200
        await read_related(resp.headers, resp.content, envelope_limit=1024, on_part=on_part)
    return received, sent


@pytest.fixture
def content(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "content.bin"
    data = os.urandom(SIZE)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


async def test_a_file_part_goes_out_with_sendfile_on_a_plain_connection(content: tuple[Path, str]) -> None:
    received, [payload] = await _roundtrip(content[0], chunked=False)
    assert received["file@test"] == content[1]
    assert payload.sent_with_sendfile


async def test_a_file_part_of_a_chunked_body_is_read_and_written(content: tuple[Path, str]) -> None:
    received, [payload] = await _roundtrip(content[0], chunked=True)
    assert received["file@test"] == content[1]
    assert not payload.sent_with_sendfile


def test_a_file_part_is_read_and_written_where_the_loop_has_no_sendfile(content: tuple[Path, str]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # uvloop offers no sendfile
        received, [payload] = runner.run(_roundtrip(content[0], chunked=False))
    assert received["file@test"] == content[1]
    assert not payload.sent_with_sendfile
