"""The configuration of a ``type: fachverfahren-example`` connector and the payload it reads from mappings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hub import ConnectorConfig, HttpEndpoint


class ExampleFachverfahrenConfig(HttpEndpoint, ConnectorConfig):
    """Where the import API is and how to reach it (`HttpEndpoint`: base_url, auth, tls, timeout), and
    how often to fetch the Fachverfahren's answers."""

    answer_poll_seconds: float | None = Field(
        30.0,
        gt=0,
        le=86400,
        description="seconds between fetching answers (case number, status; null: never)",
    )


class ExampleFachverfahrenPayload(BaseModel):
    """What a mapping file gives this sink under ``payloads.<connector name>`` (all optional)."""

    model_config = ConfigDict(extra="forbid")

    verfahren: str | None = Field(
        None, min_length=1, max_length=100, description="the Fachverfahren's procedure; default: the service"
    )
    subject: str | None = Field(None, max_length=255, description="the case's subject line (Betreff)")
    fields: dict[str, str] | None = Field(
        None, description="the case's data fields; default: the whole form as submitted"
    )
