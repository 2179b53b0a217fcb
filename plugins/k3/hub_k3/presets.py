"""K3's presets for the `sql` and `rest` transports: what `type: k3` assumes unless the operator says
otherwise (README, "What to ask the vendor"). The import folder's preset is K3's manifest and result
files (`connector.importfolder_preset`)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any, Final

from hub_fachverfahren.sql import connector_settings

# K3's REST interface as the profile presumes it (the operator names the vendor's file in `openapi:`).
REST_SPEC: Final = Path(str(files(__package__).joinpath("k3-rest.yaml")))
# K3's Bearbeitungsstand in the REST interface -> the hub's answer status.
REST_STATUSES: Final = {
    "EINGEGANGEN": "accepted",
    "IN_BEARBEITUNG": "in_progress",
    "NACHFORDERUNG": "action_required",
    "BESCHIEDEN": "decided",
    "ABGELEHNT": "decided",  # a refusal is a decision the applicant receives, too
    "IMPORTFEHLER": "failed",  # K3 could not take the Vorgang in
}
# Staging columns K3 fills from its Vorgang besides the generic layout's (see `K3Vorgang.columns`).
SQL_COLUMNS: Final = {"antragsteller": "antragsteller"}


def sql_preset() -> dict[str, Any]:
    """The staging layout (table antrag_import, documents antrag_dokument, status column and values) of
    the generic sql transport, with K3's applicant column; the operator gives `url` and `password`."""
    section = connector_settings("", "")
    for key in ("type", "url", "password"):
        section.pop(key)
    section["columns"] = {**section["columns"], **SQL_COLUMNS}
    return section


def rest_preset() -> dict[str, Any]:
    """K3's Vorgang API: create, upload the files, poll and acknowledge the answers; the operator gives
    `base_url` and `auth` (or `callback:` with `answers: null` for signed callbacks instead of polling)."""
    return {
        "openapi": str(REST_SPEC),
        "operation": "createCase",
        "case_number": "$.aktenzeichen",
        "reference": "$.id",
        "documents": {"operation": "uploadDocument", "parameter": "vorgangId", "field": "datei"},
        "answers": {"operation": "listAnswers", "acknowledge": "ackAnswer", "parameter": "antwortId"},
        "answer_fields": {"each": "$.antworten[*]"},
        "status_map": dict(REST_STATUSES),
    }
