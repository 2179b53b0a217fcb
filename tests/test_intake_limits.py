"""What the intake reads is bounded: body size on the bytes received, stalls, slow headers, idle connections.

A client that goes away mid-upload costs one WARNING line and leaves nothing behind. The submissions are
sent by hand over loopback sockets where the test needs to control the bytes on the wire.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from hub import BadSubmission, ConnectorConfig, IntakeFunc, Manifest, Source, WebhookRoute
from hub.hookspecs import hookimpl
from hub.journal import ApplicationFilter
from hub.testing import RunningHub
from hub.testing.harness import blob_files, stored_blobs

TOKEN = "fc-test-token-0123456789abcdef"
BOUNDARY = "fcB0undary"
MiB = 1024 * 1024


async def start(hub_factory: Any, *, server: dict[str, Any] | None = None, **formcycle: Any) -> RunningHub:
    running: RunningHub = await hub_factory(
        {
            "formcycle": {
                "type": "formcycle",
                "token": "${FORMCYCLE_TOKEN}",
                "id_field": "vorgang_id",
                **formcycle,
            },
            "rec": {"type": "test-recording"},
        },
        [{"name": "all", "from": "formcycle", "to": ["rec"]}],
        env={"FORMCYCLE_TOKEN": TOKEN},
        server={"listen": "127.0.0.1:0", **(server or {})},
    )
    return running


async def applications(running: RunningHub) -> int:
    return len(await running.journal.list_applications(ApplicationFilter(), limit=1000))


def nothing_left(running: RunningHub) -> bool:
    """The blob store holds no blob (small ones are packed, not files) and no file, not a temporary one."""
    return stored_blobs(running.hub.blobs) == set() and blob_files(running.hub.blobs.root) == []


def part(name: str, content: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"


def head(running: RunningHub, extra: str) -> bytes:
    port = running.url.rsplit(":", 1)[1]
    return (
        f"POST /intake/formcycle/jagdschein HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"X-Aktenhub-Token: {TOKEN}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"{extra}\r\n"
    ).encode()


async def connect(running: RunningHub) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = running.url.removeprefix("http://").rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes the connection (fails if it does not, in time)."""
    return await asyncio.wait_for(reader.read(), within)


async def test_chunked_body_over_max_body_is_refused_and_leaves_nothing(hub_factory: Any) -> None:
    running = await start(hub_factory, server={"max_body": MiB}, max_file_size=64 * MiB)

    async def body() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        yield part("vorgang_id", b"fc-limit-1")
        yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"; filename="a.pdf"\r\n\r\n'.encode()
        for _ in range(24):
            yield b"%" * (128 * 1024)  # 3 MiB in all
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    headers = {"X-Aktenhub-Token": TOKEN, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    status, answer = await running.post("/intake/formcycle/jagdschein", data=body(), headers=headers)
    assert status == 413, answer
    assert str(MiB) in answer["error"]
    assert await applications(running) == 0
    assert nothing_left(running)
    metrics = (await running.get("/metrics"))[1]
    assert 'aktenhub_intake_refused_total{source="formcycle",status="413"} 1.0' in metrics


async def test_body_within_max_body_sent_chunked_is_taken(hub_factory: Any) -> None:
    running = await start(hub_factory, server={"max_body": MiB})

    async def body() -> AsyncIterator[bytes]:
        yield part("vorgang_id", b"fc-limit-2")
        yield part("a", b"%PDF " * 50_000, filename="a.pdf")
        yield f"--{BOUNDARY}--\r\n".encode()

    headers = {"X-Aktenhub-Token": TOKEN, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    status, answer = await running.post("/intake/formcycle/jagdschein", data=body(), headers=headers)
    assert status == 202, answer


async def test_stalled_body_is_refused_with_408_and_leaves_nothing(hub_factory: Any) -> None:
    running = await start(hub_factory, server={"body_timeout": 0.5})
    reader, writer = await connect(running)
    sent = part("vorgang_id", b"fc-stall") + part("a", b"%PDF-1.4 complete file", filename="a.pdf")
    writer.write(head(running, "Content-Length: 100000\r\n") + sent)  # then nothing more
    await writer.drain()
    answer = await asyncio.wait_for(reader.readuntil(b'"}'), 10)  # the JSON error
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"stalled" in answer
    assert await applications(running) == 0
    assert nothing_left(running)  # not even the complete file sent before the stall


async def test_slow_request_headers_are_cut_off(hub_factory: Any) -> None:
    running = await start(hub_factory, server={"keepalive_timeout": 1})
    reader, writer = await connect(running)
    writer.write(b"POST /intake/formcycle/jagdschein HTTP/1.1\r\nHost: x\r\n")  # the head never ends
    await writer.drain()
    assert await closed_by_server(reader, within=10) == b""
    writer.close()


async def test_idle_keepalive_connection_is_closed(hub_factory: Any) -> None:
    running = await start(hub_factory, server={"keepalive_timeout": 1})
    reader, writer = await connect(running)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    answer = await closed_by_server(reader, within=10)  # answered, then closed when idle
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


async def test_client_gone_mid_upload_costs_one_warning_and_leaves_nothing(
    hub_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start(hub_factory)
    caplog.set_level(logging.DEBUG)
    _reader, writer = await connect(running)
    pdf = b"%PDF-1.4 " + b"a" * 300_000
    complete_file = part("ausweis", pdf, filename="ausweis.pdf")
    cut_file = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="foto"; filename="f.jpg"\r\n\r\n'.encode()
    )
    sent = part("vorgang_id", b"fc-gone") + complete_file + cut_file + b"\xff" * 200_000
    writer.write(head(running, "Content-Length: 10000000\r\n") + sent)
    await writer.drain()

    def gone() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "disconnected" in r.getMessage()]

    stored = f"sha256:{hashlib.sha256(pdf).hexdigest()}"
    await running.wait_for(lambda: running.hub.blobs.stored(stored), 10, "the first file to be stored")
    writer.close()  # mid-upload
    await running.wait_for(gone, 10, "the disconnect to be logged")
    await running.wait_for(lambda: nothing_left(running), 10, "the intake's blobs to be removed")
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in loud] == [gone()[0].getMessage()]
    assert loud[0].exc_info is None
    assert await applications(running) == 0


# -- a source's own webhook routes get the same guards -------------------------------------------------


class UploadSource(Source[ConnectorConfig]):
    """Serves ``POST /intake/<name>/upload``: stores the body as a blob, then refuses the submission."""

    kind = "test-upload"
    manifest = Manifest(name="upload", version="1")

    def routes(self, intake: IntakeFunc) -> list[WebhookRoute]:
        async def upload(request: web.Request) -> web.StreamResponse:
            await self.context.blobs.write(request.content.iter_chunked(65536))
            raise BadSubmission("stored the body, then found it wanting")

        return [WebhookRoute("POST", "upload", upload)]


class UploadPlugin:
    @hookimpl
    def aktenhub_connector_types(self) -> list[type[Source]]:
        return [UploadSource]


async def start_upload(hub_factory: Any) -> RunningHub:
    running: RunningHub = await hub_factory(
        {"up": {"type": "test-upload"}, "rec": {"type": "test-recording"}},
        [{"name": "r", "from": "up", "to": ["rec"]}],
        extra_plugins=(UploadPlugin(),),
        server={"listen": "127.0.0.1:0", "max_body": MiB},
    )
    return running


async def test_a_source_route_refusing_after_storing_leaves_no_file(hub_factory: Any) -> None:
    running = await start_upload(hub_factory)
    status, answer = await running.post("/intake/up/upload", data=b"%PDF-1.4 " + b"u" * 400_000)
    assert status == 400, answer
    assert "wanting" in answer["error"]
    assert nothing_left(running)


async def test_a_source_route_reads_at_most_max_body(hub_factory: Any) -> None:
    running = await start_upload(hub_factory)

    async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse it by
        for _ in range(24):
            yield b"u" * (128 * 1024)

    status, answer = await running.post("/intake/up/upload", data=body())
    assert status == 413, answer
    assert nothing_left(running)
