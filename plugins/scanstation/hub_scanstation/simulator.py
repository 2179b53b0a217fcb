"""A scan station that exports batches into a hot folder, as the real one's capture software does.

Pages are PDFs drawn with fpdf2 (a line of text per page, as an OCR-less bitonal scan would carry);
cover sheets (Trennblätter) carry a Code 39 barcode (``AZ <Aktenzeichen>`` or ``DOK <type>``). Index
files are the Kofax Capture XML export (ImportSession/Batches/Batch/Documents/Document with IndexFields
and Pages) or a semicolon CSV in UTF-8 with BOM or Windows-1252, with German column names. The batch is
written file by file and the marker ``<batch>.ready`` last; faults leave it as real trouble does:

- ``half_written``: the last PDF is cut off and no marker is written (`finish` completes it later);
- ``missing_marker``: everything but the marker;
- ``index_missing_file``: the index names a file the batch lacks;
- ``unreadable_barcode``: the first cover sheet's barcode is smudged beyond decoding;
- ``corrupt_pdf``: a document file is no PDF.

``aktenhub simulate scanstation --option hot_folder=/path`` serves ``POST /sim/batches`` (a `BatchSpec`
as JSON) and ``GET /sim/folders`` (what lies in the hot folder, done/ and failed/).
"""

from __future__ import annotations

import csv
import io
import os
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

from aiohttp import web
from fpdf import FPDF
from pydantic import BaseModel, ConfigDict, Field, ValidationError

HOT_FOLDER = web.AppKey("hot_folder", Path)


class Fault(StrEnum):
    """What can go wrong with an exported batch."""

    HALF_WRITTEN = "half_written"
    MISSING_MARKER = "missing_marker"
    INDEX_MISSING_FILE = "index_missing_file"
    UNREADABLE_BARCODE = "unreadable_barcode"
    CORRUPT_PDF = "corrupt_pdf"


class DocumentSpec(BaseModel):
    """One paper document put on the scanner."""

    model_config = ConfigDict(extra="forbid")

    document_type: str = "SCHREIBEN"
    aktenzeichen: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    birth_date: str | None = Field(None, description="as the index writes it, e.g. 01.02.1980")
    pages: list[str] = Field(default_factory=lambda: ["Sehr geehrte Damen und Herren, ..."], min_length=1)


class BatchSpec(BaseModel):
    """One batch the scan station exports."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9-]{1,40}$")
    shape: Literal["folder", "group"] = "folder"
    index: Literal["xml", "csv", "none"] = "xml"
    csv_encoding: Literal["utf-8-sig", "utf-8", "windows-1252"] = "utf-8-sig"
    operator: str = "Scanstelle, Platz 2"
    device: str = "Kodak i4250"
    scanned_at: str = "07.12.2026 08:15"
    resolution: int = 300
    colour: str = "bitonal"
    documents: list[DocumentSpec] = Field(min_length=1)
    faults: list[Fault] = Field(default_factory=list)


def scanned_pages(texts: list[str], cover: list[str] | None = None, smudged: bool = False) -> bytes:
    """A scanned PDF: an optional cover sheet (barcodes `cover`), then one page per text."""
    pdf = FPDF(format="A4")
    pdf.set_creator("Scanstation (Aktenhub-Simulator)")
    pdf.set_font("helvetica", size=12)
    if cover is not None:
        pdf.add_page()
        pdf.set_font("helvetica", size=20)
        pdf.cell(text="TRENNBLATT - Posteingang")
        for n, code in enumerate(cover):
            pdf.code39(f"*{code}*", x=20, y=50 + n * 45, w=1.0, h=25)
            if smudged:  # a smear across the bars: no reader decodes it
                pdf.set_fill_color(0, 0, 0)
                pdf.rect(18, 49 + n * 45, 175, 27, style="F")
        pdf.set_font("helvetica", size=12)
    for text in texts:
        pdf.add_page()
        pdf.multi_cell(0, 8, text=text)
    return bytes(pdf.output())


def cover_codes(document: DocumentSpec) -> list[str]:
    """The barcodes of a document's cover sheet."""
    codes = [f"DOK {document.document_type}"]
    if document.aktenzeichen:
        codes.insert(0, f"AZ {document.aktenzeichen}")
    return codes


def write_batch(hot_folder: Path, spec: BatchSpec) -> list[Path]:
    """Export `spec` into the hot folder as the scan station would; returns the files written."""
    faults = set(spec.faults)
    if spec.shape == "folder":
        where, prefix = hot_folder / spec.name, ""
        where.mkdir(parents=True, exist_ok=True)
    else:
        where, prefix = hot_folder, f"{spec.name}_"
    files: dict[str, bytes] = {}
    if spec.index == "none":
        smudged = Fault.UNREADABLE_BARCODE in faults
        parts = [_cover_document(d, smudged=smudged and n == 0) for n, d in enumerate(spec.documents)]
        files[f"{prefix}scan.pdf"] = _concatenate(parts)
    else:
        for n, document in enumerate(spec.documents, start=1):
            content = scanned_pages(document.pages)
            if Fault.CORRUPT_PDF in faults and n == 1:
                content = b"%PDF-1.4\n% the scanner crashed here\n"
            files[f"{prefix}{n:04d}.pdf"] = content
        index_name = f"{prefix}index.{spec.index}"
        names = list(files)
        if Fault.INDEX_MISSING_FILE in faults:
            names[-1] = f"{prefix}9999.pdf"
        files[index_name] = _xml_index(spec, names) if spec.index == "xml" else _csv_index(spec, names)
    written = []
    last = [n for n in files if n.endswith(".pdf")][-1]
    for name, data in files.items():
        if Fault.HALF_WRITTEN in faults and name == last:
            data = data[: len(data) // 2]
        written.append(_write(where / name, data))
    if not faults & {Fault.HALF_WRITTEN, Fault.MISSING_MARKER}:
        written.append(_write(where / f"{spec.name}.ready", b""))
    return written


def finish(hot_folder: Path, spec: BatchSpec) -> None:
    """Complete a batch written with `half_written` or `missing_marker`: the full files, then the marker."""
    complete = spec.model_copy(update={"faults": [f for f in spec.faults if f not in _UNFINISHED]})
    write_batch(hot_folder, complete)


_UNFINISHED = (Fault.HALF_WRITTEN, Fault.MISSING_MARKER)


def _cover_document(document: DocumentSpec, *, smudged: bool) -> bytes:
    return scanned_pages(document.pages, cover=cover_codes(document), smudged=smudged)


def _concatenate(parts: list[bytes]) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for part in parts:
        writer.append(io.BytesIO(part))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _xml_index(spec: BatchSpec, names: list[str]) -> bytes:
    def field(name: str, value: str | None) -> str:
        return f"<IndexField Name={quoteattr(name)} Value={quoteattr(value or '')}/>"

    batch_fields = "".join(
        f"<BatchField Name={quoteattr(k)} Value={quoteattr(v)}/>"
        for k, v in (
            ("Scandatum", spec.scanned_at),
            ("Bediener", spec.operator),
            ("Scanner", spec.device),
            ("Aufloesung", str(spec.resolution)),
            ("Farbmodus", spec.colour),
        )
    )
    documents = []
    for document, name in zip(spec.documents, names, strict=True):
        fields = "".join(
            [
                field("Aktenzeichen", document.aktenzeichen),
                field("Nachname", document.family_name),
                field("Vorname", document.given_name),
                field("Geburtsdatum", document.birth_date),
                field("Seiten", str(len(document.pages))),
            ]
        )
        documents.append(
            f"<Document FormTypeName={quoteattr(document.document_type)}><IndexFields>{fields}</IndexFields>"
            f"<Pages><Page ImportFileName={quoteattr(name)}/></Pages></Document>"
        )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ImportSession><Batches>'
        f'<Batch Name={quoteattr(spec.name)} BatchClassName="Posteingang">'
        f"<BatchFields>{batch_fields}</BatchFields><Documents>{''.join(documents)}</Documents>"
        "</Batch></Batches></ImportSession>\n"
    )
    return xml.encode("utf-8")


CSV_COLUMNS = (
    "Stapel",
    "Dateiname",
    "Dokumentart",
    "Aktenzeichen",
    "Nachname",
    "Vorname",
    "Geburtsdatum",
    "Seiten",
    "Scandatum",
    "Bediener",
    "Scanner",
    "Aufloesung",
    "Farbmodus",
)


def _csv_index(spec: BatchSpec, names: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for document, name in zip(spec.documents, names, strict=True):
        writer.writerow(
            (
                spec.name,
                name,
                document.document_type,
                document.aktenzeichen or "",
                document.family_name or "",
                document.given_name or "",
                document.birth_date or "",
                len(document.pages),
                spec.scanned_at,
                spec.operator,
                spec.device,
                f"{spec.resolution} dpi",
                spec.colour,
            )
        )
    return out.getvalue().encode(spec.csv_encoding)


def _write(path: Path, data: bytes) -> Path:
    # Written in place, not renamed into place: the scan software does the same, and that is why the
    # hub waits for the marker (or for quiet) before it reads anything.
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def folders(hot_folder: Path) -> dict[str, list[str]]:
    """What lies in the hot folder, done/ and failed/ (names only)."""
    found: dict[str, list[str]] = {}
    for key, folder in (
        ("hot", hot_folder),
        ("done", hot_folder / "done"),
        ("failed", hot_folder / "failed"),
    ):
        skip = {"done", "failed"} if key == "hot" else set()
        found[key] = (
            sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and p.name not in skip)
            if folder.is_dir()
            else []
        )
    return found


async def _post_batch(request: web.Request) -> web.Response:
    try:
        spec = BatchSpec.model_validate(await request.json())
    except (ValidationError, ValueError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    written = write_batch(request.app[HOT_FOLDER], spec)
    return web.json_response({"batch": spec.name, "files": [p.name for p in written]}, status=201)


async def _get_folders(request: web.Request) -> web.Response:
    return web.json_response(folders(request.app[HOT_FOLDER]))


def make_app(hot_folder: str | Path | None = None, **_: Any) -> web.Application:
    """The scan station simulator's HTTP face: export batches on request into `hot_folder`."""
    if hot_folder is None:
        raise ValueError("the scan station simulator needs --option hot_folder=/path")
    app = web.Application()
    folder = Path(hot_folder)
    folder.mkdir(parents=True, exist_ok=True)
    app[HOT_FOLDER] = folder
    app.router.add_post("/sim/batches", _post_batch)
    app.router.add_get("/sim/folders", _get_folders)
    return app
