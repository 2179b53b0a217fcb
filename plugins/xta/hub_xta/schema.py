"""Validation of whole SOAP envelopes against the SOAP 1.2 envelope schema and the XTA/OSCI schemas.

The simulator checks every request with it, and the tests check every answer the simulator gives. XOP
(MTOM) references are validated as what they stand for: base64 content.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

from lxml import etree

from hub.schemas import combined_schema

from .wsdl import XtaSchemaError, xta_directory
from .xml import META, OSCI, SOAP12, WSA, XOP, XTA

_IMPORTS = {
    SOAP12: ".xsd",  # the W3C SOAP 1.2 envelope schema, under the name the OSCI schema imports it by
    OSCI: "OSCI2_02.xsd",
    META: "OSCI_MessageMetaData_V2.02.xsd",
    WSA: "ws-addr.xsd",
}
_INCLUDES = ("XTA-Webservice-Globale-Elemente.xsd", "XTA-Webservice-Exceptions.xsd")


class XtaSchema:
    """The XSDs of an XTA directory, compiled once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._schema = combined_schema(
            directory,
            XTA,
            includes=[directory / name for name in _INCLUDES],
            imports={ns: directory / name for ns, name in _IMPORTS.items()},
            error=XtaSchemaError,
            what="the XTA schemas",
        )
        self._elements = _global_elements(directory)

    def errors(self, envelope: etree._Element) -> list[str]:
        """Schema violations of a SOAP envelope (empty: valid). Lax parts are checked where declared."""
        document = copy.deepcopy(envelope)
        for include in list(document.iter(f"{{{XOP}}}Include")):
            parent = include.getparent()
            if parent is not None:
                parent.remove(include)
                parent.text = "AA=="  # XOP stands for base64 content: validate it as such
        problems: list[str] = []
        if not self._schema.validate(document):
            problems.extend(f"line {e.line}: {e.message}" for e in self._schema.error_log)
        # The envelope schema checks header blocks and body content laxly: an undeclared element would
        # pass unnoticed. Every block of the XTA/OSCI namespaces must be a declared element.
        for block in _blocks(document):
            namespace = etree.QName(block).namespace
            if namespace in (XTA, OSCI, META) and not self._declared(block):
                problems.append(f"{etree.QName(block).text} is not an element of the XTA schemas")
        return problems

    def _declared(self, block: etree._Element) -> bool:
        qn = etree.QName(block)
        return qn.localname in self._elements.get(qn.namespace or "", set())


def _global_elements(directory: Path) -> dict[str, set[str]]:
    """The global element names each schema file of the directory declares, by target namespace."""
    declared: dict[str, set[str]] = {}
    for path in directory.glob("*.xsd"):
        parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
        root = etree.parse(str(path), parser).getroot()
        names = {e.get("name", "") for e in root.findall("{http://www.w3.org/2001/XMLSchema}element")}
        declared.setdefault(root.get("targetNamespace", ""), set()).update(names - {""})
    return declared


def _blocks(envelope: etree._Element) -> list[etree._Element]:
    blocks: list[etree._Element] = []
    for section in ("Header", "Body"):
        found = envelope.find(f"{{{SOAP12}}}{section}")
        if found is not None:
            blocks.extend(child for child in found if isinstance(child.tag, str))
    return blocks


@functools.lru_cache(maxsize=8)
def load_schema(schemas: Path) -> XtaSchema:
    """The compiled XTA schemas of a schema directory, once per directory."""
    return XtaSchema(xta_directory(schemas))
