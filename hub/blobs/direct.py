"""Large content past the page cache: a spool's file written, and a large blob read, with O_DIRECT.

A 2 GB Anlage written through the page cache cost this machine 1.4-1.6 s of CPU for the copies into
fresh cache pages, and reading it back cold as much again; with O_DIRECT the same write cost 0.23 s,
since the disk takes the content straight from one buffer the writer fills again and again
(bench/large_attachment.py). It also leaves the cache to what is read again and again, the journal's
pages, instead of filling it with content that is read once, by the delivery.

O_DIRECT wants the buffer, the file offset and the length aligned to the device's blocks: content is
gathered into a page-aligned block (an anonymous mmap) and written a whole block at a time; the last,
partial block is written through the page cache once O_DIRECT is switched off. Where the filesystem
refuses O_DIRECT (tmpfs, some network filesystems), the same file is written and read through the page
cache. Durability is unchanged: the blob store's sync at commit makes the file and its size durable.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import mmap
import os
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# What O_DIRECT needs aligned (buffer address, file offset, length): the largest logical block size of
# the usual devices. Page-aligned buffers (mmap) and multiples of it satisfy 512-byte devices too.
ALIGN = 4096
# Content goes to the disk in writes of this size: large enough that the device streams (one block of
# memory per blob being written).
BLOCK = 4 * 1024 * 1024
# A large blob is read in reads of this size, one ahead of the caller: what a delivery holds of it at
# once is two of them (a caller such as the xdomea packer holds a fraction of a 24 MiB document).
READ_BLOCK = 1024 * 1024
# Blobs from this size on are read past the page cache; smaller ones (every form's attachments, the
# renditions) were written through it by the blob committer and are read from it.
READ_DIRECT_FROM = BLOCK

_O_DIRECT: int = getattr(os, "O_DIRECT", 0)


class SpoolFile:
    """A spool's temporary file, written in order by one thread; past the page cache where possible."""

    def __init__(self, path: Path, direct: bool = True) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self._direct = direct and bool(_O_DIRECT)
        try:
            self._fd = os.open(path, flags | (_O_DIRECT if self._direct else 0), 0o600)
        except OSError as exc:
            if exc.errno != errno.EINVAL or not self._direct:
                raise
            self._fd = os.open(path, flags, 0o600)  # the filesystem refuses O_DIRECT
            self._direct = False
        self._block = mmap.mmap(-1, BLOCK) if self._direct else None
        self._filled = 0  # bytes of the block not written yet
        self.written = 0  # bytes handed to the file so far (written, or in the block)

    @property
    def fileno(self) -> int:
        return self._fd

    @property
    def direct(self) -> bool:
        """Whether the content goes past the page cache (a head start of write-out is then moot)."""
        return self._direct

    def write(self, data: bytes) -> None:
        """Add `data` at the end of the file."""
        self.written += len(data)
        if self._block is None:
            write_all(self._fd, memoryview(data))
            return
        view = memoryview(data)
        while view:
            n = min(len(view), BLOCK - self._filled)
            self._block[self._filled : self._filled + n] = view[:n]
            self._filled += n
            view = view[n:]
            if self._filled == BLOCK:
                self._write_block(BLOCK)

    def close(self) -> None:
        """Write what the block still holds and close the file."""
        try:
            if self._block is not None and self._filled:
                aligned = self._filled - self._filled % ALIGN
                if aligned:
                    self._write_block(aligned)
                if self._filled:  # the partial last block: O_DIRECT cannot write its length
                    self._through_cache()
                    write_all(self._fd, memoryview(self._block)[: self._filled])
                    self._filled = 0
        finally:
            self.discard()

    def discard(self) -> None:
        """Close the file without writing what the block still holds."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._block is not None:
            self._block.close()
            self._block = None

    def _write_block(self, length: int) -> None:
        assert self._block is not None
        view = memoryview(self._block)[:length]
        try:
            if self._direct:
                done = os.write(self._fd, view)
                if done == length:
                    self._keep(length)
                    return
                # A short direct write leaves an offset O_DIRECT may not continue from: the rest of the
                # file goes through the page cache.
                self._through_cache()
                view = view[done:]
            write_all(self._fd, view)
            self._keep(length)
        finally:
            view.release()

    def _keep(self, length: int) -> None:
        """Move what follows the first `length` bytes of the block to its start."""
        assert self._block is not None
        rest = self._filled - length
        if rest:
            self._block.move(0, length, rest)
        self._filled = rest

    def _through_cache(self) -> None:
        if self._direct:
            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~_O_DIRECT)
            self._direct = False


async def read_file(path: Path | str, chunk_size: int, direct: bool = True) -> AsyncGenerator[bytes, None]:
    """Stream a file's content: a large one in `READ_BLOCK`s past the page cache, each read on a thread while
    the caller takes the one before; a small one (or not `direct`, or where the filesystem refuses
    O_DIRECT) through the page cache in `chunk_size` chunks.

    Raises FileNotFoundError before the first chunk if there is no such file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if not direct or os.fstat(fd).st_size < READ_DIRECT_FROM or not _direct_reads(fd):
            with open(fd, "rb", closefd=False) as f:  # noqa: ASYNC230 - small, or the page cache's
                while chunk := f.read(chunk_size):
                    yield chunk
            return
        loop = asyncio.get_running_loop()
        # Left early, the reader's exit waits for the read under way before the block is unmapped.
        with (
            mmap.mmap(-1, READ_BLOCK) as block,
            ThreadPoolExecutor(1, thread_name_prefix="blob-read") as reader,
        ):
            ahead = loop.run_in_executor(reader, _read_block, fd, block)
            while chunk := await ahead:
                ahead = loop.run_in_executor(reader, _read_block, fd, block)
                yield chunk
    finally:
        os.close(fd)


def _direct_reads(fd: int) -> bool:
    """Switch `fd` to O_DIRECT; False where the filesystem refuses it."""
    if not _O_DIRECT:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | _O_DIRECT)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return False
        raise
    return True


def _read_block(fd: int, block: mmap.mmap) -> bytes:
    """The next block of the file (b"" at its end); a read of a whole block, short only at the end."""
    done = os.readv(fd, [block])
    return block[:done]


def write_all(fd: int, view: memoryview) -> None:
    """Write all of `view` at `fd`'s offset (a write may take less than it is given)."""
    while view:
        view = view[os.write(fd, view) :]
