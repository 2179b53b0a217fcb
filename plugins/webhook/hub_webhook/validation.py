"""Validating the data against the operator's JSON Schema or XSD, with messages that echo no values.

The validators' own messages quote the offending value ("'Müller' is too long"): that is personal data
and would end up in the sender's logs and ours. A refusal (422) therefore names where each problem is
(JSON path, or XML line and element path) and which rule failed, and nothing the applicant typed.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from lxml import etree

from hub import BadSubmission, xml_schema

MAX_PROBLEMS = 10


@functools.lru_cache(maxsize=16)
def json_validator(path: Path) -> Validator:
    """The validator of the JSON Schema at `path` (its `$schema` dialect); `ValueError` if unusable."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read JSON Schema {path}: {exc}") from None
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"{path} is not a valid JSON Schema: {exc.message}") from None
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def xsd(path: Path) -> etree.XMLSchema:
    """The compiled XSD at `path`; `ValueError` if it cannot be read or compiled."""
    try:
        return xml_schema(path)
    except (OSError, etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise ValueError(f"{path} is not a usable XML Schema: {exc}") from None


def check_json(validator: Validator, document: Any) -> None:
    """Refuse (422) a document the schema does not accept, naming paths and rules only."""
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    problems = [_json_problem(e) for e in errors[:MAX_PROBLEMS]]
    more = f" (and {len(errors) - MAX_PROBLEMS} more)" if len(errors) > MAX_PROBLEMS else ""
    raise BadSubmission("the data does not satisfy the JSON Schema: " + "; ".join(problems) + more, 422)


def _json_problem(error: jsonschema.ValidationError) -> str:
    where = error.json_path
    required = error.validator_value
    if error.validator == "required" and isinstance(error.instance, dict) and isinstance(required, list):
        missing = [n for n in required if n not in error.instance]
        return f"{where}: required member(s) missing: {', '.join(map(str, missing))}"
    if error.validator == "additionalProperties":
        return f"{where}: members not allowed by the schema"
    return f"{where}: fails {error.validator!s}"


def check_xml(schema: etree.XMLSchema, root: etree._Element) -> None:
    """Refuse (422) a document the XSD does not accept, naming lines, element paths and rules only."""
    if schema.validate(root):
        return
    entries = list(schema.error_log)
    problems = [f"line {e.line} {_element_path(root, e.path)}: {e.type_name}" for e in entries[:MAX_PROBLEMS]]
    more = f" (and {len(entries) - MAX_PROBLEMS} more)" if len(entries) > MAX_PROBLEMS else ""
    raise BadSubmission("the data does not satisfy the XML Schema: " + "; ".join(problems) + more, 422)


def _element_path(root: etree._Element, path: str | None) -> str:
    """The element's path by local names (``/Antrag/Hund/chipnummer``), readable without the schema."""
    try:
        found = root.getroottree().xpath(path) if path else []
    except etree.XPathError:
        found = []
    if not isinstance(found, list) or not found or not isinstance(found[0], etree._Element):
        return path or "(document)"
    element: etree._Element | None = found[0]
    names = []
    while element is not None:
        names.append(etree.QName(element).localname)
        element = element.getparent()
    return "/" + "/".join(reversed(names))
