"""The settings of a ``type: bundid`` connector."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub import ConfigPath, ConnectorConfig


class FormFields(BaseModel):
    """Which form fields carry the identity in ``mode: form-fields`` (None: not sent)."""

    model_config = ConfigDict(extra="forbid")

    level: str = Field("bundid_level", description="the achieved level: STORK-QAA-Level-3, 3, substantiell")
    means: str | None = Field(None, description="the means of proof (AssertionProvedBy): eID, Elster ...")
    given_name: str | None = None
    family_name: str | None = None
    birth_date: str | None = None
    birth_name: str | None = None
    birth_place: str | None = None
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None
    email: str | None = None
    bpk2: str | None = Field(None, description="the BundID pseudonym; becomes the identity's subject")
    mailbox: str | None = Field(None, description="the BundID mailbox (Postkorb) handle")


class BundIdConfig(ConnectorConfig):
    """Settings of a ``type: bundid`` identity connector (besides ``max_concurrency`` and ``retry``)."""

    mode: Literal["saml", "form-fields"] = Field(
        "saml",
        description="saml: verify the signed SAML response the form server forwards; form-fields: take "
        "the identity the form server already verified from form fields",
    )
    # -- mode: saml
    response_field: str = Field(
        "bundid_saml_response", min_length=1, description="form field holding the base64 SAML response"
    )
    idp_metadata: ConfigPath | None = Field(
        None, description="the IdP's SAML metadata (EntityDescriptor with the signing certificate)"
    )
    idp_entity_id: str | None = Field(
        None, description="expected Issuer; default: the entityID of the IdP metadata"
    )
    sp_entity_id: str | None = Field(
        None, description="the service provider the login was made for (expected Audience)"
    )
    acs_url: str | None = Field(
        None, description="the assertion consumer service URL the response was addressed to (Destination)"
    )
    require_response_signature: bool = Field(
        False,
        description="also require a valid signature on the Response (the Assertion's is always required)",
    )
    clock_skew_seconds: float = Field(120.0, ge=0, le=3600, description="tolerated clock difference")
    forwarding_grace_seconds: float = Field(
        3600.0,
        ge=0,
        le=86400,
        description="extra time after the assertion's NotOnOrAfter in which a forwarded response is still "
        "accepted: the citizen logs in first, then fills in the form (see the README)",
    )
    max_response_bytes: int = Field(
        512 * 1024, ge=1024, le=16 * 1024**2, description="largest SAML response (decoded)"
    )
    certificate_warning_days: int = Field(
        30,
        ge=0,
        le=3650,
        description="days before an IdP signing certificate expires from which its check warns (the daily "
        "WARNING: `certificates.warn_days` of the hub)",
    )
    replay_retention_days: float = Field(
        30.0, gt=0, description="how long a used assertion id is kept after its validity ended"
    )
    # -- mode: form-fields
    fields: FormFields = Field(default_factory=lambda: FormFields())

    @model_validator(mode="after")
    def _saml_settings(self) -> Self:
        if self.mode == "saml":
            missing = [
                name
                for name in ("idp_metadata", "sp_entity_id", "acs_url")
                if getattr(self, name) in (None, "")
            ]
            if missing:
                raise ValueError(f"mode saml needs {', '.join(missing)}")
        return self
