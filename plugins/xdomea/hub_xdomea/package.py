"""The ZIP of a message: ``<ProzessID>_FVDaten.SGOAblegen.0605.xml`` plus the primary files.

The ZIP is written to a file, never built in memory: each document's content is streamed from the blob
store into its ZIP entry chunk by chunk (compression and file I/O run in a worker thread), hashed on
the way and checked against its content address.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from hub import BlobNotFound, Blobs, Permanent, Retryable

from .message import BERLIN, Message, PrimaryFile

ZIP64_FROM = 0x7FFF0000  # entries about this large need ZIP64 headers from the start


@dataclass(frozen=True)
class PackedFile:
    """One primary file as written into the ZIP."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Package:
    """A written ZIP."""

    path: Path
    size: int
    files: tuple[PackedFile, ...]


async def write_package(
    target: Path,
    message: Message,
    xml: bytes,
    blobs: Blobs,
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    fsync: bool = True,
    created_at: datetime,
) -> Package:
    """Write the ZIP to `target` (which must not exist); on any failure nothing is left there."""
    stamp = created_at.astimezone(BERLIN).timetuple()[:6]
    try:
        raw = await asyncio.to_thread(open, target, "xb")
    except OSError as exc:
        raise Retryable(f"cannot create {target.name} in {target.parent}: {_reason(exc)}") from None
    try:
        with raw:
            with zipfile.ZipFile(raw, "w", allowZip64=True) as archive:
                info = zipfile.ZipInfo(message.file_name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                await asyncio.to_thread(archive.writestr, info, xml)
                packed = []
                for primary in message.files:
                    packed.append(await _pack(archive, primary, blobs, compression, stamp))
            if fsync:
                await asyncio.to_thread(_flush_and_sync, raw)
        size = (await asyncio.to_thread(target.stat)).st_size
    except OSError as exc:
        remove_quietly(target)
        raise Retryable(f"cannot write {target.name} in {target.parent}: {_reason(exc)}") from None
    except BaseException:
        remove_quietly(target)
        raise
    return Package(target, size, tuple(packed))


async def _pack(
    archive: zipfile.ZipFile,
    primary: PrimaryFile,
    blobs: Blobs,
    compression: int,
    stamp: tuple[int, int, int, int, int, int],
) -> PackedFile:
    what = f"document {primary.index}"
    missing = f"{what} references {primary.blob}, which is not in the blob store"
    try:
        expected = (await blobs.info(primary.blob)).size
    except BlobNotFound:
        raise Permanent(missing) from None
    info = zipfile.ZipInfo(primary.name, date_time=stamp)
    info.compress_type = compression
    digest = hashlib.sha256()
    size = 0
    entry: IO[bytes] = await asyncio.to_thread(archive.open, info, "w", force_zip64=expected >= ZIP64_FROM)
    try:
        async for chunk in blobs.read(primary.blob):
            digest.update(chunk)
            size += len(chunk)
            await asyncio.to_thread(entry.write, chunk)
    except BlobNotFound:
        raise Permanent(missing) from None
    finally:
        await asyncio.to_thread(entry.close)
    if "sha256:" + digest.hexdigest() != primary.blob:
        raise Permanent(
            f"{what}: the content of {primary.blob} does not match its reference "
            "(blob store damaged, or stored encrypted)"
        )
    return PackedFile(primary.name, size, digest.hexdigest())


def remove_quietly(path: Path) -> None:
    """Delete a file if it is there (synchronous on purpose: also runs while a task is cancelled)."""
    path.unlink(missing_ok=True)


def _flush_and_sync(raw: IO[bytes]) -> None:
    raw.flush()
    os.fsync(raw.fileno())


def _reason(exc: OSError) -> str:
    """An OSError without the file name (document names may be personal data)."""
    code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    hint = {errno.ENOSPC: "; the disk is full", errno.EACCES: "; check the hub user's rights"}.get(
        exc.errno or 0, ""
    )
    return f"{exc.strerror or type(exc).__name__} ({code}){hint}"
