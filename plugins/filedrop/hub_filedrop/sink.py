"""The file drop sink: each application becomes one complete folder in a Fachverfahren's import directory.

A folder appears under its final name only when it is complete: it is built in a temporary dot-folder
inside the import directory, every file and the folder are fsync'd, then one `os.rename` publishes it and
the import directory is fsync'd. Delivering again finds the folder (or the checkpoint of a delivery the
Fachverfahren has already consumed) and writes nothing. The format is described in README.md.
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
from collections.abc import AsyncGenerator, Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub import (
    Application,
    BlobNotFound,
    Blobs,
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    Delivery,
    DeliveryContext,
    Document,
    DocumentContent,
    FileRecord,
    Manifest,
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
FORMAT: Final = "aktenhub.filedrop/1"
METADATA_FILE = "application.json"
TEMP_PREFIX = ".tmp-"
PROBE_PREFIX = ".probe-"
CHECKPOINT = "filedrop"
CHUNK = 256 * 1024
BLOB_READ_SECONDS = 120.0  # longest wait for one chunk of a blob
T = TypeVar("T")
# Temporary folders older than this are left by a crash; younger ones may belong to another hub process
# writing into the same directory right now.
STALE_TEMP_SECONDS = 3600.0
_TEMP_SUFFIX = re.compile(r"-[0-9a-f]{12}\Z")
_BLOB_REF = re.compile(r"sha256:[0-9a-f]{64}")


class FileDropConfig(ConnectorConfig):
    """Settings of a file drop target."""

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


class FileDropPayload(BaseModel):
    """What a mapping gives a file drop target in `payloads.<target>`."""

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, str] = Field(
        default_factory=dict,
        description="index data for the Fachverfahren's import (e.g. its own Aktenzeichen field, "
        "Gemarkung/Flur), written as `fields` into application.json",
    )


class DroppedFile(BaseModel):
    """One file of a delivered folder, as listed in application.json."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="file name inside the folder (safe, unique)")
    original_name: str = Field(description="the document's name in the record, unchanged")
    document_type: str
    content: DocumentContent
    media_type: str
    size: int
    sha256: str
    fields: dict[str, str] = Field(default_factory=dict)


class DropDocument(BaseModel):
    """The content of application.json, format ``aktenhub.filedrop/1``."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["aktenhub.filedrop/1"] = FORMAT
    delivered_at: datetime
    target: str = Field(description="name of the file drop connector in the hub's configuration")
    folder: str
    application: Application
    record: FileRecord
    fields: dict[str, str] = Field(default_factory=dict, description="the mapping's payload fields")
    files: list[DroppedFile]


class _ApplicationRef(BaseModel):
    id: str


class _FileSize(BaseModel):
    size: int


class _DropHeader(BaseModel):
    """What the sink reads back from an existing folder (lenient: later minor additions are fine)."""

    format: str
    delivered_at: datetime
    application: _ApplicationRef
    files: list[_FileSize]


class _Checkpoint(BaseModel):
    folder: str
    delivered_at: datetime


@dataclass(frozen=True)
class _PlannedFile:
    index: int
    document: Document
    name: str
    blob: str


@dataclass(frozen=True)
class _Result:
    folder: str
    delivered_at: datetime
    files: int
    size: int
    duplicate: bool
    consumed: bool = False


class _ThreadReader:
    """Blob content for the worker thread that writes a folder: each chunk is read on the event loop."""

    def __init__(self, blobs: Blobs, loop: asyncio.AbstractEventLoop) -> None:
        self.blobs = blobs
        self.loop = loop

    def chunks(self, ref: str) -> Iterator[bytes]:
        """The blob's content in chunks (call from a worker thread, never from the loop)."""
        stream = self.blobs.read(ref, CHUNK)

        async def following() -> bytes | None:
            return await anext(stream, None)

        try:
            while (chunk := self._on_loop(following())) is not None:
                yield chunk
        finally:
            if isinstance(stream, AsyncGenerator):
                self._on_loop(stream.aclose())

    def _on_loop(self, step: Coroutine[Any, Any, T]) -> T:
        # Bounded: a loop that stopped (the hub shutting down) must not keep this thread forever.
        try:
            return asyncio.run_coroutine_threadsafe(step, self.loop).result(timeout=BLOB_READ_SECONDS)
        except TimeoutError:
            raise Retryable(f"the blob store gave no content within {BLOB_READ_SECONDS:g}s") from None


def _blob_of(index: int, doc: Document) -> str:
    """A document's blob reference; a document without a valid one can never be delivered."""
    what = f"document {index} (type {doc.type!r})"
    if doc.blob is None:
        raise Permanent(f"{what} has no content (no blob reference): nothing to deliver")
    if not _BLOB_REF.fullmatch(doc.blob):
        raise Permanent(f"{what} has an invalid blob reference {doc.blob!r}")
    return doc.blob


async def _check_documents(record: FileRecord, blobs: Blobs) -> None:
    """Every document's content is in the blob store, before anything is written."""
    for index, doc in enumerate(record.documents):
        if not await blobs.exists(_blob_of(index, doc)):
            what = f"document {index} (type {doc.type!r})"
            raise Permanent(f"{what} references {doc.blob}, which is not in the blob store")


class FileDropSink(Sink[FileDropConfig]):
    """Delivers each application as one folder (application.json + its files) into an import directory."""

    kind = "filedrop"
    Config: ClassVar[type[ConnectorConfig]] = FileDropConfig
    Payload = FileDropPayload
    manifest = Manifest(
        name="File drop",
        version=VERSION,
        standards=("Aktenhub file-drop format 1",),
        description="Writes each application atomically as a folder into a Fachverfahren's import "
        "directory (application.json with application, record and file list, plus the files).",
    )

    def __init__(self, config: FileDropConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)

    @property
    def directory(self) -> Path:
        """The import directory."""
        return self.config.path

    # -- lifecycle and operator views ----------------------------------------------------------------

    async def start(self) -> None:
        """Remove temporary folders a crash left behind (a missing directory is not fatal here)."""
        try:
            removed = await asyncio.to_thread(self._remove_stale_temp_folders, STALE_TEMP_SECONDS)
        except OSError as exc:
            log.warning("import directory not usable at start target=%s reason=%s", self.name, _reason(exc))
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
        if earlier is None:
            await _check_documents(record, ctx.blobs)
        # The whole folder is written in one worker thread: file I/O and fsync block. The blobs are
        # read on the event loop, chunk by chunk, as the thread asks for them.
        reader = _ThreadReader(ctx.blobs, asyncio.get_running_loop())
        result = await asyncio.to_thread(self._drop, record, app, folder, earlier, reader)
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
        values = {
            "application_id": app.id,
            "service": record.service or app.service,
            "external_id": app.external_id,
            "file_number": record.file_number or app.file_number,
        }
        try:
            name = render_folder_name(self.config.folder_name, values)
        except MissingPlaceholder as exc:
            raise Permanent(
                f"folder_name {self.config.folder_name!r} needs {{{exc.placeholder}}}, "
                f"which application {app.id} does not have"
            ) from None
        # A later revision of the application (a corrected re-send) is a folder of its own beside the
        # first: the Fachverfahren may have imported that one already.
        return name if record.revision == 1 else f"{name}-r{record.revision}"

    def _drop(
        self,
        record: FileRecord,
        app: Application,
        folder: str,
        earlier: _Checkpoint | None,
        reader: _ThreadReader,
    ) -> _Result:
        base = self.directory
        try:
            base.mkdir(parents=True, exist_ok=True)
            final = base / folder
            if earlier is not None:
                # Delivered before: the folder is there, or the Fachverfahren has already taken it.
                existing = self._existing(final, app.id, strict=False)
                return existing or _Result(
                    folder, earlier.delivered_at, files=0, size=0, duplicate=True, consumed=True
                )
            existing = self._existing(final, app.id, strict=True)
            if existing is not None:
                return existing
            files = self._plan(record)
            leftover = base / _temp_name(app.id, record.revision)
            if leftover.exists():  # an earlier attempt died while writing
                shutil.rmtree(leftover)
            return self._write(base, folder, record, app, files, reader)
        except OSError as exc:
            raise Retryable(f"cannot write to import directory {base}: {_reason(exc)}") from None

    def _plan(self, record: FileRecord) -> list[_PlannedFile]:
        """Choose safe, unique file names (the documents were checked by `_check_documents`)."""
        taken = {METADATA_FILE}
        planned: list[_PlannedFile] = []
        for index, doc in enumerate(record.documents):
            name = unique_name(safe_file_name(doc.name), taken)
            planned.append(_PlannedFile(index, doc, name, _blob_of(index, doc)))
        return planned

    def _write(
        self,
        base: Path,
        folder: str,
        record: FileRecord,
        app: Application,
        files: list[_PlannedFile],
        reader: _ThreadReader,
    ) -> _Result:
        temp = base / _temp_name(app.id, record.revision)
        temp.mkdir()
        try:
            dropped = [self._copy(planned, temp / planned.name, reader) for planned in files]
            delivered_at = utcnow()
            document = DropDocument(
                delivered_at=delivered_at,
                target=self.name,
                folder=folder,
                application=app,
                record=record,
                fields=self.payload(record, FileDropPayload).fields,
                files=dropped,
            )
            with open(temp / METADATA_FILE, "xb") as f:
                f.write(document.model_dump_json(indent=2).encode("utf-8"))
                self._sync(f.fileno())
            if self.config.fsync:
                _fsync_dir(temp)
            final = base / folder
            try:
                os.rename(temp, final)
            except OSError as exc:
                # Another attempt (a worker whose lease ran out) published the folder first.
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    existing = self._existing(final, app.id, strict=True)
                    if existing is not None:
                        shutil.rmtree(temp, ignore_errors=True)
                        return existing
                raise
            if self.config.fsync:
                _fsync_dir(base)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return _Result(
            folder=folder,
            delivered_at=delivered_at,
            files=len(dropped),
            size=sum(d.size for d in dropped),
            duplicate=False,
        )

    def _copy(self, planned: _PlannedFile, target: Path, reader: _ThreadReader) -> DroppedFile:
        """Stream one blob into the folder chunk by chunk, hashing it on the way."""
        what = f"document {planned.index} (type {planned.document.type!r})"
        sha = hashlib.sha256()
        size = 0
        with open(target, "xb") as out:
            try:
                for chunk in reader.chunks(planned.blob):
                    sha.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            except BlobNotFound:
                raise Permanent(f"{what} references {planned.blob}, which is not in the blob store") from None
            out.flush()
            self._sync(out.fileno())
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

    def _existing(self, final: Path, application_id: str, *, strict: bool) -> _Result | None:
        """The delivery a folder of that name already holds; with `strict`, refuse a foreign folder."""
        if not os.path.lexists(final):
            return None
        try:
            header = _DropHeader.model_validate_json((final / METADATA_FILE).read_bytes())
        except (OSError, ValidationError):
            header = None
        if header is not None and header.format == FORMAT and header.application.id == application_id:
            return _Result(
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

    def _sync(self, fd: int) -> None:
        if self.config.fsync:
            os.fsync(fd)

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
                        _reason(exc),
                    )
        return removed

    def _check(self) -> CheckResult:
        base = self.directory
        details = {"path": str(base)}
        try:
            base.mkdir(parents=True, exist_ok=True)
            probe = base / f"{PROBE_PREFIX}{secrets.token_hex(6)}"
            with open(probe, "xb") as f:
                f.write(b"Aktenhub file drop write probe\n")
                self._sync(f.fileno())
            probe.unlink()
            usage = shutil.disk_usage(base)
        except OSError as exc:
            return CheckResult(
                ok=False, message=f"import directory {base} is not usable: {_reason(exc)}", details=details
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
            return {"directory_error": _reason(exc)}
        return {"waiting_folders": waiting, "temporary_folders": temporary}


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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some network file systems cannot fsync a directory; the rename is still atomic there.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _reason(exc: OSError) -> str:
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
