"""A blob store in memory: the `hub.Blobs` protocol without a filesystem, for connector tests.

A connector that passes its tests with `MemoryBlobs` uses the blob store only through the protocol
(streams, size, existence), so it works unchanged on any store, e.g. object storage.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from hub.blobs import CHUNK, PREFIX, BlobInfo, BlobNotFound, Blobs, BlobStore, BlobTooLarge, BlobWriter


class _MemoryWriter:
    """A `BlobWriter` into a `MemoryBlobs`."""

    def __init__(self, store: MemoryBlobs, limit: int | None) -> None:
        self._store = store
        self._limit = limit
        self._data: bytearray | None = bytearray()

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return len(self._data or b"")

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add content; raise `BlobTooLarge` past the limit (the blob is then discarded)."""
        if self._data is None:
            raise RuntimeError("the writer was committed or aborted")
        self._data += chunk
        if self._limit is not None and len(self._data) > self._limit:
            self.abort()
            raise BlobTooLarge(self._limit)

    async def drain(self) -> None:
        """Nothing to wait for: the content is in memory."""

    async def commit(self) -> BlobInfo:
        """Store the content under its hash."""
        if self._data is None:
            raise RuntimeError("the writer was committed or aborted")
        data, self._data = bytes(self._data), None
        digest = hashlib.sha256(data).hexdigest()
        self._store.content[PREFIX + digest] = data
        return BlobInfo(ref=PREFIX + digest, size=len(data), sha256=digest)

    def abort(self) -> None:
        """Discard what was written."""
        self._data = None


class MemoryBlobs:
    """Blobs kept in a dict (reference -> content), read in `chunk_size` pieces like the real store."""

    def __init__(self, max_size: int | None = None) -> None:
        self.max_size = max_size
        self.content: dict[str, bytes] = {}
        self.reads = 0  # streams opened and contents read: a test can tell the content was read from here

    def writer(self, limit: int | None = None) -> BlobWriter:
        """A writer for content that arrives in pieces."""
        limits = [x for x in (limit, self.max_size) if x is not None]
        return _MemoryWriter(self, min(limits) if limits else None)

    async def write(self, chunks: AsyncIterable[bytes], limit: int | None = None) -> BlobInfo:
        """Store streamed content."""
        writer = self.writer(limit)
        async for chunk in chunks:
            writer.write(chunk)
        return await writer.commit()

    async def write_bytes(self, data: bytes, limit: int | None = None) -> BlobInfo:
        """Store a piece of content."""
        writer = self.writer(limit)
        writer.write(data)
        return await writer.commit()

    async def read(self, ref: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """Stream a blob's content in chunks."""
        data = self._get(ref)
        self.reads += 1
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    async def read_bytes(self, ref: str) -> bytes:
        """A blob's whole content."""
        data = self._get(ref)
        self.reads += 1
        return data

    async def info(self, ref: str) -> BlobInfo:
        """A stored blob's reference, size and sha256."""
        data = self._get(ref)
        return BlobInfo(ref=ref, size=len(data), sha256=ref[len(PREFIX) :])

    async def exists(self, ref: str) -> bool:
        """Whether the blob is stored."""
        return ref in self.content

    def _get(self, ref: str) -> bytes:
        try:
            return self.content[ref]
        except KeyError:
            raise BlobNotFound(ref) from None


def _conforms(memory: MemoryBlobs, local: BlobStore) -> tuple[Blobs, Blobs]:
    """mypy checks here that both stores implement the protocol connectors see."""
    return memory, local
