"""XML namespaces of XTA 2 and hardened parsing: no DTD, no entities, no network, a size limit."""

from __future__ import annotations

from lxml import etree

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
XOP = "http://www.w3.org/2004/08/xop/include"
XTA = "http://xoev.de/transport/xta/211"
OSCI = "http://www.osci.eu/ws/2008/05/transport"
META = "http://www.osci.eu/ws/2014/10/transport"
XENC = "http://www.w3.org/2001/04/xmlenc#"
XML = "http://www.w3.org/XML/1998/namespace"

NSMAP = {"env": SOAP12, "wsa": WSA, "xop": XOP, "xta": XTA, "osci": OSCI, "oscimeta": META}


class UnsafeXml(ValueError):
    """The document is not well-formed, too large, or declares a DTD or entities."""


def qname(namespace: str, local: str) -> str:
    """Clark notation ``{namespace}local``."""
    return f"{{{namespace}}}{local}"


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


def text_of(element: etree._Element | None) -> str | None:
    """The stripped text of an element, None for a missing element or an empty text."""
    if element is None or element.text is None:
        return None
    value = element.text.strip()
    return value or None
