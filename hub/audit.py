"""The audit export: every journal event as one JSON line in a file, for the Kreis' audit trail or SIEM.

The built-in use of the `aktenhub_event` hook. A line holds what happened, when, to which application,
in which step and against which target, and the event's data fields that never carry personal data
(`hub.events.VIEWER_FIELDS`: ids, counts, codes, connector names); any other field is left out, not
masked, so the file stays free of personal data whatever a plugin adds to an event.

Lines are appended; the file may be rotated from outside (logrotate with ``create`` or ``copytruncate``,
or a rename): the export notices that the path names another file and reopens it (stdlib
`WatchedFileHandler`). It is a copy of the journal for readers outside the hub: the journal stays the
record, so the export is written without fsync and a line lost in a crash is still in the journal.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.events import VIEWER_FIELDS
from hub.hookspecs import hookimpl
from hub.models import Event

FORMAT = "aktenhub.audit/1"


class AuditConfig(BaseModel):
    """The `audit:` section: where journal events are exported as JSON lines."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(description="JSON-lines file the events are appended to (its directory is created)")


def audit_line(event: Event) -> str:
    """One event as an audit line: ids, type, step, target, time and personal-data-free data fields."""
    line: dict[str, Any] = {
        "format": FORMAT,
        "at": event.at.isoformat(),
        "event_id": event.id,
        "application_id": event.application_id,
        "type": event.type,
        "step": event.step,
        "target": event.target,
        "data": {k: v for k, v in event.data.items() if k in VIEWER_FIELDS},
    }
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str)


class AuditExport:
    """The plugin object the hub registers while it runs with an `audit:` section."""

    def __init__(self, config: AuditConfig) -> None:
        config.path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = logging.handlers.WatchedFileHandler(config.path, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    @hookimpl
    def aktenhub_event(self, event: Event) -> None:
        """Append the event as one line."""
        self._handler.emit(logging.makeLogRecord({"msg": audit_line(event), "levelno": logging.INFO}))

    def close(self) -> None:
        """Close the file."""
        self._handler.close()
