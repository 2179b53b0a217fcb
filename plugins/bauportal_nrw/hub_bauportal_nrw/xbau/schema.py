"""The XBau 2.6 schemas (compiled once per process) and hardened parsing of XBau messages.

The XSDs are not part of this package: they are read from the schema directory (``schemas:``,
``$AKTENHUB_SCHEMAS``), laid out like ``shared/reference``, i.e. ``<schemas>/xbau/2.6/xsd/``. Two schemas
are compiled, each from every file that declares messages in its namespace (`MESSAGE_FILES`): XBau 2.6
(``xbau-nachrichten-*.xsd``: the building application 0200 and every other procedure's messages) and
Kernmodul 1.3.0 (the process messages 1100/1120/1121/1130..., the universal application 12xx). So a
message of a type the hub does not process is still validated before it is answered. Imports resolve
only to files inside that directory; nothing is fetched from a network.

Parsing refuses DOCTYPEs and entities, resolves nothing external and stops past a size limit. Content
arrives in chunks (from the blob store) and is fed to the parser piece by piece, so the raw bytes are
never held as a whole besides the tree.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterable
from pathlib import Path

from lxml import etree

from hub import Permanent
from hub.schemas import combined_schema
from hub.xml import hardened_parser

XBAU = "http://www.xleitstelle.de/xbau/2/6"
XBAUK = "http://www.xleitstelle.de/xbau/kernmodul/1/3/0"
BN_G2G = "http://xoev.de/schemata/basisnachricht/g2g/1_1"
XSD_DIRECTORY = Path("xbau") / "2.6" / "xsd"
ENTRY_FILES = {
    XBAU: "xbau-nachrichten-baugenehmigung.xsd",
    XBAUK: "xbau-kernmodul-prozessnachrichten.xsd",
}
# Every file declaring messages, per namespace (one per XBau procedure; the Kernmodul's two): a message
# of any type is validated, not only those this hub processes.
MESSAGE_FILES = {
    XBAU: ("xbau-nachrichten-*.xsd", "xbau-bauordnungsrechtlicheProzessnachrichten.xsd"),
    XBAUK: ("xbau-kernmodul-prozessnachrichten.xsd", "xbau-kernmodul-universellerAntrag.xsd"),
}
XS = "http://www.w3.org/2001/XMLSchema"
MAX_FINDINGS = 20


class XBauSchemaError(Permanent):
    """The XBau schemas cannot be found or compiled (a configuration problem)."""


class UnsafeXml(ValueError):
    """The document is not well-formed, too large, or declares a DTD or entities."""


def xbau_directory(schemas: Path) -> Path:
    """The XSD directory of XBau 2.6 inside a schema directory."""
    directory = (schemas / XSD_DIRECTORY).resolve()
    if not (directory / ENTRY_FILES[XBAU]).is_file():
        raise XBauSchemaError(
            f"XBau 2.6 schemas not found in {directory} (expected {ENTRY_FILES[XBAU]}; "
            "set `schemas:` or $AKTENHUB_SCHEMAS to a directory laid out like shared/reference)"
        )
    return directory


class XBauSchemas:
    """The compiled XBau 2.6 and Kernmodul 1.3.0 schemas of one schema directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._schemas: dict[str, etree.XMLSchema] = {}
        for namespace, patterns in MESSAGE_FILES.items():
            # Every file declaring messages of the namespace: all its message types.
            files = sorted({p for pattern in patterns for p in directory.glob(pattern)})
            self._schemas[namespace] = combined_schema(
                directory, namespace, includes=files, error=XBauSchemaError, what="the XBau schemas"
            )
        # An lxml schema object keeps its error log per validation: one validation at a time each.
        self._lock = threading.Lock()

    def errors(self, root: etree._Element) -> list[str]:
        """Schema violations of an XBau message (empty: valid), at most `MAX_FINDINGS`."""
        namespace = etree.QName(root).namespace or ""
        schema = self._schemas.get(namespace)
        if schema is None:
            return [f"root element {etree.QName(root).text} is not in an XBau namespace ({XBAU}, {XBAUK})"]
        with self._lock:
            if schema.validate(root):
                return []
            found = [f"line {e.line}: {e.message}" for e in schema.error_log]
        if len(found) > MAX_FINDINGS:
            found = [*found[:MAX_FINDINGS], f"... and {len(found) - MAX_FINDINGS} more"]
        return found

    def check(self, root: etree._Element, what: str) -> None:
        """Raise `Permanent` if a message this hub built is invalid (a bug, never sent)."""
        problems = self.errors(root)
        if problems:
            raise Permanent(f"{what} is not valid against the XBau schema: {'; '.join(problems)}")


@functools.lru_cache(maxsize=4)
def load_schemas(schemas: Path) -> XBauSchemas:
    """The compiled XBau schemas of a schema directory, once per directory and process."""
    return XBauSchemas(xbau_directory(schemas))


def parse_bytes(data: bytes, *, limit: int) -> etree._Element:
    """Parse a small XBau document (hardened, size-limited)."""
    if len(data) > limit:
        raise UnsafeXml(f"document larger than {limit} bytes")
    parser = hardened_parser()
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"not well-formed XML: {exc.msg}") from None
    return _checked(root)


async def parse_stream(chunks: AsyncIterable[bytes], *, limit: int) -> etree._Element:
    """Parse an XBau document arriving in chunks (hardened, size-limited)."""
    parser = hardened_parser()
    size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise UnsafeXml(f"document larger than {limit} bytes")
            parser.feed(chunk)
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"not well-formed XML: {exc.msg}") from None
    return _checked(root)


def _checked(root: etree._Element) -> etree._Element:
    doc = root.getroottree()
    if doc.docinfo.doctype or doc.docinfo.internalDTD is not None:
        raise UnsafeXml("document type declarations are not accepted")
    if any(True for _ in root.iter(etree.Entity)):
        raise UnsafeXml("entity references are not accepted")
    return root
