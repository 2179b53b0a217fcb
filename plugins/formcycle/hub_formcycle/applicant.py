"""The applicant as the form names them: configured form elements mapped into a `Party`."""

from __future__ import annotations

from hub import Address, Party

from .config import ApplicantFields


def map_applicant(fields: ApplicantFields, form: dict[str, str | list[str]]) -> Party:
    """The applicant taken from the configured form elements; unmapped or empty ones stay unset."""
    values: dict[str, str] = {}
    for attribute, element in fields.model_dump(exclude_none=True).items():
        value = _first(form.get(element))
        if value is not None:
            values[attribute] = value
    address = {k: values.pop(k) for k in ApplicantFields.ADDRESS if k in values}
    return Party(**values, address=Address(**address) if address else None)


def _first(value: str | list[str] | None) -> str | None:
    """The first non-blank value of a parameter (a repeated element gives its first entry)."""
    candidates = value if isinstance(value, list) else [value]
    for candidate in candidates:
        if candidate is not None and candidate.strip():
            return candidate.strip()
    return None
