"""What every transport reports of a created case: the system's id as the reference, the case number as a
correlation (never as the Aktenzeichen: the e-file's number stays the application's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import RootModel

from hub import Delivery, FileRecord, Permanent, Sink


class JsonObject(RootModel[dict[str, Any]]):
    """A transport's `Payload`: any JSON object; the Fachverfahren's own description (OpenAPI, WSDL)
    checks it when it is sent, and names each misfit."""


def payload_of(sink: Sink[Any], record: FileRecord, what: str) -> dict[str, Any]:
    """The sink's `payloads.<its name>`; `Permanent` when the route's mapping gives none."""
    data = sink.payload(record, JsonObject).root
    if not data:
        raise Permanent(
            f"the route's mapping gives no payloads.{sink.name}: add it to the mapping file ({what})"
        )
    return data


def case_delivery(target: str, case: Mapping[str, Any], *, duplicate: bool) -> Delivery:
    """The delivery of a case {"reference": system id, "case_number": the Fachverfahren's Aktenzeichen}."""
    correlations = {"case_number": str(case["case_number"])} if case.get("case_number") else {}
    return Delivery(
        target=target, reference=case["reference"], correlations=correlations, duplicate=duplicate
    )
