"""Settings of a ``type: fitconnect`` source: the Submission API, our client, our destinations, services."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, Self

from pydantic import BaseModel, ByteSize, ConfigDict, Field, model_validator

from hub import BackOff, ConfigPath, ConnectorConfig, OAuth2ClientCredentials, Secret
from hub.outbound import HttpEndpoint

UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# A LeiKa key as FIT-Connect names it in `publicServiceType.identifier` (metadata 1.x and 2.x).
LEIKA = r"^urn:de:fim:leika:leistung:[0-9]{14}$"
# FIT-Connect's callback timestamps are refused when older than this (docs.fitko.de, callbacks).
CALLBACK_MAX_AGE = 300


class Destination(BaseModel):
    """One destination (Zustellpunkt) of the Kreis, taken by this source."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=UUID, description="the destination id (UUID) from the FIT-Connect self-service")
    decryption_keys: list[ConfigPath] = Field(
        min_length=1,
        description="private JWK files (RSA-OAEP-256, key_ops unwrapKey) that decrypt submissions to this "
        "destination; several during a key rollover (each JWE names its key by kid)",
    )
    signing_key: ConfigPath = Field(
        description="private JWK file (PS512, key_ops sign) whose public part is registered for this "
        "destination: it signs our accept and reject events"
    )
    callback_secret: Secret | None = Field(
        None,
        description="the destination's callback secret (HMAC-SHA512 of callbacks); without it callbacks "
        "to this destination are refused and only the safety poll takes its submissions",
    )


class ServiceMapping(BaseModel):
    """Which submissions become which service of the hub (routes dispatch on `service`)."""

    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, description="the hub's service name, e.g. wohngeld")
    leika: str | None = Field(
        None,
        pattern=LEIKA,
        description="the service's LeiKa identifier (metadata publicServiceType.identifier), "
        "e.g. urn:de:fim:leika:leistung:99108008252000",
    )
    data_schema: str | None = Field(
        None,
        min_length=1,
        description="the data schema URI (metadata contentStructure.data.submissionSchema.schemaUri)",
    )

    @model_validator(mode="after")
    def _identified(self) -> Self:
        if self.leika is None and self.data_schema is None:
            raise ValueError("name the service by `leika`, `data_schema` or both")
        return self

    def matches(self, leika: str | None, data_schema: str | None) -> bool:
        """Whether a submission with this LeiKa identifier and data schema is this service."""
        if self.leika is not None and self.leika != leika:
            return False
        return self.data_schema is None or self.data_schema == data_schema


class FitConnectConfig(ConnectorConfig):
    """Settings of a ``type: fitconnect`` source."""

    api: HttpEndpoint = Field(
        description="the Submission API (e.g. https://submission-api-testing.fit-connect.fitko.dev) with "
        "`auth: {type: oauth2, ...}` (client credentials of our subscriber client); the scope "
        "subscribe:destination:<id> is requested per destination"
    )
    api_version: Literal["v1", "v2"] = Field("v1", description="path prefix of the Submission API")
    jwks_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="where the submission service publishes the keys of its submit events "
        "(default <api>/.well-known/jwks.json)",
    )
    destinations: list[Destination] = Field(min_length=1)
    services: list[ServiceMapping] = Field(
        min_length=1, description="a submission whose service is not named here is rejected"
    )
    poll_seconds: float = Field(
        300.0,
        gt=0,
        le=86400,
        description="the safety poll: callbacks bring submissions at once, the poll takes what a lost "
        "callback left behind",
    )
    metadata_schema_required: bool = Field(
        True,
        description="metadata of a version whose schema is not installed in the schema directory waits "
        "(held, the overdue WARNING) until it is; off: such metadata is checked for what the hub reads only",
    )
    page_size: int = Field(100, ge=1, le=500, description="submissions per page of the pickup list")
    max_attachment: ByteSize = Field(
        ByteSize(200 * 1024**2), ge=1, description="largest encrypted attachment (JWE) fetched"
    )
    unaccepted_warning_after: timedelta = Field(
        timedelta(days=2),
        description="a WARNING (and the metric) for a submission not accepted this long after its submit "
        "(FIT-Connect rejects it by itself after 14 days)",
    )
    fetch_backoff: BackOff = Field(
        default_factory=BackOff,
        description="a submission that fails to be taken (not its sender's fault) is tried again after "
        "60 s, 120 s, ... and quarantined for an operator after `max_fetches` tries",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not isinstance(self.api.auth, OAuth2ClientCredentials):
            raise ValueError("api.auth must be OAuth2 client credentials (type: oauth2)")
        ids = [d.id.lower() for d in self.destinations]
        if len(set(ids)) != len(ids):
            raise ValueError("a destination is named twice")
        return self

    def destination(self, destination_id: str) -> Destination | None:
        """The configured destination with this id (None: not ours)."""
        return next((d for d in self.destinations if d.id.lower() == destination_id.lower()), None)

    def service_for(self, leika: str | None, data_schema: str | None) -> str | None:
        """The hub's service of a submission (first matching mapping), None if none is configured."""
        return next((m.service for m in self.services if m.matches(leika, data_schema)), None)

    def jwks(self) -> str:
        """The URL of the submission service's public keys (signature of submit events)."""
        return self.jwks_url or self.api.base_url.rstrip("/") + "/.well-known/jwks.json"
