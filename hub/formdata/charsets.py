"""Character sets of form bodies, as browsers and Java servers read them (WHATWG Encoding Standard).

Labels are resolved the WHATWG way (webencodings): ``iso-8859-1``, ``latin1`` and ``us-ascii`` name
**windows-1252**, so a body a Windows client encoded in windows-1252 but labelled ISO-8859-1 keeps its
€, typographic quotes and dashes. windows-1252 decodes every byte: the five bytes it leaves undefined
stand for the C1 control of the same number, as in the standard (Python's cp1252 codec refuses them).
"""

from __future__ import annotations

import codecs
import functools
from collections.abc import Callable

import webencodings

# Encodings in which '&', '=', '%' and the multipart delimiters are not single ASCII bytes: a form body
# cannot be split in them (WHATWG: a form is never submitted in them).
NOT_ASCII_COMPATIBLE = frozenset({"utf-16be", "utf-16le", "replacement"})
_C1_HANDLER = "aktenhub-whatwg-c1"


def _c1(exc: UnicodeError) -> tuple[str, int]:
    if isinstance(exc, UnicodeDecodeError):
        return chr(exc.object[exc.start]), exc.start + 1
    raise exc


codecs.register_error(_C1_HANDLER, _c1)


def encoding_name(label: str) -> str | None:
    """The WHATWG name of the encoding a label stands for; None if unknown or unusable for forms."""
    encoding = webencodings.lookup(label)
    if encoding is None or encoding.name in NOT_ASCII_COMPATIBLE:
        return None
    return encoding.name


def decode(data: bytes, name: str) -> str:
    """Decode with the encoding of that WHATWG name; UnicodeDecodeError where the bytes are invalid."""
    decoder, errors = _decoder(name)
    return decoder(data, errors)[0]


# A form's every name and value is decoded on its own: the label lookup (lower-casing, table, codec
# registry) is done once per encoding, not a dozen times per submission.
@functools.cache
def _decoder(name: str) -> tuple[Callable[[bytes, str], tuple[str, int]], str]:
    encoding = webencodings.lookup(name)
    if encoding is None:
        raise LookupError(name)
    errors = _C1_HANDLER if encoding.name == "windows-1252" else "strict"
    return encoding.codec_info.decode, errors
