"""Removing spent credentials (e.g. a forwarded SAML response) from a kept original submission.

The hub asks once the identity step has ended (`Source.redact_original`), naming form fields. A field
configured in `fields` is removed where its path points: the JSON members it selects, the XML elements
it selects (an XPath selecting attributes or text cannot be removed: the original stays marked). A JSON
body without `fields` is the form itself: a top-level member of that name goes. The body is then
written again (JSON compact in UTF-8, XML by lxml): the content is the same, its whitespace may not be.
A multipart or urlencoded original is the canonical JSON, whose fields lose the named members.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from lxml import etree

from hub import jsonpaths
from hub.formdata.jsonbody import parse_json
from hub.formdata.submission import redact_canonical
from hub.xml import UnsafeXml, parse_xml

from .config import BodyFormat, WebhookConfig
from .paths import Data


def redact(
    content: bytes, media_type: str, fields: Collection[str], config: WebhookConfig, canonical: str
) -> bytes:
    """`content` without `fields`; `ValueError` when they cannot be removed (the original stays marked)."""
    essence = media_type.split(";", 1)[0].strip().lower()
    if essence == "application/json":
        try:
            return redact_canonical(content, fields, canonical)
        except ValueError:
            pass  # not the canonical form: a JSON body as sent
    if config.format == BodyFormat.JSON:
        return _redact_json(content, fields, config)
    if config.format == BodyFormat.XML:
        return _redact_xml(content, fields, config)
    raise ValueError(f"an original of type {essence} is not one this connector keeps")


def _redact_json(content: bytes, fields: Collection[str], config: WebhookConfig) -> bytes:
    document: Any = parse_json(content, config.max_json_depth)
    removed = 0
    for name in fields:
        path = config.fields.get(name)
        if path is not None:
            removed += len(jsonpaths.every(path, document))
            jsonpaths.compiled(path).filter(lambda _: True, document)
        elif not config.fields and isinstance(document, dict) and name in document:
            del document[name]
            removed += 1
    if not removed:
        return content
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _redact_xml(content: bytes, fields: Collection[str], config: WebhookConfig) -> bytes:
    try:
        root = parse_xml(content, limit=int(config.max_json_size))
    except UnsafeXml as exc:
        raise ValueError(str(exc)) from None
    data = Data(BodyFormat.XML.value, root, config.namespaces)
    removed = 0
    for name in fields:
        path = config.fields.get(name)
        if path is None:
            continue
        for node in data.nodes(path):
            parent = node.getparent() if isinstance(node, etree._Element) else None
            if parent is None:
                raise ValueError(f"field {name!r} selects no removable element")
            parent.remove(node)
            removed += 1
    if not removed:
        return content
    return bytes(etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8"))
