"""An upload's file, written on a thread while the event loop reads the next pieces of the request.

enaio is a Java server: a request thread writes an upload while the connector reads on. The simulator
reads on its event loop; writing a large upload into the page cache and letting the written pages go
again cost it more than the multipart reading itself. Both let go of the GIL (os.writev,
posix_fadvise), so on a thread they run on another core while the loop reads the next batch. A small
upload, complete before anything was handed over, is written at once on the loop (`INLINE`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

# Bytes handed to the thread at a time: large, so the hand-over (a thread wake-up each way) is rare and
# the thread takes the GIL back once per batch, not once per piece (each take can wait for the loop).
BATCH = 8 * 1024 * 1024
LET_GO_EVERY = 8 * 1024 * 1024  # bytes of the file between two `_let_go`s
# An upload this small that is already complete is written on the loop: there is nothing left to read
# while the thread would write it, and the hand-over (a thread wake-up each way) cost more than the write
# (about a tenth of the simulator's CPU per filing of four small documents).
INLINE = 1024 * 1024


class StagingFile:
    """A file written in order, a batch at a time on a worker thread; at most two batches held."""

    def __init__(self, path: Path) -> None:
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        self._batch: list[bytes | bytearray] = []
        self._batched = 0  # bytes in `_batch`
        self._job: asyncio.Future[None] | None = None  # the batch on the thread
        self._written = 0  # bytes in the file (the thread's count)
        self._dropped = 0  # bytes of the file let go from the page cache (the thread's count)

    async def write(self, chunk: bytes | bytearray) -> None:
        """Append `chunk`; waits only while the thread is still busy with the batch before."""
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= BATCH:
            await self._hand_over()

    async def close(self) -> None:
        """Write what is left and close the file; raises what writing met (e.g. a full disk)."""
        if self._batch and self._job is None and self._batched <= INLINE:
            batch, self._batch, self._batched = self._batch, [], 0
            self._write(batch)
        elif self._batch:
            await self._hand_over()
        if self._job is not None:
            await self._wait()
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def abort(self) -> None:
        """Stop writing: the file is closed once the batch on the thread is done (the caller unlinks)."""
        self._batch = []
        fd, self._fd = self._fd, None
        if fd is None:
            return
        job = self._job
        if job is None or job.done():
            os.close(fd)
        else:
            job.add_done_callback(lambda done: _close_after(done, fd))

    async def _hand_over(self) -> None:
        if self._job is not None:
            await self._wait()
        batch, self._batch, self._batched = self._batch, [], 0
        self._job = asyncio.get_running_loop().run_in_executor(None, self._write, batch)

    async def _wait(self) -> None:
        assert self._job is not None
        # Shielded: a cancelled request must not mark the batch done while the thread still writes
        # it (`abort` closes the file only once the thread is through with it).
        await asyncio.shield(self._job)

    def _write(self, batch: list[bytes | bytearray]) -> None:
        fd = self._fd
        if fd is None:  # aborted before the thread got to it
            return
        size = sum(len(chunk) for chunk in batch)
        written = os.writev(fd, batch)
        if written < size:  # cut short (a signal, a nearly full disk): the rest one piece at a time
            rest = memoryview(b"".join(batch))[written:]
            while rest:
                rest = rest[os.write(fd, rest) :]
        self._written += size
        while self._written - self._dropped >= 2 * LET_GO_EVERY:
            # Written out and out of memory as it goes: a large upload's pages do not pile up dirty
            # in the page cache of the machine the simulator shares with the hub.
            self._dropped = _let_go(fd, self._dropped)


def _close_after(job: asyncio.Future[None], fd: int) -> None:
    if not job.cancelled():
        job.exception()  # retrieved: the upload is aborted anyway
    with contextlib.suppress(OSError):
        os.close(fd)


def _let_go(fd: int, start: int) -> int:
    """Drop the written window at `start` from the page cache, start writing out the next; its end."""
    # POSIX_FADV_DONTNEED starts the write-out of dirty pages in its range and drops the clean ones:
    # the window written out at the last call goes, the one after it starts on its way to disk.
    os.posix_fadvise(fd, start, 2 * LET_GO_EVERY, os.POSIX_FADV_DONTNEED)
    return start + LET_GO_EVERY
