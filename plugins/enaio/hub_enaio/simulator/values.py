"""How the simulated enaio reads an index value: as a number, a date or a text (see `search`)."""

from __future__ import annotations

import functools
import re
from collections.abc import Hashable
from datetime import datetime
from typing import Any


# Every comparison classifies both sides (number, date, text); a search compares the same stored values
# again and again, and a failed strptime costs microseconds each: classified once per distinct value.
@functools.lru_cache(maxsize=65536)
def sort_key(value: str | None) -> tuple[int, Any]:
    """(0, number), (1, date) or (2, case-folded text): how enaio orders and compares the value."""
    text = value or ""
    number = _number(text)
    if number is not None:
        return (0, number)
    moment = _date(text)
    if moment is not None:
        return (1, moment)
    return (2, text.casefold())


def equality_keys(value: str) -> tuple[Hashable, Hashable]:
    """Keys under which a stored value is found by ``field = value``: equal values of one kind share
    `sort_key`; values of two kinds compare as texts, so they share the case-folded text."""
    return sort_key(value), ("text", value.casefold())


def _number(text: str) -> float | None:
    try:
        return float(text) if re.fullmatch(r"-?\d+(\.\d+)?", text.strip()) else None
    except ValueError:  # pragma: no cover - the pattern admits only numbers
        return None


_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%Y-%m-%dT%H:%M:%S", "%d.%m.%Y %H:%M:%S")


def _date(text: str) -> datetime | None:
    candidate = text.strip()
    # Every form below starts with a digit (strptime's \d and int() take any Unicode decimal digit):
    # a name or a street is no date, known without five failed parses and their exceptions.
    if not candidate[:1].isdecimal():
        return None
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        moment = None
    if moment is None:
        for pattern in _DATE_FORMATS:
            try:
                moment = datetime.strptime(candidate, pattern)
                break
            except ValueError:
                continue
    if moment is None:
        return None
    return moment.replace(tzinfo=None)
