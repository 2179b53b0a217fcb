"""Hardened XML parsing: the core's (no entities, no DTD, no network, a size limit)."""

from __future__ import annotations

from hub.xml import UnsafeXml, parse_xml

__all__ = ["UnsafeXml", "parse_xml"]
