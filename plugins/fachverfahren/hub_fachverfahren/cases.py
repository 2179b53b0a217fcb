"""What every transport reports of a created case: the system's id as the reference, the case number as a
correlation (never as the Aktenzeichen: the e-file's number stays the application's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub import Delivery


def case_delivery(target: str, case: Mapping[str, Any], *, duplicate: bool) -> Delivery:
    """The delivery of a case {"reference": system id, "case_number": the Fachverfahren's Aktenzeichen}."""
    correlations = {"case_number": str(case["case_number"])} if case.get("case_number") else {}
    return Delivery(
        target=target, reference=case["reference"], correlations=correlations, duplicate=duplicate
    )
