"""A parsed form submission: its parameters, its files, and its canonical form.

The canonical form (fields with sorted names, each value or list of values in the order sent, plus the
attachments' field, name, media type, size and sha256) does not depend on how the body was encoded: the
multipart boundary is random per request, so a re-sent submission differs byte for byte but has the same
canonical form. A JSON body is kept as the document it is: its form data is the JSON object, nested
values and JSON types included. Each source names the format of its canonical form (`format`), so a
kept original says which source wrote it.
"""

from __future__ import annotations

import contextlib
import json
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from hub.errors import BadSubmission
from hub.models import Attachment

CANONICAL_MEDIA_TYPE = "application/json"
MAX_NAME_LENGTH = 256
MAX_FILENAME_LENGTH = 200
DEFAULT_MEDIA_TYPE = "application/octet-stream"
_TCHARS = r"[A-Za-z0-9!#$&^_.+-]+"
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_MEDIA_TYPE = re.compile(rf"^{_TCHARS}/{_TCHARS}$")
# Characters XML 1.0 cannot carry (C0 controls but TAB, LF, CR; U+FFFE, U+FFFF): every record goes on
# as XML (xdomea, XBau, the DMS), so a value holding one could be taken in but never delivered.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# A file name of ASCII letters, digits and inner spaces, dots, dashes, underscores and parentheses, not
# starting with a dot: `safe_filename` leaves it as it is (the usual "Nachweis.pdf").
_PLAIN_FILENAME = re.compile(
    rf"[A-Za-z0-9_()-](?:[A-Za-z0-9_() .-]{{0,{MAX_FILENAME_LENGTH - 2}}}[A-Za-z0-9_().-])?"
)


def show(name: str) -> str:
    """A parameter name as it may appear in an error message (and so in logs): quoted, cut short."""
    return repr(name if len(name) <= 60 else name[:57] + "...")


@dataclass
class Submission:
    """Parameters (each with its values in the order sent) and files already in the blob store."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    document: dict[str, Any] | None = None  # the form data of a JSON body, as sent

    def add_field(self, name: str, value: str) -> None:
        """Record one occurrence of a parameter."""
        self.fields.setdefault(name, []).append(value)

    def add_attachment(self, attachment: Attachment) -> None:
        """Record a file, renamed if an earlier file of this submission has the same name."""
        taken = {a.name for a in self.attachments}
        if attachment.name in taken:
            stem, dot, ext = attachment.name.rpartition(".")
            if not stem:
                stem, dot, ext = ext, "", ""
            n = 2
            while f"{stem}-{n}{dot}{ext}" in taken:
                n += 1
            attachment = attachment.model_copy(update={"name": f"{stem}-{n}{dot}{ext}"})
        self.attachments.append(attachment)

    @property
    def empty(self) -> bool:
        """Whether nothing at all was submitted."""
        return not self.fields and not self.document and not self.attachments

    def form(self) -> dict[str, Any]:
        """The form data: a parameter sent once is a string, a repeated one a list of strings."""
        if self.document is not None:
            return dict(self.document)
        return {name: values[0] if len(values) == 1 else list(values) for name, values in self.fields.items()}

    def canonical(self, service: str, format: str) -> dict[str, Any]:
        """The encoding-independent form of the submission (see the module docstring)."""
        form = self.form()
        return {
            "format": format,
            "service": service,
            "fields": {name: form[name] for name in sorted(form)},
            "attachments": [
                {
                    "field": a.field,
                    "name": a.name,
                    "media_type": a.media_type,
                    "size": a.size,
                    "sha256": a.sha256,
                }
                for a in self.attachments
            ],
        }

    def canonical_json(self, service: str, format: str) -> bytes:
        """The canonical form as compact, key-sorted UTF-8 JSON."""
        return canonical_bytes(self.canonical(service, format))


def lookup(form: dict[str, Any], element: str) -> Any:
    """A form element's value by its name; in a JSON body a dotted path reaches into nested objects."""
    if element in form:
        return form[element]
    value: Any = form
    for part in element.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def redact_canonical(content: bytes, fields: Collection[str], format: str) -> bytes:
    """A kept canonical submission of `format` without these fields, written canonically again (it was
    canonical, so nothing else changes); `ValueError` for content that is not one."""
    document = json.loads(content)
    if not isinstance(document, dict) or document.get("format") != format:
        raise ValueError(f"not a canonical submission of format {format}")
    form = document.get("fields")
    if not isinstance(form, dict):
        raise ValueError("a canonical submission without fields")
    kept = {name: value for name, value in form.items() if name not in fields}
    if len(kept) == len(form):
        return content
    return canonical_bytes({**document, "fields": kept})


def canonical_bytes(value: Any) -> bytes:
    """JSON with sorted keys and no insignificant whitespace."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def check_name(name: str | None) -> str:
    """A parameter name that is present, UTF-8 and not absurdly long; else the submission is refused."""
    if not name:
        raise BadSubmission("a parameter has no name (every form element must be sent with its name)")
    if len(name) > MAX_NAME_LENGTH:
        raise BadSubmission(f"a parameter name is longer than {MAX_NAME_LENGTH} characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadSubmission("a parameter name is not valid UTF-8") from None
    if _CONTROL.search(name):
        raise BadSubmission(f"parameter name {show(name)} contains a control character")
    return name


def check_value(name: str, value: str) -> str:
    """A parameter value that XML can carry; else the submission is refused (it could not be delivered)."""
    if _NOT_XML.search(value):
        raise BadSubmission(
            f"parameter {show(name)} contains a control character that cannot be delivered (e.g. NUL)"
        )
    return value


def safe_filename(raw: str, fallback: str) -> str:
    """The last path component of an uploaded file's name, without control or format characters.

    Browsers on Windows may send "C:\\fakepath\\scan.pdf"; a hostile client may send "../../x".
    Neither a directory nor a hidden-file dot survives. Characters like U+202E (right-to-left
    override, used to disguise "exe.pdf" as "fdp.exe") are removed. Percent-escapes are decoded:
    browsers escape '"', CR and LF that way (WHATWG), and some HTTP clients escape every non-ASCII byte.
    """
    if _PLAIN_FILENAME.fullmatch(raw):
        return raw  # what the steps below would return unchanged, without their per-character work
    if _PERCENT_ESCAPE.search(raw):
        with contextlib.suppress(UnicodeDecodeError):
            raw = unquote(raw, encoding="utf-8", errors="strict")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(_filename_char(c) for c in name)
    name = name.strip().lstrip(".").strip()
    if not name:
        return fallback
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: MAX_FILENAME_LENGTH - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name


def _filename_char(c: str) -> str:
    kind = unicodedata.category(c)[0]
    if kind == "C":  # control, format (bidi overrides), surrogates, unassigned
        return ""
    if kind == "Z":  # all kinds of spaces and line separators become a plain space
        return " "
    return c


def media_type_of(content_type: str | None) -> str:
    """The media type of a part (without parameters, lower case); octet-stream when absent or invalid."""
    if not content_type:
        return DEFAULT_MEDIA_TYPE
    essence = content_type.split(";", 1)[0].strip().lower()
    return essence if _MEDIA_TYPE.match(essence) else DEFAULT_MEDIA_TYPE
