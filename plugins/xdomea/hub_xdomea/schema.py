"""The xdomea 3.0.0 schema: found in the schema directory, compiled once per process, validated against.

The XSDs are official KoSIT files, not shipped with the plugin: they are read from the hub's schema
directory (laid out like ``shared/reference``: ``xdomea/3.0.0/xsd/xdomea.xsd``). XML — the schemas and
every message — is parsed without entity resolution, DTD loading or network access.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from hub.schemas import xml_schema

NS = "urn:xoev-de:xdomea:schema:3.0.0"
VERSION = "3.0.0"
ENTRY = Path("xdomea") / VERSION / "xsd" / "xdomea.xsd"
MAX_FINDINGS = 5


class SchemaUnavailable(Exception):
    """The xdomea XSD is not in the schema directory or does not compile."""


def schema_path(schemas: Path | None) -> Path:
    """Where the entry schema ``xdomea.xsd`` is in a schema directory."""
    if schemas is None:
        raise SchemaUnavailable(
            "no schema directory configured: set `schemas` (or AKTENHUB_SCHEMAS) to a directory "
            f"holding {ENTRY.as_posix()}"
        )
    return Path(schemas) / ENTRY


@dataclass
class Schema:
    """A compiled schema; `findings` validates (one at a time: lxml keeps the error log on the object)."""

    path: Path
    _schema: etree.XMLSchema
    _lock: threading.Lock

    def findings(self, document: etree._ElementTree | etree._Element, limit: int = MAX_FINDINGS) -> list[str]:
        """The schema violations of a document ("line N: message"), at most `limit`; empty when valid."""
        with self._lock:
            if self._schema.validate(document):
                return []
            errors = list(self._schema.error_log)
        return [f"line {e.line}: {e.message}" for e in errors[:limit]]


_cache: dict[Path, Schema] = {}
_cache_lock = threading.Lock()


def load_schema(schemas: Path | None) -> Schema:
    """The compiled xdomea schema of a schema directory (compiled on first use, then cached)."""
    path = schema_path(schemas).resolve()
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None:
            return cached
        if not path.is_file():
            raise SchemaUnavailable(f"xdomea schema not found: {path}")
        try:
            compiled = xml_schema(path)
        except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError) as exc:
            raise SchemaUnavailable(f"xdomea schema {path} does not compile: {exc}") from None
        schema = Schema(path, compiled, threading.Lock())
        _cache[path] = schema
        return schema
