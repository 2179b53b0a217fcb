"""What operators did, as the journal keeps it: the audit trail of operator actions and target pauses.

Every operator action (replay, abandon, closing or keeping a held message, pausing or resuming a
target, purge) is one row of the audit trail, written in the transaction that performs it: who (the
admin token's name, or the CLI's ``--operator``), what, on what, how many, why and when. Actions on
applications also put ``operator.<action>`` events on each application's timeline (`hub.events`).
The trail is what the console's audit page and ``aktenhub_operator_actions`` in /metrics read, so an
action taken through the CLI beside a running hub shows there like one taken through its API.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.models import UtcDateTime

MAX_REASON = 2000  # characters of an operator's reason


class Action(StrEnum):
    """The operator actions the audit trail knows (also the ``operator.<action>`` event names)."""

    REPLAYED = "replayed"
    ABANDONED = "abandoned"
    CLOSED = "closed"  # a held message, closed upstream
    KEPT = "kept"  # a held message, left upstream
    PAUSED = "paused"  # a target
    RESUMED = "resumed"  # a target
    PURGED = "purged"  # a purge run (retention)


class OperatorAction(BaseModel):
    """One row of the audit trail."""

    model_config = ConfigDict(frozen=True)

    id: int
    at: UtcDateTime
    operator: str | None = Field(description="token name or CLI user; None: the hub on nobody's behalf")
    action: Action
    reason: str | None = None
    subject: str = Field(
        description="what it acted on: an application id, a target, a held message id, "
        "or a filter for bulk actions"
    )
    count: int = Field(description="applications, messages or targets it changed")
    details: dict[str, Any] = Field(default_factory=dict)


def _reason_for_operators(schema: dict[str, Any]) -> None:
    # The admin API leaves a pause's free-text reason out for viewers: the description says so.
    schema["required"] = [name for name in schema.get("required", []) if name != "reason"]


class TargetPause(BaseModel):
    """A target an operator paused: its tasks are not started until it is resumed."""

    model_config = ConfigDict(frozen=True, json_schema_extra=_reason_for_operators)

    operator: str
    reason: str = Field(description="why; viewers do not see it")
    since: UtcDateTime
