"""A submission sent again under an external id the hub already has.

Form servers and portals re-send: a workflow action is retried after a timeout whose answer was lost,
or a clerk at the form server corrects a submission and sends it once more. Which of the two it was
shows in the content, not in the id. Every application carries a **content fingerprint** (sha256 over
the canonical JSON of its service, form data and attachments' fields and sha256s); a re-send is

- the **same** content: a duplicate, answered with the existing application and nothing stored;
- **changed** content: per the source's `on_changed_resend` setting either refused (`409 Conflict`
  over HTTP, event ``intake.conflict`` on the first application's timeline) or taken in as a new
  **revision** of the same application: the content is replaced, the superseded revision is archived
  in the journal, and the application's steps run again (event ``application.revised``).

The mechanism is the core's: every source gets it by setting `Intake.on_changed`. The core computes the
fingerprint from form data and attachments unless the source set `Application.fingerprint` itself: a
source whose content is the original (an XML message) rather than form data sets it from that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from hub.models import Application, Attachment, Event

CONFLICT_EVENT = "intake.conflict"
REVISED_EVENT = "application.revised"


class ChangedResend(StrEnum):
    """What to do with a re-send under a known external id whose content changed."""

    REFUSE = "refuse"  # keep the first application; the sender gets 409 and the conflict is recorded
    REVISION = "revision"  # replace the content, keep the application: its steps run again


def content_fingerprint(application: Application) -> str:
    """sha256 (hex) of what was submitted: service, form data, attachments' fields and sha256s."""
    return submission_fingerprint(application.service, application.form, application.attachments)


def submission_fingerprint(service: str, form: Mapping[str, Any], attachments: Sequence[Attachment]) -> str:
    """The content fingerprint of a submission before its application exists (e.g. as its id).

    Names and media types of attachments are left out like every other detail of how the content was
    carried (boundary, charset, field order): only what the form server sent counts.
    """
    content: dict[str, Any] = {
        "service": service,
        "form": form,
        "attachments": sorted([a.field or "", a.sha256] for a in attachments),
    }
    data = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def revision_key(application_id: str, revision: int) -> str:
    """The application id qualified by its revision from the second one on: ``<id>/r<n>``.

    Sinks key what a revision delivers by it, so a revision's documents join the earlier ones in the
    same Akte and Vorgang instead of being taken for ones already delivered.
    """
    return application_id if revision == 1 else f"{application_id}/r{revision}"


def conflict_event(stored: Application, received_fingerprint: str) -> Event:
    """The refused re-send, on the first application's timeline: fingerprints only, no content."""
    return Event(
        application_id=stored.id,
        type=CONFLICT_EVENT,
        step="intake",
        data={
            "action": ChangedResend.REFUSE.value,
            "revision": stored.revision,
            "stored_fingerprint": stored.fingerprint,
            "received_fingerprint": received_fingerprint,
        },
    )


def revise(stored: Application, received: Application) -> Application:
    """The application as its next revision: the received content under the stored identity.

    Kept from the stored application: its id, when it was first received, its Aktenzeichen and the
    ids other systems gave it (the e-file's Akte and Vorgang stay the same). Taken from the received
    one: form data, attachments, original, applicant. Identity is verified again for the new content.
    """
    return received.model_copy(
        update={
            "id": stored.id,
            "received_at": stored.received_at,
            "revised_at": received.received_at,
            "revision": stored.revision + 1,
            "file_number": stored.file_number,
            "correlations": {**stored.correlations, **received.correlations},
        }
    )


def revised_event(stored: Application, revised: Application) -> Event:
    """The new revision, on the application's timeline: numbers and fingerprints, no content."""
    return Event(
        application_id=stored.id,
        type=REVISED_EVENT,
        step="intake",
        data={
            "revision": revised.revision,
            "previous_revision": stored.revision,
            "fingerprint": revised.fingerprint,
            "previous_fingerprint": stored.fingerprint,
            "attachments": len(revised.attachments),
        },
    )
