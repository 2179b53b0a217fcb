"""The settings of a ``type: enaio`` connector."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, field_validator

from hub import ConnectorConfig, Secret

# enaio internal names of object types and index fields; object types may also be given by numeric id.
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
TYPE_PATTERN = r"^(?:[A-Za-z_][A-Za-z0-9_]{0,127}|[0-9]{1,12})$"

FieldName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
TypeName = Annotated[str, StringConstraints(pattern=TYPE_PATTERN)]


class EnaioConfig(ConnectorConfig):
    """Settings of a ``type: enaio`` connector (besides ``max_concurrency`` and ``retry``)."""

    base_url: str = Field(
        description="root of the enaio gateway/application server, without /api/dms or /osrest, "
        "e.g. https://enaio.kreis.example"
    )
    api: Literal["dms", "osrest"] = Field(
        "dms", description="dms: the DMS Service (/api/dms); osrest: the older OSRest appconnector"
    )
    auth: Literal["basic", "session"] = Field(
        "basic",
        description="basic: HTTP Basic on every request; session: log in once, then send the JSESSIONID "
        "cookie (re-login once on 401)",
    )
    username: str = Field(min_length=1, pattern=r"^[^:]+$", description="the hub's technical user in enaio")
    password: Secret = Field(description="its password: a ${ENV} reference or file:/path")
    application_id_field: FieldName = Field(
        "AktenhubID",
        description="index field of the register and document types holding the Aktenhub id (idempotency)",
    )
    file_number_field: FieldName | None = Field(
        "Aktenzeichen", description="index field of the folder type holding the Aktenzeichen (None: none)"
    )
    timeout_seconds: float = Field(
        60.0, gt=0, le=3600, description="longest wait for a connection or for data of one answer"
    )
    object_types: list[TypeName] = Field(
        default_factory=list,
        description="object types (internal names or ids) the routes use; `aktenhub check` verifies them",
    )
    document_types: dict[str, TypeName] = Field(
        default_factory=dict,
        description="document type of the record → enaio document type, for records whose types are not "
        "enaio's (e.g. without a mapping file: original → Originalantrag, attachment → Anlage)",
    )
    document_title_field: FieldName | None = Field(
        None, description="index field filled with the document's name when the record leaves it empty"
    )
    without_akte: Literal["refuse", "tray"] = Field(
        "refuse",
        description="a record without an Akte: refuse it (Permanent), or put its documents into the "
        "technical user's tray (Eingangskorb) for a clerk to file",
    )

    akte_not_found: Literal["create", "tray", "refuse"] = Field(
        "create",
        description="the record's akte.search finds no Akte: create it (applications open an Akte), put "
        "the documents into the technical user's tray for a clerk (scanned post must never open one), "
        "or refuse (Permanent)",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s) URL, e.g. https://enaio.kreis.example")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("the URL takes no query, fragment or credentials (set username/password)")
        path = parts.path.rstrip("/")
        if path.endswith(("/api/dms", "/osrest/api", "/osrest")):
            raise ValueError("give the server's root: the sink adds /api/dms or /osrest/api itself")
        return value.rstrip("/")
