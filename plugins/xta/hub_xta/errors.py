"""XTA faults as the WSDL defines them, classified for the core: `Permanent` or `Retryable`.

Every fault the server answers becomes an `XtaFault`. The XTA exceptions of the WSDL get their own
class; `XTAWSTechnicalProblemException` (the server's internal trouble) is retryable, every other XTA
exception is permanent: the same request will be refused again. A fault without XTA detail is
classified by its SOAP code: ``env:Receiver`` retryable, ``env:Sender`` permanent.
"""

from __future__ import annotations

from hub import Permanent, Retryable
from hub.soap import transient_fault


class XtaFault(Exception):
    """A SOAP fault answered by the XTA server."""

    def __init__(
        self,
        reason: str,
        *,
        exception: str | None = None,
        code: str | None = None,
        code_name: str | None = None,
        soap_code: str = "Receiver",
        operation: str = "",
    ) -> None:
        label = exception or f"SOAP fault ({soap_code})"
        detail = f" [{code}{' ' + code_name if code_name else ''}]" if code else ""
        super().__init__(f"{operation}: {label}{detail}: {reason}" if operation else f"{label}: {reason}")
        self.reason = reason
        self.exception = exception  # the XTA exception element, e.g. "InvalidMessageIDException"
        self.code = code  # errorCode/code, e.g. "9070"
        self.code_name = code_name
        self.soap_code = soap_code  # "Sender" or "Receiver" (SOAP 1.2 env:Code)
        self.operation = operation


class XtaPermanentFault(XtaFault, Permanent):
    """A fault that the same request will get again."""


class XtaRetryableFault(XtaFault, Retryable):
    """A fault that may pass (the server's own trouble)."""


class PermissionDeniedFault(XtaPermanentFault):
    """PermissionDeniedException: account unknown or locked, certificate expired or not matching (901x)."""


class InvalidMessageIdFault(XtaPermanentFault):
    """InvalidMessageIDException: the message id is unknown to this account (9070)."""


class ParameterIsNotValidFault(XtaPermanentFault):
    """ParameterIsNotValidException: missing or invalid parameters, too large, id taken (902x)."""


class MessageSchemaViolationFault(XtaPermanentFault):
    """MessageSchemaViolationException: the payload violates its schema or service profile (905x)."""


class MessageVirusDetectionFault(XtaPermanentFault):
    """MessageVirusDetectionException: malicious content found (9060)."""


class SyncAsyncFault(XtaPermanentFault):
    """SyncAsyncException: the service is offered only synchronously or only asynchronously (908x)."""


class CancelDeniedFault(XtaPermanentFault):
    """CancelDeniedException: the transport can no longer be cancelled (910x)."""


class TechnicalProblemFault(XtaRetryableFault):
    """XTAWSTechnicalProblemException: internal trouble of the XTA server or its provider (903x)."""


FAULTS: dict[str, type[XtaFault]] = {
    "PermissionDeniedException": PermissionDeniedFault,
    "InvalidMessageIDException": InvalidMessageIdFault,
    "ParameterIsNotValidException": ParameterIsNotValidFault,
    "MessageSchemaViolationException": MessageSchemaViolationFault,
    "MessageVirusDetectionException": MessageVirusDetectionFault,
    "SyncAsyncException": SyncAsyncFault,
    "CancelDeniedException": CancelDeniedFault,
    "XTAWSTechnicalProblemException": TechnicalProblemFault,
}


def fault_class(exception: str | None, soap_code: str) -> type[XtaFault]:
    """The class of a fault: by its XTA exception, else by its SOAP code."""
    if exception is not None and exception in FAULTS:
        return FAULTS[exception]
    return XtaRetryableFault if transient_fault(soap_code) else XtaPermanentFault


class XtaProtocolError(Permanent):
    """The server's answer does not follow XTA/SOAP/MTOM (malformed, unexpected, inconsistent)."""


class XtaUnsupported(Permanent):
    """The message uses something this client does not handle (e.g. end-to-end encrypted content)."""


class XtaContentTooLarge(Permanent):
    """A message's content is larger than allowed (or than it declared): it was not downloaded whole."""
