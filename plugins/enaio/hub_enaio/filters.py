"""Mapping filters the enaio plugin adds (hook `aktenhub_mapping_filters`)."""

from __future__ import annotations

import re

# enaio keeps documents in a Windows file store: these characters cannot be in a file name, and a name
# may not end in a dot or a space. Aktenzeichen usually hold a slash (e.g. 63/BA-2027-00001).
_FORBIDDEN = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
MAX_FILE_NAME = 255


def enaio_file_name(value: object, replacement: str = "-") -> str:
    """A document file name enaio stores: forbidden characters replaced, at most 255 characters."""
    name = _FORBIDDEN.sub(replacement, str(value)).strip().rstrip(". ")
    if len(name) > MAX_FILE_NAME:
        stem, dot, ext = name.rpartition(".")
        keep = MAX_FILE_NAME - len(dot + ext) if dot and len(ext) <= 10 else MAX_FILE_NAME
        name = (stem[:keep] + dot + ext) if dot and len(ext) <= 10 else name[:keep]
    return name or "dokument"
