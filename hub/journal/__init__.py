"""Journal backends behind one protocol (`hub.journal.base.Journal`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from hub.errors import ConfigError
from hub.journal.base import (
    Abandoned,
    ActionRefused,
    AfterAll,
    AnswerEffects,
    AnswerPlan,
    ApplicationFilter,
    ApplicationPatch,
    ApplicationSummary,
    CircuitRecord,
    Completion,
    FileNumberAssigned,
    FileNumberSequence,
    IntakeResult,
    Journal,
    JournalStats,
    JournalUnavailable,
    LeaseLost,
    PurgeCandidate,
    PurgedApplication,
    PurgeOrder,
    QueuedAlert,
    ReceivedAnswer,
    StoredAnswer,
    Task,
    TaskFailure,
    TaskSpec,
    TaskState,
)
from hub.journal.lifecycle import SqlJournal
from hub.journal.lock import JournalInUse
from hub.journal.sqlite import SqliteJournal

__all__ = [
    "Abandoned",
    "ActionRefused",
    "AfterAll",
    "AnswerEffects",
    "AnswerPlan",
    "ApplicationFilter",
    "ApplicationPatch",
    "ApplicationSummary",
    "CircuitRecord",
    "Completion",
    "FileNumberAssigned",
    "FileNumberSequence",
    "IntakeResult",
    "Journal",
    "JournalInUse",
    "JournalStats",
    "JournalUnavailable",
    "LeaseLost",
    "PurgeCandidate",
    "PurgeOrder",
    "PurgedApplication",
    "QueuedAlert",
    "ReceivedAnswer",
    "SqlJournal",
    "SqliteJournal",
    "StoredAnswer",
    "Task",
    "TaskFailure",
    "TaskSpec",
    "TaskState",
    "open_journal",
]


def open_journal(
    url: str,
    base: Path | None = None,
    clock: Callable[[], float] = time.time,
    *,
    read_only: bool = False,
    guest: bool = False,
) -> Journal:
    """The journal for a store URL: ``sqlite:///relative/path.db`` or ``sqlite:////absolute.db``.

    `read_only`: for commands that only look; such a journal takes no lock and writes nothing.
    `guest`: for an operator's command beside the running hub that holds the journal: it takes no lock,
    never migrates or recovers, and writes in short transactions of its own (SQLite serialises them with
    the hub's); the hub notices its changes at its next poll.
    """
    if url.startswith("sqlite:///"):
        raw = url[len("sqlite:///") :]
        path = Path(raw)
        if not path.is_absolute() and base is not None:
            path = base / path
        return SqliteJournal(path, clock=clock, read_only=read_only, guest=guest)
    if url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(["store: the PostgreSQL backend is not part of this version; use sqlite:///PATH"])
    raise ConfigError([f"store: expected sqlite:///PATH, got {url!r}"])
