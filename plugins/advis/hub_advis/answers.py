"""ADVIS's answers (``advis.rueckmeldung``): one place for where their values are and what they mean.

The connector reads them with these paths and the simulator writes them with the same element names, so
the two cannot drift apart. An operator whose ADVIS answers differently overrides `answers` (README).
"""

from __future__ import annotations

from typing import Final

from hub_fachverfahren.importfolder import AnswerFields
from hub_fachverfahren.xoev import XoevAnswers

from hub import AnswerStatus

ANSWER_TYPE: Final = "advis.rueckmeldung"  # the answer's root element and its XTA message type
# The transport's field -> XPath in an answer (XAusländer's elements are unqualified below the root).
PATHS: Final = {
    "reference": "/*/bezug/nachrichtUUID",  # the nachrichtUUID of the hub's message
    "case_number": "/*/aktenzeichen",
    "status": "/*/status/code",
    "message": "/*/mitteilung",
    "error": "/*/fehler",
    "decision": None,  # a decision travels as the XTA message's PDF attachment
}
# ADVIS's Bearbeitungsstand -> the hub's answer status.
STATUS_MAP: Final = {
    "eingegangen": AnswerStatus.ACCEPTED,
    "in Bearbeitung": AnswerStatus.IN_PROGRESS,
    "Unterlagen nachgefordert": AnswerStatus.ACTION_REQUIRED,
    "entschieden": AnswerStatus.DECIDED,
    "abgelehnt": AnswerStatus.FAILED,
}
REFUSED: Final = "abgelehnt"


def advis_answers() -> XoevAnswers:
    """How ADVIS's answers are recognised (XTA message type) and read (XPath, ADVIS's status values)."""
    return XoevAnswers(
        format="xml",
        message_types=[ANSWER_TYPE],
        fields=AnswerFields(**PATHS),
        status_map=dict(STATUS_MAP),
    )
