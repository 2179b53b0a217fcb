"""The operator's WSDL through zeep: one port, its operations called on the hub's shared session.

zeep reads the WSDL and the schemas it imports from the WSDL's own directory only (`hub.soap`'s local
documents: nothing is fetched from the network, DTDs and entities are refused), and sends through
`hub.soap.SoapTransport`, i.e. the connector's `Outbound` (auth, TLS, bounded answers, HTTP failures
classified). Results come back as plain data (dicts and lists) for JSONPath.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zeep
import zeep.exceptions
import zeep.proxy
from zeep.helpers import serialize_object

from hub import Outbound, Permanent
from hub.soap import LocalDocuments, SoapTransport, fault_error

_SETTINGS = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)


class WsdlError(ValueError):
    """The WSDL cannot be used: unreadable, invalid, or without the configured service, port or operation."""


@dataclass(frozen=True)
class Port:
    """What the configuration names in the WSDL: the port's binding, its address and operations."""

    binding: str  # the binding's qualified name, "{namespace}name"
    address: str | None  # the port's soap:address
    operations: frozenset[str]

    def require(self, operation: str) -> None:
        """`WsdlError` unless the port has this operation."""
        if operation not in self.operations:
            raise WsdlError(f"the port has no operation {operation!r} (it has {sorted(self.operations)})")


def _client(wsdl: Path, transport: LocalDocuments, cls: type[zeep.Client] = zeep.Client) -> zeep.Client:
    try:
        return cls(str(wsdl.resolve()), transport=transport, settings=_SETTINGS)
    except Permanent as exc:  # a document outside the WSDL's directory, or unreadable
        raise WsdlError(str(exc)) from None
    except Exception as exc:  # zeep raises many kinds while parsing a broken WSDL
        raise WsdlError(f"cannot load {str(wsdl)!r}: {type(exc).__name__}: {exc}"[:500]) from None


@functools.lru_cache(maxsize=32)
def _port(wsdl: Path, service: str | None, port: str | None, mtime: float) -> Port:
    client = _client(wsdl, LocalDocuments(wsdl.parent))
    services = client.wsdl.services
    chosen = services.get(service) if service else next(iter(services.values()), None)
    if chosen is None:
        raise WsdlError(f"{wsdl.name} has no service {service!r} (it has {sorted(services)})")
    bound = chosen.ports.get(port) if port else next(iter(chosen.ports.values()), None)
    if bound is None:
        raise WsdlError(
            f"{wsdl.name}: service {chosen.name} has no port {port!r} (it has {sorted(chosen.ports)})"
        )
    binding = bound.binding
    return Port(
        binding=binding.name.text,
        address=bound.binding_options.get("address"),
        operations=frozenset(binding._operations),
    )


def describe_port(wsdl: Path, service: str | None = None, port: str | None = None) -> Port:
    """The configured port of the WSDL in `wsdl`, read once per file version."""
    try:
        mtime = wsdl.stat().st_mtime
    except OSError as exc:
        raise WsdlError(f"cannot read the WSDL {str(wsdl)!r}: {exc.strerror}") from None
    return _port(wsdl.resolve(), service, port, mtime)


class SoapService:
    """The port's operations, called asynchronously through the connector's `Outbound`."""

    def __init__(self, wsdl: Path, port: Port, outbound: Outbound, address: str) -> None:
        transport = SoapTransport(outbound, wsdl.parent, what="SOAP call")
        client = _client(wsdl, transport, zeep.AsyncClient)
        self.system = outbound.system
        self._proxy = zeep.proxy.AsyncServiceProxy(  # type: ignore[no-untyped-call]
            client, client.wsdl.bindings[port.binding], address=address
        )

    async def call(self, operation: str, arguments: Mapping[str, Any], what: str) -> Any:
        """The operation's result as plain data; `Permanent` for arguments that do not fit the WSDL,
        `Permanent`/`Retryable` for SOAP faults by their code, HTTP failures as the outbound raises them."""
        try:
            result = await self._proxy[operation](**arguments)
        except zeep.exceptions.Fault as fault:
            raise fault_error(fault, what, self.system) from None
        except (TypeError, ValueError, zeep.exceptions.Error) as exc:
            # Arguments the operation does not take or whose values do not fit its schema (nothing is
            # sent then), or an answer that does not fit it.
            raise Permanent(f"{what}: does not fit the WSDL: {str(exc)[:300]}") from None
        return serialize_object(result, dict)  # type: ignore[no-untyped-call]
