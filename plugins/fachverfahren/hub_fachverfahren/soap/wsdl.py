"""One operation of the operator's WSDL through zeep: zeep builds and reads the SOAP, aiohttp carries it.

zeep reads the WSDL and the schemas it imports from the WSDL's own directory only (nothing is fetched
from the network; DTDs and entities are refused). Requests are sent by the hub's outbound helper on
the shared session, so zeep's own (blocking) transports never send anything.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import zeep
import zeep.exceptions
from lxml import etree
from zeep.helpers import serialize_object


class WsdlError(ValueError):
    """The WSDL cannot be used: unreadable, invalid, or without the configured service, port or operation."""


class _LocalFiles(zeep.Transport):
    """Loads documents below one directory and never touches the network."""

    def __init__(self, root: Path) -> None:
        # The base class would open a `requests` session; this transport never sends anything.
        self.root = root.resolve()
        self._close_session = False
        self.cache = None
        self.load_timeout = 0
        self.operation_timeout = None

    def load(self, url: str) -> bytes:
        """Read a WSDL/XSD file below the root; refuse URLs and paths outside."""
        parts = urlsplit(url)
        if parts.scheme not in ("", "file") or parts.netloc not in ("", "localhost"):
            raise WsdlError(f"refusing to load {url!r}: only files beside the WSDL are read")
        path = Path(unquote(parts.path) if parts.scheme == "file" else url).resolve()
        if not path.is_relative_to(self.root):
            raise WsdlError(f"refusing to load {str(path)!r}: outside {str(self.root)!r}")
        return path.read_bytes()


@dataclass
class _Reply:
    """What zeep's `process_reply` reads of an HTTP answer (the attributes of a `requests` response)."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    encoding: str | None = None


class SoapService:
    """One port of a WSDL: request envelopes built, answers read, faults raised as zeep's."""

    def __init__(self, wsdl: Path, service: str | None = None, port: str | None = None) -> None:
        settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        try:
            self.client = zeep.Client(  # type: ignore[no-untyped-call]
                str(wsdl.resolve()), transport=_LocalFiles(wsdl.parent), settings=settings
            )
        except WsdlError:
            raise
        except Exception as exc:  # zeep raises many kinds while parsing a broken WSDL
            raise WsdlError(f"cannot load {str(wsdl)!r}: {type(exc).__name__}: {exc}"[:500]) from None
        self.wsdl = wsdl
        services = self.client.wsdl.services
        chosen = services.get(service) if service else next(iter(services.values()), None)
        if chosen is None:
            raise WsdlError(f"{wsdl.name} has no service {service!r} (it has {sorted(services)})")
        ports = chosen.ports
        bound = ports.get(port) if port else next(iter(ports.values()), None)
        if bound is None:
            raise WsdlError(
                f"{wsdl.name}: service {chosen.name} has no port {port!r} (it has {sorted(ports)})"
            )
        self.port = bound.name
        self.binding = bound.binding
        self.address: str | None = bound.binding_options.get("address")

    def require(self, operation: str) -> None:
        """`WsdlError` unless the port has this operation."""
        try:
            self.binding.get(operation)
        except ValueError:
            raise WsdlError(f"{self.wsdl.name}: port {self.port} has no operation {operation!r}") from None

    def envelope(
        self, operation: str, arguments: Mapping[str, Any], address: str
    ) -> tuple[bytes, dict[str, str]]:
        """The request (envelope bytes and HTTP headers); `ValueError`/`TypeError` for misfit arguments."""
        try:
            envelope, headers = self.binding._create(
                operation, (), dict(arguments), client=self.client, options={"address": address}
            )
        except (zeep.exceptions.Error, TypeError) as exc:  # TypeError: an argument the operation lacks
            raise ValueError(str(exc)) from None
        body = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        return body, {str(k): str(v) for k, v in headers.items()}

    def result(self, operation: str, status: int, headers: Mapping[str, str], body: bytes) -> Any:
        """The answer as plain data (dicts and lists); raises `zeep.exceptions.Fault` for a SOAP fault."""
        reply = self.binding.process_reply(
            self.client, self.binding.get(operation), _Reply(status, headers, body)
        )
        return serialize_object(reply, dict)  # type: ignore[no-untyped-call]


@functools.lru_cache(maxsize=32)
def _load(wsdl: Path, service: str | None, port: str | None, mtime: float) -> SoapService:
    return SoapService(wsdl, service, port)


def load_service(wsdl: Path, service: str | None = None, port: str | None = None) -> SoapService:
    """The port of the WSDL in `wsdl`, loaded once per file version."""
    try:
        mtime = wsdl.stat().st_mtime
    except OSError as exc:
        raise WsdlError(f"cannot read the WSDL {str(wsdl)!r}: {exc.strerror}") from None
    return _load(wsdl.resolve(), service, port, mtime)
