"""Paths into a submission's data, in its format's own language: JSONPath, XPath, field names.

JSONPath is the core's (`hub.jsonpaths`, jsonpath-ng); XPath is lxml's XPath 1.0 with the configured
namespace prefixes; a form's fields are named as sent. An XPath result that is an element reads as its
text content (whitespace-trimmed), an attribute as its value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from hub import BadSubmission, jsonpaths

JSON, XML, FORM = "json", "xml", "form"
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def check_path(fmt: str, path: str, namespaces: Mapping[str, str]) -> None:
    """Refuse (`ValueError`) a path that is not valid in the format's path language."""
    if fmt == JSON:
        jsonpaths.compiled(path)
    elif fmt == XML:
        xpath = _xpath(path, tuple(sorted(namespaces.items())))
        try:
            xpath(etree.Element("probe"))  # an unknown prefix shows only when evaluated
        except etree.XPathError as exc:
            raise ValueError(f"{path!r} is not usable XPath: {exc}") from None
    elif not path.strip() or _CONTROL.search(path):
        raise ValueError(f"{path!r} is not a field name")


@functools.lru_cache(maxsize=256)
def _xpath(path: str, namespaces: tuple[tuple[str, str], ...]) -> etree.XPath:
    try:
        return etree.XPath(path, namespaces=dict(namespaces), smart_strings=False)
    except etree.XPathSyntaxError as exc:
        raise ValueError(f"{path!r} is not XPath: {exc}") from None


@dataclass(frozen=True)
class Data:
    """A submission's data (a JSON value, an XML element, or the form's fields) and how to read it."""

    fmt: str
    document: Any
    namespaces: Mapping[str, str] = field(default_factory=dict)

    def nodes(self, path: str) -> list[Any]:
        """What `path` selects, as found (JSON values, XML nodes, a field's values)."""
        if self.fmt == JSON:
            return jsonpaths.every(path, self.document)
        if self.fmt == XML:
            try:
                found = _xpath(path, tuple(sorted(self.namespaces.items())))(self.document)
            except etree.XPathError:
                # Checked at start-up on a probe; what still fails depends on this document's content.
                raise BadSubmission(f"path {path!r} cannot be evaluated on this XML data", 422) from None
            return found if isinstance(found, list) else [found]
        value = self.document.get(path)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def value(self, path: str) -> Any:
        """The selected value: None if nothing, the value if one, a list if several."""
        found = [_scalar(node) for node in self.nodes(path)]
        if not found:
            return None
        return found[0] if len(found) == 1 else found

    def within(self, node: Any) -> Data:
        """The same reader on a node this one selected (for paths relative to it)."""
        return Data(self.fmt, node, self.namespaces)


def _scalar(node: Any) -> Any:
    if isinstance(node, etree._Element):
        return "".join(node.itertext()).strip()
    if isinstance(node, bytes):
        return node.decode("utf-8", "replace")
    return node
