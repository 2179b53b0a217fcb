"""SOAP on the shared HTTP session: a zeep transport that sends through an `Outbound`, and SOAP faults
classified for the core.

`SoapTransport` is what `zeep.AsyncClient(wsdl, transport=...)` needs: operations are posted through
the connector's `Outbound` (shared aiohttp session, auth, TLS, bounded answers, transport failures as
`Retryable`), and the WSDL and its schemas are read from local files only (the schema directory or a
path the operator configures): zeep loads them synchronously, and a download would block the event loop
and make start-up depend on the network.

`fault_error` turns a zeep `Fault` into `Retryable` or `Permanent`; `transient_fault` is the rule
behind it, for clients that read faults themselves (XTA streams MTOM and parses its envelopes itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from lxml import etree
from requests.structures import CaseInsensitiveDict
from zeep.exceptions import Fault
from zeep.transports import Transport

from hub.errors import Permanent, Retryable
from hub.outbound import MAX_ANSWER, MAX_MESSAGE, HttpAnswer, Outbound, classify

_XML_TYPES = ("application/soap+xml", "text/xml", "application/xml", "multipart/related")


def transient_fault(code: str | None) -> bool:
    """Whether a SOAP fault code says the server's own trouble (may pass): ``Receiver``/``Server``.

    ``Sender``/``Client``, ``MustUnderstand``, ``VersionMismatch`` and ``DataEncodingUnknown`` say the
    request itself is not acceptable, and will not be on a retry.
    """
    local = (code or "").rpartition("}")[2].rpartition(":")[2]
    return local in ("Receiver", "Server")


def fault_error(fault: Fault, what: str, system: str) -> Retryable | Permanent:
    """The error for a SOAP fault the server answered, quoting its reason."""
    reason = " ".join(str(fault.message or "no reason given").split())[:MAX_MESSAGE]
    code = str(fault.code or "")
    message = f"{what}: {system} answered a SOAP fault ({code or 'no code'}): {reason}"
    return Retryable(message) if transient_fault(code) else Permanent(message)


class SoapTransport(Transport):  # zeep ships no type hints: a plain base class
    """A zeep transport posting through an `Outbound`; WSDL and schemas come from local files only."""

    def __init__(self, outbound: Outbound, *, what: str = "SOAP call", limit: int = MAX_ANSWER) -> None:
        # Not Transport.__init__: it opens a `requests` session this transport never uses.
        self.cache = None
        self.load_timeout = None
        self.operation_timeout = None
        self._close_session = False
        self.outbound = outbound
        self.what = what
        self.limit = limit

    async def aclose(self) -> None:
        """Nothing to close: the session is the hub's, shared by every connector."""

    def _load_remote_data(self, url: str) -> bytes:
        if url.startswith("file://"):
            with open(url.removeprefix("file://"), "rb") as document:
                return document.read()
        raise Permanent(
            f"{self.what}: {url} is not loaded over the network; put the WSDL and its schemas into the "
            "schema directory (or a local path) and point the configuration there"
        )

    async def post(self, address: str, message: bytes | str, headers: Mapping[str, str]) -> requests.Response:
        """POST one SOAP message; an answer that is no SOAP (a proxy's error page) raises as HTTP does."""
        data = message.encode("utf-8") if isinstance(message, str) else message
        answer = await self.outbound.send(
            "POST", address, self.what, data=data, headers=headers, limit=self.limit
        )
        media = answer.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if not 200 <= answer.status < 300 and (media not in _XML_TYPES or not answer.body):
            # A fault comes as XML with 500 (SOAP 1.1) or 400/500 (SOAP 1.2); anything else is HTTP's.
            classify(answer.status, answer.body, self.what, self.outbound.system)
        return _response(answer)

    async def post_xml(self, address: str, envelope: etree._Element, headers: Mapping[str, str]) -> Any:
        """POST a SOAP envelope zeep built."""
        return await self.post(
            address, etree.tostring(envelope, xml_declaration=True, encoding="utf-8"), headers
        )

    async def get(self, address: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Any:
        """GET (zeep's HTTP binding); the answer as zeep expects it."""
        answer = await self.outbound.send(
            "GET", address, self.what, params=params, headers=headers, limit=self.limit
        )
        classify(answer.status, answer.body, self.what, self.outbound.system)
        return _response(answer)


def _response(answer: HttpAnswer) -> requests.Response:
    """The answer as the `requests.Response` zeep reads."""
    response = requests.Response()
    response._content = answer.body
    response.status_code = answer.status
    response.headers = CaseInsensitiveDict(answer.headers)
    return response
