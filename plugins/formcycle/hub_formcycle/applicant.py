"""The applicant as the form names them: configured form elements mapped into a `Party`."""

from __future__ import annotations

from typing import Any

from hub import Party
from hub.formdata.applicant import ApplicantFields, applicant
from hub.formdata.submission import lookup


def map_applicant(fields: ApplicantFields, form: dict[str, Any]) -> Party:
    """The applicant taken from the configured form elements; unmapped or empty ones stay unset.

    An element is named as sent; in a JSON body a dotted path reaches into nested objects
    (``antragsteller.name``).
    """
    return applicant(fields, lambda element: lookup(form, element))
