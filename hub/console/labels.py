"""German words for the journal's states, steps and events, as the console shows them.

Unknown values (a plugin's own step or event) are shown as they are: a label is a courtesy, never a
filter, so nothing disappears because it has none.
"""

from __future__ import annotations

from hub.actions import Action
from hub.application_files import FileKind
from hub.held import HeldState
from hub.journal import TaskState
from hub.models import ApplicationState

APPLICATION_STATES: dict[str, str] = {
    ApplicationState.RECEIVED: "Eingegangen",
    ApplicationState.PROCESSING: "In Bearbeitung",
    ApplicationState.DEAD: "Fehlgeschlagen",
    ApplicationState.REJECTED: "Abgelehnt",
    ApplicationState.COMPLETED: "Abgeschlossen",
    ApplicationState.ABANDONED: "Aufgegeben",
}

TASK_STATES: dict[str, str] = {
    TaskState.PENDING: "Wartet",
    TaskState.LEASED: "Läuft",
    TaskState.DONE: "Erledigt",
    TaskState.DEAD: "Fehlgeschlagen",
    TaskState.WAITING: "Wartet auf Antwort",
    TaskState.ABANDONED: "Aufgegeben",
}

STEPS: dict[str, str] = {
    "intake": "Eingang",
    "identify": "Identität prüfen",
    "map": "Abbilden",
    "remap": "Erneut abbilden",
    "deliver": "Zustellen",
    "notify": "Eingangsbestätigung",
    "notify-rejection": "Ablehnung mitteilen",
    "answer": "Antwort",
}

EVENTS: dict[str, str] = {
    "application.received": "Antrag eingegangen",
    "application.revised": "Neue Fassung eingegangen",
    "intake.conflict": "Geänderte Neusendung abgewiesen",
    "original.redacted": "Zugangsdaten aus dem Original entfernt",
    "identity.verified": "Identität geprüft",
    "application.rejected": "Antrag abgelehnt",
    "record.mapped": "Akte, Vorgang und Dokumente abgebildet",
    "file_number.awaited": "Wartet auf das Aktenzeichen",
    "file_number.assigned": "Aktenzeichen vergeben",
    "delivery.completed": "Zugestellt",
    "application.delivered": "An alle Ziele zugestellt",
    "receipt.sent": "Nachricht gesendet",
    "application.completed": "Abgeschlossen",
    "answer.received": "Antwort des Fachverfahrens eingegangen",
    "answer.filed": "Antwort in der Akte abgelegt",
    "step.failed": "Schritt fehlgeschlagen, wird wiederholt",
    "step.dead": "Schritt endgültig fehlgeschlagen",
    "operator.replayed": "Erneut versucht",
    "operator.abandoned": "Aufgegeben",
    "operator.closed": "Nachricht geschlossen",
    "operator.kept": "Nachricht behalten",
    "application.purged": "Nutzdaten gelöscht (Aufbewahrungsfrist)",
}


# Held inbound messages (`hub.held`).
HELD_STATES: dict[str, str] = {
    HeldState.RETRYING: "Wird erneut abgerufen",
    HeldState.QUARANTINED: "Quarantäne",
    HeldState.REJECTED: "Abgelehnt",
    HeldState.CLOSED: "Geschlossen",
    HeldState.KEPT: "Behalten",
}


# The fields of timeline entries' data (`hub.events` and the pipeline's events).
FIELDS: dict[str, str] = {
    "answer_id": "Antwort-Kennung",
    "asserted_by": "bestätigt durch",
    "attachments": "Anlagen",
    "attempt": "Versuch",
    "blobs": "Dateien",
    "case_number": "Fallnummer",
    "code": "Code",
    "credential_fields": "Felder mit Zugangsdaten",
    "decision": "Bescheid",
    "documents": "Dokumente",
    "duplicate": "schon vorhanden",
    "error": "Fehler",
    "error_code": "Fehlercode",
    "file_number": "Aktenzeichen",
    "kind": "Art",
    "level": "Vertrauensniveau",
    "means": "Mittel",
    "message": "Nachricht",
    "note": "Hinweis",
    "permanent": "endgültig",
    "policy": "Aufbewahrungsregel",
    "previous_state": "Status vorher",
    "probe": "Probe",
    "reason": "Grund",
    "reference": "Referenz",
    "retention_days": "Aufbewahrung (Tage)",
    "retry_at": "nächster Versuch",
    "revision": "Fassung",
    "route": "Route",
    "service": "Leistung",
    "source": "Quelle",
    "status": "Status",
    "targets": "Ziele",
    "tasks": "Schritte",
}

FILE_KINDS: dict[str, str] = {
    FileKind.RENDITION: "Antrag als PDF",
    FileKind.ATTACHMENT: "Anlage",
    FileKind.ORIGINAL: "Originalantrag",
}

# The audit trail's actions (`hub.actions.Action`), worded like their timeline entries.
OPERATOR_ACTIONS: dict[str, str] = {
    Action.REPLAYED: "Erneut versucht",
    Action.ABANDONED: "Aufgegeben",
    Action.CLOSED: "Nachricht geschlossen",
    Action.KEPT: "Nachricht behalten",
    Action.PAUSED: "Ziel pausiert",
    Action.RESUMED: "Ziel fortgesetzt",
    Action.PURGED: "Nutzdaten gelöscht (Aufbewahrungsfrist)",
}


def label(labels: dict[str, str], value: str | None) -> str:
    """The German label of `value`, or the value itself if it has none."""
    if value is None:
        return ""
    return labels.get(value, value)
