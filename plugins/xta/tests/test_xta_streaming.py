"""Large content streams: a 128 MiB MTOM part goes into the blob store (and back out), never whole in memory.

The simulator runs in the same process, so the traced peak covers both ends; it must stay far below
the content size. (The 500 MB resident-memory benchmark is bench/large_attachment.py, not a test.)
"""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import aiohttp
from hub_xta import OutgoingContent, OutgoingMessage
from hub_xta.simulator import enqueue, get_json
from xta_helpers import (
    AUTHORITY,
    PORTAL,
    XBAU_NS,
    XBAU_SERVICE,
    StartXta,
    antrag_metadata,
    make_client,
    party,
)

from hub.blobs import BlobStore

SIZE = 128 * 1024**2
# Bytes traced at most while 128 MiB flow through: the blob store lets up to 16 MiB wait for its hashing
# and writing threads (hub.blobs.local.SPOOL_AHEAD) and reads a large blob a 1 MiB block ahead
# (hub.blobs.direct.READ_BLOCK); the rest is chunks in flight. Measured: 4-15 MiB.
PEAK_LIMIT = 28 * 1024**2


def write_content(path: Path, size: int) -> str:
    """A file of `size` bytes that does not repeat in blocks a deduplicating layer could fold."""
    digest = hashlib.sha256()
    block = hashlib.sha256(b"bauvorlage").digest() * (1024**2 // 32)
    with path.open("wb") as f:
        for i in range(size // len(block)):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


async def test_get_message_streams_128mib_into_the_blob_store(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore, tmp_path: Path
) -> None:
    source = tmp_path / "bauvorlage.bin"
    expected = write_content(source, SIZE)
    xta = await start_xta()
    queued = await enqueue(
        http,
        xta.url,
        AUTHORITY,
        metadata=antrag_metadata(),
        message=b"<antrag/>",
        attachments=[("bauvorlage.bin", source, "application/octet-stream")],
    )
    client = make_client(xta.url, schema_dir, http, blobs)

    tracemalloc.start()
    try:
        message = await client.get_message(queued["message_id"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    [attachment] = message.attachments
    assert attachment.size == SIZE and attachment.sha256 == expected
    digest = hashlib.sha256()
    async for chunk in blobs.read(attachment.blob):
        digest.update(chunk)
    assert digest.hexdigest() == expected
    assert peak < PEAK_LIMIT, (
        f"peak traced memory {peak / 1024**2:.1f} MiB for a {SIZE // 1024**2} MiB content"
    )


async def test_send_message_streams_128mib_from_the_blob_store(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, blobs: BlobStore, tmp_path: Path
) -> None:
    source = tmp_path / "bauvorlage.bin"
    expected = write_content(source, SIZE)

    async def chunks():  # type: ignore[no-untyped-def]
        with source.open("rb") as f:
            while chunk := f.read(1024**2):
                yield chunk

    stored = await blobs.write(chunks())
    xta = await start_xta()
    client = make_client(xta.url, schema_dir, http, blobs)
    message = OutgoingMessage(
        reader=party(PORTAL),
        service=XBAU_SERVICE,
        business_scenario="XBAU_DATA",
        message_type="baugenehmigung.antrag.0200",
        payload_schema=XBAU_NS,
        content=OutgoingContent(blob=stored.ref, size=stored.size, content_type="application/octet-stream"),
    )

    tracemalloc.start()
    try:
        sent = await client.send_message(message)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    [record] = await get_json(http, xta.url, "/_sim/sent")
    assert record["message_id"] == sent.message_id
    assert record["message"]["size"] == SIZE and record["message"]["sha256"] == expected
    assert peak < PEAK_LIMIT, (
        f"peak traced memory {peak / 1024**2:.1f} MiB for a {SIZE // 1024**2} MiB content"
    )
