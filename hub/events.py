"""Typed journal events that several parts of the hub write or read: operator actions, viewer redaction.

Operator actions (replay, abandon, closing a quarantined message, ...) go on the application's timeline
as ``operator.<action>`` events whose data carry who did it (the admin token's ``name``, or the OS user
for the CLI) and why; the event's ``at`` says when. Record them with `operator_event` inside the
transaction that performs the action, or afterwards with `hub.bus.Bus.record_operator_action`.

Event data may hold personal data (a connector error quoting a form field, a rejection reason naming
the applicant, an operator's note). Viewers see only the fields in `VIEWER_FIELDS`; every other field's
value is replaced, so a field a plugin adds is hidden until it is known to be safe.
"""

from __future__ import annotations

from typing import Any

from hub.models import Event

OPERATOR_PREFIX = "operator."
OPERATOR_REPLAYED = "operator.replayed"
OPERATOR_ABANDONED = "operator.abandoned"
# The application's payload was deleted after its retention period (hub.retention); data: policy,
# retention_days, operator (None: the running hub's schedule), attachments, blobs.
APPLICATION_PURGED = "application.purged"

REDACTED = "[redacted]"
# The ids a step produced in another system (correlation key -> value, e.g. ``{"enaio.akte": "4711"}``),
# on the timeline entry of the step that produced them: ids, never personal data, kept after a purge.
PRODUCED_IDS = "ids"

# Event data fields that never carry personal data: ids, counts, codes, names of connectors and steps.
VIEWER_FIELDS = frozenset(
    {
        "asserted_by",
        "attachments",
        "attempt",
        "blobs",
        "code",
        "credential_fields",  # names of form fields from connector settings, never their values
        "documents",
        "duplicate",
        "error_code",
        "file_number",
        PRODUCED_IDS,
        "kind",
        "level",
        "means",
        "operator",
        "permanent",
        "policy",
        "previous_state",
        "retention_days",
        "retry_at",
        "route",
        "service",
        "source",
        "targets",
        "tasks",
    }
)


def operator_event(
    application_id: str, action: str, operator: str | None, reason: str | None = None, **details: Any
) -> Event:
    """The timeline entry of an operator's `action` on an application: who, why (and `at`: when).

    `operator` is None only for actions the hub takes by itself on a caller's behalf that names nobody.
    """
    return Event(
        application_id=application_id,
        type=OPERATOR_PREFIX + action,
        data={"operator": operator, "reason": reason, **details},
    )


def redact_for_viewer(event: Event) -> Event:
    """The event as a viewer may see it: fields that may hold personal data keep only their presence."""
    data = {k: (v if k in VIEWER_FIELDS or v is None else REDACTED) for k, v in event.data.items()}
    return event.model_copy(update={"data": data})
