"""The `rest` transport's configuration: an OpenAPI operation, where the case number is, how answers come."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub import AnswerStatus, CallbackAuth, ConnectorConfig, HttpEndpoint

from . import jsonpaths
from .openapi import OpenApiError, load_document

# What the Fachverfahren's status words mean, when the operator maps none: the hub's own names.
DEFAULT_STATUS_MAP = {status.value: status for status in AnswerStatus}


class CallbackFields(BaseModel):
    """Where a callback's JSON holds each part of an answer (JSONPath, RFC 9535)."""

    model_config = ConfigDict(extra="forbid")

    # Several answers in one callback: the path to each (e.g. `$.events[*]`); the other paths are then
    # relative to each answer. Default: the body is one answer.
    each: str = "$"
    answer_id: str = "$.eventId"
    # Which application: the hub's id if the system echoes it, else the system's own id of the case
    # (the reference recorded at delivery).
    application_id: str | None = None
    reference: str | None = "$.caseId"
    case_number: str | None = "$.aktenzeichen"
    status: str = "$.status"
    status_text: str | None = None
    message: str | None = "$.message"
    error: str | None = None
    # The decision (Bescheid): an object with the content in base64, or a URL the hub fetches with the
    # connector's credentials (relative URLs resolve against `base_url`).
    decision_base64: str | None = "$.decision.content"
    decision_url: str | None = "$.decision.url"
    decision_name: str | None = "$.decision.name"
    decision_media_type: str | None = "$.decision.mediaType"

    @field_validator("*")
    @classmethod
    def _jsonpath(cls, value: str | None) -> str | None:
        return jsonpaths.check_path(value)


class RestConfig(ConnectorConfig, HttpEndpoint):
    """`type: rest`: one operation of the Fachverfahren's OpenAPI 3 description creates the case."""

    model_config = ConfigDict(extra="forbid")

    openapi: Path = Field(description="the OpenAPI 3 file (YAML or JSON) describing the Fachverfahren's API")
    operation: str = Field(min_length=1, description="operationId of the operation that creates a case")
    case_number: str = Field("$.aktenzeichen", description="JSONPath to the case number in the answer")
    reference: str | None = Field(
        None, description="JSONPath to the system's id of the case in the answer (default: the case number)"
    )
    payload: str | None = Field(
        None,
        description="which `payloads.<name>` of the mapping is the request body (default: this connector's)",
    )
    parameters: dict[str, str] = Field(
        default_factory=dict, description="values of the operation's path, query and header parameters"
    )
    idempotency_header: str | None = Field(
        "Idempotency-Key", description="header carrying a key derived from application id and revision"
    )
    callback: CallbackAuth | None = None
    callback_fields: CallbackFields = Field(default_factory=CallbackFields)
    # The system's status words -> the hub's (e.g. {"IN_BEARBEITUNG": in_progress}).
    status_map: dict[str, AnswerStatus] = Field(default_factory=lambda: dict(DEFAULT_STATUS_MAP))
    max_decision_bytes: int = Field(64 * 1024**2, ge=1, description="largest decision PDF taken")

    @field_validator("case_number", "reference")
    @classmethod
    def _jsonpath(cls, value: str | None) -> str | None:
        return jsonpaths.check_path(value)

    @model_validator(mode="after")
    def _operation_described(self) -> RestConfig:
        # The file and the operation are checked when the configuration loads (`aktenhub check`).
        try:
            operation = load_document(self.openapi, self.base_url).operation(self.operation)
        except OpenApiError as exc:
            raise ValueError(str(exc)) from None
        unknown = sorted(set(self.parameters) - set(operation.parameters))
        if unknown:
            raise ValueError(f"parameters {unknown} are not parameters of {self.operation}")
        key = (self.idempotency_header or "").lower()
        missing = sorted(p for p in operation.required - set(self.parameters) if p.lower() != key)
        if missing:
            raise ValueError(f"{self.operation} requires the parameters {missing}: set them in `parameters`")
        return self
