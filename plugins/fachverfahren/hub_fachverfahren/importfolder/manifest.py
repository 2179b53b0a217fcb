"""The manifest of an import folder: XML, JSON or CSV, from the operator's Jinja2 template or XSLT.

A template runs in Jinja's immutable sandbox with strict undefined (as mapping files do), with
`application`, `record`, `files`, `folder`, `delivered_at` and `target`; autoescaping is on for XML
output, so applicant data cannot break the manifest's structure. A stylesheet (XSLT 1.0, no file or
network access) transforms the canonical XML of the same data (`canonical_xml`). Either way the result
must be well-formed for its kind (XML parsed, JSON loaded) before it is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Self

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from hub import Application, ConfigPath, FileRecord, Permanent
from hub.xml import UnsafeXml, hardened_parser, parse_xml

from .folder import DroppedFile

CANONICAL_FORMAT = "aktenhub.importfolder/1"
MAX_MANIFEST = 16 * 1024 * 1024
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
Kind = Literal["xml", "json", "csv"]


class FieldsPayload(BaseModel):
    """What a mapping gives an importfolder, filedrop or xoev target in `payloads.<target>`."""

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, str] = Field(
        default_factory=dict,
        description="index data for the Fachverfahren's import (e.g. its own Aktenzeichen field, "
        "Gemarkung/Flur), text values; `fields` in templates, stylesheets and application.json",
    )


class ManifestSpec(BaseModel):
    """How the manifest is produced: `template` (Jinja2) or `xslt` (over the canonical XML), one of them."""

    model_config = ConfigDict(extra="forbid")

    template: ConfigPath | None = Field(None, description="Jinja2 template file producing the manifest")
    xslt: ConfigPath | None = Field(
        None, description="XSLT 1.0 stylesheet over the canonical XML of the record"
    )
    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,119}$",
        description="file name of the manifest in the folder (default: manifest.<kind>)",
    )
    kind: Kind | None = Field(
        None, description="xml, json or csv (default: from `name`, or the template's name before .j2)"
    )
    _render: Any = PrivateAttr(None)

    @model_validator(mode="after")
    def _compile(self) -> Self:
        if (self.template is None) == (self.xslt is None):
            raise ValueError("give exactly one of `template` and `xslt`")
        if self.kind is None:
            self.kind = _kind_of(self.name) or _kind_of(self._source_name()) or "xml"
        if self.name is None:
            self.name = f"manifest.{self.kind}"
        if self.template is not None:
            self._render = _template(self.template, self.kind)
        else:
            assert self.xslt is not None
            self._render = _stylesheet(self.xslt)
        return self

    def _source_name(self) -> str:
        source = self.template or self.xslt
        assert source is not None
        return source.name.removesuffix(".j2").removesuffix(".jinja")

    @property
    def file_name(self) -> str:
        """The manifest's file name in the folder."""
        assert self.name is not None
        return self.name

    def render(
        self,
        *,
        application: Application,
        record: FileRecord,
        files: Sequence[DroppedFile] = (),
        folder: str = "",
        fields: dict[str, str] | None = None,
        delivered_at: datetime,
        target: str,
        **extra: str,
    ) -> bytes:
        """The document's content; `Permanent` when the template fails or its output is not well-formed.

        `extra` values (e.g. an XÖV message's process id) are passed to the template as they are.
        """
        values = {**_values(application, record, files, folder, delivered_at, target), **extra}
        values["fields"] = dict(fields or {})
        try:
            if self.template is not None:
                content = str(self._render(**values)).encode("utf-8")
            else:
                content = bytes(self._render(canonical_xml(values)))
        except (TemplateError, ValueError, TypeError) as exc:
            raise Permanent(f"manifest template {self._source_name()} failed: {exc}") from None
        except etree.XSLTApplyError as exc:
            raise Permanent(f"manifest stylesheet {self._source_name()} failed: {exc}") from None
        _check(content, self.kind or "xml", self._source_name())
        return content


def canonical_xml(values: dict[str, Any]) -> etree._Element:
    """The data of a delivery as XML: objects become elements per key, lists repeated ``item`` elements."""
    root = etree.Element("aktenhub-import", format=CANONICAL_FORMAT)
    for key, value in values.items():
        _append(root, key, value)
    return root


def _append(parent: etree._Element, key: str, value: Any) -> None:
    if _XML_NAME.fullmatch(key) and not key.lower().startswith("xml"):
        element = etree.SubElement(parent, key)
    else:  # a form field name that is no XML name
        element = etree.SubElement(parent, "entry", key=key)
    if isinstance(value, dict):
        for k, v in value.items():
            _append(element, str(k), v)
    elif isinstance(value, list):
        for item in value:
            _append(element, "item", item)
    elif value is not None:
        element.text = value if isinstance(value, str) else json.dumps(value)


def _values(
    application: Application,
    record: FileRecord,
    files: Sequence[DroppedFile],
    folder: str,
    delivered_at: datetime,
    target: str,
) -> dict[str, Any]:
    return {
        "target": target,
        "folder": folder,
        "delivered_at": delivered_at.isoformat(),
        "application": application.model_dump(mode="json"),
        "record": record.model_dump(mode="json"),
        "files": [f.model_dump(mode="json") for f in files],
    }


def _kind_of(name: str | None) -> Kind | None:
    suffix = (name or "").rpartition(".")[2].lower()
    return {"xml": "xml", "json": "json", "csv": "csv"}.get(suffix)  # type: ignore[return-value]


def _template(path: Path, kind: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read manifest template {path}: {exc.strerror}") from None
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=kind == "xml")
    try:
        return env.from_string(text).render
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        raise ValueError(f"manifest template {path}{f':{line}' if line else ''}: {exc}") from None


def _stylesheet(path: Path) -> etree.XSLT:
    try:
        doc = etree.parse(str(path), hardened_parser())
        return etree.XSLT(doc, access_control=etree.XSLTAccessControl.DENY_ALL)
    except OSError as exc:
        raise ValueError(f"cannot read manifest stylesheet {path}: {exc}") from None
    except (etree.XMLSyntaxError, etree.XSLTParseError) as exc:
        raise ValueError(f"manifest stylesheet {path} is not a valid XSLT stylesheet: {exc}") from None


def _check(content: bytes, kind: str, source: str) -> None:
    try:
        if kind == "xml":
            parse_xml(content, limit=MAX_MANIFEST)
        elif kind == "json":
            json.loads(content)
        else:
            content.decode("utf-8")
    except (UnsafeXml, ValueError) as exc:
        raise Permanent(f"manifest from {source} is not valid {kind.upper()}: {exc}") from None
