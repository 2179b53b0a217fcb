"""One complete batch read into its documents: by its index file, or cut at barcode cover sheets.

Everything is checked before anything is handed on: the index is read hardened, each file it names
must be a regular file inside the batch (no path leaves it, no symbolic link is followed), not larger
than allowed, and a readable PDF. A batch failing any check is refused as a whole (`BatchRefused`) with
a short code and a reason for the operator. Runs in a worker thread (file reads, PDF work).
"""

from __future__ import annotations

import hashlib
import stat
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


def read_batch(folder: Path, config: ScanStationConfig) -> list[ScannedDocument]:
    """The documents of a complete batch folder; `BatchRefused` for a batch that cannot be taken."""
    settings = config.index
    indexes = [] if settings.format == "none" else sorted(folder.glob(settings.file))
    if len(indexes) > 1:
        names = ", ".join(p.name for p in indexes)
        raise BatchRefused("index", f"more than one index file matches {settings.file!r}: {names}")
    if indexes:
        return _by_index(folder, indexes[0], config)
    if not config.cover_sheets.enabled:
        raise BatchRefused("no_index", f"no index file {settings.file!r} in the batch")
    return _by_cover_sheets(folder, config)


def _by_index(folder: Path, index_file: Path, config: ScanStationConfig) -> list[ScannedDocument]:
    data = _read(index_file, config.index.max_bytes, "index")
    try:
        indexed = read_index(data, config.index)
    except BadIndex as exc:
        raise BatchRefused("index", f"{index_file.name}: {exc}") from None
    documents = []
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
        digest = hashlib.sha256(content).hexdigest()
        documents.append(ScannedDocument(item, content, media_type, content, item.file, digest, "index"))
    return documents


def _by_cover_sheets(folder: Path, config: ScanStationConfig) -> list[ScannedDocument]:
    scans = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".pdf" and p.is_file())
    if not scans:
        raise BatchRefused("no_index", "neither an index file nor a scanned PDF in the batch")
    documents: list[ScannedDocument] = []
    for scan in scans:
        original = _read(scan, config.max_document_bytes, scan.name)
        try:
            cut = cut_at_cover_sheets(original, config.cover_sheets)
        except UnreadablePdf as exc:
            raise BatchRefused("unreadable_pdf", f"{scan.name}: {exc}") from None
        for part in cut:
            number = len(documents) + 1
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
            documents.append(
                ScannedDocument(
                    item, part.content, "application/pdf", original, scan.name, digest, "cover_sheet"
                )
            )
    if not documents:
        raise BatchRefused("empty", "the scanned files hold no pages to file")
    return documents


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
