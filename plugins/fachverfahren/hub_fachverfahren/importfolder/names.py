"""Safe names for folders and files in an import directory.

Names leave Aktenhub towards Fachverfahren that may read the directory over SMB from Windows, so a safe
name is plain ASCII (German umlauts transliterated), has no path separators, control characters or NUL,
never starts with a dot (dot names are the hub's own temporary folders) or a dash (read as an option by
scripts), is not a reserved Windows device name and is short enough for every common file system.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from string import Formatter

PLACEHOLDERS = frozenset({"application_id", "service", "external_id", "file_number"})
MAX_FILE_NAME = 120  # characters (ASCII, so also bytes), extension included
MAX_EXTENSION = 16
MAX_PLACEHOLDER = 80
MAX_FOLDER_NAME = 200
FALLBACK_STEM = "document"

_TRANSLITERATION = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "ẞ": "SS"}
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_LITERAL = re.compile(r"[A-Za-z0-9._-]*")
_EXTENSION = re.compile(rf"[A-Za-z0-9]{{1,{MAX_EXTENSION}}}")
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
)


def clean(text: str) -> str:
    """`text` reduced to ASCII letters, digits, ``.``, ``_`` and ``-``; may come back empty."""
    ascii_text = (
        unicodedata.normalize("NFKD", text.translate(_TRANSLITERATION))
        .encode("ascii", "ignore")
        .decode("ascii")
    )
    return _UNSAFE.sub("_", ascii_text).lstrip("._-").rstrip(". ")


def _not_reserved(name: str) -> str:
    # Windows refuses "CON", "con.txt", "LPT1.tar.gz" ... whatever follows the first dot.
    if name.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        return "_" + name
    return name


def split_extension(name: str) -> tuple[str, str]:
    """(stem, suffix) where the suffix is ``.ext`` or empty."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or not ext:
        return name, ""
    return stem, "." + ext


def safe_file_name(name: str, max_length: int = MAX_FILE_NAME) -> str:
    """A safe, non-empty file name for a document named `name` (a plain extension is kept)."""
    stem, dot, ext = name.rpartition(".")
    if dot and _EXTENSION.fullmatch(ext):
        suffix = "." + ext
    else:
        stem, suffix = name, ""
    stem = clean(stem)[: max_length - len(suffix)].rstrip("._- ") or FALLBACK_STEM
    return _not_reserved(stem + suffix)


def unique_name(name: str, taken: set[str], max_length: int = MAX_FILE_NAME) -> str:
    """`name`, or `name-2`, `name-3` ... before the extension: the first one not in `taken`.

    `taken` holds lower-cased names (Windows and macOS file systems ignore case) and is updated.
    """
    candidate = name
    stem, suffix = split_extension(name)
    n = 1
    while candidate.lower() in taken:
        n += 1
        tag = f"-{n}"
        candidate = stem[: max_length - len(suffix) - len(tag)] + tag + suffix
    taken.add(candidate.lower())
    return candidate


def check_folder_pattern(pattern: str) -> None:
    """Raise ValueError unless `pattern` is a valid `folder_name` pattern."""
    fields = 0
    try:
        parsed = list(Formatter().parse(pattern))
    except ValueError as exc:
        raise ValueError(f"folder_name {pattern!r} is not a valid pattern: {exc}") from None
    for literal, field, spec, conversion in parsed:
        if not _LITERAL.fullmatch(literal):
            raise ValueError(
                f"folder_name {pattern!r}: literal text may only hold letters A-Z, digits, '.', '_' and '-'"
            )
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            allowed = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
            raise ValueError(f"folder_name {pattern!r}: unknown placeholder {{{field}}} (allowed: {allowed})")
        if spec or conversion:
            raise ValueError(f"folder_name {pattern!r}: placeholders take no format spec or conversion")
        fields += 1
    if fields == 0:
        raise ValueError(f"folder_name {pattern!r} needs at least one placeholder, e.g. {{application_id}}")
    if pattern[:1] in (".", "-"):
        raise ValueError(f"folder_name {pattern!r} must not start with '.' or '-'")


class MissingPlaceholder(ValueError):
    """A placeholder of the folder name pattern has no value for this application."""

    def __init__(self, placeholder: str) -> None:
        super().__init__(placeholder)
        self.placeholder = placeholder


def render_folder_name(pattern: str, values: Mapping[str, str | None]) -> str:
    """The safe folder name `pattern` gives for `values` (pattern checked by `check_folder_pattern`)."""
    parts: list[str] = []
    for literal, field, _, _ in Formatter().parse(pattern):
        parts.append(literal)
        if field is None:
            continue
        value = values.get(field)
        if not value:
            raise MissingPlaceholder(field)
        # A value with nothing safe in it (e.g. only non-Latin script) still gets a distinct name.
        cleaned = clean(value)[:MAX_PLACEHOLDER] or "x" + hashlib.sha256(value.encode()).hexdigest()[:16]
        parts.append(cleaned)
    name = "".join(parts)[:MAX_FOLDER_NAME].rstrip(". ")
    return _not_reserved(name)
