"""One complete batch read into its documents: by its index file, or cut at barcode cover sheets.

Everything is checked before anything is handed on: the index is read hardened, each file it names
must be a regular file inside the batch (no path leaves it, no symbolic link is followed), not larger
than allowed, and a readable PDF. A batch failing any check is refused as a whole (`BatchRefused`) with
a short code and a reason for the operator. Then the documents are read again one scanned file at a
time, so a large batch is never held in memory whole. Runs in a worker thread (file reads, PDF work).
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .config import ScanStationConfig
from .coversheet import UnreadablePdf, cut_at_cover_sheets, page_count
from .index import BadIndex, IndexedDocument, read_index

MEDIA_TYPES = {".pdf": "application/pdf", ".tif": "image/tiff", ".tiff": "image/tiff"}


class BatchRefused(Exception):
    """The batch cannot be taken: a fixed code (a metric label) and a reason for operators."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class ScannedDocument:
    """A document of a batch ready for intake: what is known of it, its content, its scanned original."""

    index: IndexedDocument
    content: bytes
    media_type: str
    original: bytes  # the file as scanned (with cover sheets); the content itself when nothing was cut
    original_name: str
    sha256: str
    origin: str  # "index" or "cover_sheet"


@dataclass
class BatchPlan:
    """A batch checked as a whole; its documents are read one scanned file at a time (`documents`).

    A batch's files may add up to gigabytes: only the file being handed on is held in memory.
    """

    folder: Path
    config: ScanStationConfig
    indexed: list[IndexedDocument]  # index mode: every document, checked
    scans: list[Path]  # cover-sheet mode: the scanned files, checked

    def documents(self) -> Iterator[ScannedDocument]:
        """The batch's documents in order (`BatchRefused` if a file changed since it was checked)."""
        if self.indexed:
            yield from self._indexed()
        else:
            yield from self._cut()

    def _indexed(self) -> Iterator[ScannedDocument]:
        for item in self.indexed:
            content = _read(
                self.folder / item.file, self.config.max_document_bytes, f"document {item.number}"
            )
            media_type = MEDIA_TYPES[Path(item.file).suffix.lower()]
            digest = hashlib.sha256(content).hexdigest()
            yield ScannedDocument(item, content, media_type, content, item.file, digest, "index")

    def _cut(self) -> Iterator[ScannedDocument]:
        number = 0
        for scan in self.scans:
            original = _read(scan, self.config.max_document_bytes, scan.name)
            try:
                cut = cut_at_cover_sheets(original, self.config.cover_sheets)
            except UnreadablePdf as exc:
                raise BatchRefused("unreadable_pdf", f"{scan.name}: {exc}") from None
            for part in cut:
                number += 1
                item = IndexedDocument(
                    number=number,
                    file=scan.name,
                    document_type=part.document_type,
                    barcode=" | ".join(part.barcodes) or None,
                    aktenzeichen=part.aktenzeichen,
                    pages=part.pages,
                    extra={"erste_seite": str(part.first_page)},
                )
                digest = hashlib.sha256(part.content).hexdigest()
                yield ScannedDocument(
                    item, part.content, "application/pdf", original, scan.name, digest, "cover_sheet"
                )


def read_batch(folder: Path, config: ScanStationConfig) -> BatchPlan:
    """A complete batch folder checked as a whole; `BatchRefused` for a batch that cannot be taken."""
    settings = config.index
    indexes = [] if settings.format == "none" else sorted(folder.glob(settings.file))
    if len(indexes) > 1:
        names = ", ".join(p.name for p in indexes)
        raise BatchRefused("index", f"more than one index file matches {settings.file!r}: {names}")
    if indexes:
        return BatchPlan(folder, config, _checked_index(folder, indexes[0], config), [])
    if not config.cover_sheets.enabled:
        raise BatchRefused("no_index", f"no index file {settings.file!r} in the batch")
    return BatchPlan(folder, config, [], _checked_scans(folder, config))


def _checked_index(folder: Path, index_file: Path, config: ScanStationConfig) -> list[IndexedDocument]:
    """The index's documents, each file there, not too large, and (PDF) readable."""
    data = _read(index_file, config.index.max_bytes, "index")
    try:
        indexed = read_index(data, config.index)
    except BadIndex as exc:
        raise BatchRefused("index", f"{index_file.name}: {exc}") from None
    checked = []
    for item in indexed:
        media_type = MEDIA_TYPES.get(Path(item.file).suffix.lower())
        if media_type is None:  # e.g. the index naming itself or the marker: nothing scanned
            raise BatchRefused("index", f"document {item.number}: {item.file} is no scanned PDF or TIFF")
        content = _read(folder / item.file, config.max_document_bytes, f"document {item.number}")
        if media_type == "application/pdf":
            try:
                pages = page_count(content)
            except UnreadablePdf as exc:
                raise BatchRefused("unreadable_pdf", f"document {item.number} ({item.file}): {exc}") from None
            if item.pages is None:
                item = item.model_copy(update={"pages": pages})
        checked.append(item)
    return checked


def _checked_scans(folder: Path, config: ScanStationConfig) -> list[Path]:
    """The batch's scanned PDFs, each not too large and readable with no more pages than allowed."""
    scans = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".pdf" and p.is_file())
    if not scans:
        raise BatchRefused("no_index", "neither an index file nor a scanned PDF in the batch")
    for scan in scans:
        try:
            pages = page_count(_read(scan, config.max_document_bytes, scan.name))
        except UnreadablePdf as exc:
            raise BatchRefused("unreadable_pdf", f"{scan.name}: {exc}") from None
        if pages > config.cover_sheets.max_pages:
            raise BatchRefused(
                "oversize", f"{scan.name}: {pages} pages, more than {config.cover_sheets.max_pages}"
            )
    return scans


def _read(path: Path, limit: int, what: str) -> bytes:
    """A regular file of the batch, at most `limit` bytes; never through a symbolic link."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise BatchRefused("missing_file", f"{what}: {path.name} is not in the batch") from None
    if not stat.S_ISREG(info.st_mode):
        raise BatchRefused("missing_file", f"{what}: {path.name} is not a regular file")
    if info.st_size > limit:
        raise BatchRefused("oversize", f"{what}: {path.name} has {info.st_size} bytes, more than {limit}")
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise BatchRefused("oversize", f"{what}: {path.name} grew beyond {limit} bytes while read")
    return data
