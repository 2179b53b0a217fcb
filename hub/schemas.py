"""The schema directory: where the official XSD/WSDL/JSON schemas are, and compiled XSDs, cached.

The schemas (XBau, XTA, xdomea, FIT-Connect, …) are not shipped with the hub: the `schemas` setting
(env `AKTENHUB_SCHEMAS`) points to a directory laid out like `shared/reference` (DESIGN §5). Tests, the
demo and the simulators fall back to a `shared/reference` beside the source tree. Every component finds
it here, and nowhere else.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lxml import etree

from hub.errors import Permanent
from hub.xml import hardened_parser

ENV = "AKTENHUB_SCHEMAS"
_XS = "http://www.w3.org/2001/XMLSchema"
_PROJECT = Path(__file__).resolve().parents[1]


class SchemaDirectoryMissing(Permanent):
    """No schema directory is configured or found; the message says how to set one."""


def schema_directory(configured: Path | None = None, *, containing: str | None = None) -> Path | None:
    """The schema directory: `configured`, else $AKTENHUB_SCHEMAS, else a `shared/reference` nearby.

    A directory named explicitly (`configured`, else the environment variable) is the only candidate:
    an operator's choice is never silently replaced. Without one, the fallbacks are
    `../shared/reference` seen from the working directory and from the source tree. With `containing`
    (a relative path such as ``"xta/XTA.wsdl"``), only a directory holding it counts.
    """
    explicit = _explicit(configured)
    if explicit is not None:
        candidates = [explicit.expanduser()]
    else:
        candidates = [Path.cwd() / "../shared/reference", _PROJECT / "../shared/reference"]
    for candidate in candidates:
        if candidate.is_dir() and (containing is None or (candidate / containing).exists()):
            return candidate.resolve()
    return None


def _explicit(configured: Path | None) -> Path | None:
    """The directory an operator named: configured, else the environment variable."""
    env = os.environ.get(ENV)
    return configured if configured is not None else (Path(env) if env else None)


def require_schema_directory(
    configured: Path | None = None, *, containing: str | None = None, purpose: str = "the hub"
) -> Path:
    """The schema directory, or `SchemaDirectoryMissing` naming what needs it and how to set it."""
    found = schema_directory(configured, containing=containing)
    if found is None:
        need = f" holding {containing}" if containing else ""
        looked = _explicit(configured)
        where = f"no schema directory{need} found"
        if looked is not None:
            where = f"{looked} is no schema directory{need}"
        raise SchemaDirectoryMissing(
            f"{where}: {purpose} needs it; set `schemas:` in the configuration "
            f"or ${ENV} to a directory laid out like shared/reference"
        )
    return found


class LocalOnly(etree.Resolver):
    """Resolves schema imports to files below one directory; anything else (a URL, a file elsewhere)
    raises `error`: compiling a schema never touches the network."""

    def __init__(self, root: Path, error: type[Exception] = Permanent) -> None:
        super().__init__()
        self.root = root.resolve()
        self.error = error

    def resolve(self, system_url: str | None, public_id: str | None, context: Any) -> Any:
        """The local file `system_url` names, or `error`."""
        parts = urlsplit(system_url or "")
        path = Path(unquote(parts.path)).resolve()
        if parts.scheme not in ("", "file") or not path.is_relative_to(self.root):
            raise self.error(f"refusing to load schema {system_url!r}: only local files are read")
        return self.resolve_filename(str(path), context)


def combined_schema(
    directory: Path,
    namespace: str,
    *,
    includes: Sequence[Path] = (),
    imports: Mapping[str, Path] | None = None,
    error: type[Exception] = Permanent,
    what: str = "the schemas",
) -> etree.XMLSchema:
    """One compiled schema of `namespace` made of several files below `directory`: `includes` (same
    namespace) and `imports` (namespace → file). Nothing outside `directory` is read; `error` otherwise.

    For validating every message type of a standard at once (XBau, the XTA envelope); callers cache
    the result per directory.
    """
    root = etree.Element(f"{{{_XS}}}schema", nsmap={"xs": _XS}, targetNamespace=namespace)
    for imported, path in (imports or {}).items():
        etree.SubElement(root, f"{{{_XS}}}import", namespace=imported, schemaLocation=path.as_uri())
    for path in includes:
        etree.SubElement(root, f"{{{_XS}}}include", schemaLocation=path.as_uri())
    parser = hardened_parser()
    parser.resolvers.add(LocalOnly(directory, error))
    try:
        # Parsed (not built) so that every include and import goes through the local-only resolver.
        base = (directory / "combined.xsd").as_uri()
        return etree.XMLSchema(etree.fromstring(etree.tostring(root), parser, base_url=base))
    except (OSError, etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise error(f"cannot compile {what} of {namespace}: {exc}") from exc


def xml_schema(path: Path) -> etree.XMLSchema:
    """The compiled XSD at `path` (imports resolved locally, no network), cached per file and version."""
    stat = path.stat()
    return _compiled(path.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _compiled(path: Path, _mtime: int, _size: int) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path), hardened_parser()))
