"""The sink: files a record into an xdomea-capable DMS as ``FVDaten.SGOAblegen.0605`` (xdomea 3.0.0).

Each delivery builds the message (see `message`), validates it against ``xdomea.xsd`` from the hub's
schema directory — an invalid message is never sent: `Permanent` with the first findings — packs it
with the primary files into ``<ProzessID>_FVDaten.SGOAblegen.0605.zip`` and hands the ZIP over:

- ``mode: directory`` — atomically into the DMS's import directory (see `transport.publish`); a ZIP of
  that name already there is the same delivery, so re-delivery leaves one ZIP;
- ``mode: http`` — a multipart upload with Basic auth. The ProzessID is derived from the application
  id, so a repeated upload carries the same ProzessID and the DMS recognises it (answering e.g.
  200 "already imported").

Either way the delivery is checkpointed: a retry after success writes or sends nothing again.
Logs carry ids, counts and sizes, never index data or document names.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import secrets
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ValidationError

from hub import (
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    Delivery,
    DeliveryContext,
    FileRecord,
    Manifest,
    Permanent,
    Retryable,
    Sink,
    utcnow,
)
from hub.outbound import BasicAuth, HttpEndpoint

from . import __version__
from .answers import IMPORT, RECEIPT, AnswerInvalid, answer_file_name, read_import, read_receipt
from .config import XdomeaConfig
from .message import MESSAGE_TYPE, Message, MessageBuilder, process_id
from .package import Package, remove_quietly, write_package
from .schema import VERSION as XDOMEA_VERSION
from .schema import Schema, SchemaUnavailable, load_schema
from .transport import Answer, Unanswered, Uploader, publish

log = logging.getLogger(__name__)

CHECKPOINT = "xdomea"
TEMP_SUFFIX = ".part"
PROBE_PREFIX = ".probe-"
# Temporary files older than this were left by a crash; younger ones may be written right now.
STALE_TEMP_SECONDS = 3600.0
MAX_ANSWER_FILE = 1024**2  # bytes of a 0629/0630 read


class _Checkpoint(BaseModel):
    process_id: str
    package: str
    delivered_at: datetime
    import_id: str | None = None
    # sending: the upload began, its outcome is unknown (written before the upload, so a crash or a
    # lost answer never leads to a second one); unsent: the DMS certainly did not get it; delivered:
    # handed over; confirmed: the DMS's 0630 reports the import. Older checkpoints were "delivered".
    state: Literal["sending", "unsent", "delivered", "confirmed"] = "delivered"
    duplicate: bool = False
    file_number: str | None = None
    details: dict[str, Any] = {}


@dataclass
class _Outcome:
    duplicate: bool
    details: dict[str, Any] = field(default_factory=dict)
    import_id: str | None = None


class XdomeaSink(Sink[XdomeaConfig]):
    """Files each record as one xdomea 0605 message (Akte, Vorgang, documents, primary files in a ZIP)."""

    kind: ClassVar[str] = "xdomea"
    is_efile: ClassVar[bool] = True
    Config: ClassVar[type[ConnectorConfig]] = XdomeaConfig
    manifest: ClassVar[Manifest] = Manifest(
        name="xdomea",
        version=__version__,
        standards=(f"xdomea {XDOMEA_VERSION} ({MESSAGE_TYPE})",),
        description="Akte, Vorgang and documents with their primary files as FVDaten.SGOAblegen.0605 "
        "in a ZIP, into an import directory or uploaded over HTTP (multipart, Basic auth)",
    )

    def __init__(self, config: XdomeaConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.builder = MessageBuilder(config, __version__)
        self.uploader: Uploader | None = None
        if config.mode == "http":
            assert config.url is not None and config.username is not None and config.password is not None
            auth = BasicAuth(username=config.username, password=config.password)
            endpoint = HttpEndpoint(base_url=config.url, auth=auth, timeout_seconds=config.timeout_seconds)
            self.uploader = Uploader(context.outbound(endpoint, system="the DMS"), config.file_field)

    @property
    def directory(self) -> Path:
        """Where ZIPs are written: the import directory (directory mode) or the work directory (http)."""
        if self.config.mode == "directory":
            assert self.config.path is not None
            return self.config.path
        return self.config.work_dir or self.context.data_dir / "xdomea" / self.name

    # -- lifecycle and operator views ----------------------------------------------------------------

    async def start(self) -> None:
        """Remove temporary ZIPs a crash left behind (a missing directory is not fatal here)."""
        try:
            removed = await asyncio.to_thread(self._remove_stale_temp_files, STALE_TEMP_SECONDS)
        except OSError as exc:
            log.warning("xdomea directory not usable at start target=%s reason=%s", self.name, exc.strerror)
            return
        if removed:
            log.info("removed stale temporary ZIPs target=%s count=%d", self.name, removed)

    async def check(self) -> CheckResult:
        """The schema compiles; the import directory is writable, or the import URL takes our credentials."""
        details: dict[str, str] = {"mode": self.config.mode}
        try:
            schema = await self._schema()
        except Permanent as exc:
            return CheckResult(ok=False, message=str(exc), details=details)
        details["schema"] = str(schema.path)
        if self.config.mode == "directory":
            return await asyncio.to_thread(self._check_directory, details)
        assert self.uploader is not None
        details["url"] = self.uploader.url
        try:
            status, _ = await self.uploader.probe()
        except Retryable as exc:
            return CheckResult(ok=False, message=str(exc), details=details)
        details["status"] = str(status)
        if status in (401, 403):
            return CheckResult(
                ok=False,
                message=f"the DMS refused user {self.uploader.username!r} ({status})",
                details=details,
            )
        if 200 <= status < 300:
            return CheckResult(ok=True, message=f"import URL {self.uploader.url} answers", details=details)
        if status == 405:
            return CheckResult(
                ok=True,
                message=f"import URL {self.uploader.url} is reachable "
                "(GET not allowed there: credentials unverified)",
                details=details,
            )
        return CheckResult(ok=False, message=f"import URL answered {status}", details=details)

    async def diagnostics(self) -> dict[str, Any]:
        """Configuration (without the password) plus, in directory mode, how many ZIPs wait for the DMS."""
        state = await super().diagnostics()
        if self.config.mode == "directory":
            state.update(await asyncio.to_thread(self._directory_state))
        return state

    # -- delivery ------------------------------------------------------------------------------------

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Build, validate, pack and hand over the record's 0605 message; once per application."""
        app = ctx.application
        if record.application_id != app.id:
            raise Permanent(f"record belongs to application {record.application_id}, the context to {app.id}")
        pid = process_id(app.id, record.revision)
        receipts = self.config.receipt_requested
        earlier = _earlier_delivery(ctx, pid)
        if earlier is not None and (
            earlier.state == "confirmed" or (earlier.state == "delivered" and not receipts)
        ):
            log.info("already delivered application=%s target=%s prozess_id=%s", app.id, self.name, pid)
            return self._delivery(
                pid,
                record.file_number,
                _Outcome(True, {"package": earlier.package}, earlier.import_id),
                earlier.delivered_at,
            )
        if earlier is None or earlier.state == "unsent":
            earlier = await self._hand_over(record, ctx, pid)
        elif earlier.state == "sending":
            log.warning(
                "earlier upload's outcome unknown, not sent again application=%s target=%s prozess_id=%s",
                app.id,
                self.name,
                pid,
            )
            if not receipts:
                raise Permanent(
                    f"the upload of ProzessID {pid} got no answer: the DMS may have imported it. It is not "
                    "sent again, so a DMS without duplicate detection cannot import it twice; check the "
                    "DMS for this ProzessID (turn on receipt_requested to have the DMS's answers decide)"
                )
        if receipts:
            await self._confirmed(pid)
            earlier = earlier.model_copy(update={"state": "confirmed"})
            await ctx.checkpoint(CHECKPOINT, earlier.model_dump(mode="json"))
        return self._delivery(
            pid,
            earlier.file_number or record.file_number,
            _Outcome(earlier.duplicate, earlier.details, earlier.import_id),
            earlier.delivered_at,
        )

    async def _hand_over(self, record: FileRecord, ctx: DeliveryContext, pid: str) -> _Checkpoint:
        """Build, validate, pack and hand over the 0605; the checkpoint of the delivery (durable)."""
        app = ctx.application
        schema = await self._schema()
        created_at = utcnow()
        message = self.builder.build(record, app, created_at)
        findings = await asyncio.to_thread(schema.findings, message.root)
        if findings:
            raise Permanent(
                f"the built {MESSAGE_TYPE} is not valid against xdomea.xsd, so it is not sent: "
                + "; ".join(findings[:3])
            )
        missing = [f for f in message.files if not await ctx.blobs.exists(f.blob)]
        if missing:
            raise Permanent(
                f"document {missing[0].index} references {missing[0].blob}, which is not in the blob store"
            )
        xml = message.serialize()
        checkpoint = _Checkpoint(
            process_id=pid,
            package=message.package_name,
            delivered_at=created_at,
            state="sending",
            file_number=message.file_number,
        )
        if self.config.mode == "directory":
            outcome = await self._to_directory(message, xml, ctx, created_at)
        else:
            outcome = await self._upload(message, xml, ctx, created_at, checkpoint)
        checkpoint = checkpoint.model_copy(
            update={
                "state": "delivered",
                "import_id": outcome.import_id,
                "duplicate": outcome.duplicate,
                "details": outcome.details,
            }
        )
        await ctx.checkpoint(CHECKPOINT, checkpoint.model_dump(mode="json"))
        log.info(
            "delivered application=%s target=%s prozess_id=%s mode=%s documents=%d duplicate=%s",
            app.id,
            self.name,
            pid,
            self.config.mode,
            len(message.files),
            outcome.duplicate,
        )
        return checkpoint

    async def _confirmed(self, pid: str) -> None:
        """Return once the DMS's 0630 reports the import; `Retryable` while it has not answered."""
        schema = await self._schema()
        imported = await self._dms_answer(pid, IMPORT)
        try:
            if imported is None:
                received = await self._dms_answer(pid, RECEIPT)
                if received is not None:
                    read_receipt(received, pid, schema)
                so_far = "it confirmed the receipt (0629)" if received else "no receipt (0629) either"
                raise Retryable(
                    f"waiting for the DMS's import confirmation ({IMPORT}) of ProzessID {pid}: {so_far}"
                )
            outcome = read_import(imported, pid, schema)
        except AnswerInvalid as exc:
            raise Permanent(f"{exc}; ProzessID {pid}") from None
        if not outcome.success:
            reasons = "; ".join(outcome.reasons) or "no reason given"
            raise Permanent(f"the DMS refused the import of ProzessID {pid} ({IMPORT}): {reasons}")
        log.info("import confirmed target=%s prozess_id=%s", self.name, pid)

    async def _dms_answer(self, pid: str, message: str) -> bytes | None:
        """The DMS's answer file for the ProzessID, None while there is none."""
        name = answer_file_name(pid, message)
        if self.uploader is not None:
            assert self.config.answers_url is not None
            return await self.uploader.fetch(
                f"{self.config.answers_url.rstrip('/')}/{name}", f"reading {name}"
            )
        assert self.config.answer_path is not None
        path = self.config.answer_path / name
        try:
            return await asyncio.to_thread(_read_small, path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise Retryable(f"cannot read {path}: {exc.strerror}") from None

    def _delivery(
        self, pid: str, file_number: str | None, outcome: _Outcome, delivered_at: datetime
    ) -> Delivery:
        correlations = {"prozess_id": pid}
        if outcome.import_id:
            correlations["import_id"] = outcome.import_id
        return Delivery(
            target=self.name,
            delivered_at=delivered_at,
            reference=pid,
            file_number=file_number,
            correlations=correlations,
            duplicate=outcome.duplicate,
            details={"mode": self.config.mode, **outcome.details},
        )

    async def _schema(self) -> Schema:
        try:
            return await asyncio.to_thread(load_schema, self.context.schemas)
        except SchemaUnavailable as exc:
            raise Permanent(f"{exc}; fix the schema directory, then replay") from None

    async def _to_directory(
        self, message: Message, xml: bytes, ctx: DeliveryContext, created_at: datetime
    ) -> _Outcome:
        base = self.directory
        final = base / message.package_name
        details: dict[str, Any] = {"package": message.package_name, "path": str(final)}
        try:
            await asyncio.to_thread(base.mkdir, parents=True, exist_ok=True)
            if await asyncio.to_thread(final.exists):
                return _Outcome(True, details)
        except OSError as exc:
            raise Retryable(f"import directory {base} is not usable: {exc.strerror}") from None
        package = await self._pack(base, message, xml, ctx, created_at, fsync=self.config.fsync)
        try:
            published = await asyncio.to_thread(publish, package.path, final, self.config.fsync)
        except OSError as exc:
            raise Retryable(f"cannot publish {final.name} in {base}: {exc.strerror}") from None
        details.update(_package_details(package))
        # Not published: another attempt (a worker whose lease ran out) was first with the same ZIP.
        return _Outcome(not published, details)

    async def _upload(
        self, message: Message, xml: bytes, ctx: DeliveryContext, created_at: datetime, sending: _Checkpoint
    ) -> _Outcome:
        assert self.uploader is not None
        work = self.directory
        try:
            await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise Retryable(f"work directory {work} is not usable: {exc.strerror}") from None
        package = await self._pack(work, message, xml, ctx, created_at, fsync=False)
        try:
            # Durable before the first byte leaves: a crash or a lost answer must not lead to a second upload.
            await ctx.checkpoint(CHECKPOINT, sending.model_dump(mode="json"))
            try:
                answer: Answer = await self.uploader.upload(package.path, message.package_name, "upload")
            except Unanswered:
                raise  # may have arrived: the checkpoint stays "sending"
            except (Retryable, Permanent):
                # Answered with an error or never connected: the DMS did not take it; may be sent again.
                await ctx.checkpoint(
                    CHECKPOINT, sending.model_copy(update={"state": "unsent"}).model_dump(mode="json")
                )
                raise
        finally:
            remove_quietly(package.path)
        details: dict[str, Any] = {
            "package": message.package_name,
            "url": self.uploader.url,
            "status": answer.status,
        }
        details.update(_package_details(package))
        return _Outcome(answer.already_imported, details, answer.import_id)

    async def _pack(
        self,
        directory: Path,
        message: Message,
        xml: bytes,
        ctx: DeliveryContext,
        created_at: datetime,
        *,
        fsync: bool,
    ) -> Package:
        temp = directory / f".{message.package_name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        compression = zipfile.ZIP_DEFLATED if self.config.compression == "deflated" else zipfile.ZIP_STORED
        return await write_package(
            temp, message, xml, ctx.blobs, compression=compression, fsync=fsync, created_at=created_at
        )

    # -- housekeeping --------------------------------------------------------------------------------

    def _remove_stale_temp_files(self, older_than: float) -> int:
        directory = self.directory
        if not directory.is_dir():
            return 0
        now = time.time()
        removed = 0
        with os.scandir(directory) as entries:
            for entry in entries:
                if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
                    continue
                try:
                    if entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime >= older_than:
                        Path(entry.path).unlink()
                        removed += 1
                except OSError:
                    continue
        return removed

    def _check_directory(self, details: dict[str, str]) -> CheckResult:
        base = self.directory
        details["path"] = str(base)
        try:
            base.mkdir(parents=True, exist_ok=True)
            probe = base / f"{PROBE_PREFIX}{secrets.token_hex(6)}"
            probe.write_bytes(b"Aktenhub xdomea write probe\n")
            probe.unlink()
            details["free_bytes"] = str(shutil.disk_usage(base).free)
        except OSError as exc:
            return CheckResult(
                ok=False, message=f"import directory {base} is not usable: {exc.strerror}", details=details
            )
        details.update({k: str(v) for k, v in self._directory_state().items()})
        answers = self.config.answer_path
        if answers is not None:
            details["answer_path"] = str(answers)
            if not (answers.is_dir() and os.access(answers, os.R_OK | os.X_OK)):
                return CheckResult(
                    ok=False,
                    message=f"answer directory {answers} is not a readable directory",
                    details=details,
                )
        return CheckResult(ok=True, message=f"import directory {base} is writable", details=details)

    def _directory_state(self) -> dict[str, Any]:
        try:
            waiting = sum(
                1 for p in self.directory.iterdir() if p.name.endswith(f"_{MESSAGE_TYPE}.zip") and p.is_file()
            )
        except OSError as exc:
            return {"directory_error": exc.strerror or type(exc).__name__}
        return {"waiting_packages": waiting}


def _earlier_delivery(ctx: DeliveryContext, pid: str) -> _Checkpoint | None:
    raw = ctx.checkpoints.get(CHECKPOINT)
    if raw is None:
        return None
    try:
        earlier = _Checkpoint.model_validate(raw)
    except ValidationError:
        return None
    return earlier if earlier.process_id == pid else None


def _read_small(path: Path) -> bytes:
    with path.open("rb") as f:
        data = f.read(MAX_ANSWER_FILE + 1)
    if len(data) > MAX_ANSWER_FILE:
        raise OSError(errno.EFBIG, f"larger than {MAX_ANSWER_FILE} bytes")
    return data


def _package_details(package: Package) -> dict[str, Any]:
    return {
        "bytes": package.size,
        "files": len(package.files),
        "content_bytes": sum(f.size for f in package.files),
    }
