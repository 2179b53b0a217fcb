"""``type: scanstation``: the central scan station's hot folder — each scanned document one application.

A poll looks for complete batches (`hotfolder`), reads each (`batch`: index file or cover sheets),
hands every document to the core's intake and, only after the last one's durable commit, moves the
batch into ``done/``. A crash in between leaves the batch where it was; the next poll reads it again
and the intake, idempotent on ``<batch>/<document number>/<sha256 of the content>``, takes nothing twice.
A batch that cannot be taken (hostile or broken index, missing or unreadable file, a document no route
takes) is recorded as a held message (`ConnectorContext.held`, code and reason), then moved into
``failed/`` with a reason file; the poll goes on with the next batch.

Where a document goes is decided in two places, both visible in its timeline: here, a document with
neither Aktenzeichen nor person gets the `tray_service` (its received event names that service, the
form says why); a document with a key goes to the route of its document type, whose e-file sink finds
the Akte or, with ``akte_not_found: tray`` (enaio), puts it into the tray (its delivery says so).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import Any, ClassVar

from hub import (
    Application,
    Attachment,
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    HeldState,
    Intake,
    IntakeFunc,
    Manifest,
    OriginalSubmission,
    Party,
    Permanent,
    Source,
)

from . import __version__
from .batch import BatchRefused, ScannedDocument, read_batch
from .config import ScanStationConfig
from .hotfolder import Batch, HotFolder

log = logging.getLogger(__name__)

STANDARDS = (
    "BSI TR-03138 (TR-RESISCAN): scan metadata kept with each document",
    "Kofax Capture XML export / semicolon CSV index files",
)
INTAKE_REFUSED = "intake_refused"
TRAY = "posteingangskorb"


class ScanStationSource(Source[ScanStationConfig]):
    """Takes scanned post from the scan station's hot folder, one application per document."""

    kind = "scanstation"
    manifest = Manifest(
        name="Scan station hot folder",
        version=__version__,
        standards=STANDARDS,
        description="batches of scanned PDFs with an XML/CSV index or barcode cover sheets; each document "
        "an application for its Akte (by Aktenzeichen or person) or the clerk's tray",
    )
    Config: ClassVar[type[ConnectorConfig]] = ScanStationConfig

    def __init__(self, config: ScanStationConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.poll_interval = config.poll_seconds
        self.folder = HotFolder(
            config.hot_folder,
            config.done,
            config.failed,
            marker=config.marker,
            stable_seconds=config.stable_seconds,
            group_pattern=config.group_pattern,
        )

    async def start(self) -> None:
        """Create done/ and failed/ beside the batches (refused when on another filesystem)."""
        try:
            await asyncio.to_thread(self.folder.prepare)
        except (OSError, ValueError) as exc:
            raise Permanent(f"scan station hot folder: {exc}") from None

    async def check(self) -> CheckResult:
        """The hot folder, done/ and failed/ exist on one filesystem and can be written."""
        try:
            await asyncio.to_thread(self.folder.prepare)
        except (OSError, ValueError) as exc:
            return CheckResult(ok=False, message=str(exc))
        return CheckResult(
            ok=True,
            message=f"hot folder {self.config.hot_folder} ready",
            details={"done": str(self.config.done), "failed": str(self.config.failed)},
        )

    async def poll(self, intake: IntakeFunc) -> int:
        """Take every complete batch; returns how many new applications were taken in."""
        batches = await asyncio.to_thread(self.folder.complete)
        taken = 0
        for batch in batches[: self.config.max_batches_per_poll]:
            taken += await self._take(batch, intake)
        return taken

    async def _take(self, batch: Batch, intake: IntakeFunc) -> int:
        try:
            plan = await asyncio.to_thread(read_batch, batch.path, self.config)
        except BatchRefused as exc:
            await self._fail(batch, exc.code, exc.reason)
            return 0
        documents = plan.documents()
        new = count = 0
        while True:
            try:
                document = await asyncio.to_thread(next, documents, None)
            except BatchRefused as exc:  # changed since it was checked, or PDFium refuses what pypdf read
                await self._fail(batch, exc.code, f"{exc.reason} ({count} documents taken before)")
                return new
            if document is None:
                break
            count += 1
            application = await self.application(batch, document)
            try:
                outcome = await intake(Intake(application))
            except Permanent as exc:  # e.g. no route takes the service: an operator must look
                reason = f"document {document.index.number}: {exc} ({count - 1} documents taken before)"
                await self._fail(batch, INTAKE_REFUSED, reason)
                return new
            new += 0 if outcome.duplicate else 1
        done = await asyncio.to_thread(self.folder.take_done, batch)
        log.info(
            "scan batch taken source=%s batch=%s documents=%d new=%d",
            self.name,
            done.name,
            count,
            new,
        )
        return new

    async def _fail(self, batch: Batch, code: str, reason: str) -> None:
        # Recorded first, then moved: a crash in between finds the batch again and records it again.
        # A name an operator decided on before (closed, kept) is not reused: this failure is a new one.
        held = await self.context.held.lookup(self.folder.failed_candidates(batch))
        decided = {k for k, v in held.items() if v.state in (HeldState.CLOSED, HeldState.KEPT)}
        name = await asyncio.to_thread(self.folder.failed_name, batch, decided)
        await self.context.held.quarantine(name, sender=None, code=code, reason=reason)
        await asyncio.to_thread(self.folder.take_failed, batch, name, f"{code}: {reason}")

    async def close_upstream(self, message_id: str) -> None:
        """Delete a failed batch for good (an operator decided so); one already gone counts as deleted."""
        target = self.config.failed / message_id
        if "/" in message_id or "\\" in message_id or message_id in ("", ".", ".."):
            raise Permanent(f"{message_id[:80]!r} is no failed batch's name")
        await asyncio.to_thread(shutil.rmtree, target, ignore_errors=True)

    async def application(self, batch: Batch, document: ScannedDocument) -> Application:
        """The application for one scanned document (its content and original stored as blobs)."""
        item = document.index
        blobs = self.context.blobs
        content = await blobs.write_bytes(document.content)
        original = content
        if document.original is not document.content:
            original = await blobs.write_bytes(document.original)
        batch_id = item.batch or batch.name
        person = item.person
        by_person = bool(person.family_name and person.birth_date)
        assigned_by = "aktenzeichen" if item.aktenzeichen else "person" if by_person else TRAY
        service = self.config.tray_service
        if assigned_by != TRAY:
            service = self.config.services.get(item.document_type or "", self.config.service)
        name = _document_name(batch_id, item.number, item.file, document.origin)
        form: dict[str, Any] = {
            "aktenzeichen": item.aktenzeichen or "",
            "dokumentart": item.document_type or "",
            "barcode": item.barcode or "",
            "person": {
                "familienname": person.family_name or "",
                "vorname": person.given_name or "",
                "geburtsdatum": person.birth_date or "",
            },
            "zuordnung": assigned_by,
            "scan": {
                "stapel": batch_id,
                "dokument_nr": item.number,
                "datei": item.file,
                "herkunft": "Trennblatt" if document.origin == "cover_sheet" else "Indexdatei",
                # every key present (the journal keeps no None): mapping templates need no defaults
                "seiten": item.pages if item.pages is not None else "",
                "scanzeitpunkt": item.scan.scanned_at or "",
                "bediener": item.scan.operator or "",
                "scanner": item.scan.device or "",
                "aufloesung_dpi": item.scan.resolution_dpi if item.scan.resolution_dpi is not None else "",
                "farbmodus": item.scan.colour or "",
                "sha256": content.sha256,
                "original_sha256": original.sha256,
            },
            "index": dict(item.extra),
        }
        if assigned_by == TRAY:
            form["zuordnung_grund"] = "weder Aktenzeichen noch Person (Name und Geburtsdatum) erkannt"
        return Application(
            source=self.name,
            external_id=f"{batch_id}/{item.number}/{document.sha256[:16]}",
            service=service,
            applicant=Party(
                family_name=person.family_name, given_name=person.given_name, birth_date=person.birth_date
            ),
            form=form,
            attachments=[
                Attachment(
                    name=name,
                    media_type=document.media_type,
                    size=content.size,
                    sha256=content.sha256,
                    blob=content.ref,
                    field="scan",
                )
            ],
            original=OriginalSubmission(
                media_type=document.media_type, blob=original.ref, size=original.size, sha256=original.sha256
            ),
        )

    async def diagnostics(self) -> dict[str, Any]:
        """Configuration and how many entries wait in the hot folder (no names: they may be personal)."""
        found = await super().diagnostics()
        try:
            found["entries_waiting"] = await asyncio.to_thread(self.folder.waiting)
        except OSError as exc:
            found["hot_folder_error"] = str(exc)
        return found


def _document_name(batch: str, number: int, file: str, origin: str) -> str:
    if origin == "index":
        return file
    stem = file.rsplit(".", 1)[0]
    return f"{stem}-dokument-{number:03d}.pdf"
