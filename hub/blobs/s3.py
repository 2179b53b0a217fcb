"""Blobs in an S3-compatible object store (AWS S3, Ceph RGW, Garage, SeaweedFS, MinIO): ``blobs: s3://...``.

Content-addressed like the local store: a blob is the object ``<prefix>/sha256/ab/cd/<hex>``. The
digest is known only once the content went through, so content streams, hashed on the way, into a
multipart upload under a temporary key (``<prefix>/tmp/...``, parts of `PART_SIZE`), is then copied on
the server to its content key and the temporary key deleted. Content smaller than one part stays in
one bounded buffer and goes straight to its content key in one PutObject. Either way the content
object is complete before `S3BlobWriter.commit` returns, so the journal row written after it points at
complete content: S3 (since 2020), Ceph RGW and Garage read what was written at once (strong
read-after-write consistency), and an object appears only whole (PutObject, CompleteMultipartUpload
and CopyObject are atomic). A failed or refused upload is aborted: no object, no open multipart upload.

Content stored before is not uploaded again as an object: its object is touched instead (copied onto
itself with new metadata), which renews its LastModified, the time the orphan sweep's grace period
counts from, exactly as the local store renews a file's mtime.

Reads stream ranged GETs of `READ_WINDOW` bytes each, so a long read never holds one response open
for the whole file and a connection broken mid-stream resumes where it broke.

Several hub processes may share one bucket. What one process still holds is spared by the others'
sweeps through the grace period (the objects' LastModified), not through the in-process holdings. So a
refused or duplicate submission's content is not removed when its intake ends, as on the local store:
another process may be storing the same content for an application it is about to commit, and no
process can know. The orphan sweep removes it once no journal row references it and the grace period
(which must exceed the longest intake) is over.

Credentials come from the environment or the standard AWS configuration chain, never from the
configuration file; errors name the bucket and the S3 error code, never credentials or signed URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Collection, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from hub.blobs.base import (
    CHUNK,
    PREFIX,
    BlobBackend,
    BlobInfo,
    BlobNotFound,
    BlobStoreMisconfigured,
    BlobStoreUnavailable,
    BlobTooLarge,
    HoldingStore,
    digest_of,
    smaller,
)
from hub.blobs.local import BlobStore
from hub.config import S3Location

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef

log = logging.getLogger(__name__)

PART_SIZE = 8 * 1024 * 1024  # S3 takes parts of 5 MiB and more (but the last); 8 MiB as the AWS CLI
QUEUED_PARTS = 1  # parts a writer buffers while one uploads: bounds a fast producer's memory
READ_WINDOW = 8 * 1024 * 1024  # bytes one ranged GET asks for
READ_RESUMES = 3  # a broken stream is picked up again this often in a row, then the read fails
DELETE_BATCH = 1000  # keys one DeleteObjects takes at most
TOUCHED = "aktenhub-touched"  # metadata an object gets when content stored before is written again
MISCONFIGURED_CODES = frozenset(
    {"NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
)
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})


class S3BlobWriter:
    """A `BlobWriter` into the object store: hashes and limits as it goes, uploads a part per `PART_SIZE`.

    `write` never waits: full parts are queued for the upload task; a producer awaits `drain` between
    writes to keep no more than `QUEUED_PARTS` parts in memory.
    """

    def __init__(self, store: S3Blobs, limit: int | None) -> None:
        self._store = store
        self._limit = limit
        self._sha = hashlib.sha256()
        self._size = 0
        self._buffer = bytearray()
        self._upload: _Multipart | None = None
        self._closed = False

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add content; raise `BlobTooLarge` past the limit (the upload is then aborted)."""
        if self._closed:
            raise RuntimeError("the writer was committed or aborted")
        self._size += len(chunk)
        if self._limit is not None and self._size > self._limit:
            self.abort()
            raise BlobTooLarge(self._limit)
        self._sha.update(chunk)
        self._buffer += chunk
        if len(self._buffer) >= self._store.part_size:
            if self._upload is None:
                self._upload = _Multipart(self._store, self._store.tmp_key())
            self._upload.add(bytes(self._buffer))
            self._buffer = bytearray()

    async def drain(self) -> None:
        """Wait until at most `QUEUED_PARTS` parts wait for their upload; raise what failed it."""
        if self._upload is not None:
            await self._upload.drain()

    async def commit(self) -> BlobInfo:
        """Store the content under its hash (complete before this returns); returns the blob's reference."""
        if self._closed:
            raise RuntimeError("the writer was committed or aborted")
        self._closed = True
        digest = self._sha.hexdigest()
        info = BlobInfo(ref=PREFIX + digest, size=self._size, sha256=digest)
        store = self._store
        holding = store.current_holding()
        created = False
        store._pin(digest, holding)  # held before it is stored: the sweep of this process leaves it be
        try:
            if self._upload is None:
                data, self._buffer = bytes(self._buffer), bytearray()
                created = await store._place(digest, data=data)
            else:
                last, self._buffer = bytes(self._buffer), bytearray()
                created = await self._upload.finish(digest, last)
                self._upload = None
        except BaseException:
            self._abandon()
            raise
        finally:
            store._committed(digest, holding, created)
        return info

    def abort(self) -> None:
        """Discard what was written: the multipart upload is aborted in the background (`S3Blobs.settle`)."""
        self._closed = True
        self._abandon()

    def _abandon(self) -> None:
        self._buffer = bytearray()
        if self._upload is not None:
            upload, self._upload = self._upload, None
            self._store.background(upload.abort())


class _Multipart:
    """One multipart upload under a temporary key, its parts sent one after another by a task."""

    def __init__(self, store: S3Blobs, key: str) -> None:
        self.store = store
        self.key = key
        self.upload_id: str | None = None
        self.parts: list[CompletedPartTypeDef] = []
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._sent = asyncio.Event()
        self._aborted = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    def add(self, data: bytes | None) -> None:
        self._queue.put_nowait(data)

    async def drain(self) -> None:
        while self._queue.qsize() > QUEUED_PARTS and not self._task.done():
            self._sent.clear()
            await self._sent.wait()
        if self._task.done():
            self._task.result()  # raises what failed the upload

    async def _run(self) -> None:
        try:
            client = await self.store.client()
            with self.store.errors("upload"):
                created = await client.create_multipart_upload(Bucket=self.store.bucket, Key=self.key)
                self.upload_id = created["UploadId"]
                while (data := await self._queue.get()) is not None and not self._aborted:
                    number = len(self.parts) + 1
                    part = await client.upload_part(
                        Bucket=self.store.bucket,
                        Key=self.key,
                        UploadId=self.upload_id,
                        PartNumber=number,
                        Body=data,
                    )
                    self.parts.append({"PartNumber": number, "ETag": part["ETag"]})
                    self._sent.set()
        finally:
            self._sent.set()

    async def finish(self, digest: str, last: bytes) -> bool:
        """Upload the last part, complete the upload and copy it to the content key; True if new there."""
        if last:
            self.add(last)
        self.add(None)  # the end, for the upload task
        await self._task
        assert self.upload_id is not None
        client = await self.store.client()
        with self.store.errors("upload"):
            await client.complete_multipart_upload(
                Bucket=self.store.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
            )
        self.upload_id = None  # complete: nothing to abort, the temporary object goes below
        try:
            return await self.store._place(digest, source=self.key)
        finally:
            with contextlib.suppress(BlobStoreUnavailable):  # a leftover is swept after the grace period
                await self.store._delete_keys([self.key])

    async def abort(self) -> None:
        """End the upload task after its current part, then abort the upload (no part stays stored)."""
        self._aborted = True  # the parts still queued are not sent
        self._queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await self._task
        if self.upload_id is not None:
            client = await self.store.client()
            with self.store.errors("abort upload"):
                await client.abort_multipart_upload(
                    Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id
                )
            self.upload_id = None


class S3Blobs(HoldingStore):
    """The blob store in an S3 bucket, with the same guarantees as the local store (`hub.blobs`)."""

    def __init__(
        self,
        location: S3Location,
        max_size: int | None = None,
        *,
        part_size: int = PART_SIZE,
        read_window: int = READ_WINDOW,
    ) -> None:
        super().__init__()
        self.s3 = location
        self.bucket = location.bucket
        self.max_size = max_size
        self.part_size = part_size
        self.read_window = read_window
        self._base = f"{location.prefix}/" if location.prefix else ""
        self._names = itertools.count()
        self._name = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._client: S3Client | None = None
        self._exit: contextlib.AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()

    @property
    def location(self) -> str:
        """The bucket, prefix and endpoint (no credentials: they are never in the configuration)."""
        return str(self.s3)

    @property
    def syncs(self) -> int:
        """The object store makes content durable itself: no syncs of the hub's."""
        return 0

    # -- the connection --------------------------------------------------------------------------------

    async def client(self) -> S3Client:
        """The S3 client, created on first use (credentials from the environment or AWS config chain)."""
        if self._client is not None:
            return self._client
        async with self._client_lock:
            client = self._client
            if client is None:
                config = AioConfig(
                    region_name=self.s3.region or "us-east-1",
                    s3={"addressing_style": self.s3.addressing},
                    # A store that takes the connection and then says nothing must not hold an intake
                    # for minutes: at most two tries of 5 s to connect and 30 s between bytes, then 503.
                    retries={"max_attempts": 2, "mode": "standard"},
                    connect_timeout=5,
                    read_timeout=30,
                    max_pool_connections=64,  # intakes and workers of this process read and write at once
                    # Self-hosted stores (older Ceph RGW, Garage, MinIO) refuse the checksums botocore
                    # adds by default since 1.36; content is addressed by its sha256 anyway.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                exit_stack = contextlib.AsyncExitStack()
                creator = get_session().create_client("s3", endpoint_url=self.s3.endpoint, config=config)
                client = self._client = await exit_stack.enter_async_context(creator)
                self._exit = exit_stack
        return client

    @contextlib.contextmanager
    def errors(self, what: str, ref: str | None = None) -> Iterator[None]:
        """Turn S3's failures into the store's: `BlobNotFound`, `BlobStoreMisconfigured`, else unavailable."""
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            where = f"blob store {self.location}: {what}"
            if ref is not None and (code in NOT_FOUND_CODES or status == 404) and code != "NoSuchBucket":
                raise BlobNotFound(ref) from None
            if ref is None and code in ("404", "NotFound"):
                code = "NoSuchBucket"  # HeadBucket's answer has no body to name it
            if code in MISCONFIGURED_CODES or status == 403:
                hint = "check the bucket and the credentials"
                raise BlobStoreMisconfigured(f"{where}: {code or status} ({hint})") from None
            raise BlobStoreUnavailable(f"{where}: {code or 'HTTP'} {status}") from None
        except (NoCredentialsError, PartialCredentialsError):
            raise BlobStoreMisconfigured(
                f"blob store {self.location}: no credentials (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or an AWS profile)"
            ) from None
        except (BotoCoreError, aiohttp.ClientError, TimeoutError) as exc:
            raise BlobStoreUnavailable(f"blob store {self.location}: {what}: {type(exc).__name__}") from None

    def background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run clean-up work (an abort, a deletion) in a task that `settle` and `close` wait for."""

        async def logged() -> None:
            try:
                await work
            except Exception as exc:  # the sweep removes what is left after the grace period
                log.warning("blob store clean-up failed, the sweep retries: %s", exc)

        task = asyncio.get_running_loop().create_task(logged())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settle(self) -> None:
        """Wait for the clean-up work started so far (aborted uploads, removed unkept blobs)."""
        while self._background:
            await asyncio.gather(*list(self._background))

    async def close(self) -> None:
        """Finish the clean-up work, then close the connections (a later use opens them again)."""
        await self.settle()
        if self._exit is not None:
            exit_stack, self._exit, self._client = self._exit, None, None
            await exit_stack.aclose()

    async def open(self) -> None:
        """Look at the bucket: a missing bucket or refused credentials stop the start, an outage does not."""
        try:
            client = await self.client()
            with self.errors("open"):
                await client.head_bucket(Bucket=self.bucket)
        except BlobStoreMisconfigured:
            raise
        except BlobStoreUnavailable as exc:
            log.warning("blob store unreachable at start, intake answers 503 until it is back: %s", exc)

    async def check(self) -> str:
        """Write, read, list and delete a small object (`aktenhub check`); raises what failed."""
        client = await self.client()
        key = self.tmp_key()
        with self.errors("check"):
            await client.head_bucket(Bucket=self.bucket)
            await client.put_object(Bucket=self.bucket, Key=key, Body=b"aktenhub check")
            got = await client.get_object(Bucket=self.bucket, Key=key)
            async with got["Body"] as body:
                await body.read()
            await client.list_objects_v2(Bucket=self.bucket, Prefix=self._base, MaxKeys=1)
            await client.delete_object(Bucket=self.bucket, Key=key)
        return f"bucket {self.location}: write, read, list and delete work"

    async def probe(self) -> None:
        """Write and remove a small object: raises `BlobStoreUnavailable` while that fails."""
        client = await self.client()
        key = self.tmp_key()
        with self.errors("probe"):
            await client.put_object(Bucket=self.bucket, Key=key, Body=b"\0" * 4096)
            await client.delete_object(Bucket=self.bucket, Key=key)

    # -- keys ------------------------------------------------------------------------------------------

    def key(self, ref: str) -> str:
        """The object key of a blob (the core's own business: connectors see `Blobs`)."""
        digest = digest_of(ref)
        return f"{self._base}sha256/{digest[:2]}/{digest[2:4]}/{digest}"

    def tmp_key(self) -> str:
        """A new temporary key (for a multipart upload before its digest is known, or a probe)."""
        return f"{self._base}tmp/{self._name}-{next(self._names)}"

    # -- writing ---------------------------------------------------------------------------------------

    def writer(self, limit: int | None = None) -> S3BlobWriter:
        """A writer for content that arrives in pieces (e.g. from a push parser)."""
        return S3BlobWriter(self, smaller(limit, self.max_size))

    async def _place(self, digest: str, *, data: bytes | None = None, source: str | None = None) -> bool:
        """Put content at its content key (from `data`, or copied from the object `source`).

        Content stored before is touched, not written again; returns whether it was stored new.
        """
        client = await self.client()
        key = self.key(PREFIX + digest)
        with self.errors("store"):
            try:
                await client.copy_object(
                    Bucket=self.bucket,
                    Key=key,
                    CopySource={"Bucket": self.bucket, "Key": key},
                    MetadataDirective="REPLACE",
                    Metadata={TOUCHED: str(int(time.time()))},
                )
                return False
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in NOT_FOUND_CODES:
                    raise
            if source is not None:
                await client.copy_object(
                    Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": source}
                )
                return True
            # Unconditionally (no If-None-Match, which not every S3-compatible store takes): two processes
            # storing the same content at once write the same bytes, and neither removes it (`_discard`).
            await client.put_object(Bucket=self.bucket, Key=key, Body=data or b"")
        return True

    def _discard(self, digest: str) -> int:
        # Never at once: another hub process may have stored the same content at the same moment and
        # be about to commit an application that references it (both PutObjects "stored it new"; the
        # kill test lost an acknowledged attachment that way). The orphan sweep removes it once no
        # journal row references it and its grace period is over.
        return 0

    # -- reading ---------------------------------------------------------------------------------------

    async def read(self, ref: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """Stream a blob's content in chunks, one ranged GET per `read_window` bytes."""
        key = self.key(ref)
        client = await self.client()
        offset, size, broken = 0, None, 0
        while size is None or offset < size:
            with self.errors("read", ref):
                try:
                    got = await client.get_object(
                        Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{offset + self.read_window - 1}"
                    )
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") == "InvalidRange" and offset == 0:
                        return  # an empty blob has no first byte to ask for
                    raise
            if "ContentRange" in got:
                size = int(got["ContentRange"].rpartition("/")[2])
            elif offset == 0:
                size = got["ContentLength"]  # a store that ignores Range sends the whole object
            else:
                raise BlobStoreUnavailable(f"blob store {self.location}: read: the store ignores Range")
            try:
                async with got["Body"] as body:
                    async for chunk in body.iter_chunks(chunk_size):
                        offset += len(chunk)
                        broken = 0
                        yield chunk
            except (BotoCoreError, aiohttp.ClientError, TimeoutError) as exc:
                broken += 1  # picked up again from `offset` by the next ranged GET
                if broken > READ_RESUMES:
                    raise BlobStoreUnavailable(
                        f"blob store {self.location}: read: {type(exc).__name__}"
                    ) from None

    async def info(self, ref: str) -> BlobInfo:
        """A stored blob's reference, size and sha256; raise `BlobNotFound` if it is not stored."""
        client = await self.client()
        with self.errors("info", ref):
            head = await client.head_object(Bucket=self.bucket, Key=self.key(ref))
        return BlobInfo(ref=ref, size=head["ContentLength"], sha256=digest_of(ref))

    async def exists(self, ref: str) -> bool:
        """Whether the blob is stored."""
        try:
            await self.info(ref)
        except BlobNotFound:
            return False
        return True

    # -- sweeping ----------------------------------------------------------------------------------------

    async def _listed(self, prefix: str) -> AsyncIterator[tuple[str, float, int]]:
        """Every object under `prefix`: key, LastModified (epoch seconds), size (ListObjectsV2, paged)."""
        client = await self.client()
        with self.errors("list"):
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            async for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"], item["LastModified"].timestamp(), item["Size"]

    async def unreferenced_candidates(self, older_than: float) -> list[str]:
        """Digests of stored blobs last written before `older_than` (epoch seconds)."""
        found = []
        async for key, modified, _ in self._listed(f"{self._base}sha256/"):
            digest = key.rpartition("/")[2]
            if len(digest) == 64 and modified < older_than:
                found.append(digest)
        return found

    async def usage(self) -> tuple[int, int]:
        """How many blobs are stored and their bytes (lists the whole bucket prefix: rarely)."""
        files = size = 0
        async for _, _, bytes_ in self._listed(f"{self._base}sha256/"):
            files += 1
            size += bytes_
        return files, size

    async def remove_unreferenced(
        self, candidates: Iterable[str], referenced: Collection[str], older_than: float
    ) -> list[BlobInfo]:
        """Remove the candidates (digests) nobody references and nobody wrote since `older_than`.

        Each is looked at again (HeadObject) right before: content written again since it was listed
        (touched by an intake of any process) has a new LastModified and stays.
        """
        client = await self.client()
        due: dict[str, BlobInfo] = {}
        for digest in candidates:
            ref = PREFIX + digest
            if ref in referenced or self._held(digest):
                continue
            with self.errors("sweep"):
                try:
                    head = await client.head_object(Bucket=self.bucket, Key=self.key(ref))
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") in NOT_FOUND_CODES:
                        continue
                    raise
            if head["LastModified"].timestamp() < older_than:
                due[self.key(ref)] = BlobInfo(ref=ref, size=head["ContentLength"], sha256=digest)
        with self._holds_lock:  # an intake of this process may have begun writing one meanwhile
            keys = [key for key, info in due.items() if not self._held(info.sha256)]
        deleted = await self._delete_keys(keys)
        return [due[key] for key in deleted]

    async def _delete_keys(self, keys: list[str]) -> list[str]:
        """Delete objects in batches (DeleteObjects); returns the keys deleted."""
        client = await self.client()
        deleted: list[str] = []
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            objects: list[ObjectIdentifierTypeDef] = [{"Key": key} for key in batch]
            with self.errors("delete"):
                answer = await client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})
            failed = {error.get("Key") for error in answer.get("Errors", [])}
            for error in answer.get("Errors", []):
                log.warning("blob store could not delete an object: %s", error.get("Code"))
            deleted += [key for key in batch if key not in failed]
        return deleted

    async def recover(self) -> int:
        """Nothing to finish: an object appears only whole, an interrupted upload is only ever discarded."""
        return 0

    async def remove_stale_parts(self, older_than_seconds: float = 3600) -> int:
        """Delete temporary objects and abort multipart uploads a crash left, older than this."""
        cutoff = time.time() - older_than_seconds
        prefix = f"{self._base}tmp/"
        stale = [key async for key, modified, _ in self._listed(prefix) if modified < cutoff]
        removed = len(await self._delete_keys(stale))
        client = await self.client()
        with self.errors("list uploads"):
            pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix)
            async for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"].timestamp() < cutoff:
                        await client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        removed += 1
        return removed


def _conforms(s3: S3Blobs, local: BlobStore) -> tuple[BlobBackend, BlobBackend]:
    """mypy checks here that both stores implement the protocol the core uses."""
    return s3, local
