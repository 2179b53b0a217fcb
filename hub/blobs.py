"""Content-addressed blob store: files streamed to disk in chunks, hashed on the way, size-limited.

A blob is stored once under its sha256 (``<root>/ab/cd/abcd...``) and referenced as ``sha256:<hex>``.
Content is written to a temporary file, fsync'd, then renamed into place (and the directory fsync'd), so
a blob reference that reached the journal always points at complete, durable content. An attachment is
never held in memory as a whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from hub.errors import AktenhubError

CHUNK = 256 * 1024
PREFIX = "sha256:"


class BlobTooLarge(AktenhubError):
    """The content exceeds the configured size limit; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"file exceeds the size limit of {limit} bytes")
        self.limit = limit


class BlobNotFound(AktenhubError):
    """No blob with this reference exists."""


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its reference, size and sha256."""

    ref: str
    size: int
    sha256: str


class BlobStore:
    """Streams content to disk under its sha256."""

    def __init__(self, root: Path, max_size: int | None = None) -> None:
        self.root = Path(root)
        self.max_size = max_size
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, ref: str) -> Path:
        """The file holding a blob's content."""
        digest = _digest(ref)
        return self.root / digest[:2] / digest[2:4] / digest

    def exists(self, ref: str) -> bool:
        """Whether the blob is stored."""
        return self.path(ref).is_file()

    async def write(self, chunks: AsyncIterable[bytes], limit: int | None = None) -> BlobInfo:
        """Stream chunks to a new blob; raise `BlobTooLarge` (storing nothing) past the limit."""
        limit = _smaller(limit, self.max_size)
        tmp = self._tmp / f"{secrets.token_hex(8)}.part"
        sha = hashlib.sha256()
        size = 0
        # Writes go to the page cache and are cheap; the fsync happens off the event loop below.
        with open(tmp, "wb") as f:  # noqa: ASYNC230
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise BlobTooLarge(limit)
                    sha.update(chunk)
                    f.write(chunk)
            except BaseException:
                f.close()
                tmp.unlink(missing_ok=True)
                raise
        digest = sha.hexdigest()
        info = BlobInfo(ref=PREFIX + digest, size=size, sha256=digest)
        await asyncio.get_running_loop().run_in_executor(None, self._commit, tmp, info)
        return info

    async def write_bytes(self, data: bytes, limit: int | None = None) -> BlobInfo:
        """Store a small piece of content (e.g. a generated document)."""

        async def once() -> AsyncIterator[bytes]:
            yield data

        return await self.write(once(), limit)

    def _commit(self, tmp: Path, info: BlobInfo) -> None:
        final = self.path(info.ref)
        if final.is_file():  # same content stored before: content addressing dedupes it
            tmp.unlink(missing_ok=True)
            return
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    async def read(self, ref: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """Stream a blob's content in chunks."""
        path = self.path(ref)
        try:
            f = open(path, "rb")  # noqa: ASYNC230, SIM115
        except FileNotFoundError:
            raise BlobNotFound(ref) from None
        with f:
            while chunk := f.read(chunk_size):
                yield chunk

    async def read_bytes(self, ref: str) -> bytes:
        """A small blob's whole content (documents the hub generated, never unbounded uploads)."""
        return b"".join([c async for c in self.read(ref)])

    def remove_stale_parts(self, older_than_seconds: float = 3600) -> int:
        """Delete temporary files left by a crash mid-upload; returns how many."""
        cutoff = time.time() - older_than_seconds
        removed = 0
        for part in self._tmp.glob("*.part"):
            try:
                if part.stat().st_mtime < cutoff:
                    part.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed


def _digest(ref: str) -> str:
    if not ref.startswith(PREFIX) or len(ref) != len(PREFIX) + 64:
        raise BlobNotFound(f"not a blob reference: {ref!r}")
    digest = ref[len(PREFIX) :]
    if any(c not in "0123456789abcdef" for c in digest):
        raise BlobNotFound(f"not a blob reference: {ref!r}")
    return digest


def _smaller(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
