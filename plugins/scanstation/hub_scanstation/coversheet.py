"""Barcode cover sheets (Trennblätter): a scanned file cut into documents at the sheets that start them.

Each page is rendered (PDFium) and searched for barcodes (zxing-cpp). A page with a barcode the
configured pattern matches is a cover sheet: it starts a new document and says what it is about
(Aktenzeichen, document type); it is not part of the document's content (pypdf writes the document's
pages without it). Pages before the first cover sheet form a document of their own without a key, so
they reach the clerk's tray rather than someone else's Akte. A cover sheet whose barcode cannot be read
is not recognised as one: its pages stay with the document before it, or, at the start of a file, make
a document without key — that is why a file must start with a readable cover sheet to be filed.

CPU-bound: callers run it in a worker thread.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import pypdfium2 as pdfium
import zxingcpp
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError

from .config import CoverSheetSettings


class UnreadablePdf(ValueError):
    """The scanned file is no PDF that can be read."""


@dataclass
class CutDocument:
    """One document cut out of a scanned file: its pages (without cover sheet) and what the sheet said."""

    content: bytes
    pages: int
    first_page: int  # 1-based page in the scanned file where its content starts
    barcodes: list[str] = field(default_factory=list)
    aktenzeichen: str | None = None
    document_type: str | None = None


@dataclass
class _Start:
    page: int  # 0-based index of the first content page
    barcodes: list[str]
    values: dict[str, str]


def cut_at_cover_sheets(data: bytes, settings: CoverSheetSettings) -> list[CutDocument]:
    """The documents of a scanned PDF, cut at its cover sheets (see the module's docstring)."""
    pattern = re.compile(settings.pattern)
    formats = _formats(settings.formats)
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise UnreadablePdf(f"not a readable PDF: {exc}") from None
    try:
        count = len(pdf)
        if count > settings.max_pages:
            raise UnreadablePdf(f"{count} pages, more than {settings.max_pages}")
        starts: list[_Start] = []
        cover_pages: set[int] = set()
        for index in range(count):
            page = pdf[index]
            try:
                image = page.render(scale=settings.dpi / 72, grayscale=True).to_pil()
            finally:
                page.close()
            texts = [b.text for b in zxingcpp.read_barcodes(image, formats=formats)]
            values = _cover_values(texts, pattern)
            if values is not None:
                cover_pages.add(index)
                starts.append(_Start(index + 1, texts, values))
            elif index == 0:
                starts.append(_Start(0, [], {}))  # content before any cover sheet: no key
    finally:
        pdf.close()
    return _cut(data, count, starts, cover_pages)


def _formats(names: list[str]) -> zxingcpp.BarcodeFormats:
    try:
        return zxingcpp.barcode_formats_from_str(",".join(names))
    except ValueError as exc:
        raise ValueError(f"unknown barcode format among {names}: {exc}") from None


def _cover_values(texts: list[str], pattern: re.Pattern[str]) -> dict[str, str] | None:
    """What the page's barcodes say if it is a cover sheet; None if it is content."""
    values: dict[str, str] = {}
    matched = False
    for text in texts:
        match = pattern.match(text)
        if match is None:
            continue
        matched = True
        values.update({k: v.strip() for k, v in match.groupdict().items() if v})
    return values if matched else None


def _cut(data: bytes, count: int, starts: list[_Start], cover_pages: set[int]) -> list[CutDocument]:
    try:
        reader = PdfReader(io.BytesIO(data))
        if len(reader.pages) != count:
            raise UnreadablePdf("PDFium and pypdf disagree on the page count")
        documents = []
        for n, start in enumerate(starts):
            end = starts[n + 1].page - 1 if n + 1 < len(starts) else count  # the next sheet's index
            pages = [i for i in range(start.page, end) if i not in cover_pages]
            if not pages:
                continue  # a cover sheet with nothing after it: nothing to file
            writer = PdfWriter()
            for i in pages:
                writer.add_page(reader.pages[i])
            out = io.BytesIO()
            writer.write(out)
            documents.append(
                CutDocument(
                    content=out.getvalue(),
                    pages=len(pages),
                    first_page=start.page + 1,
                    barcodes=start.barcodes,
                    aktenzeichen=start.values.get("aktenzeichen"),
                    document_type=start.values.get("document_type"),
                )
            )
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnreadablePdf(f"not a readable PDF: {type(exc).__name__}: {exc}") from None
    return documents


def page_count(data: bytes) -> int:
    """Pages of a scanned PDF; `UnreadablePdf` if it cannot be read."""
    try:
        return len(PdfReader(io.BytesIO(data)).pages)
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnreadablePdf(f"not a readable PDF: {type(exc).__name__}: {exc}") from None
