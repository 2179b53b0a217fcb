"""What every blob store is: the protocols, errors and references, and the holdings of intakes.

A blob is stored once under its sha256 and referenced as ``sha256:<hex>``. Connectors see a store only
through the `Blobs` protocol (streams in, streams out, size and existence, never a filesystem path);
the core through `BlobBackend`, which both stores implement: `hub.blobs.local.BlobStore` (a
directory) and `hub.blobs.s3.S3Blobs` (an S3-compatible bucket).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from hub.errors import AktenhubError, Retryable

CHUNK = 256 * 1024
PREFIX = "sha256:"
BLOB_REF = re.compile(r"sha256:[0-9a-f]{64}")  # a blob reference wherever it is written down


class BlobTooLarge(AktenhubError):
    """The content exceeds the configured size limit; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"file exceeds the size limit of {limit} bytes")
        self.limit = limit


class BlobNotFound(AktenhubError):
    """No blob with this reference exists."""


class BlobStoreUnavailable(Retryable, OSError):
    """The blob store cannot be reached or failed (e.g. object storage down or answering 5xx).

    An `OSError` like the local store's own I/O failures, so every caller treats both alike: an intake
    answers 503 (send again later), a step is retried.
    """


class BlobStoreMisconfigured(BlobStoreUnavailable):
    """The blob store refuses the hub as configured (no such bucket, access denied, no credentials).

    Stops `aktenhub run` at start; found later (credentials revoked), it is unavailable like any
    outage: intakes answer 503 and steps are retried once the configuration is fixed.
    """


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its reference, size and sha256."""

    ref: str
    size: int
    sha256: str


class BlobWriter(Protocol):
    """Writes one blob from pieces (e.g. from a push parser): hashed and size-limited as they come."""

    @property
    def size(self) -> int:
        """Bytes written so far."""
        ...

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add content; raise `BlobTooLarge` past the limit (the blob is then discarded)."""
        ...

    async def drain(self) -> None:
        """Wait until the content written so far is on its way (bounds what a fast producer buffers)."""
        ...

    async def commit(self) -> BlobInfo:
        """Make the content durable under its hash; returns the blob's reference."""
        ...

    def abort(self) -> None:
        """Discard what was written."""
        ...


class Blobs(Protocol):
    """The blob store as connectors use it: content in and out as streams, never a filesystem path.

    A blob is referenced as ``sha256:<hex>`` of its content. Writing the same content twice stores it
    once. Reading a reference that is not stored raises `BlobNotFound`.
    """

    @property
    def max_size(self) -> int | None:
        """The largest blob the store takes (None: no limit)."""
        ...

    def writer(self, limit: int | None = None) -> BlobWriter:
        """A writer for content that arrives in pieces."""
        ...

    async def write(self, chunks: AsyncIterable[bytes], limit: int | None = None) -> BlobInfo:
        """Stream chunks to a new, durable blob; raise `BlobTooLarge` (storing nothing) past the limit."""
        ...

    async def write_bytes(self, data: bytes, limit: int | None = None) -> BlobInfo:
        """Store a small piece of content (e.g. a generated document)."""
        ...

    def read(self, ref: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """Stream a blob's content in chunks."""
        ...

    async def read_bytes(self, ref: str) -> bytes:
        """A small blob's whole content (documents the hub generated, never unbounded uploads)."""
        ...

    async def info(self, ref: str) -> BlobInfo:
        """A stored blob's reference, size and sha256; raise `BlobNotFound` if it is not stored."""
        ...

    async def exists(self, ref: str) -> bool:
        """Whether the blob is stored."""
        ...


class BlobBackend(Blobs, Protocol):
    """The blob store as the core uses it, local directory or object storage alike.

    Beyond what connectors see: the holdings of intakes, the orphan sweep and the purge's deletions,
    health (probe, check), size figures and start-up tidying.
    """

    @property
    def location(self) -> str:
        """Where the blobs are, for operators (never credentials)."""
        ...

    @property
    def syncs(self) -> int:
        """Filesystem syncs done for new content since start (0 where the store syncs itself)."""
        ...

    def holding(self) -> contextlib.AbstractContextManager[BlobHolding]:
        """Hold what is written inside; remove what no stored application keeps (see `HoldingStore`)."""
        ...

    def current_holding(self) -> BlobHolding | None:
        """The holding of the intake running in this task, if any."""
        ...

    async def open(self) -> None:
        """Get ready at start; raise `BlobStoreMisconfigured` if the store refuses the hub as configured."""
        ...

    async def check(self) -> str:
        """Read, write and list once; returns what was checked, raises what failed (`aktenhub check`)."""
        ...

    async def probe(self) -> None:
        """Write and remove a small blob: raises `StorageFull` or `BlobStoreUnavailable` while it fails."""
        ...

    async def unreferenced_candidates(self, older_than: float) -> list[str]:
        """Digests of stored blobs last written before `older_than` (epoch seconds)."""
        ...

    async def sweep(self, candidates: Iterable[str], referenced: Collection[str], older_than: float) -> int:
        """Remove the candidates nobody references; returns how many went (see `remove_unreferenced`)."""
        ...

    async def remove_unreferenced(
        self, candidates: Iterable[str], referenced: Collection[str], older_than: float
    ) -> list[BlobInfo]:
        """Remove the candidates (digests) nobody references and nobody wrote since `older_than`."""
        ...

    async def usage(self) -> tuple[int, int]:
        """How many blobs are stored and their bytes (walks the whole store: rarely)."""
        ...

    async def recover(self) -> int:
        """Finish storing what a crash interrupted; returns how many blobs."""
        ...

    async def remove_stale_parts(self, older_than_seconds: float = 3600) -> int:
        """Delete partial uploads a crash left that are older than this; returns how many."""
        ...

    async def settle(self) -> None:
        """Wait for the clean-up work started so far (what a holding removes, aborted uploads)."""
        ...

    async def close(self) -> None:
        """Let go of threads and connections (a later write starts them again)."""
        ...


@dataclass
class _Hold:
    """How one content address is held by open intakes."""

    pins: int = 0  # open holdings that wrote it
    keeps: int = 0  # stored applications (or writers outside any intake) that need it
    created: bool = False  # a holding stored it new: if nobody keeps it, it goes again


class BlobHolding:
    """The blobs written during one intake; those nobody keeps are removed when it ends."""

    def __init__(self, store: HoldingStore) -> None:
        self.store = store
        self._digests: list[str] = []
        self._kept: list[str] = []
        self.removed = 0

    def keep(self, refs: Iterable[str]) -> None:
        """The intake stored an application referencing these blobs: they stay."""
        # Only what this intake wrote: it holds those until it ends, so their counts stay its own.
        written = set(self._digests)
        digests = [ref[len(PREFIX) :] for ref in refs if ref[len(PREFIX) :] in written]
        self.store._keep(digests, 1)
        self._kept.extend(digests)

    def unkeep(self) -> None:
        """Withdraw `keep` (the application was not stored after all, e.g. a duplicate)."""
        self.store._keep(self._kept, -1)
        self._kept.clear()

    def _release(self) -> None:
        self.removed = self.store._release(self._digests)
        self._digests.clear()


_holding: ContextVar[BlobHolding | None] = ContextVar("aktenhub_blob_holding", default=None)


class HoldingStore:
    """The holdings of intakes, counted per content address in this process: what both stores share.

    A store pins content before it stores it (`_pin`) and reports after (`_committed`) whether it
    stored it new; when the last holding lets go of content stored new that nobody keeps, the store
    removes it (`_discard`).
    """

    def __init__(self) -> None:
        self._holds: dict[str, _Hold] = {}
        self._holds_lock = threading.Lock()  # the local store's sweep runs in a thread

    @contextlib.contextmanager
    def holding(self) -> Iterator[BlobHolding]:
        """Hold what is written inside (in this task and the tasks it starts); remove what nobody keeps.

        An intake wraps receiving and storing a submission in this, and calls `BlobHolding.keep` for
        the blobs of the application it stored: a refused, duplicate or interrupted submission leaves
        no file behind. Content another intake or a stored application also needs is never removed.
        """
        holding = BlobHolding(self)
        token = _holding.set(holding)
        try:
            yield holding
        finally:
            _holding.reset(token)
            holding._release()

    def current_holding(self) -> BlobHolding | None:
        """The holding of the intake running in this task, if any."""
        holding = _holding.get()
        return holding if holding is not None and holding.store is self else None

    def _pin(self, digest: str, holding: BlobHolding | None) -> None:
        with self._holds_lock:
            hold = self._holds.setdefault(digest, _Hold())
            hold.pins += 1
            if holding is not None:
                holding._digests.append(digest)

    def _committed(self, digest: str, holding: BlobHolding | None, created: bool) -> None:
        with self._holds_lock:
            if holding is not None:
                self._holds[digest].created |= created
                return
        # Written outside an intake (a rendition, an answer): kept by whoever wrote it.
        self._keep([digest], 1)
        self._release([digest])

    def _keep(self, digests: Iterable[str], delta: int) -> None:
        with self._holds_lock:
            for digest in digests:
                hold = self._holds.get(digest)
                if hold is not None:
                    hold.keeps += delta

    def _release(self, digests: Iterable[str]) -> int:
        removed = 0
        with self._holds_lock:
            for digest in digests:
                hold = self._holds[digest]
                hold.pins -= 1
                if hold.pins > 0:
                    continue
                del self._holds[digest]
                if hold.created and hold.keeps <= 0:
                    removed += self._discard(digest)
        return removed

    def writer(self, limit: int | None = None) -> BlobWriter:
        """A writer for content that arrives in pieces (e.g. from a push parser)."""
        raise NotImplementedError

    async def write(self, chunks: AsyncIterable[bytes], limit: int | None = None) -> BlobInfo:
        """Stream chunks to a new, durable blob; raise `BlobTooLarge` (storing nothing) past the limit."""
        writer = self.writer(limit)
        try:
            async for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
        except BaseException:
            writer.abort()
            raise
        return await writer.commit()

    async def write_bytes(self, data: bytes, limit: int | None = None) -> BlobInfo:
        """Store a small piece of content (e.g. a generated document)."""
        writer = self.writer(limit)
        writer.write(data)
        return await writer.commit()

    def read(self, ref: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """Stream a blob's content in chunks."""
        raise NotImplementedError

    async def read_bytes(self, ref: str) -> bytes:
        """A small blob's whole content (documents the hub generated, never unbounded uploads)."""
        return b"".join([c async for c in self.read(ref)])

    async def remove_unreferenced(
        self, candidates: Iterable[str], referenced: Collection[str], older_than: float
    ) -> list[BlobInfo]:
        """Remove the candidates (digests) nobody references and nobody wrote since `older_than`."""
        raise NotImplementedError

    async def sweep(self, candidates: Iterable[str], referenced: Collection[str], older_than: float) -> int:
        """Remove the candidates nobody references; returns how many went (see `remove_unreferenced`)."""
        return len(await self.remove_unreferenced(candidates, referenced, older_than))

    def _held(self, digest: str) -> bool:
        """Whether an intake of this process is writing or storing this content right now."""
        return digest in self._holds

    def _discard(self, digest: str) -> int:
        """Remove content a holding stored new that nobody keeps (the lock is held); 1 if it goes."""
        raise NotImplementedError


def digest_of(ref: str) -> str:
    """The hex digest of a blob reference; raises `BlobNotFound` for anything else (never a path)."""
    if not ref.startswith(PREFIX) or len(ref) != len(PREFIX) + 64:
        raise BlobNotFound(f"not a blob reference: {ref!r}")
    digest = ref[len(PREFIX) :]
    if any(c not in "0123456789abcdef" for c in digest):
        raise BlobNotFound(f"not a blob reference: {ref!r}")
    return digest


def smaller(a: int | None, b: int | None) -> int | None:
    """The smaller of two limits (None: no limit)."""
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
