"""The console's filter forms: pydantic models of their fields, date ranges in local time, German texts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from hub.console.templating import LOCAL, number

MAX_FIELD = 200  # characters of a filter's text field


class FilterForm(BaseModel):
    """A page's filter (query string or the hidden fields of a form): every field optional, a blank
    field means "any"; `from`/`to` are the Kreis' calendar days, both included."""

    # Other fields of a form (CSRF token, reason) are not the filter's business.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True, populate_by_name=True)

    first: date | None = Field(None, alias="from")
    last: date | None = Field(None, alias="to")

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.first and self.last and self.last < self.first:
            raise ValueError("Der Zeitraum endet vor seinem Beginn.")
        return self

    def day_range(self) -> tuple[datetime | None, datetime | None]:
        """The days as [since, until) in UTC-comparable datetimes."""
        return local_day_range(self.first, self.last)

    def values(self) -> dict[str, str]:
        """The fields given, as the form sends them (for links and hidden fields)."""
        return {k: str(v) for k, v in self.model_dump(mode="json", by_alias=True, exclude_none=True).items()}


F = TypeVar("F", bound=FilterForm)


def read_form(model: type[F], params: Mapping[str, Any], labels: Mapping[str, str]) -> F | list[str]:
    """`params` read as `model`, or what is wrong with them in German (`labels`: the fields' names)."""
    try:
        return model.model_validate({k: v for k, v in params.items() if isinstance(v, str)})
    except ValidationError as exc:
        return [problem(error, labels) for error in exc.errors()]


def problem(error: ErrorDetails, labels: Mapping[str, str], hints: Mapping[str, str] | None = None) -> str:
    """One of a form's validation errors in German; `hints`: what a field wants, by its name."""
    name = str(error["loc"][0]) if error["loc"] else ""
    label = labels.get(name, name)
    kind = error["type"]
    if not name:  # the form as a whole (e.g. a date range that ends before it begins)
        return str(error.get("ctx", {}).get("error", error["msg"]))
    if kind == "extra_forbidden":
        return f"Unbekannter Parameter „{name[:40]}“."
    if hints and name in hints:
        return f"{label}: {hints[name]}"
    if kind.startswith("date"):
        return f"{label}: bitte ein Datum angeben (TT.MM.JJJJ)."
    if kind == "string_too_long":
        return f"{label}: höchstens {error.get('ctx', {}).get('max_length')} Zeichen."
    if kind == "enum":
        return f"{label}: diesen Wert gibt es nicht."
    return f"{label}: ungültige Angabe."


def local_day_range(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """The days `first` to `last` (both included) in the Kreis' time zone, as [since, until)."""
    since = datetime.combine(first, time(), LOCAL) if first else None
    until = datetime.combine(last + timedelta(days=1), time(), LOCAL) if last else None
    return since, until


def applications_text(count: int) -> str:
    """A number of applications in German: "1 Antrag", "12 Anträge"."""
    return "1 Antrag" if count == 1 else f"{number(count)} Anträge"
