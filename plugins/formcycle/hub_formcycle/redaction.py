"""Removing spent credentials (e.g. a forwarded SAML response) from a kept original submission.

The hub asks once the identity step has ended (`Source.redact_original`). Each format keeps everything
but the named fields as it was: the canonical JSON loses the fields' members and is written canonically
again (it was canonical before, so nothing else changes); an urlencoded body loses the ``name=value``
pairs of those fields, every other pair stays byte for byte, in its order. A credential taken from a
header (`header_fields`) was never in the original: it comes back unchanged.
"""

from __future__ import annotations

from collections.abc import Collection

from hub import BadSubmission, OriginalSubmission
from hub.formdata.multipart import CHARSET_FIELD, body_charset, decode_name, form_unquote
from hub.formdata.submission import CANONICAL_MEDIA_TYPE, redact_canonical

from .config import FormCycleConfig

URLENCODED = "application/x-www-form-urlencoded"
# The canonical form of a FormCycle submission (`hub.formdata.submission`), as kept originals name it.
CANONICAL_FORMAT = "aktenhub.formcycle.submission/1"


def redact(
    original: OriginalSubmission, content: bytes, fields: Collection[str], config: FormCycleConfig
) -> bytes:
    """`content` (the original's bytes) without `fields`; raises `ValueError` for a format not ours."""
    media_type, _, params = original.media_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type == CANONICAL_MEDIA_TYPE:
        return redact_canonical(content, fields, CANONICAL_FORMAT)
    if media_type == URLENCODED:
        return _redact_urlencoded(content, fields, _declared_charset(params), config)
    raise ValueError(f"not a FormCycle original: {original.media_type}")


def _redact_urlencoded(
    content: bytes, fields: Collection[str], declared: str | None, config: FormCycleConfig
) -> bytes:
    pairs = content.split(b"&")
    names = [form_unquote(pair.partition(b"=")[0]) for pair in pairs]
    charset_field = next(
        (
            form_unquote(pair.partition(b"=")[2])
            for pair, name in zip(pairs, names, strict=True)
            if name == CHARSET_FIELD
        ),
        None,
    )
    # Names decode as they did at intake: the same body, the same charset rules.
    charset = body_charset(config, declared, charset_field)
    kept = [
        pair for pair, name in zip(pairs, names, strict=True) if not (pair and _name(name, charset) in fields)
    ]
    return content if len(kept) == len(pairs) else b"&".join(kept)


def _name(raw: bytes, charset: str) -> str | None:
    try:
        return decode_name(raw, charset)
    except BadSubmission:
        return None


def _declared_charset(params: str) -> str | None:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return None
