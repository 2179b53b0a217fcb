"""What a viewer sees of an application: the one set of rules for the admin API and the console.

Viewers see metadata only. Error texts may quote form fields or the applicant's name, so a viewer sees
an error's code instead; a task's result holds the mapped record (index data, document and attachment
names), so a viewer sees none; timeline data keep only the fields `hub.events.VIEWER_FIELDS` names.
The ids other systems gave an application (its correlations, the `ids` on its timeline) are metadata
that a retention purge keeps too: viewers see them. A target's pause shows viewers who paused it and
since when, not the operator's free-text reason. A held inbound message shows viewers its reason code,
not the text (a fault may quote the message), and no sender (it can name a person). Operators and
admins (``personal=True``) see everything unchanged.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from hub.events import redact_for_viewer
from hub.gate import TargetStatus
from hub.held import HeldMessage
from hub.journal import ApplicationSummary, Task
from hub.models import Event

__all__ = ["TaskView", "held_view", "safe_error", "summary_view", "target_view", "task_view", "timeline_view"]


class TaskView(BaseModel):
    """One step of an application's work; viewers see error codes and no results."""

    id: int
    step: str
    target: str | None
    state: str = Field(description="pending, leased, done or dead")
    attempts: int
    last_error: str | None = Field(description="viewers: its code only")
    error_code: str | None
    due_at: float = Field(description="Unix time it is due")
    result: dict[str, Any] | None = Field(description="the step's result; viewers: null")


def safe_error(error: str | None, code: str | None) -> str | None:
    """What a viewer sees of an error: its code, never the text (it may quote personal data)."""
    if error is None and code is None:
        return None
    return code or "unspecified"


def summary_view(summary: ApplicationSummary, personal: bool) -> ApplicationSummary:
    """An application's metadata as the caller may see it (viewers: the error's code only)."""
    if personal:
        return summary
    return summary.model_copy(update={"error": safe_error(summary.error, summary.error_code)})


def task_view(task: Task, personal: bool) -> TaskView:
    """A task as the caller may see it (viewers: the error's code, no result)."""
    return TaskView(
        id=task.id,
        step=task.step,
        target=task.target or None,
        state=task.state,
        attempts=task.attempts,
        last_error=task.last_error if personal else safe_error(task.last_error, task.error_code),
        error_code=task.error_code,
        due_at=task.due_at,
        result=task.result if personal else None,
    )


def timeline_view(events: list[Event], personal: bool) -> list[Event]:
    """The timeline as the caller may see it (viewers: `redact_for_viewer` on every entry)."""
    return events if personal else [redact_for_viewer(e) for e in events]


def target_view(status: TargetStatus, personal: bool) -> TargetStatus:
    """A target's gate as the caller may see it (viewers: a pause without its reason)."""
    if personal or status.paused is None:
        return status
    return status.model_copy(update={"paused": status.paused.model_copy(update={"reason": ""})})


def held_view(held: HeldMessage, personal: bool) -> HeldMessage:
    """A held inbound message as the caller may see it (viewers: no sender, the reason's code only)."""
    if personal:
        return held
    return held.model_copy(update={"sender": None, "reason": held.reason_code})
