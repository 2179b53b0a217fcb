"""The XAusländer schemas: one validation policy for both directions (in and out) and the simulator.

XAusländer's XSDs are published in XRepository only; the hub ships none. The operator puts them into the
schema directory (``schemas:``, ``$AKTENHUB_SCHEMAS``) under ``xauslaender/<version>/`` (default version
1.21.1, the one the DVDV service ``xauslaender1211OZGPORTALABH`` names). Every ``.xsd`` below that
directory is read and one schema is compiled per target namespace, so a message of any XAusländer type is
validated, whatever file declares it (the files declaring global elements are combined; the type
libraries they include or import come in through them). Imports resolve only to files inside the schema
directory.

Without the XSDs an ADVIS connector refuses to start and says which directory it expected, unless the
operator switched validation off (``validate: false``): then it starts with a WARNING, every time.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field

from hub import Permanent
from hub.schemas import SchemaDirectoryMissing, combined_schema, schema_directory
from hub.xml import UnsafeXml, hardened_parser, parse_xml

log = logging.getLogger(__name__)

DEFAULT_VERSION: Final = "1.21.1"
SCHEMA_ROOT: Final = "xauslaender"
XS: Final = "http://www.w3.org/2001/XMLSchema"
MAX_FINDINGS: Final = 3


class SchemaSettings(BaseModel):
    """The XAusländer validation keys every ADVIS connector (and the simulator) shares."""

    model_config = ConfigDict(populate_by_name=True)

    validation: bool = Field(
        True,
        alias="validate",
        description="validate every XAusländer message against the XSDs in "
        "<schemas>/xauslaender/<schema_version>/; false only for a trial without them (logs a WARNING)",
    )
    schema_version: str = Field(
        DEFAULT_VERSION,
        pattern=r"^[0-9]+(\.[0-9]+)*$",
        description="the XAusländer version whose XSDs are used (the directory name below xauslaender/)",
    )


class XAuslaenderSchemaMissing(SchemaDirectoryMissing):
    """The XAusländer XSDs are not where the configuration says (a configuration problem)."""


class InvalidMessage(Permanent):
    """A message is not well-formed or does not meet the XAusländer schema (the text names no values)."""


def expected_directory(schemas: Path | None, version: str) -> Path:
    """Where the XSDs of `version` are expected (for messages, also when the schema directory is missing)."""
    base = schema_directory(schemas)
    relative = Path(SCHEMA_ROOT) / version
    if base is None:
        return Path("<schemas>") / relative
    return base / relative


def load_schemas(
    schemas: Path | None, settings: SchemaSettings, *, purpose: str
) -> XAuslaenderSchemas | None:
    """The compiled XSDs, or None when validation is off (logged as a WARNING); refuses without them."""
    if not settings.validation:
        log.warning(
            "%s: XAusländer validation is switched off (validate: false); messages are sent and taken "
            "unchecked. Put the XSDs into %s and remove the setting.",
            purpose,
            expected_directory(schemas, settings.schema_version),
        )
        return None
    relative = f"{SCHEMA_ROOT}/{settings.schema_version}"
    base = schema_directory(schemas, containing=relative)
    directory = base / relative if base is not None else None
    if directory is None or not any(directory.rglob("*.xsd")):
        raise XAuslaenderSchemaMissing(
            f"{purpose}: no XAusländer {settings.schema_version} XSDs in "
            f"{expected_directory(schemas, settings.schema_version)}; download them from XRepository "
            "into that directory (or set `schema_version:`), or set `validate: false` to run without "
            "validation"
        )
    return _compiled(directory.resolve(), _signature(directory))


def _signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """The files and their versions: a replaced XSD is compiled anew."""
    found = []
    for path in sorted(directory.rglob("*.xsd")):
        stat = path.stat()
        found.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


@functools.lru_cache(maxsize=8)
def _compiled(directory: Path, _signature: tuple[tuple[str, int, int], ...]) -> XAuslaenderSchemas:
    return XAuslaenderSchemas(directory)


class XAuslaenderSchemas:
    """The XSDs of one ``xauslaender/<version>/`` directory, one compiled schema per target namespace."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        by_namespace: dict[str, list[Path]] = {}
        for path in sorted(directory.rglob("*.xsd")):
            namespace = _message_namespace(path)
            if namespace is not None:
                by_namespace.setdefault(namespace, []).append(path)
        if not by_namespace:
            raise XAuslaenderSchemaMissing(f"no XSD in {directory} declares a message (a global element)")
        # The schema directory's root bounds the imports: XAusländer imports XInneres and XÖV code lists.
        root = directory.parents[1]
        self._schemas = {
            namespace: combined_schema(
                root,
                namespace,
                includes=files,
                error=XAuslaenderSchemaMissing,
                what=f"the XAusländer schemas in {directory}",
            )
            for namespace, files in by_namespace.items()
        }
        # An lxml schema keeps its error log per validation: one validation at a time each.
        self._lock = threading.Lock()

    @property
    def namespaces(self) -> Sequence[str]:
        """The target namespaces found."""
        return sorted(self._schemas)

    @property
    def namespace(self) -> str:
        """The one namespace the messages are in; `XAuslaenderSchemaMissing` when there are several."""
        if len(self._schemas) != 1:
            raise XAuslaenderSchemaMissing(
                f"the XSDs in {self.directory} declare messages in {len(self._schemas)} namespaces "
                f"({', '.join(self.namespaces)}): set `namespace:` to the messages' one"
            )
        return next(iter(self._schemas))

    def validate(self, document: etree._Element) -> None:
        """Raise `InvalidMessage` unless `document` meets the schema of its root element's namespace."""
        namespace = etree.QName(document).namespace or ""
        schema = self._schemas.get(namespace)
        if schema is None:
            raise InvalidMessage(f"no XAusländer schema in {self.directory} declares namespace {namespace!r}")
        with self._lock:
            if schema.validate(document):
                return
            # Where and which rule, not lxml's message: that quotes the offending (personal) values.
            problems = "; ".join(
                f"line {e.line} {e.path}: {e.type_name}" for e in list(schema.error_log)[:MAX_FINDINGS]
            )
        raise InvalidMessage(
            f"{etree.QName(document).localname} does not meet the XAusländer schema: {problems}"
        )


def checked(schemas: XAuslaenderSchemas | None, data: bytes, *, limit: int) -> etree._Element:
    """`data` parsed safely (no DTD, no entities, at most `limit` bytes) and, unless None, validated."""
    try:
        document = parse_xml(data, limit=limit)
    except UnsafeXml as exc:
        raise InvalidMessage(f"the message is not well-formed XML: {exc}") from None
    if schemas is not None:
        schemas.validate(document)
    return document


def _message_namespace(path: Path) -> str | None:
    """The targetNamespace of an XSD declaring global elements (None for a type library: including it
    beside the files that include it would define its types twice)."""
    try:
        root = etree.parse(str(path), hardened_parser()).getroot()
    except etree.XMLSyntaxError as exc:
        raise XAuslaenderSchemaMissing(f"{path} is no readable XSD: {exc}") from None
    if root.tag != f"{{{XS}}}schema":
        return None
    if root.find(f"{{{XS}}}element") is None:
        return None
    return root.get("targetNamespace") or None
