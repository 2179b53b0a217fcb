"""The text rendition of a document's content, as enaio's rendition service makes it for full-text search.

Texts (``text/*``, JSON, XML) are read as they are; PDFs through their text layer (pypdf). Anything else,
or a PDF without readable text, has no text rendition: the DMS Service answers 422 for it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import PyPdfError

log = logging.getLogger(__name__)

TEXT_TYPES = ("application/json", "application/xml")
MAX_TEXT = 16 * 1024**2  # characters of a rendition: the real service truncates very large texts too


def text_rendition(path: Path, media_type: str) -> str | None:
    """The content's text, or None when no text can be made of it."""
    kind = media_type.split(";")[0].strip().lower()
    if kind.startswith("text/") or kind in TEXT_TYPES or kind.endswith("+xml") or kind.endswith("+json"):
        with path.open("rb") as f:
            return f.read(MAX_TEXT).decode("utf-8", errors="replace")
    if kind == "application/pdf":
        return _pdf_text(path)
    return None


def _pdf_text(path: Path) -> str | None:
    try:
        reader = PdfReader(path)
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        # A broken PDF has no rendition; the reason is the file's, not personal data.
        log.info("no text rendition of %s: %s", path.name, type(exc).__name__)
        return None
    return text[:MAX_TEXT] if text.strip() else None
