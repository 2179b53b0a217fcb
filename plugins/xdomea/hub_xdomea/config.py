"""The settings of a ``type: xdomea`` connector."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub import ConnectorConfig, Secret


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CodeValue(_Strict):
    """A value of an XÖV code list (``xoev-code:Code``): the code, optionally its name and list."""

    code: str = Field(min_length=1, description="the code, e.g. a Behördenschlüssel")
    name: str | None = Field(None, description="its description in the code list")
    list_uri: str | None = Field(None, description="listURI: the code list's identifier")
    list_version: str | None = Field(None, description="listVersionID: the code list's version")

    @model_validator(mode="before")
    @classmethod
    def _plain_code(cls, value: Any) -> Any:
        # `behoerdenschluessel: "05382000"` is the common case: a bare code.
        return {"code": value} if isinstance(value, str | int) else value


class Contact(_Strict):
    """An authority as xdomea's ``KontaktType`` names it (Absender and Empfänger of the Nachrichtenkopf)."""

    behoerdenschluessel: CodeValue | None = Field(
        None,
        description="Behördenkennung: Behördenschlüssel (a code, or {code, name, list_uri, list_version})",
    )
    praefix: CodeValue | None = Field(None, description="Behördenkennung: Präfix")
    institution: str | None = Field(None, description="name of the authority, e.g. Kreis Musterstadt")
    kurzbezeichnung: str | None = Field(None, description="its short name")
    organisationseinheit: str | None = Field(None, description="the organisational unit, e.g. Bauaufsicht")

    @model_validator(mode="after")
    def _names_someone(self) -> Self:
        if self.behoerdenschluessel is None and not self.institution and not self.organisationseinheit:
            raise ValueError("name the authority: behoerdenschluessel, institution or organisationseinheit")
        return self


class SystemInfo(_Strict):
    """An IT system as xdomea's ``SystemType`` names it."""

    instanz_id: str | None = Field(None, description="InstanzID: which installation")
    produktname: str | None = Field(None, description="Produktname")
    version: str | None = Field(None, description="Version")


class FieldPlaces(_Strict):
    """Which index fields of the record fill xdomea's own metadata elements (first non-empty one wins).

    A field used here is not repeated among the application-specific fields
    (``AnwendungsspezifischeErweiterung``); every other index field goes there.
    """

    betreff: list[str] = Field(
        default_factory=lambda: ["Betreff", "Titel"],
        description="AllgemeineMetadaten/Betreff of Akte, Vorgang and documents",
    )
    kennzeichen: list[str] = Field(
        default_factory=lambda: ["Aktenzeichen", "Kennzeichen", "Vorgangsnummer", "Geschaeftszeichen"],
        description="AllgemeineMetadaten/Kennzeichen; for the Akte the Aktenzeichen "
        "(else the record's file number)",
    )
    bemerkung: list[str] = Field(
        default_factory=lambda: ["Bemerkung"], description="AllgemeineMetadaten/Bemerkung"
    )
    datum_des_schreibens: list[str] = Field(
        default_factory=lambda: ["Datum", "DatumDesSchreibens"],
        description="documents: DatumDesSchreibens (dates as DD.MM.YYYY or YYYY-MM-DD)",
    )
    posteingangsdatum: list[str] = Field(
        default_factory=lambda: ["Posteingangsdatum", "Eingangsdatum"],
        description="documents: Posteingangsdatum (default: the day the application was received); "
        "Vorgang: start of its Laufzeit",
    )
    fremdes_geschaeftszeichen: list[str] = Field(
        default_factory=lambda: ["FremdesGeschaeftszeichen"],
        description="documents: FremdesGeschaeftszeichen (the sender's reference)",
    )


class XdomeaConfig(ConnectorConfig):
    """Settings of a ``type: xdomea`` connector (besides ``max_concurrency`` and ``retry``)."""

    mode: Literal["directory", "http"] = Field(
        description="directory: write each ZIP into an import directory; http: upload it (multipart)"
    )
    # -- mode: directory
    path: Path | None = Field(
        None, description="directory mode: the DMS's import directory (created if missing)"
    )
    fsync: bool = Field(True, description="directory mode: fsync the ZIP and the directory when publishing")
    # -- mode: http
    url: str | None = Field(None, description="http mode: the DMS's xdomea import URL (POST, multipart)")
    username: str | None = Field(None, pattern=r"^[^:]+$", description="http mode: user for HTTP Basic auth")
    password: Secret | None = Field(
        None, description="http mode: its password: ${ENV} reference or file:/path"
    )
    file_field: str = Field("file", min_length=1, description="http mode: form-data name of the ZIP part")
    timeout_seconds: float = Field(
        120.0, gt=0, le=3600, description="http mode: longest wait for a connection or for data of the answer"
    )
    work_dir: Path | None = Field(
        None,
        description="http mode: where ZIPs are built before the upload (default: <data dir>/xdomea/<name>)",
    )
    # -- the message
    sender: Contact = Field(description="Kopf/Absender: the authority the hub files for")
    receiver: Contact = Field(description="Kopf/Empfaenger: the authority running the DMS")
    sending_system: SystemInfo = Field(
        default_factory=lambda: SystemInfo(),
        description="Kopf/SendendesSystem (Produktname default Aktenhub)",
    )
    receiving_system: SystemInfo | None = Field(None, description="Kopf/EmpfangendesSystem: the DMS")
    creator: str = Field(
        "aktenhub", min_length=1, description="Kopf/Erstellerkennung: the hub's user id in the DMS"
    )
    creator_role: str | None = Field(None, description="Kopf/ErstellerRolle")
    receipt_requested: bool = Field(
        False,
        description="Kopf/Empfangsbestaetigung: ask for the DMS's receipt (0629) and read its import "
        "confirmation (0630): a delivery completes only once the DMS confirms the import",
    )
    answer_path: Path | None = Field(
        None,
        description="directory mode with receipt_requested: where the DMS puts its answers "
        "(<ProzessID>_FVDaten.EmpfangBestaetigen.0629.xml, <ProzessID>_FVDaten.ImportBestaetigen.0630.xml)",
    )
    answers_url: str | None = Field(
        None,
        description="http mode with receipt_requested: the URL under which the DMS offers its answers "
        "(GET <answers_url>/<answer file name>, Basic auth; 404 while there is none)",
    )
    ablageort: str | None = Field(
        None,
        description="SchriftgutobjektZumAblegen/Ablageort, for DMS that want it (directory name or URL); "
        "default: left out, the primary files are in the ZIP",
    )
    fields: FieldPlaces = Field(
        default_factory=lambda: FieldPlaces(), description="index fields that fill xdomea's own elements"
    )
    applicant_contact: bool = Field(
        True, description="the applicant as Kontakt of the Akte and Absender of the documents"
    )
    compression: Literal["deflated", "stored"] = Field(
        "deflated", description="ZIP compression of the primary files (the XML is always deflated)"
    )

    @field_validator("url", "answers_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s) URL, e.g. https://dms.kreis.example/xdomea/import")
        if parts.username or parts.password or parts.fragment:
            raise ValueError("the URL takes no credentials or fragment (set username/password)")
        return value

    @model_validator(mode="after")
    def _mode_settings(self) -> Self:
        if self.mode == "directory":
            if self.path is None:
                raise ValueError("mode directory needs `path` (the import directory)")
            extra = [k for k in ("url", "username", "password") if getattr(self, k) is not None]
            if extra:
                raise ValueError(f"mode directory takes no {', '.join(extra)} (those are for mode http)")
        else:
            missing = [k for k in ("url", "username", "password") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"mode http needs {', '.join(missing)}")
            if self.path is not None:
                raise ValueError("mode http takes no `path` (that is for mode directory)")
        answers = "answer_path" if self.mode == "directory" else "answers_url"
        wrong = "answers_url" if self.mode == "directory" else "answer_path"
        if getattr(self, wrong) is not None:
            raise ValueError(f"mode {self.mode} takes no `{wrong}` (that is for the other mode)")
        if self.receipt_requested and getattr(self, answers) is None:
            raise ValueError(
                f"receipt_requested needs `{answers}`: where the DMS's 0629/0630 answers are read"
            )
        return self
