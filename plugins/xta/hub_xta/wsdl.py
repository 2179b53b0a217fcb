"""The XTA 2 WSDL loaded with zeep from the schema directory, offline and hardened.

zeep reads the WSDL and every imported XSD through `LocalTransport`, which serves files below the XTA
directory only and refuses every URL: nothing is ever fetched from the network, and entity declarations
and DTDs are refused by zeep's settings. The loaded definitions are cached per directory.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import zeep
from lxml import etree

from hub.soap import LocalDocuments

from .xml import SOAP12, WSA

WSDL_FILE = "XTA.wsdl"
SERVICE = "XTAService"

# The WSDL's ports, and the operations this library speaks on each.
MSGBOX = "MsgBoxPort"
SEND = "SendXtaPort"
MANAGEMENT = "ManagementPort"
PORTS = (MSGBOX, SEND, MANAGEMENT)


class XtaSchemaError(RuntimeError):
    """The XTA WSDL or one of its schemas cannot be loaded from the schema directory."""


def xta_directory(schemas: Path) -> Path:
    """The XTA folder of a schema directory laid out like ``shared/reference`` (or the folder itself)."""
    for candidate in (schemas / "xta", schemas):
        if (candidate / WSDL_FILE).is_file():
            return candidate.resolve()
    raise XtaSchemaError(f"no xta/{WSDL_FILE} in the schema directory {str(schemas)!r}")


class LocalTransport(LocalDocuments):
    """zeep reads the XTA WSDL and its XSDs from the XTA directory only (requests go elsewhere)."""

    error = XtaSchemaError


class XtaWsdl:
    """The parsed WSDL: builds request envelopes and reads response elements into zeep objects."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        settings = zeep.Settings(
            strict=True,
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
            xml_huge_tree=False,
        )
        try:
            self.client = zeep.Client(  # type: ignore[no-untyped-call]
                str(directory / WSDL_FILE), transport=LocalTransport(directory), settings=settings
            )
        except XtaSchemaError:
            raise
        except Exception as exc:  # zeep raises many kinds while parsing a broken WSDL
            raise XtaSchemaError(f"cannot load {WSDL_FILE}: {type(exc).__name__}: {exc}") from exc
        self._bindings = {port: self.client.bind(SERVICE, port)._binding for port in PORTS}

    def action(self, port: str, operation: str) -> str:
        """The WS-Addressing action (= SOAP action) of an operation."""
        op = self._bindings[port].get(operation)
        action = op.abstract.wsa_action or op.soapaction
        return str(action)

    def envelope(self, port: str, operation: str, address: str, **values: Any) -> tuple[etree._Element, str]:
        """A request envelope with WS-Addressing headers; returns it and its wsa:MessageID."""
        # `_create` with the client applies zeep's WS-Addressing (Action, MessageID, To) for the given
        # address; the public `create_message` would address every port's default location instead.
        envelope: etree._Element
        envelope, _ = self._bindings[port]._create(
            operation, (), values, client=self.client, options={"address": address}
        )
        found = envelope.find(f"{{{SOAP12}}}Header/{{{WSA}}}MessageID")
        if found is None or not found.text:
            raise XtaSchemaError(f"zeep built no wsa:MessageID for {operation}")
        return envelope, found.text

    def parse(self, element: etree._Element) -> Any:
        """An element of the XTA/OSCI schemas as a zeep object (types checked)."""
        declaration = self.client.get_element(element.tag)  # type: ignore[no-untyped-call]
        return declaration.parse(element, self.client.wsdl.types)


@functools.lru_cache(maxsize=8)
def load_wsdl(schemas: Path) -> XtaWsdl:
    """The XTA WSDL from a schema directory, loaded once per directory."""
    return XtaWsdl(xta_directory(schemas))
