"""What a purge erases from an application's journal rows, and what stays (DSGVO, see `hub.retention`).

Erased: the payload — form data, attachments, the original submission, the applicant's person data,
the identity's subject and assertion, the mapped record and delivery results of its steps (they hold
index data, document names and the rendition), the detailed error texts, the answers' texts and
decision documents, superseded revisions' content — and every event field that may hold personal data
(the same fields a viewer never sees, `hub.events.VIEWER_FIELDS`).

Kept: ids (the hub's, the source's, the Aktenzeichen, every correlation other systems gave it), service,
route, states, times, the identity's trust level and means, error codes, the answers' statuses and case
numbers, and the timeline itself with every entry's type, step, target, time and operator.

Pure functions over the domain models: the journal backends apply them inside the purge transaction.
"""

from __future__ import annotations

from typing import Any

from hub.answers import Answer
from hub.events import redact_for_viewer
from hub.models import Application, Event, Identity, Party, Purged

__all__ = ["erase_answer", "erase_application", "erase_event_data"]


def erase_application(app: Application, purged: Purged) -> Application:
    """The application without its payload, marked as purged."""
    identity = Identity(
        verified=app.identity.verified,
        provider=app.identity.provider,
        asserted_by=app.identity.asserted_by,
        level=app.identity.level,
        means=app.identity.means,
        verified_at=app.identity.verified_at,
        attribute_levels=app.identity.attribute_levels,
    )
    return app.model_copy(
        update={
            "applicant": Party(),
            "identity": identity,
            "form": {},
            "attachments": [],
            "original": None,
            "purged": purged,
        }
    )


def erase_answer(answer: Answer) -> Answer:
    """A Fachverfahren's answer without its texts and decision: its id, status and case number stay."""
    return answer.model_copy(update={"status_text": None, "message": None, "decision": None, "error": None})


def erase_event_data(event: Event) -> dict[str, Any]:
    """A timeline entry's data without anything that may be personal (what a viewer sees of it)."""
    return redact_for_viewer(event).data
