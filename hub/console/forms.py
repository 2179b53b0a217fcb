"""Reading the console's filter forms: text fields, date ranges in local time, German counts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta

from hub.console.templating import LOCAL, number

MAX_FIELD = 200  # characters of a filter's text field


def text(params: Mapping[str, str], name: str, problems: list[str], limit: int = MAX_FIELD) -> str | None:
    """A text field, stripped (None if blank); a problem noted if it is too long."""
    value = (params.get(name) or "").strip()
    if len(value) > limit:
        problems.append(f"Das Feld {name} darf höchstens {limit} Zeichen lang sein.")
        return None
    return value or None


def day(params: Mapping[str, str], name: str, label: str, problems: list[str]) -> date | None:
    """A date field (YYYY-MM-DD, as `<input type="date">` sends it); a problem noted if it is not one."""
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"{label}: „{value[:20]}“ ist kein Datum (TT.MM.JJJJ).")
        return None


def local_day_range(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """The days `first` to `last` (both included) in the Kreis' time zone, as [since, until)."""
    since = datetime.combine(first, time(), LOCAL) if first else None
    until = datetime.combine(last + timedelta(days=1), time(), LOCAL) if last else None
    return since, until


def applications_text(count: int) -> str:
    """A number of applications in German: "1 Antrag", "12 Anträge"."""
    return "1 Antrag" if count == 1 else f"{number(count)} Anträge"
