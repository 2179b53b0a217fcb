"""XML namespaces of XTA 2; hardened parsing comes from the core (`hub.xml`)."""

from __future__ import annotations

from lxml import etree

from hub.xml import UnsafeXml, parse_xml

__all__ = ["NSMAP", "UnsafeXml", "parse_xml", "qname", "text_of"]

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
XOP = "http://www.w3.org/2004/08/xop/include"
XTA = "http://xoev.de/transport/xta/211"
OSCI = "http://www.osci.eu/ws/2008/05/transport"
META = "http://www.osci.eu/ws/2014/10/transport"
XENC = "http://www.w3.org/2001/04/xmlenc#"
XML = "http://www.w3.org/XML/1998/namespace"

NSMAP = {"env": SOAP12, "wsa": WSA, "xop": XOP, "xta": XTA, "osci": OSCI, "oscimeta": META}


def qname(namespace: str, local: str) -> str:
    """Clark notation ``{namespace}local``."""
    return f"{{{namespace}}}{local}"


def text_of(element: etree._Element | None) -> str | None:
    """The stripped text of an element, None for a missing element or an empty text."""
    if element is None or element.text is None:
        return None
    value = element.text.strip()
    return value or None
