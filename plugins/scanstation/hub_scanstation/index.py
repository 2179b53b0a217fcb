"""A batch's index file (XML or CSV, as the scan software exports it) read into `IndexedDocument`s.

Where each datum is comes from the configuration (`IndexFields`): CSV column names, or XPaths relative
to each document's element, so a Kreis matches its own export without code. XML is parsed hardened
(`hub.xml`: no DTD, no entities, a size limit); CSV is read as UTF-8 (with or without BOM) or, as older
German scan software writes it, Windows-1252. Every file name the index gives is checked to be a plain
name inside the batch: an index naming ``../`` or an absolute path is refused as a whole.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field

from hub.xml import UnsafeXml, parse_xml

from .config import IndexFields, IndexSettings

# File names the index may give: one path segment, no control characters, no drive letters.
_PLAIN_NAME = re.compile(r"^[^/\\:\x00-\x1f]{1,255}$")
_GERMAN_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


class BadIndex(ValueError):
    """The index file cannot be taken (malformed, hostile, naming what is not there)."""


class Person(BaseModel):
    """The person a scanned document is about, as the index names them."""

    model_config = ConfigDict(extra="forbid")

    family_name: str | None = None
    given_name: str | None = None
    birth_date: str | None = None


class ScanData(BaseModel):
    """TR-RESISCAN metadata the export carries about one document's scanning."""

    model_config = ConfigDict(extra="forbid")

    scanned_at: str | None = None
    operator: str | None = None
    device: str | None = None
    resolution_dpi: int | None = None
    colour: str | None = None


class IndexedDocument(BaseModel):
    """One document of a batch as the index (or its cover sheet) describes it."""

    model_config = ConfigDict(extra="forbid")

    number: int = Field(ge=1, description="its place in the batch, from 1")
    file: str
    batch: str | None = None
    document_type: str | None = None
    barcode: str | None = None
    aktenzeichen: str | None = None
    person: Person = Field(default_factory=Person)
    pages: int | None = None
    scan: ScanData = Field(default_factory=ScanData)
    extra: dict[str, str] = Field(default_factory=dict)


def read_index(data: bytes, settings: IndexSettings) -> list[IndexedDocument]:
    """The documents of an index file; `BadIndex` for one that cannot be taken."""
    if len(data) > settings.max_bytes:
        raise BadIndex(f"index file larger than {settings.max_bytes} bytes")
    rows = _xml_rows(data, settings) if settings.format == "xml" else _csv_rows(data, settings)
    if not rows:
        raise BadIndex("index file lists no document")
    if len(rows) > settings.max_documents:
        raise BadIndex(f"index file lists {len(rows)} documents, more than {settings.max_documents}")
    return [_document(n, row, settings.where) for n, row in enumerate(rows, start=1)]


Row = dict[str, str | None]


def _wanted(where: IndexFields) -> dict[str, str]:
    """Datum name -> its location, for the data this export carries."""
    found = {k: v for k, v in where.model_dump(exclude={"extra"}).items() if v is not None}
    return {**found, **{f"extra.{k}": v for k, v in where.extra.items()}}


def _xml_rows(data: bytes, settings: IndexSettings) -> list[Row]:
    try:
        root = parse_xml(data, limit=settings.max_bytes)
    except UnsafeXml as exc:
        raise BadIndex(f"index file refused: {exc}") from None
    wanted = _wanted(settings.where)
    try:
        elements = root.xpath(settings.documents)
        if not isinstance(elements, list):
            raise BadIndex(f"index.documents {settings.documents!r} selects no elements")
        rows: list[Row] = []
        for element in elements:
            if not isinstance(element, etree._Element):
                raise BadIndex(f"index.documents {settings.documents!r} selects no elements")
            rows.append({name: _text(element.xpath(f"string({path})")) for name, path in wanted.items()})
            if len(rows) > settings.max_documents:
                break
    except etree.XPathError as exc:
        raise BadIndex(f"an XPath of the index settings does not work on this file: {exc}") from None
    return rows


def _csv_rows(data: bytes, settings: IndexSettings) -> list[Row]:
    text = _decode(data, settings.encoding)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=settings.delimiter)
    header = reader.fieldnames or []
    wanted = _wanted(settings.where)
    missing = [column for column in wanted.values() if column not in header]
    if settings.where.file in missing:
        raise BadIndex(f"index file has no column {settings.where.file!r} (columns: {', '.join(header)})")
    rows: list[Row] = []
    try:
        for record in reader:
            if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
                continue  # an empty line at the end, as spreadsheet exports write it
            rows.append({name: _text(record.get(column)) for name, column in wanted.items()})
            if len(rows) > settings.max_documents:
                break
    except csv.Error as exc:
        raise BadIndex(f"index file is no valid CSV: {exc}") from None
    return rows


def _decode(data: bytes, encoding: str) -> str:
    if encoding in ("auto", "utf-8"):
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            if encoding == "utf-8":
                raise BadIndex("index file is not UTF-8") from None
    try:
        return data.decode("windows-1252")
    except UnicodeDecodeError:
        raise BadIndex("index file is neither UTF-8 nor Windows-1252") from None


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return stripped or None


def _document(number: int, row: Row, where: IndexFields) -> IndexedDocument:
    file = row.get("file")
    if file is None:
        raise BadIndex(f"document {number} of the index names no file")
    _check_name(file, number)
    return IndexedDocument(
        number=number,
        file=file,
        batch=row.get("batch"),
        document_type=row.get("document_type"),
        barcode=row.get("barcode"),
        aktenzeichen=row.get("aktenzeichen"),
        person=Person(
            family_name=row.get("family_name"),
            given_name=row.get("given_name"),
            birth_date=iso_date(row.get("birth_date")),
        ),
        pages=_number(row.get("pages"), number, "page count"),
        scan=ScanData(
            scanned_at=iso_date(row.get("scanned_at")),
            operator=row.get("operator"),
            device=row.get("device"),
            resolution_dpi=_number(_dpi(row.get("resolution")), number, "resolution"),
            colour=row.get("colour"),
        ),
        extra={k.removeprefix("extra."): v for k, v in row.items() if k.startswith("extra.") and v},
    )


def _check_name(name: str, number: int) -> None:
    if not _PLAIN_NAME.match(name) or name in (".", "..") or name.startswith("."):
        raise BadIndex(f"document {number}: file name {name[:80]!r} is not a plain name inside the batch")


def _dpi(value: str | None) -> str | None:
    return None if value is None else value.lower().removesuffix("dpi").strip()


def _number(value: str | None, number: int, what: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise BadIndex(f"document {number}: {what} {value[:20]!r} is not a number") from None


def iso_date(value: str | None) -> str | None:
    """A German date (and time) as ISO 8601; other forms are kept as written."""
    if value is None:
        return None
    match = _GERMAN_DATE.match(value)
    if match is None:
        return value
    day, month, year, hour, minute, second = match.groups()
    try:
        if hour is None:
            return datetime(int(year), int(month), int(day)).date().isoformat()
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        return value
    return moment.isoformat()
