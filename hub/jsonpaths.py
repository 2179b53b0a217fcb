"""JSONPath (jsonpath-ng) into JSON documents (bodies, answers, results), checked at configuration load."""

from __future__ import annotations

import functools
from typing import Any

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.parser import parse


@functools.lru_cache(maxsize=256)
def compiled(path: str) -> Any:
    """The compiled path; `ValueError` with the parser's reason for one that is not JSONPath."""
    try:
        return parse(path)
    except (JsonPathParserError, JsonPathLexerError, ValueError, TypeError) as exc:
        raise ValueError(f"{path!r} is not JSONPath: {exc}") from None


def check_path(path: str | None) -> str | None:
    """A configured path, compiled once to refuse a typo at start-up rather than at the first answer."""
    if path is not None:
        compiled(path)
    return path


def every(path: str, data: Any) -> list[Any]:
    """All values `path` selects in `data`."""
    return [match.value for match in compiled(path).find(data)]


def first(path: str | None, data: Any) -> Any:
    """The first value `path` selects in `data` (None: no path, or nothing there)."""
    if path is None:
        return None
    found = every(path, data)
    return found[0] if found else None


def text(path: str | None, data: Any) -> str | None:
    """The first value as text (numbers included, as case numbers sometimes are); None if absent."""
    value = first(path, data)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        return str(value)
    return None
