"""A JSON body as form data (e.g. FormCycle's "custom body", a form server's JSON post).

The top-level object is the form data, kept as sent: nested objects stay nested (a mapping file reads
``form.antragsteller.name``) and JSON numbers, booleans and null keep their types. Attachments, if any,
are a list under the configured key (default ``attachments``) of objects ``{"name", "content"
(base64), "media_type"?, "field"?}``; they are decoded into the blob store like uploaded files and are
not part of the form data.

RFC 8259: the body is UTF-8 (a leading byte order mark is ignored). Refused with 400: invalid JSON,
duplicate keys, NaN/Infinity, nesting deeper than `max_json_depth`, a top level that is not an object,
invalid base64; with 413: a limit exceeded. Nothing is written to the blob store before the whole body
has been checked.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.blobs import Blobs
from hub.errors import BadSubmission
from hub.models import Attachment

from .limits import FormLimits
from .multipart import read_body
from .submission import Submission, check_name, check_value, media_type_of, safe_filename, show

_WHITESPACE = b" \t\r\n"
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonAttachment(BaseModel):
    """One attachment of a JSON body."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=1000)
    content: str = Field(description="the file, base64 (RFC 4648; line breaks allowed)")
    media_type: str | None = Field(None, max_length=200)
    field: str | None = Field(None, max_length=256)


async def read_json(
    request: web.Request,
    config: FormLimits,
    blobs: Blobs,
    declared_charset: str | None,
    attachments: str | None,
) -> Submission:
    """Parse a JSON body; the list under member `attachments` goes to the blob store once all is valid."""
    check_json_charset(declared_charset)
    raw = await read_body(request, int(config.max_json_size), "JSON")
    document = parse_json(raw, config.max_json_depth)
    if not isinstance(document, dict):
        raise BadSubmission("the JSON body must be an object (one member per form element)")
    files = _attachments(document, config, attachments)
    check_fields(document, config)
    submission = Submission(document=document)
    for number, (attachment, content) in enumerate(files, start=1):
        submission.add_attachment(
            await store_file(blobs, content, attachment.name, attachment.media_type, attachment.field, number)
        )
    return submission


def check_json_charset(declared_charset: str | None) -> None:
    """Refuse (415) a JSON body labelled with a charset other than UTF-8."""
    if declared_charset and declared_charset.strip().lower() not in ("utf-8", "utf8"):
        raise BadSubmission(f"unsupported charset {show(declared_charset)}: JSON is UTF-8", 415)


def parse_json(raw: bytes, max_depth: int) -> Any:
    """A JSON document, strictly (see the module docstring); `BadSubmission` (400) for anything else."""
    document = _parse(raw)
    _check_structure(document, max_depth)
    return document


async def store_file(
    blobs: Blobs, content: bytes, name: str, media_type: str | None, field: str | None, number: int
) -> Attachment:
    """Write one decoded file to the blob store as the submission's attachment number `number`."""
    info = await blobs.write_bytes(content)
    return Attachment(
        name=safe_filename(name, f"anhang-{number}"),
        media_type=media_type_of(media_type),
        size=info.size,
        sha256=info.sha256,
        blob=info.ref,
        field=field,
    )


def _parse(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadSubmission(f"the JSON body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise BadSubmission(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise BadSubmission("the JSON body is nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise BadSubmission(f"the body is not valid JSON: {exc}") from None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadSubmission(f"the JSON body has the member {show(key)} twice in one object")
        result[key] = value
    return result


def _float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise BadSubmission("the JSON body has a number out of range (beyond a 64-bit float)")
    return value


def _constant(name: str) -> Any:
    raise BadSubmission(f"the JSON body contains {name}, which JSON does not allow")


def _check_structure(value: Any, limit: int, depth: int = 1) -> None:
    """Nesting within `limit`; no string (member names included) holding a lone surrogate escape."""
    if depth > limit:
        raise BadSubmission(f"the JSON body is nested deeper than {limit} levels")
    if isinstance(value, dict):
        for key in value:
            _check_text(key)
            check_name(key)
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        _check_text(value)
        if isinstance(value, str):
            check_value("(a JSON member)", value)
        return
    for child in children:
        _check_structure(child, limit, depth + 1)


def _check_text(value: Any) -> None:
    # "\ud800" is valid JSON syntax but no character: it could be neither stored nor sent on as UTF-8.
    if isinstance(value, str) and _SURROGATE.search(value):
        raise BadSubmission("the JSON body contains a lone surrogate escape (\\ud800-\\udfff): not text")


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for child in value.values() for leaf in _leaves(child)]
    if isinstance(value, list):
        return [leaf for child in value for leaf in _leaves(child)]
    return [value]


def check_fields(document: dict[str, Any], config: FormLimits) -> None:
    """The form data within the text limits (values counted as the form's parameters)."""
    total = 0
    count = 0
    for name, value in document.items():
        for leaf in _leaves(value):
            count += 1
            if count > config.max_fields:
                raise BadSubmission(f"too many parameters: at most {config.max_fields} are accepted", 413)
            size = len(leaf.encode("utf-8")) if isinstance(leaf, str) else 0
            if size > config.max_field_size:
                raise BadSubmission(
                    f"parameter {show(name)} exceeds the limit of {config.max_field_size} bytes", 413
                )
            total += size
            if total > config.max_form_size:
                raise BadSubmission(
                    f"the text parameters exceed the limit of {config.max_form_size} bytes in total", 413
                )


def _attachments(
    document: dict[str, Any], config: FormLimits, key: str | None
) -> list[tuple[JsonAttachment, bytes]]:
    """Take the attachments out of the document, decoded and checked against the file limits."""
    if key is None or key not in document:
        return []
    listed = document.pop(key)
    if not isinstance(listed, list):
        raise BadSubmission(f"member {show(key)} must be a list of attachments")
    if len(listed) > config.max_files:
        raise BadSubmission(f"too many files: at most {config.max_files} are accepted", 413)
    files = []
    for number, item in enumerate(listed, start=1):
        try:
            attachment = JsonAttachment.model_validate(item)
        except ValidationError as exc:
            where = ", ".join(".".join(str(p) for p in e["loc"]) or "(itself)" for e in exc.errors())
            raise BadSubmission(
                f"attachment {number} must be an object with name and content (base64); check: {where}"
            ) from None
        files.append((attachment, base64_content(attachment.content, int(config.max_file_size), number)))
    return files


def base64_content(content: str, limit: int, number: int) -> bytes:
    """A file sent as base64 (RFC 4648, line breaks allowed), decoded; 400 if invalid, 413 past `limit`."""
    encoded = content.encode("ascii", "replace").translate(None, _WHITESPACE)
    if len(encoded) // 4 * 3 > limit + 2:
        raise BadSubmission(f"attachment {number} exceeds the limit of {limit} bytes", 413)
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadSubmission(f"attachment {number}: content is not valid base64") from None
    if len(decoded) > limit:
        raise BadSubmission(f"attachment {number} exceeds the limit of {limit} bytes", 413)
    return decoded
