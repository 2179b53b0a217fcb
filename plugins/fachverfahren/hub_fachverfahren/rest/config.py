"""The `rest` transport's configuration: an OpenAPI operation, where the case number is, how answers come."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub import CallbackAuth, ConfigPath, ConnectorConfig, HttpEndpoint

from ..answers import CaseAnswerSettings
from .openapi import OpenApiError, Operation, load_document


class AnswerPolling(BaseModel):
    """Answers fetched by polling an operation that lists them (and, optionally, one acknowledging each)."""

    model_config = ConfigDict(extra="forbid")

    operation: str = Field(min_length=1, description="operationId listing new answers (a GET)")
    interval: float = Field(60.0, gt=0, description="seconds between polls")
    acknowledge: str | None = Field(None, description="operationId acknowledging one answer once stored")
    parameter: str | None = Field(
        None, description="the acknowledge operation's parameter taking the answer id"
    )


class DocumentUpload(BaseModel):
    """The application's documents uploaded one by one (multipart/form-data) after the case is created."""

    model_config = ConfigDict(extra="forbid")

    operation: str = Field(min_length=1, description="operationId of the upload (multipart/form-data)")
    parameter: str = Field(min_length=1, description="its parameter taking the case's id (the reference)")
    field: str = Field("file", min_length=1, description="the form field carrying the file")


class RestConfig(ConnectorConfig, HttpEndpoint, CaseAnswerSettings):
    """`type: rest`: one operation of the Fachverfahren's OpenAPI 3 description creates the case."""

    model_config = ConfigDict(extra="forbid")

    openapi: ConfigPath = Field(
        description="the OpenAPI 3 file (YAML or JSON) describing the Fachverfahren's API"
    )
    operation: str = Field(min_length=1, description="operationId of the operation that creates a case")
    case_number: str = Field("$.aktenzeichen", description="JSONPath to the case number in the answer")
    parameters: dict[str, str] = Field(
        default_factory=dict, description="values of the operation's path, query and header parameters"
    )
    idempotency_header: str | None = Field(
        "Idempotency-Key", description="header carrying a key derived from application id and revision"
    )
    callback: CallbackAuth | None = None
    documents: DocumentUpload | None = None
    answers: AnswerPolling | None = None

    @model_validator(mode="after")
    def _operation_described(self) -> RestConfig:
        # The file and the operation are checked when the configuration loads (`aktenhub check`).
        try:
            operation = load_document(self.openapi, self.base_url).operation(self.operation)
        except OpenApiError as exc:
            raise ValueError(str(exc)) from None
        _check_parameters(operation, self.parameters, self.idempotency_header)
        document = load_document(self.openapi, self.base_url)
        if self.documents is not None:
            try:
                upload = document.operation(self.documents.operation)
            except OpenApiError as exc:
                raise ValueError(str(exc)) from None
            _check_parameters(upload, self.parameters, self.documents.parameter, self.idempotency_header)
        if self.answers is not None:
            try:
                _check_parameters(document.operation(self.answers.operation), self.parameters, None)
                if self.answers.acknowledge is not None:
                    given = [self.answers.parameter] if self.answers.parameter else []
                    _check_parameters(document.operation(self.answers.acknowledge), self.parameters, *given)
            except OpenApiError as exc:
                raise ValueError(str(exc)) from None
        return self


def _check_parameters(operation: Operation, parameters: dict[str, str], *filled: str | None) -> None:
    """Every required parameter of `operation` has a value; `parameters` it does not take are ignored."""
    given = {p.lower() for p in (*parameters, *filled) if p}
    missing = sorted(p for p in operation.required if p.lower() not in given)
    if missing:
        raise ValueError(
            f"{operation.operation_id} requires the parameters {missing}: set them in `parameters`"
        )
