"""K3's result files (``K3Rueckmeldung``): one place for their element names and status values.

The connector reads them with these names and the simulator writes them with the same ones, so the two
cannot drift apart. An operator whose K3 writes other names overrides `answer_format` (see README).
"""

from __future__ import annotations

from typing import Final

from hub_fachverfahren.importfolder import AnswerFields, AnswerFormat

from hub import AnswerStatus

ROOT: Final = "K3Rueckmeldung"
# The transport's field -> K3's element in a result file.
ELEMENTS: Final = {
    "reference": "Referenz",
    "case_number": "Aktenzeichen",
    "status": "Status",
    "message": "Mitteilung",
    "error": "Fehler",
    "decision": "Bescheid",
}
# K3's Bearbeitungsstand -> the hub's answer status.
STATUS_MAP: Final = {
    "eingegangen": AnswerStatus.ACCEPTED,
    "in Bearbeitung": AnswerStatus.IN_PROGRESS,
    "Unterlagen nachgefordert": AnswerStatus.ACTION_REQUIRED,
    "beschieden": AnswerStatus.DECIDED,
    "abgelehnt": AnswerStatus.FAILED,
}


def k3_answer_format() -> AnswerFormat:
    """How a K3Rueckmeldung is read (XML, elements under the root, K3's status values)."""
    return AnswerFormat(
        format="xml",
        fields=AnswerFields(**ELEMENTS),
        status_map=dict(STATUS_MAP),
    )
