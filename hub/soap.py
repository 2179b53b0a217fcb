"""SOAP on the shared HTTP session: a zeep transport that sends through an `Outbound`, and SOAP faults
classified for the core.

`SoapTransport` is what `zeep.AsyncClient(wsdl, transport=...)` needs: operations are posted through
the connector's `Outbound` (shared aiohttp session, auth, TLS, bounded answers, transport failures as
`Retryable`), and the WSDL and its schemas are read from files below one directory only (`LocalDocuments`:
the schema directory or where the operator put the WSDL): zeep loads them synchronously, and a download
would block the event loop and make start-up depend on the network.

`fault_error` turns a zeep `Fault` into `Retryable` or `Permanent`; `transient_fault` is the rule
behind it, for clients that read faults themselves (XTA streams MTOM and parses its envelopes itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

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


class LocalDocuments(Transport):  # zeep ships no type hints: a plain base class
    """A zeep transport that reads the WSDL and its schemas from files below one directory, and sends
    nothing: no URL is fetched, no file outside `root` is read."""

    error: type[Exception] = Permanent  # what a refused or unreadable document raises

    def __init__(self, root: Path) -> None:
        # Not Transport.__init__: it opens a `requests` session this transport never uses.
        self.root = root.resolve()
        self.cache = None
        self.load_timeout = None
        self.operation_timeout = None
        self._close_session = False

    def load(self, url: str) -> bytes:
        """Read a WSDL/XSD file below the root; refuse URLs and paths outside."""
        parts = urlsplit(url)
        if parts.scheme not in ("", "file") or parts.netloc not in ("", "localhost"):
            raise self.error(f"refusing to load {url!r}: only local schema files are read")
        path = Path(unquote(parts.path) if parts.scheme == "file" else url).resolve()
        if not path.is_relative_to(self.root):
            raise self.error(f"refusing to load {str(path)!r}: outside {str(self.root)!r}")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise self.error(f"cannot read {str(path)!r}: {exc.strerror}") from None

    def post(self, address: str, message: Any, headers: Any) -> Any:
        """Never used: this transport only reads documents."""
        raise self.error("a transport for local documents sends no requests")

    def get(self, address: str, params: Any, headers: Any) -> Any:
        """Never used: this transport only reads documents."""
        raise self.error("a transport for local documents sends no requests")


class SoapTransport(LocalDocuments):
    """zeep's async transport on an `Outbound`; the WSDL and its schemas come from files below `root`."""

    def __init__(
        self, outbound: Outbound, root: Path, *, what: str = "SOAP call", limit: int = MAX_ANSWER
    ) -> None:
        super().__init__(root)
        self.outbound = outbound
        self.what = what
        self.limit = limit

    async def aclose(self) -> None:
        """Nothing to close: the session is the hub's, shared by every connector."""

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
        xml = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        return await self.post(address, xml, headers)

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
