"""The settings of a ``type: scanstation`` source: the hot folder, when a batch is complete, its index."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub import ConnectorConfig

MIB = 1024 * 1024


class IndexFields(BaseModel):
    """Where each datum of a document is in the index: a CSV column name, or an XPath relative to the
    document's element (XML). Unset: the export does not carry it."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="the document's file (a PDF in the batch)")
    batch: str | None = Field(None, description="the batch id (default: the batch folder's name)")
    document_type: str | None = Field(None, description="document type (Dokumentart, form type)")
    barcode: str | None = Field(None, description="barcode read at scanning (cover sheet, label)")
    aktenzeichen: str | None = Field(None, description="the Aktenzeichen of the Akte it belongs to")
    family_name: str | None = None
    given_name: str | None = None
    birth_date: str | None = None
    pages: str | None = Field(None, description="page count")
    scanned_at: str | None = Field(None, description="scan date (and time)")
    operator: str | None = Field(None, description="who scanned (TR-RESISCAN: the operator)")
    device: str | None = Field(None, description="scanner (TR-RESISCAN: the device)")
    resolution: str | None = Field(None, description="resolution in dpi")
    colour: str | None = Field(None, description="colour mode (bitonal, grey, colour)")
    extra: dict[str, str] = Field(
        default_factory=dict, description="further fields by name, kept in the form under `index`"
    )


# The export shapes as the scan software writes them out of the box; a Kreis sets `fields` for its own.
KOFAX_XML = IndexFields(
    file="Pages/Page/@ImportFileName",
    batch="ancestor::Batch/@Name",
    document_type="@FormTypeName",
    barcode="IndexFields/IndexField[@Name='Barcode']/@Value",
    aktenzeichen="IndexFields/IndexField[@Name='Aktenzeichen']/@Value",
    family_name="IndexFields/IndexField[@Name='Nachname']/@Value",
    given_name="IndexFields/IndexField[@Name='Vorname']/@Value",
    birth_date="IndexFields/IndexField[@Name='Geburtsdatum']/@Value",
    pages="IndexFields/IndexField[@Name='Seiten']/@Value",
    scanned_at="ancestor::Batch/BatchFields/BatchField[@Name='Scandatum']/@Value",
    operator="ancestor::Batch/BatchFields/BatchField[@Name='Bediener']/@Value",
    device="ancestor::Batch/BatchFields/BatchField[@Name='Scanner']/@Value",
    resolution="ancestor::Batch/BatchFields/BatchField[@Name='Aufloesung']/@Value",
    colour="ancestor::Batch/BatchFields/BatchField[@Name='Farbmodus']/@Value",
)
GERMAN_CSV = IndexFields(
    file="Dateiname",
    batch="Stapel",
    document_type="Dokumentart",
    barcode="Barcode",
    aktenzeichen="Aktenzeichen",
    family_name="Nachname",
    given_name="Vorname",
    birth_date="Geburtsdatum",
    pages="Seiten",
    scanned_at="Scandatum",
    operator="Bediener",
    device="Scanner",
    resolution="Aufloesung",
    colour="Farbmodus",
)


class IndexSettings(BaseModel):
    """The batch's index file: which file, which format, where each datum is."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["xml", "csv", "none"] = Field(
        "xml", description="xml or csv; none: every batch is split by barcode cover sheets"
    )
    file: str = Field(
        "*.xml", description="glob of the index file's name in the batch (exactly one must match)"
    )
    documents: str = Field(
        "//Document", description="xml: XPath of each document's element (relative paths start there)"
    )
    delimiter: str = Field(";", min_length=1, max_length=1, description="csv: the column separator")
    encoding: Literal["auto", "utf-8", "windows-1252"] = Field(
        "auto", description="csv: auto reads UTF-8 (with or without BOM), else Windows-1252"
    )
    fields: IndexFields | None = Field(
        None, description="where each datum is; default: the Kofax XML export or the German CSV columns"
    )
    max_bytes: int = Field(4 * MIB, ge=1024, le=256 * MIB, description="largest index file read")
    max_documents: int = Field(1000, ge=1, le=100_000, description="most documents in one batch")

    @model_validator(mode="after")
    def _default_fields(self) -> Self:
        if self.fields is None:
            self.fields = GERMAN_CSV if self.format == "csv" else KOFAX_XML
        return self

    @property
    def where(self) -> IndexFields:
        """The field locations in force (the format's defaults where none are configured)."""
        assert self.fields is not None  # filled by the validator
        return self.fields


class CoverSheetSettings(BaseModel):
    """Barcode cover sheets (Trennblätter): a page whose barcode matches starts a new document."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="split a batch without index file at its cover sheets")
    pattern: str = Field(
        r"^AZ[ /](?P<aktenzeichen>[A-Z0-9./ -]+)$|^DOK[ /](?P<document_type>[A-Z0-9.-]+)$",
        description="regular expression a cover sheet's barcode matches; named groups aktenzeichen, "
        "document_type (several barcodes on one sheet fill several)",
    )
    formats: list[str] = Field(
        default_factory=lambda: ["Code39", "Code128", "ITF", "QRCode", "DataMatrix"],
        description="barcode symbologies looked for (zxing-cpp names)",
    )
    dpi: int = Field(150, ge=72, le=600, description="resolution pages are rendered at for decoding")
    max_pages: int = Field(2000, ge=1, le=100_000, description="most pages of one scanned file")

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value: list[str]) -> list[str]:
        import zxingcpp

        try:
            zxingcpp.barcode_formats_from_str(",".join(value))
        except ValueError as exc:
            raise ValueError(f"{exc} (zxing-cpp names, e.g. Code39, Code128, ITF, QRCode)") from None
        if not value:
            raise ValueError("name at least one barcode format")
        return value

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            groups = re.compile(value).groupindex
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        unknown = set(groups) - {"aktenzeichen", "document_type"}
        if unknown:
            raise ValueError(f"unknown named groups {sorted(unknown)}: use aktenzeichen, document_type")
        return value


class ScanStationConfig(ConnectorConfig):
    """Settings of a ``type: scanstation`` source."""

    hot_folder: Path = Field(description="where the scan station exports its batches")
    done_folder: Path | None = Field(
        None, description="taken batches are moved here (same filesystem); default: <hot_folder>/done"
    )
    failed_folder: Path | None = Field(
        None,
        description="batches that cannot be taken are moved here with a reason file; "
        "default: <hot_folder>/failed",
    )
    poll_seconds: float = Field(10.0, gt=0, le=86_400, description="seconds between two looks")
    marker: str | None = Field(
        "{batch}.ready",
        description="a batch is complete when this file exists in it ({batch}: the batch's name); "
        "None: when its files' sizes and times stayed unchanged for stable_seconds",
    )
    stable_seconds: float = Field(30.0, ge=0, le=86_400, description="without marker: quiet time")
    group_pattern: str | None = Field(
        r"^(?P<batch>[A-Za-z0-9-]+)[_.]",
        description="files directly in the hot folder whose names match form one batch per `batch` "
        "group (e.g. B0001_index.xml, B0001_0001.pdf, B0001.ready); None: only folders are batches",
    )
    index: IndexSettings = Field(default_factory=lambda: IndexSettings())
    cover_sheets: CoverSheetSettings = Field(default_factory=lambda: CoverSheetSettings())
    service: str = Field("posteingang-scan", description="service (Leistung) of a scanned document")
    services: dict[str, str] = Field(
        default_factory=dict, description="document type -> service, where it differs from `service`"
    )
    tray_service: str = Field(
        "posteingang-korb",
        description="service of a document with neither Aktenzeichen nor person: the clerk's tray route",
    )
    max_document_bytes: int = Field(200 * MIB, ge=1024, description="largest scanned file read")
    max_batches_per_poll: int = Field(20, ge=1, le=10_000)

    @field_validator("group_pattern")
    @classmethod
    def _has_batch_group(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compiled = re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
            if "batch" not in compiled.groupindex:
                raise ValueError("needs a named group `batch`, e.g. ^(?P<batch>[A-Za-z0-9-]+)[_.]")
        return value

    @field_validator("marker")
    @classmethod
    def _plain_marker(cls, value: str | None) -> str | None:
        if value is not None and ("/" in value or "\\" in value or value.startswith(".")):
            raise ValueError("a file name in the batch, e.g. {batch}.ready")
        return value

    @property
    def done(self) -> Path:
        """Where taken batches go."""
        return self.done_folder or self.hot_folder / "done"

    @property
    def failed(self) -> Path:
        """Where batches that cannot be taken go."""
        return self.failed_folder or self.hot_folder / "failed"
