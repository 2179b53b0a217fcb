"""Hardened XML parsing for every plugin: no entities, no DTD, no network, a size limit.

XML from outside (SAML responses, XBau and XTA messages, xdomea) is parsed only through these.
"""

from __future__ import annotations

from lxml import etree


class UnsafeXml(ValueError):
    """The document is not well-formed, too large, or declares a DTD or entities."""


def hardened_parser(*, huge_tree: bool = False) -> etree.XMLParser:
    """An lxml parser that resolves no entities, loads no DTD and never touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=huge_tree,
        remove_pis=True,
    )


def parse_xml(data: bytes, *, limit: int) -> etree._Element:
    """Parse `data` hardened; refuse a DOCTYPE, entity references and documents over `limit` bytes."""
    if len(data) > limit:
        raise UnsafeXml(f"document larger than {limit} bytes")
    try:
        root = etree.fromstring(data, parser=hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"not well-formed XML: {exc.msg}") from None
    doc = root.getroottree()
    if doc.docinfo.doctype or doc.docinfo.internalDTD is not None:
        raise UnsafeXml("document type declarations are not accepted")
    if any(True for _ in root.iter(etree.Entity)):
        raise UnsafeXml("entity references are not accepted")
    return root
