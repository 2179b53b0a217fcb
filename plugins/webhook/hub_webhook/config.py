"""Settings of a `type: webhook` connector: authentication, body format, paths, schema, limits.

Paths are read in the body's format: JSONPath for `format: json`, XPath (with `namespaces`) for
`format: xml`, plain field names for `format: form`. Every path is compiled when the configuration
loads, so a typo stops the start naming the setting rather than refusing the first submission.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from hub import ChangedResend, ConfigPath, ConnectorConfig, Secret
from hub.formdata.applicant import ApplicantFields
from hub.formdata.limits import FormLimits

from .paths import check_path
from .validation import json_validator, xsd

MIN_SECRET_LENGTH = 16
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
BODY = "{body}"
TIMESTAMP = "{timestamp}"


class BodyFormat(StrEnum):
    """What carries the form data, and so which path language the settings speak."""

    JSON = "json"  # application/json (+json), or a JSON part of a multipart body: JSONPath
    XML = "xml"  # application/xml, text/xml (+xml), or an XML part of a multipart body: XPath
    FORM = "form"  # multipart/form-data or urlencoded fields: field names


def _long_enough(secrets: list[Secret]) -> list[Secret]:
    for secret in secrets:
        if len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"every secret must have at least {MIN_SECRET_LENGTH} characters")
    return secrets


class TokenAuth(BaseModel):
    """A static token the sender puts in a header (optionally after a scheme such as ``Bearer``)."""

    model_config = ConfigDict(extra="forbid")

    header: str = Field("Authorization", pattern=HEADER_NAME, max_length=100)
    scheme: str | None = Field(
        "Bearer", max_length=40, description="word before the token (`Bearer`); null: the header is the token"
    )
    secrets: list[Secret] = Field(
        min_length=1, description="accepted tokens (several while one is being replaced)"
    )

    _check_secrets = field_validator("secrets")(_long_enough)


class HmacAuth(BaseModel):
    """An HMAC over the raw body (optionally prefixed by a signed timestamp), as the sender computes it."""

    model_config = ConfigDict(extra="forbid")

    header: str = Field("X-Signature", pattern=HEADER_NAME, max_length=100)
    algorithm: Literal["sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = Field("", max_length=40, description='before the signature in the header, e.g. "sha256="')
    timestamp_header: str | None = Field(
        None, pattern=HEADER_NAME, max_length=100, description="header with the signing time (Unix seconds)"
    )
    tolerance_seconds: int = Field(300, ge=1, le=3600, description="how far the signing time may be off")
    signed: str = Field(
        BODY,
        max_length=100,
        description='what is signed: "{body}", or with a timestamp header e.g. "{timestamp}.{body}"',
    )
    secrets: list[Secret] = Field(min_length=1, description="accepted keys (several while one is replaced)")

    _check_secrets = field_validator("secrets")(_long_enough)

    @model_validator(mode="after")
    def _signed_ends_with_body(self) -> HmacAuth:
        if not self.signed.endswith(BODY) or self.signed.count(BODY) != 1:
            raise ValueError('`signed` must end with "{body}" and name it once')
        if (TIMESTAMP in self.signed) != (self.timestamp_header is not None):
            raise ValueError('`signed` names "{timestamp}" exactly when `timestamp_header` is set')
        return self


class Authentication(BaseModel):
    """Exactly one of: a static token, an HMAC signature."""

    model_config = ConfigDict(extra="forbid")

    token: TokenAuth | None = None
    hmac: HmacAuth | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Authentication:
        if (self.token is None) == (self.hmac is None):
            raise ValueError("set exactly one of `token` and `hmac`")
        return self


class AttachmentPaths(BaseModel):
    """Where a JSON or XML body carries files (base64): each one's node, and inside it name and content."""

    model_config = ConfigDict(extra="forbid")

    each: str = Field(description="path selecting each attachment's node")
    name: str = Field(description="path, relative to the node, of the file name")
    content: str = Field(description="path, relative to the node, of the base64 content")
    media_type: str | None = Field(None, description="path, relative to the node, of the media type")


class WebhookConfig(ConnectorConfig, FormLimits):
    """Settings of a `type: webhook` connector."""

    # `format` and `namespaces` come first: the path settings after them are checked in that language.
    format: BodyFormat = Field(BodyFormat.JSON, description="json, xml or form: what carries the data")
    namespaces: dict[str, str] = Field(default_factory=dict, description="XPath prefix -> namespace URI")
    auth: Authentication
    external_id: str = Field(min_length=1, description="path of the sender's id of the submission")
    service: str | None = Field(
        None, min_length=1, description="path of the service (else the URL's `/intake/<connector>/<service>`)"
    )
    applicant: ApplicantFields = Field(default_factory=lambda: ApplicantFields())
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="form field -> path; empty: the whole JSON document, every XML element, every field",
    )
    attachments: AttachmentPaths | None = None
    data_part: str | None = Field(
        None,
        min_length=1,
        description="multipart: the part with the JSON or XML data (other file parts: attachments)",
    )
    json_schema: ConfigPath | None = Field(None, description="JSON Schema the JSON data must satisfy")
    xsd: ConfigPath | None = Field(None, description="XML Schema the XML data must satisfy")
    on_changed_resend: ChangedResend = Field(
        ChangedResend.REFUSE,
        description="a re-send with the same id but changed content: refuse (409) or revision",
    )

    @field_validator("external_id", "service")
    @classmethod
    def _path(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _check(value, info)
        return value

    @field_validator("applicant")
    @classmethod
    def _applicant_paths(cls, value: ApplicantFields, info: ValidationInfo) -> ApplicantFields:
        for key, path in value.model_dump(exclude_none=True).items():
            _check(path, info, key)
        return value

    @field_validator("fields")
    @classmethod
    def _field_paths(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for key, path in value.items():
            _check(path, info, key)
        return value

    @field_validator("attachments")
    @classmethod
    def _attachment_paths(cls, value: AttachmentPaths | None, info: ValidationInfo) -> AttachmentPaths | None:
        if value is None:
            return None
        if info.data.get("format") == BodyFormat.FORM:
            raise ValueError("format form takes files as multipart file parts, not by paths")
        for key, path in value.model_dump(exclude_none=True).items():
            _check(path, info, key)
        return value

    @field_validator("json_schema")
    @classmethod
    def _usable_json_schema(cls, value: Path | None) -> Path | None:
        if value is not None:
            json_validator(value)
        return value

    @field_validator("xsd")
    @classmethod
    def _usable_xsd(cls, value: Path | None) -> Path | None:
        if value is not None:
            xsd(value)
        return value

    @model_validator(mode="after")
    def _schema_fits_format(self) -> WebhookConfig:
        if self.json_schema is not None and self.format != BodyFormat.JSON:
            raise ValueError("json_schema validates JSON data: set format: json")
        if self.xsd is not None and self.format != BodyFormat.XML:
            raise ValueError("xsd validates XML data: set format: xml")
        return self


def _check(path: str, info: ValidationInfo, key: str | None = None) -> None:
    data: dict[str, Any] = info.data
    fmt = data.get("format")
    if fmt is None:
        return  # `format` itself is invalid; that error is reported
    try:
        check_path(BodyFormat(fmt).value, path, data.get("namespaces") or {})
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}" if key else str(exc)) from None
