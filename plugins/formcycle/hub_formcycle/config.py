"""Settings of the FormCycle source: the shared token, the id field, limits, applicant mapping."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ByteSize, Field, field_validator

from hub import ChangedResend, ConnectorConfig, Secret
from hub.formdata.applicant import ApplicantFields
from hub.formdata.limits import FormLimits

MIN_TOKEN_LENGTH = 16
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"


class BodyKind(StrEnum):
    """Which bodies a connector takes: FormCycle's form encodings, its custom JSON body, or both."""

    FORM = "form"  # multipart/form-data and application/x-www-form-urlencoded
    JSON = "json"  # application/json (the HTTP-Request action's "custom body")
    ANY = "any"


class FormCycleConfig(ConnectorConfig, FormLimits):
    """Settings of a `type: formcycle` connector."""

    token: Secret = Field(
        description="shared token FormCycle sends in `token_header` (a ${ENV} reference or file:/path)"
    )
    token_header: str = Field("X-Aktenhub-Token", pattern=HEADER_NAME, max_length=100)
    id_field: str | None = Field(
        None,
        min_length=1,
        description="form element holding FormCycle's process id (in a JSON body a dotted path); "
        "without it (or when empty) the external id is a hash of the submission",
    )
    applicant_fields: ApplicantFields = Field(default_factory=lambda: ApplicantFields())
    header_fields: dict[str, str] = Field(
        default_factory=dict,
        description="request header -> form field it is taken into (e.g. a forwarded BundID SAML "
        "response: {X-BundID-SAML-Response: bundid_saml_response})",
    )
    max_header_field_size: ByteSize = Field(ByteSize(512 * 1024), ge=1, description="largest such header")
    body: BodyKind = Field(
        BodyKind.FORM,
        description="bodies taken: form (multipart and urlencoded), json (a custom JSON body), any",
    )
    json_attachments: str | None = Field(
        "attachments",
        min_length=1,
        description="member of a JSON body listing its attachments (name, base64 content, media_type, "
        "field); null: a JSON body has none",
    )
    on_changed_resend: ChangedResend = Field(
        ChangedResend.REFUSE,
        description="a re-send with the same id but changed content: refuse (409) or revision",
    )

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: Secret) -> Secret:
        if len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the token must have at least {MIN_TOKEN_LENGTH} characters")
        return value
