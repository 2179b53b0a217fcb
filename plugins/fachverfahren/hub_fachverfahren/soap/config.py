"""The `soap` transport's configuration: one WSDL operation, the case number in its answer, answers polled."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub import ClientTls, ConfigPath, ConnectorConfig, HttpEndpoint
from hub.outbound import Auth

from ..answers import CaseAnswerSettings
from .wsdl import WsdlError, describe_port


class SoapAnswerPolling(BaseModel):
    """Answers fetched by an operation that returns the new ones, each acknowledged by another."""

    model_config = ConfigDict(extra="forbid")

    operation: str = Field(min_length=1, description="the operation returning new answers")
    arguments: dict[str, Any] = Field(default_factory=dict, description="its arguments")
    interval: float = Field(60.0, gt=0, description="seconds between polls")
    acknowledge: str | None = Field(None, description="the operation acknowledging one answer once stored")
    parameter: str | None = Field(
        None, description="the acknowledge operation's argument taking the answer id"
    )


class SoapConfig(ConnectorConfig, CaseAnswerSettings):
    """`type: soap`: the application goes in as the arguments of one WSDL operation."""

    model_config = ConfigDict(extra="forbid")

    wsdl: ConfigPath = Field(description="the service's WSDL file (the schemas it imports beside it)")
    service: str | None = Field(None, description="the WSDL service (default: the first)")
    port: str | None = Field(None, description="the service's port (default: the first)")
    operation: str = Field(min_length=1, description="the operation that creates the case")
    endpoint: str | None = Field(
        None, pattern=r"^https?://", description="the service's URL (default: the WSDL's soap:address)"
    )
    auth: Auth | None = None
    tls: ClientTls | None = None
    timeout_seconds: float = Field(30.0, gt=0)
    case_number: str = Field(description="JSONPath to the case number in the answer, e.g. $.Aktenzeichen")
    answers: SoapAnswerPolling | None = None

    @model_validator(mode="after")
    def _operations_described(self) -> SoapConfig:
        # The WSDL, service, port and operations are checked when the configuration loads.
        try:
            port = describe_port(self.wsdl, self.service, self.port)
            port.require(self.operation)
            if self.answers is not None:
                port.require(self.answers.operation)
                if self.answers.acknowledge is not None:
                    port.require(self.answers.acknowledge)
        except WsdlError as exc:
            raise ValueError(str(exc)) from None
        if self.endpoint is None and not port.address:
            raise ValueError("the WSDL's port has no soap:address: set `endpoint`")
        return self

    def http_endpoint(self) -> HttpEndpoint:
        """Where requests go and how they authenticate, for the outbound helper."""
        address = self.endpoint or describe_port(self.wsdl, self.service, self.port).address or ""
        return HttpEndpoint(
            base_url=address, auth=self.auth, tls=self.tls, timeout_seconds=self.timeout_seconds
        )
