"""The local blob store: content streamed to disk in chunks, hashed on the way, size-limited.

Small content (up to `SPOOL`, most form attachments, originals and renditions) is packed into one
SQLite database, ``<root>/pack.db`` (`hub.blobs.pack` says why). Larger content is the file
``<root>/ab/abcd...``: one directory level of 256, as git keeps its objects. Two levels (``ab/cd/``,
65 536 directories) made a young store create a directory for nearly every blob, and a mkdir costs ext4
several times a file's create; ext4's hashed directories keep lookups fast with tens of thousands of
files in one. A store in the older two-level layout is moved over when it is opened (`BlobStore.open`);
small files an older version wrote stay files and are read as such.

Packed content is durable when its transaction commits. A file is written to a temporary file, synced,
then renamed into place, so a blob reference that reached the journal always points at complete,
durable content (`_DurableRenamer` says why the rename needs no sync of its own). Concurrent writes
share their commits and syncs (group commit). An attachment is never held in memory as a whole.

Nothing partial stays behind: the blobs an intake writes are held (`HoldingStore.holding`) and removed
again unless the intake stores an application that references them (refused, duplicate, interrupted).
Whatever a crash leaves is removed by `BlobStore.sweep` once no journal row references it and it is
older than a grace period.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import itertools
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hub import handoff
from hub.blobs.base import (
    CHUNK,
    PREFIX,
    BlobInfo,
    BlobNotFound,
    BlobTooLarge,
    HoldingStore,
    digest_of,
    smaller,
)
from hub.blobs.direct import SpoolFile, read_file, write_all
from hub.blobs.pack import Pack
from hub.errors import StorageFull

log = logging.getLogger(__name__)

SPOOL = 256 * 1024  # content up to this size is buffered, then packed by the committer thread
# Spooled content is handed to the disk every this many bytes while it streams in, so the sync at
# commit waits for the last few MiB only, not for a whole 2 GB file written at disk speed afterwards.
WRITE_OUT_EVERY = 8 * 1024 * 1024
# How far the slower of a spool's two threads may lag behind its writer before `drain` waits: memory a
# fast network fills while the disk is slow, per blob being written. Written through the page cache,
# the writing thread stalled now and then for the write-out, and 32 MiB of room let the loop read on
# through a stall; written past it (`hub.blobs.direct`), each block's write waits for the disk anyway,
# and 16 MiB kept the fetch of a 2 GB Anlage as fast (3.14 and 3.08 s against 3.37 and 2.59 s) with the
# hub's peak memory 6-8 MB above its start instead of 9-47 MB (bench/large_attachment.py).
SPOOL_AHEAD = 16 * 1024 * 1024
# Chunks go to a spool's threads in batches of this many bytes: each hand-over wakes both threads.
SPOOL_HANDOVER = 1024 * 1024


# Small content is hashed in slices of this size, which keep the GIL (`LocalBlobWriter.write`).
HASH_SLICE = 2047

# The layout a store is in, written into LAYOUT_MARKER once the store holds nothing in an older one.
LAYOUT = "sha256/ab/<hex>\n"
LAYOUT_MARKER = "LAYOUT"

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _full(exc: OSError, root: Path) -> StorageFull | None:
    """The `StorageFull` an OS error means, if it means the blob store's filesystem is full."""
    if exc.errno in FULL_ERRNOS:
        return StorageFull(f"blob store {root}", exc.strerror or "no space left on device")
    return None


class _DurableRenamer:
    """Makes staged blobs durable in groups: one pack transaction, one filesystem sync for the group.

    Concurrent intakes each stage content; this thread takes all staged content at once. Small content
    goes into the pack in one transaction. Spooled content, already in temporary files, is renamed to
    ``tmp/<sha256>.ready``, synced once, then renamed into its content address. The rename needs no
    sync of its own: once synced, a ``.ready`` file is complete and durable, and `BlobStore.recover`
    finishes any rename a crash lost (checking the hash, since a crash before the sync may have cut the
    file short). A content address therefore never points at content a crash could lose.
    """

    def __init__(self, root: Path, tmp: Path, pack: Pack) -> None:
        self.root = root
        self.tmp = tmp
        self.pack = pack
        # Staged content, or the digest of packed content to remove (`remove`); None: stop.
        self._queue: queue.SimpleQueue[_Staged | str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._removing: collections.Counter[str] = collections.Counter()  # queued, not yet removed
        self.syncs = 0  # filesystem syncs and pack commits done (for benchmarks)

    def commit(self, staged: _Staged) -> None:
        """Make the staged content durable under its content address; `staged.future` tells when."""
        self._put(staged)

    def remove(self, digest: str) -> None:
        """Remove packed content, on this thread: the caller (the event loop) does not wait.

        A removal on the loop waited for the pack's write lock while a group committed: 0.13 ms at the
        median, 3.6 ms at the 99th percentile, with 16 writers storing beside 8 whose content was
        dropped; queued, 0.04 and 0.10 ms. It is done before anything queued after it, so content an
        intake stores again afterwards is stored anew. Until then readers see it gone (`removing`).
        """
        with self._lock:
            self._removing[digest] += 1
        self._put(digest)

    def removing(self, digest: str) -> bool:
        """Whether packed content is queued for removal (gone, as far as readers are concerned)."""
        return digest in self._removing

    def _put(self, item: _Staged | str) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="blob-committer", daemon=True)
                self._thread.start()
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            items = [first]
            while len(items) < 512:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                items.append(item)
            # Removals first: content staged in the same group was staged after them (its intake
            # pinned it, so no removal of it could follow), and is stored anew.
            self._remove([item for item in items if isinstance(item, str)])
            group = [item for item in items if not isinstance(item, str)]
            packed = [staged for staged in group if staged.data is not None]
            spooled = [staged for staged in group if staged.data is None]
            # Each part fails alone: a full disk met by the files leaves the packed content stored.
            settled = [*self._settled(packed, self._pack_group), *self._settled(spooled, self._commit_group)]
            # One wake-up of each waiting event loop per group, not one per blob (`hub.handoff`).
            handoff.settle(settled)

    def _remove(self, digests: list[str]) -> None:
        if not digests:
            return
        try:
            self.pack.remove(digests)
        except Exception as exc:  # left to the orphan sweep, which removes what nobody references
            log.warning("removing %d dropped blobs failed, the sweep removes them: %s", len(digests), exc)
        with self._lock:
            self._removing.subtract(digests)
            for digest in digests:
                if self._removing[digest] <= 0:
                    del self._removing[digest]

    @staticmethod
    def _settled(group: list[_Staged], commit: Callable[[list[_Staged]], None]) -> Iterator[handoff.Outcome]:
        failure: BaseException | None = None
        if group:
            try:
                commit(group)
            except BaseException as exc:  # every waiter learns of the failure
                failure = exc
        return ((staged.loop, staged.future, None, failure) for staged in group)

    def _pack_group(self, group: list[_Staged]) -> None:
        """Small content: into the pack, all of it in one transaction (`hub.blobs.pack`)."""
        # Stored as a file by a version before the pack: kept there, and not new (its holding
        # must not remove it). Asked with access(2), which says no without an exception: a
        # FileNotFoundError per blob (`_touch` alone) was 1.4 % of the intake's GIL samples (py-spy --gil).
        group = [s for s in group if not (os.access(s.final, os.F_OK) and _touch(s.final))]
        if not group:
            return
        self.syncs += 1
        created = self.pack.store((staged.digest, staged.data or b"") for staged in group)
        for staged in group:
            # The first of a digest's writers in the group stored it, the others found it stored.
            staged.created = staged.digest in created
            created.discard(staged.digest)

    def _commit_group(self, group: list[_Staged]) -> None:
        """Spooled content: its files synced together, then renamed into their content addresses."""
        # Paths as plain strings and os calls: a group of blobs spends most of its time in system
        # calls, and pathlib's objects and its open() (fstat, ioctl, lseek per file) add to both.
        ready: dict[str, str] = {}  # .ready file -> content address
        moved: set[str] = set()
        tmp = str(self.tmp)
        try:
            for staged in group:
                target = f"{tmp}/{staged.digest}.ready"
                if target in ready or _touch(staged.final):  # stored before: content addressing dedupes
                    if staged.spooled is not None:
                        staged.spooled.unlink(missing_ok=True)
                    continue
                staged.created = True
                if staged.spooled is not None:
                    os.replace(staged.spooled, target)
                ready[target] = staged.final
            if not ready:
                return
            self._sync(list(ready))
            for target, final in ready.items():
                _move_into_place(target, final)
                moved.add(target)
        except BaseException:
            # What a failed group did not store is not promised: its staged content goes (e.g. the disk
            # is full). What it did store, its writers' holdings remove unless someone keeps it.
            for staged in group:
                target = f"{tmp}/{staged.digest}.ready"
                staged.created = staged.created and target in moved
                if staged.spooled is not None:
                    staged.spooled.unlink(missing_ok=True)
                if target not in moved:  # also one whose writing failed half-way
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(target)
            raise

    def _sync(self, files: list[str]) -> None:
        self.syncs += 1
        if _syncfs(self.root):
            return
        for path in [*files, str(self.tmp)]:  # no syncfs(2) here: one fsync each
            _sync_file(path)

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None


def _sha256_of(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _sync_file(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _touch(final: Path | str) -> bool:
    """Mark stored content as just written again (the orphan sweep spares it); False if not stored."""
    try:
        os.utime(final)
    except FileNotFoundError:
        return False
    return True


def _write_file(path: str, data: bytes) -> None:
    """Write `data` as the whole file `path`: one open, one write (as a rule), one close."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        write_all(fd, memoryview(data))
    finally:
        os.close(fd)


def _move_into_place(ready: Path | str, final: Path | str) -> None:
    # The directory is created when the rename finds it missing, not asked for before every rename.
    try:
        os.replace(ready, final)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(ready, final)


@dataclass
class _Staged:
    digest: str
    final: str
    data: bytes | None  # small content still in memory: the committer thread packs it
    spooled: Path | None  # larger content already in a temporary file
    loop: asyncio.AbstractEventLoop  # the writer's, which the committer wakes when done
    future: asyncio.Future[None]  # the writer awaits it
    created: bool = False  # the committer stored it (it was not stored before)


class LocalBlobWriter:
    """A `BlobWriter` of the local store: hashes and limits as it goes, spools to disk past `SPOOL` bytes.

    Small content (most form attachments) stays in one buffer and is packed by the committer
    thread, so the event loop writes nothing for it; larger content streams into a temporary file,
    hashed and written by the threads of its `_Spool`.
    """

    def __init__(self, store: BlobStore, limit: int | None) -> None:
        self._store = store
        self._limit = limit
        self._sha = hashlib.sha256()
        self._size = 0
        self._buffer: bytearray | None = bytearray()
        self._spool: _Spool | None = None  # only once content spools: most never does

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add content; raise `BlobTooLarge` past the limit (the blob is then discarded)."""
        self._size += len(chunk)
        if self._limit is not None and self._size > self._limit:
            self.abort()
            raise BlobTooLarge(self._limit)
        if self._spool is not None:
            try:
                self._spool.write(chunk)  # raises what its threads met so far (e.g. a full disk)
            except OSError as exc:
                raise self._give_up(exc) from None
            return
        if self._buffer is None:
            raise RuntimeError("the blob writer was committed or aborted")
        # hashlib lets go of the GIL for each update of 2048 bytes or more (CPython's
        # HASHLIB_GIL_MINSIZE). For a form's small files that handed the event loop's GIL to the
        # journal and blob writer threads for a few µs of hashing, and the loop then waited for it to
        # come back. In slices below that size the loop keeps it; the hash is the same. Content that
        # spools (past SPOOL) is hashed on a thread of its spool instead (`_Spool`).
        view = memoryview(chunk)
        for start in range(0, len(view), HASH_SLICE):
            self._sha.update(view[start : start + HASH_SLICE])
        self._buffer += chunk
        if len(self._buffer) > SPOOL:
            # Past the spool size: from here on the content streams to disk.
            try:
                self._spool = _Spool(self._store, self._sha, bytes(self._buffer))
            except OSError as exc:
                raise self._give_up(exc) from None
            self._buffer = None

    async def drain(self) -> None:
        """Wait while the spool's threads are more than `SPOOL_AHEAD` bytes behind (the buffer: never)."""
        if self._spool is not None:
            try:
                await self._spool.drain(SPOOL_AHEAD)
            except OSError as exc:
                raise self._give_up(exc) from None

    async def commit(self) -> BlobInfo:
        """Make the content durable under its hash; returns the blob's reference."""
        data, spooled = None, None
        store = self._store
        try:
            if self._spool is not None:
                await self._spool.finish()  # every chunk hashed and written: the digest is complete
                spooled = self._spool.path
            else:
                data = bytes(self._buffer or b"")
        except OSError as exc:
            raise self._give_up(exc) from None
        except BaseException:  # also cancelled while the spool finished: nothing stays behind
            self.abort()
            raise
        digest = self._sha.hexdigest()
        info = BlobInfo(ref=PREFIX + digest, size=self._size, sha256=digest)
        self._spool = None
        self._buffer = None
        holding = store.current_holding()
        loop = asyncio.get_running_loop()
        staged = _Staged(digest, store._path_of(digest), data, spooled, loop, loop.create_future())
        # Held before the committer looks: the sweep and a failing intake then leave this content be.
        store._pin(digest, holding)
        try:
            store._renamer.commit(staged)
            await staged.future
        except OSError as exc:
            raise _full(exc, store.root) or exc from None
        finally:
            store._committed(digest, holding, staged.created)
        return info

    def _give_up(self, exc: OSError) -> Exception:
        """Discard what was written; what to raise for `exc` (`StorageFull` if the disk is full)."""
        self.abort()
        return _full(exc, self._store.root) or exc

    def abort(self) -> None:
        """Discard what was written."""
        self._buffer = None
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.discard()


class _Spool:
    """Content past `SPOOL`: hashed by one thread and written to its temporary file by another.

    Hashing (~0.6 s per GB) and writing (~0.35 s) took the event loop's time chunk by chunk, so a large
    attachment streamed at the speed of one core (bench/large_attachment.py). Both let go of the GIL for
    large chunks, so on threads they run beside the loop, which meanwhile reads the next chunks from the
    network, and beside each other. Each thread takes the batches in order; `drain` bounds how far the
    slower one lags.
    """

    def __init__(self, store: BlobStore, sha: hashlib._Hash, head: bytes) -> None:
        self.path = store._tmp_path()
        self._store = store
        self._sha = sha  # the head is hashed already (by the writer)
        self._file = SpoolFile(self.path, store.direct)  # closed by finish or discard
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blob-hash")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blob-spool")
        # Per batch handed over: its hashing (None: hashed already), its writing, its size.
        self._pending: collections.deque[tuple[_Done | None, _Done, int]] = collections.deque()
        self._behind = 0  # bytes handed over and not yet both hashed and written
        self._written_out = 0  # bytes of the file whose write-out was started
        self._failure: BaseException | None = None
        self._discarded = False
        self._batch: list[bytes] = []  # chunks not handed over yet: one hand-over per SPOOL_HANDOVER
        self._batched = 0
        self._hand_over([head], len(head), hashed=True)

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        # The threads take the chunk later: a buffer the caller may fill again is copied first.
        self._batch.append(chunk if isinstance(chunk, bytes) else bytes(chunk))
        self._batched += len(chunk)
        if self._batched >= SPOOL_HANDOVER:
            self._hand_over_batch()

    async def drain(self, ahead: int) -> None:
        self._forget_done()
        while self._behind > ahead:
            await _both(self._pending[0])
            self._forget_done()

    async def finish(self) -> None:
        """Wait until every chunk is hashed and written, then close the file; raise what failed."""
        self._hand_over_batch()
        if self._pending:
            await _both(self._pending[-1])  # one thread each: its last batch done, all of its done
        self._forget_done()
        # Its last block, on the writing thread: up to 4 MiB written with the loop left free.
        await asyncio.wrap_future(self._writer.submit(self._file.close))
        self._hasher.shutdown(wait=False)
        self._writer.shutdown(wait=False)

    def discard(self) -> None:
        """Stop the threads (after the batch each is on, a millisecond or so) and remove the file."""
        self._discarded = True
        self._hasher.shutdown(wait=True, cancel_futures=True)
        self._writer.shutdown(wait=True, cancel_futures=True)
        self._file.discard()
        self.path.unlink(missing_ok=True)

    def _hand_over_batch(self) -> None:
        if self._batch:
            batch, size = self._batch, self._batched
            self._batch, self._batched = [], 0
            self._hand_over(batch, size, hashed=False)

    def _hand_over(self, chunks: list[bytes], size: int, *, hashed: bool) -> None:
        self._forget_done()
        self._behind += size
        hashing = None if hashed else self._hasher.submit(self._hash, chunks)
        self._pending.append((hashing, self._writer.submit(self._write, chunks), size))

    def _forget_done(self) -> None:
        pending = self._pending
        while pending and (pending[0][0] is None or pending[0][0].done()) and pending[0][1].done():
            hashing, writing, size = pending.popleft()
            self._behind -= size
            for done in (hashing, writing):
                if done is not None:
                    done.result()  # what a thread raised, once (writing records its own: `_failure`)
        if self._failure is not None:
            raise self._failure

    def _hash(self, chunks: list[bytes]) -> None:
        """On the hashing thread, in order."""
        if self._failure is not None or self._discarded:
            return
        for data in chunks:
            self._sha.update(data)

    def _write(self, chunks: list[bytes]) -> None:
        """On the writing thread, in order; after a failure (e.g. a full disk), the rest is skipped."""
        if self._failure is not None or self._discarded:
            return
        try:
            for data in chunks:
                self._file.write(data)
            written = self._file.written
            if not self._file.direct and written - self._written_out >= WRITE_OUT_EVERY:
                if _start_write_out(self._file.fileno, self._written_out):
                    self._store.wrote_out()
                self._written_out = written
        except BaseException as exc:
            self._failure = exc


_Done = concurrent.futures.Future[None]


async def _both(batch: tuple[_Done | None, _Done, int]) -> None:
    """Wait until a batch is hashed and written."""
    hashing, writing, _ = batch
    if hashing is not None:
        await asyncio.wrap_future(hashing)
    await asyncio.wrap_future(writing)


class BlobStore(HoldingStore):
    """Streams content to disk under its sha256."""

    def __init__(self, root: Path, max_size: int | None = None, direct: bool = True) -> None:
        super().__init__()
        self.root = Path(root)
        # Spooled content written, and large blobs read, past the page cache where the filesystem
        # lets it (`hub.blobs.direct`); False: through it, as on a filesystem that refuses O_DIRECT.
        self.direct = direct
        self._root = str(self.root)
        self.max_size = max_size
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._pack = Pack(self.root)
        self._renamer = _DurableRenamer(self.root, self._tmp, self._pack)
        self._names = itertools.count()
        self.write_outs = 0  # early write-outs started for spooled content (`WRITE_OUT_EVERY`)
        self._write_outs_lock = threading.Lock()  # counted by the spools' writing threads
        self._prefix = f"{os.getpid()}-{secrets.token_hex(4)}"

    def wrote_out(self) -> None:
        """Count an early write-out (from a spool's writing thread; several may count at once)."""
        with self._write_outs_lock:
            self.write_outs += 1

    @property
    def syncs(self) -> int:
        """Pack commits and filesystem syncs done for new content since start (grouped: fewer than blobs)."""
        return self._renamer.syncs

    def path(self, ref: str) -> Path:
        """The file of a blob kept as a file (spooled content; small content is packed).

        The core's own business, and its tests': connectors see `Blobs`.
        """
        return Path(self._path_of(digest_of(ref)))

    def _path_of(self, digest: str) -> str:
        """Where a digest's content lives (the one layout), a string for the committer's os calls."""
        return f"{self._root}/{digest[:2]}/{digest}"

    def stored(self, ref: str) -> bool:
        """Whether the blob is stored (synchronously, for the core and tests)."""
        return self._packed_size(digest_of(ref)) is not None or self.path(ref).is_file()

    async def exists(self, ref: str) -> bool:
        """Whether the blob is stored."""
        return self.stored(ref)

    async def info(self, ref: str) -> BlobInfo:
        """A stored blob's reference, size and sha256; raise `BlobNotFound` if it is not stored."""
        size = self._packed_size(digest_of(ref))
        if size is None:
            try:
                size = self.path(ref).stat().st_size
            except FileNotFoundError:
                raise BlobNotFound(ref) from None
        return BlobInfo(ref=ref, size=size, sha256=digest_of(ref))

    def writer(self, limit: int | None = None) -> LocalBlobWriter:
        """A writer for content that arrives in pieces (e.g. from a push parser)."""
        return LocalBlobWriter(self, smaller(limit, self.max_size))

    @property
    def location(self) -> str:
        """Where the blobs are, for operators."""
        return str(self.root)

    async def open(self) -> None:
        """Move a store kept in the older two-level layout into the one-level layout (once)."""
        moved = await asyncio.to_thread(self._adopt_layout)
        if moved:
            log.info("moved %d files of the blob store %s into its one-level layout", moved, self.root)

    def _adopt_layout(self) -> int:
        # Every step is a rename within the store, so a crash half-way leaves each file in one of the
        # two places; the next open finishes the move. The marker is written last, after a sync, so a
        # store it marks holds no file in the old layout and later opens skip the walk.
        marker = self.root / LAYOUT_MARKER
        if marker.is_file():
            return 0
        moved = 0
        changed: list[Path] = []  # the directories the moves went into
        for top in _subdirs(self.root):
            legacies = list(_subdirs(top))
            if not legacies:
                continue
            if not changed:  # a large store takes a while, once: say why the start waits
                log.info("moving the blob store %s into its one-level layout (once)", self.root)
            changed.append(top)
            for legacy in legacies:
                for blob in list(legacy.iterdir()):  # listed first: the loop empties the directory
                    if len(blob.name) == 64:
                        os.replace(blob, top / blob.name)
                        moved += 1
                with contextlib.suppress(OSError):  # not empty: something else lives there; keep it
                    legacy.rmdir()
        # The moves must be durable before the marker says there is nothing left to move. A store that
        # had nothing to move (every new one) needs no sync: losing its marker costs one more walk.
        if changed and not _syncfs(self.root):
            for top in changed:  # no syncfs(2) here: each directory the renames changed
                _sync_file(top)
        _write_file(str(marker), LAYOUT.encode())
        if changed:
            _sync_file(marker)
        return moved

    async def check(self) -> str:
        """Write, sync and remove a small file (`aktenhub check`)."""
        await self.probe()
        return f"directory {self.root} takes writes"

    async def probe(self) -> None:
        """Write, sync and remove a small file: raises `StorageFull` while the filesystem is full."""
        await asyncio.to_thread(self._probe)

    def _probe(self) -> None:
        path = self._tmp_path()
        try:
            with open(path, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise _full(exc, self.root) or exc from None
        finally:
            path.unlink(missing_ok=True)

    async def unreferenced_candidates(self, older_than: float) -> list[str]:
        """Digests of stored blobs last written before `older_than` (epoch seconds)."""
        return await asyncio.to_thread(self._unreferenced_candidates, older_than)

    def _unreferenced_candidates(self, older_than: float) -> list[str]:
        return [digest for digest, _, written in self.walk() if written < older_than]

    async def usage(self) -> tuple[int, int]:
        """How many blobs are stored and their bytes (walks the whole store in a thread: rarely)."""
        return await asyncio.to_thread(self._usage)

    def _usage(self) -> tuple[int, int]:
        sizes = [size for _, size, _ in self.walk()]
        return len(sizes), sum(sizes)

    def walk(self) -> Iterator[tuple[str, int, float]]:
        """Each stored blob's digest, size and when it was last written (the whole store: rarely)."""
        for digest, size, written in self._pack.entries():
            if not self._renamer.removing(digest):
                yield digest, size, written
        for top in _subdirs(self.root):
            with contextlib.suppress(FileNotFoundError), os.scandir(top) as entries:
                for entry in entries:
                    if len(entry.name) == 64:
                        with contextlib.suppress(FileNotFoundError):  # removed while we walk
                            stat = entry.stat(follow_symlinks=False)
                            yield entry.name, stat.st_size, stat.st_mtime

    async def remove_unreferenced(
        self, candidates: Iterable[str], referenced: Collection[str], older_than: float
    ) -> list[BlobInfo]:
        """Remove the candidates (digests) nobody references and nobody wrote since `older_than`.

        `referenced` is read after `candidates` was listed, so content an intake stored in between is
        either new (not a candidate) or was touched again by its writer (checked here once more).
        Returns what was removed.
        """
        return await asyncio.to_thread(self._remove_unreferenced, list(candidates), referenced, older_than)

    def _remove_unreferenced(
        self, candidates: list[str], referenced: Collection[str], older_than: float
    ) -> list[BlobInfo]:
        unreferenced = []
        for digest in candidates:
            if PREFIX + digest in referenced:
                continue
            with self._holds_lock:
                if self._held(digest):
                    continue  # an intake is writing or storing it right now
            unreferenced.append(digest)
        # Packed content is removed only if not written since, in the same statement: the committer
        # marks what an intake stores again as written now, so no lock with the intakes is needed.
        packed = self._pack.remove(unreferenced, older_than)
        removed = [BlobInfo(ref=PREFIX + digest, size=size, sha256=digest) for digest, size in packed.items()]
        if packed:
            self._pack.give_back_space()
        for digest in unreferenced:
            if digest in packed:
                continue  # content is packed or a file, never both (`_DurableRenamer._pack_group`)
            path = self.path(PREFIX + digest)
            with self._holds_lock:  # a file's status and its unlink are two steps: an intake waits
                if self._held(digest):
                    continue
                try:
                    stat = path.stat()
                    if stat.st_mtime >= older_than:
                        continue
                    path.unlink()
                except FileNotFoundError:
                    continue
            removed.append(BlobInfo(ref=PREFIX + digest, size=stat.st_size, sha256=digest))
        return removed

    def _tmp_path(self) -> Path:
        return self._tmp / f"{self._prefix}-{next(self._names)}.part"

    def _discard(self, digest: str) -> int:
        # Content this process stored new, which nobody keeps: a file (removed here), or else packed
        # (gone for readers at once, removed on the committer's thread).
        try:
            self.path(PREFIX + digest).unlink()
        except FileNotFoundError:
            self._renamer.remove(digest)
        return 1

    def _packed_size(self, digest: str) -> int | None:
        return None if self._renamer.removing(digest) else self._pack.size(digest)

    def _packed(self, digest: str) -> bytes | None:
        return None if self._renamer.removing(digest) else self._pack.get(digest)

    async def settle(self) -> None:
        """Nothing to wait for: the local store removes at once."""

    async def close(self) -> None:
        """Stop the committer thread and close the pack (both start again when next used)."""
        await asyncio.to_thread(self._renamer.stop)
        self._pack.close()

    async def read(self, ref: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """Stream a blob's content in chunks."""
        packed = self._packed(digest_of(ref))
        if packed is not None:
            for start in range(0, len(packed), chunk_size):
                yield packed[start : start + chunk_size]
            return
        try:
            # Closed with this one: a caller that stops early lets go of the file (and the reader) now.
            async with contextlib.aclosing(read_file(self.path(ref), chunk_size, self.direct)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except FileNotFoundError:
            raise BlobNotFound(ref) from None

    async def read_bytes(self, ref: str) -> bytes:
        """A small blob's whole content (documents the hub generated, never unbounded uploads)."""
        # One read: the chunked `read` costs an async generator per blob, and a filing reads four (its
        # attachments, the original and the rendition).
        packed = self._packed(digest_of(ref))
        if packed is not None:
            return packed
        try:
            with open(self._path_of(digest_of(ref)), "rb", buffering=0) as f:  # noqa: ASYNC230
                return f.read()
        except FileNotFoundError:
            raise BlobNotFound(ref) from None

    async def recover(self) -> int:
        """Finish renames a crash interrupted: complete ``.ready`` content into its address.

        A crash may also have cut a ``.ready`` file short (before its sync), so each one is hashed:
        only content that matches its name is moved into place, the rest is deleted.
        """
        return await asyncio.to_thread(self._recover)

    def _recover(self) -> int:
        moved = 0
        for ready in self._tmp.glob("*.ready"):
            final = self.path(PREFIX + ready.stem)
            if final.is_file() or _sha256_of(ready) != ready.stem:
                ready.unlink(missing_ok=True)
            else:
                _sync_file(ready)
                _move_into_place(ready, final)
                moved += 1
        return moved

    async def remove_stale_parts(self, older_than_seconds: float = 3600) -> int:
        """Delete temporary files left by a crash mid-upload; returns how many."""
        return await asyncio.to_thread(self._remove_stale_parts, older_than_seconds)

    def _remove_stale_parts(self, older_than_seconds: float) -> int:
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


def _subdirs(path: Path) -> Iterator[Path]:
    with contextlib.suppress(FileNotFoundError):
        for entry in path.iterdir():
            if len(entry.name) == 2 and entry.is_dir():
                yield entry


_libc: ctypes.CDLL | bool | None = False
SYNC_FILE_RANGE_WRITE = 2  # <fcntl.h>: start write-out of the range's dirty pages, do not wait


def _linux_libc() -> ctypes.CDLL | None:
    """The C library with syncfs(2) and sync_file_range(2), or None where it has not got them."""
    global _libc
    if _libc is False:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _libc.syncfs.argtypes = [ctypes.c_int]
            _libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        except (OSError, AttributeError):
            _libc = None
    return _libc if isinstance(_libc, ctypes.CDLL) else None


def _start_write_out(fd: int, offset: int) -> bool:
    """Start writing a file's dirty pages from `offset` to its end to disk (sync_file_range(2)).

    Only a head start for the sync at commit, which alone makes content durable: failures are left to it.
    """
    libc = _linux_libc()
    return libc is not None and libc.sync_file_range(fd, offset, 0, SYNC_FILE_RANGE_WRITE) == 0


def _syncfs(path: Path) -> bool:
    """syncfs(2) on the filesystem holding `path`: one flush for everything written there."""
    libc = _linux_libc()
    if libc is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True
