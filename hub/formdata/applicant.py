"""The applicant as a form names them: which element (name, alias or path) holds which `Party` attribute."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from hub.models import Address, Party


class ApplicantFields(BaseModel):
    """Which form element holds which applicant attribute; unset ones stay empty."""

    model_config = ConfigDict(extra="forbid")

    given_name: str | None = None
    family_name: str | None = None
    organisation: str | None = None
    birth_date: str | None = None
    birth_name: str | None = None
    birth_place: str | None = None
    email: str | None = None
    phone: str | None = None
    # BundID data the form may carry as placeholders; an identity connector verifies them later.
    bpk2: str | None = None
    mailbox: str | None = None
    # Postal address parts, gathered into `Party.address`.
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None

    ADDRESS: ClassVar[tuple[str, ...]] = ("street", "postal_code", "city", "country")


def applicant(fields: ApplicantFields, value_of: Callable[[str], Any]) -> Party:
    """The applicant from the configured elements (`value_of` reads one); unmapped ones stay unset."""
    values: dict[str, str] = {}
    for attribute, element in fields:  # the settings as they are: no model_dump per submission
        if element is None:
            continue
        value = first_text(value_of(element))
        if value is not None:
            values[attribute] = value
    address = {k: values.pop(k) for k in ApplicantFields.ADDRESS if k in values}
    return Party(**values, address=Address(**address) if address else None)


def first_text(value: Any) -> str | None:
    """The first non-blank scalar of a value (a repeated element gives its first entry), as text."""
    candidates = value if isinstance(value, list) else [value]
    for candidate in candidates:
        if isinstance(candidate, bool) or not isinstance(candidate, str | int | float):
            continue
        text = str(candidate).strip()
        if text:
            return text
    return None
