"""One application, one complete folder in a Fachverfahren's import directory: the mechanism both
`importfolder` and its predecessor `filedrop` deliver through.

A folder appears under its final name only when it is complete: it is built in a temporary dot-folder
inside the import directory, every file and the folder are fsync'd, then one `os.rename` publishes it and
the import directory is fsync'd. Delivering again finds the folder (by the marker file in it, or by the
checkpoint of a delivery the Fachverfahren has already consumed) and writes nothing. Documents are
streamed from the blob store chunk by chunk and their sha256 checked against the content address.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub import (
    Application,
    BlobNotFound,
    CheckResult,
    ConnectorConfig,
    Delivery,
    DeliveryContext,
    Document,
    DocumentContent,
    FileRecord,
    Permanent,
    Retryable,
    Sink,
    revision_key,
    utcnow,
)

from .names import (
    MissingPlaceholder,
    check_folder_pattern,
    clean,
    render_folder_name,
    safe_file_name,
    unique_name,
)

log = logging.getLogger(__name__)

VERSION = "0.1.0"
TEMP_PREFIX = ".tmp-"
PROBE_PREFIX = ".probe-"
CHECKPOINT = "filedrop"  # the checkpoint key; kept from filedrop so its deliveries resume
# Temporary folders older than this are left by a crash; younger ones may belong to another hub process
# writing into the same directory right now.
STALE_TEMP_SECONDS = 3600.0
_TEMP_SUFFIX = re.compile(r"-[0-9a-f]{12}\Z")
_BLOB_REF = re.compile(r"sha256:[0-9a-f]{64}")


class FolderConfig(ConnectorConfig):
    """Settings of every connector that delivers folders into an import directory."""

    path: Path = Field(description="the Fachverfahren's import directory (created if missing)")
    folder_name: str = Field(
        "{application_id}",
        description="name of each application's folder; placeholders {application_id}, {service}, "
        "{external_id}, {file_number}; the values are reduced to safe characters",
    )
    fsync: bool = Field(True, description="fsync files and folders (turn off only on scratch disks)")

    @field_validator("folder_name")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        check_folder_pattern(value)
        return value


FolderConfigT = TypeVar("FolderConfigT", bound=FolderConfig)


class DroppedFile(BaseModel):
    """One document file of a delivered folder."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="file name inside the folder (safe, unique)")
    original_name: str = Field(description="the document's name in the record, unchanged")
    document_type: str
    content: DocumentContent
    media_type: str
    size: int
    sha256: str
    fields: dict[str, str] = Field(default_factory=dict)


class _ApplicationRef(BaseModel):
    id: str


class _FileSize(BaseModel):
    size: int


class _DropHeader(BaseModel):
    """What the sink reads back from a folder's marker file (lenient: later minor additions are fine)."""

    format: str
    delivered_at: datetime
    application: _ApplicationRef
    files: list[_FileSize]


class _Checkpoint(BaseModel):
    folder: str
    delivered_at: datetime


@dataclass(frozen=True)
class PlannedFile:
    """A document of the record, checked, with its safe file name in the folder."""

    index: int
    document: Document
    name: str
    blob: str


@dataclass(frozen=True)
class Published:
    """What a delivery left in the import directory."""

    folder: str
    delivered_at: datetime
    files: int
    size: int
    duplicate: bool
    consumed: bool = False


class FolderSink(Sink[FolderConfigT], Generic[FolderConfigT]):
    """A sink that writes each application as one folder (its documents plus metadata files).

    Subclasses name the marker file (a JSON file with `format`, `delivered_at`, `application.id` and
    `files[].size`, by which a folder is recognised as this application's delivery) and produce the
    metadata files from what was written.
    """

    marker: ClassVar[str]
    format: ClassVar[str]

    @property
    def directory(self) -> Path:
        """The import directory."""
        return self.config.path

    def reserved_names(self) -> set[str]:
        """File names (lower case) the metadata files take, so no document gets them."""
        return {self.marker.lower()}

    async def metadata_files(
        self,
        app: Application,
        record: FileRecord,
        folder: str,
        files: Sequence[DroppedFile],
        delivered_at: datetime,
    ) -> list[tuple[str, bytes]]:
        """The metadata files (name, content) of a folder whose documents are written; the marker included."""
        raise NotImplementedError

    # -- lifecycle and operator views ----------------------------------------------------------------

    async def start(self) -> None:
        """Remove temporary folders a crash left behind (a missing directory is not fatal here)."""
        try:
            removed = await asyncio.to_thread(self._remove_stale_temp_folders, STALE_TEMP_SECONDS)
        except OSError as exc:
            log.warning("import directory not usable at start target=%s reason=%s", self.name, reason(exc))
            return
        if removed:
            log.info("removed stale temporary folders target=%s count=%d", self.name, removed)

    async def check(self) -> CheckResult:
        """The import directory exists (or can be created) and a probe file can be written and deleted."""
        return await asyncio.to_thread(self._check)

    async def diagnostics(self) -> dict[str, Any]:
        """Configuration plus how many folders wait for the Fachverfahren to take them."""
        state = await super().diagnostics()
        state.update(await asyncio.to_thread(self._directory_state))
        return state

    # -- delivery ------------------------------------------------------------------------------------

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Write the application's folder atomically; a folder already there is the same delivery."""
        app = ctx.application
        if record.application_id != app.id:
            raise Permanent(f"record belongs to application {record.application_id}, the context to {app.id}")
        earlier = _earlier_delivery(ctx)
        folder = earlier.folder if earlier is not None else self._folder_name(record, app)
        try:
            result = await self._drop(record, app, folder, earlier, ctx)
        except OSError as exc:
            raise Retryable(f"cannot write to import directory {self.directory}: {reason(exc)}") from None
        if earlier is None:
            await ctx.checkpoint(
                CHECKPOINT,
                _Checkpoint(folder=result.folder, delivered_at=result.delivered_at).model_dump(mode="json"),
            )
        if result.duplicate:
            log.info(
                "already delivered application=%s target=%s folder=%s consumed=%s",
                app.id,
                self.name,
                result.folder,
                result.consumed,
            )
        else:
            log.info(
                "delivered application=%s target=%s folder=%s files=%d bytes=%d",
                app.id,
                self.name,
                result.folder,
                result.files,
                result.size,
            )
        details: dict[str, Any] = {
            "path": str(self.directory / result.folder),
            "files": result.files,
            "bytes": result.size,
        }
        if result.consumed:
            details["consumed"] = True
        return Delivery(
            target=self.name,
            delivered_at=result.delivered_at,
            reference=result.folder,
            duplicate=result.duplicate,
            details=details,
        )

    def _folder_name(self, record: FileRecord, app: Application) -> str:
        pattern = self.config.folder_name
        values = {
            "application_id": app.id,
            "service": record.service or app.service,
            "external_id": app.external_id,
            "file_number": record.file_number or app.file_number,
        }
        try:
            name = render_folder_name(pattern, values)
        except MissingPlaceholder as exc:
            raise Permanent(
                f"folder_name {pattern!r} needs {{{exc.placeholder}}}, "
                f"which application {app.id} does not have"
            ) from None
        # A later revision of the application (a corrected re-send) is a folder of its own beside the
        # first: the Fachverfahren may have imported that one already.
        return name if record.revision == 1 else f"{name}-r{record.revision}"

    async def _drop(
        self,
        record: FileRecord,
        app: Application,
        folder: str,
        earlier: _Checkpoint | None,
        ctx: DeliveryContext,
    ) -> Published:
        base = self.directory
        await asyncio.to_thread(base.mkdir, parents=True, exist_ok=True)
        final = base / folder
        if earlier is not None:
            # Delivered before: the folder is there, or the Fachverfahren has already taken it.
            existing = await asyncio.to_thread(self._existing, final, app.id, strict=False)
            return existing or Published(
                folder, earlier.delivered_at, files=0, size=0, duplicate=True, consumed=True
            )
        existing = await asyncio.to_thread(self._existing, final, app.id, strict=True)
        if existing is not None:
            return existing
        files = await self._plan(record, ctx)
        temp = base / _temp_name(app.id, record.revision)
        if await asyncio.to_thread(temp.exists):  # an earlier attempt died while writing
            await asyncio.to_thread(shutil.rmtree, temp)
        await asyncio.to_thread(temp.mkdir)
        try:
            dropped = [await self._copy(planned, temp / planned.name, ctx) for planned in files]
            delivered_at = utcnow()
            for name, content in await self.metadata_files(app, record, folder, dropped, delivered_at):
                await asyncio.to_thread(self._write_file, temp / name, content)
            return await asyncio.to_thread(self._publish, temp, final, app.id, dropped, delivered_at)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, temp, ignore_errors=True)
            raise

    async def _plan(self, record: FileRecord, ctx: DeliveryContext) -> list[PlannedFile]:
        """Check every document before anything is written; choose safe, unique file names."""
        taken = self.reserved_names()
        planned: list[PlannedFile] = []
        for index, doc in enumerate(record.documents):
            what = f"document {index} (type {doc.type!r})"
            if doc.blob is None:
                raise Permanent(f"{what} has no content (no blob reference): nothing to deliver")
            if not _BLOB_REF.fullmatch(doc.blob):
                raise Permanent(f"{what} has an invalid blob reference {doc.blob!r}")
            if not await ctx.blobs.exists(doc.blob):
                raise Permanent(f"{what} references {doc.blob}, which is not in the blob store")
            name = unique_name(safe_file_name(doc.name), taken)
            planned.append(PlannedFile(index, doc, name, doc.blob))
        return planned

    async def _copy(self, planned: PlannedFile, target: Path, ctx: DeliveryContext) -> DroppedFile:
        """Stream one blob into the folder chunk by chunk, hashing it on the way."""
        what = f"document {planned.index} (type {planned.document.type!r})"
        sha = hashlib.sha256()
        size = 0
        out = await asyncio.to_thread(open, target, "xb")
        try:
            async for chunk in _blob_chunks(ctx.blobs.read(planned.blob), what, planned.blob):
                sha.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(out.write, chunk)
            await asyncio.to_thread(self._flush, out)
        finally:
            await asyncio.to_thread(out.close)
        digest = sha.hexdigest()
        if "sha256:" + digest != planned.blob:
            raise Permanent(
                f"{what}: the content of {planned.blob} does not match its reference "
                "(blob store damaged, or stored encrypted)"
            )
        doc = planned.document
        return DroppedFile(
            name=planned.name,
            original_name=doc.name,
            document_type=doc.type,
            content=doc.content,
            media_type=doc.media_type,
            size=size,
            sha256=digest,
            fields=doc.fields,
        )

    def _flush(self, out: IO[bytes]) -> None:
        out.flush()
        if self.config.fsync:
            os.fsync(out.fileno())

    def _write_file(self, path: Path, content: bytes) -> None:
        with open(path, "xb") as f:
            f.write(content)
            self._flush(f)

    def _publish(
        self, temp: Path, final: Path, application_id: str, dropped: list[DroppedFile], delivered_at: datetime
    ) -> Published:
        if self.config.fsync:
            fsync_dir(temp)
        try:
            os.rename(temp, final)
        except OSError as exc:
            # Another attempt (a worker whose lease ran out) published the folder first.
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                existing = self._existing(final, application_id, strict=True)
                if existing is not None:
                    shutil.rmtree(temp, ignore_errors=True)
                    return existing
            raise
        if self.config.fsync:
            fsync_dir(final.parent)
        return Published(
            folder=final.name,
            delivered_at=delivered_at,
            files=len(dropped),
            size=sum(d.size for d in dropped),
            duplicate=False,
        )

    def _existing(self, final: Path, application_id: str, *, strict: bool) -> Published | None:
        """The delivery a folder of that name already holds; with `strict`, refuse a foreign folder."""
        if not os.path.lexists(final):
            return None
        try:
            header = _DropHeader.model_validate_json((final / self.marker).read_bytes())
        except (OSError, ValidationError):
            header = None
        if header is not None and header.format == self.format and header.application.id == application_id:
            return Published(
                folder=final.name,
                delivered_at=header.delivered_at,
                files=len(header.files),
                size=sum(f.size for f in header.files),
                duplicate=True,
            )
        if not strict:
            return None
        owner = f"application {header.application.id}" if header is not None else "no Aktenhub delivery"
        raise Permanent(
            f"folder {final.name!r} already exists in the import directory and holds {owner}: "
            "make folder_name unique per application (e.g. include {application_id}), "
            "move the folder away, then replay"
        )

    # -- housekeeping --------------------------------------------------------------------------------

    def _remove_stale_temp_folders(self, older_than: float) -> int:
        """Remove temporary folders older than `older_than` seconds (left by a crash)."""
        now = time.time()
        removed = 0
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if not _is_temp_folder(entry.name):
                    continue
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    if now - entry.stat(follow_symlinks=False).st_mtime < older_than:
                        continue
                    shutil.rmtree(entry.path)
                    removed += 1
                except OSError as exc:
                    # A stale folder that cannot go is ignored by the Fachverfahren and by results.
                    log.warning(
                        "cannot remove temporary folder target=%s folder=%s reason=%s",
                        self.name,
                        entry.name,
                        reason(exc),
                    )
        return removed

    def _check(self) -> CheckResult:
        base = self.directory
        details = {"path": str(base)}
        try:
            base.mkdir(parents=True, exist_ok=True)
            probe = base / f"{PROBE_PREFIX}{secrets.token_hex(6)}"
            self._write_file(probe, b"Aktenhub write probe\n")
            probe.unlink()
            usage = shutil.disk_usage(base)
        except OSError as exc:
            return CheckResult(
                ok=False, message=f"import directory {base} is not usable: {reason(exc)}", details=details
            )
        details["free_bytes"] = str(usage.free)
        details.update({k: str(v) for k, v in self._directory_state().items()})
        return CheckResult(ok=True, message=f"import directory {base} is writable", details=details)

    def _directory_state(self) -> dict[str, Any]:
        waiting = temporary = 0
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    if entry.name.startswith("."):
                        temporary += entry.name.startswith(TEMP_PREFIX)
                    else:
                        waiting += 1
        except OSError as exc:
            return {"directory_error": reason(exc)}
        return {"waiting_folders": waiting, "temporary_folders": temporary}


async def _blob_chunks(chunks: AsyncIterator[bytes], what: str, ref: str) -> AsyncIterator[bytes]:
    """The blob's chunks; a missing blob is permanent, a read error of the store retryable."""
    iterator = aiter(chunks)
    while True:
        try:
            chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except (BlobNotFound, FileNotFoundError):
            raise Permanent(f"{what} references {ref}, which is not in the blob store") from None
        except OSError as exc:
            raise Retryable(f"cannot read {what} from the blob store: {reason(exc)}") from None
        yield chunk


def _earlier_delivery(ctx: DeliveryContext) -> _Checkpoint | None:
    raw = ctx.checkpoints.get(CHECKPOINT)
    if raw is None:
        return None
    try:
        return _Checkpoint.model_validate(raw)
    except ValidationError:
        return None


def _temp_name(application_id: str, revision: int = 1) -> str:
    # One fixed name per application and revision (only the lease holder writes it): a retry finds its
    # leftover by name, without listing an import directory that may hold thousands of folders. Per
    # revision, because a revision taken in while the worker of the one before still writes its folder
    # (that worker's lease is gone, but it runs on) is delivered meanwhile: with one temporary folder for
    # both, each would remove or publish the other's half-written files.
    key = revision_key(application_id, revision)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{TEMP_PREFIX}{_temp_key(key)}-{digest}"


def _temp_key(application_id: str) -> str:
    return clean(application_id)[:80] or hashlib.sha256(application_id.encode()).hexdigest()[:16]


def _is_temp_folder(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and _TEMP_SUFFIX.search(name) is not None


def fsync_dir(path: Path) -> None:
    """fsync a directory (its entries), where the file system can."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some network file systems cannot fsync a directory; the rename is still atomic there.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def reason(exc: OSError) -> str:
    """An OSError as operators read it, without the file name (a document name may be personal)."""
    code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    text = exc.strerror or type(exc).__name__
    hint = {
        errno.ENOSPC: "; the disk is full",
        errno.EDQUOT: "; the disk quota is exhausted",
        errno.EACCES: "; check that the hub's user may write there",
        errno.EPERM: "; check that the hub's user may write there",
        errno.EROFS: "; the file system is mounted read-only",
    }.get(exc.errno or 0, "")
    return f"{text} ({code}){hint}"
