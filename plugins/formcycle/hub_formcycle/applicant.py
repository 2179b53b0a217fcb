"""The applicant as the form names them: configured form elements mapped into a `Party`."""

from __future__ import annotations

from typing import Any

from hub import Address, Party
from hub.formdata.submission import lookup

from .config import ApplicantFields


def map_applicant(fields: ApplicantFields, form: dict[str, Any]) -> Party:
    """The applicant taken from the configured form elements; unmapped or empty ones stay unset.

    An element is named as sent; in a JSON body a dotted path reaches into nested objects
    (``antragsteller.name``).
    """
    values: dict[str, str] = {}
    for attribute, element in fields.model_dump(exclude_none=True).items():
        value = _first(lookup(form, element))
        if value is not None:
            values[attribute] = value
    address = {k: values.pop(k) for k in ApplicantFields.ADDRESS if k in values}
    return Party(**values, address=Address(**address) if address else None)


def _first(value: Any) -> str | None:
    """The first non-blank value of a parameter (a repeated element gives its first entry)."""
    candidates = value if isinstance(value, list) else [value]
    for candidate in candidates:
        if isinstance(candidate, bool) or not isinstance(candidate, str | int | float):
            continue
        text = str(candidate).strip()
        if text:
            return text
    return None
