"""Hardened XML parsing: no entities, no DTD, no network, a size limit."""

from __future__ import annotations

from lxml import etree


class UnsafeXml(ValueError):
    """The document is not well-formed, too large, or declares a DTD or entities."""


def parse_xml(data: bytes, *, limit: int) -> etree._Element:
    """Parse `data` with entity resolution, DTD loading and network access off; refuse any DOCTYPE."""
    if len(data) > limit:
        raise UnsafeXml(f"document larger than {limit} bytes")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"not well-formed XML: {exc.msg}") from None
    doc = root.getroottree()
    if doc.docinfo.doctype or doc.docinfo.internalDTD is not None:
        raise UnsafeXml("document type declarations are not accepted")
    if any(True for _ in root.iter(etree.Entity)):
        raise UnsafeXml("entity references are not accepted")
    return root
