"""The `soap` transport's configuration: one WSDL operation, and where the case number is in its answer."""

from __future__ import annotations

from pathlib import Path

from pydantic import ConfigDict, Field, model_validator

from hub import ClientTls, ConnectorConfig, HttpEndpoint
from hub.outbound import Auth

from .wsdl import WsdlError, load_operation


class SoapConfig(ConnectorConfig):
    """`type: soap`: the application goes in as the arguments of one WSDL operation."""

    model_config = ConfigDict(extra="forbid")

    wsdl: Path = Field(description="the service's WSDL file (the schemas it imports beside it)")
    service: str | None = Field(None, description="the WSDL service (default: the first)")
    port: str | None = Field(None, description="the service's port (default: the first)")
    operation: str = Field(min_length=1, description="the operation that creates the case")
    endpoint: str | None = Field(
        None, pattern=r"^https?://", description="the service's URL (default: the WSDL's soap:address)"
    )
    auth: Auth | None = None
    tls: ClientTls | None = None
    timeout_seconds: float = Field(30.0, gt=0)
    payload: str | None = Field(
        None,
        description="the mapping's `payloads.<name>` that are the arguments (default: this connector's)",
    )
    case_number: str = Field(
        description="dotted path to the case number in the answer, e.g. Vorgang.Aktenzeichen"
    )
    reference: str | None = Field(
        None, description="dotted path to the system's id of the case (default: the case number)"
    )

    @model_validator(mode="after")
    def _operation_described(self) -> SoapConfig:
        # The WSDL, service, port and operation are checked when the configuration loads.
        try:
            operation = load_operation(self.wsdl, self.operation, self.service, self.port)
        except WsdlError as exc:
            raise ValueError(str(exc)) from None
        if self.endpoint is None and not operation.address:
            raise ValueError("the WSDL's port has no soap:address: set `endpoint`")
        return self

    def http_endpoint(self) -> HttpEndpoint:
        """Where requests go and how they authenticate, for the outbound helper."""
        address = self.endpoint or load_operation(self.wsdl, self.operation, self.service, self.port).address
        return HttpEndpoint(
            base_url=address or "", auth=self.auth, tls=self.tls, timeout_seconds=self.timeout_seconds
        )
